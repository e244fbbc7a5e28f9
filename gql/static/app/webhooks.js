// The Webhooks tab (issue 22): the key's tenant's endpoints, each with its recent deliveries and a
// "Send test" button. Shown only for keys holding webhooks:manage (or admin). Self-contained: the
// dashboard calls showWebhooksTab() once the key works and renderWebhooks(view) on #/webhooks.
import { ApiError, graphql } from "./api.js";

const SCOPE_QUERY = "query WebhookScope { viewer { apiKey { scopes } } }";
const LIST_QUERY = `query Webhooks { webhookEndpoints { id url description events threshold minScore direction state
  consecutiveFailures disabledReason
  deliveries(first: 10) { id webhookId type status attempts createdAt deliveredAt lastStatusCode lastError } } }`;
const TEST_MUTATION = `mutation TestWebhook($id: ID!) {
  sendTestWebhook(endpointId: $id) { ok status statusCode latencyMs error } }`;

function node(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function when(iso) {
  return iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "—";
}

export async function showWebhooksTab() {
  const tab = document.getElementById("webhooks-tab");
  if (!tab) return false;
  try {
    const data = await graphql(SCOPE_QUERY);
    const scopes = data.viewer.apiKey.scopes;
    tab.hidden = !(scopes.includes("webhooks:manage") || scopes.includes("admin"));
  } catch {
    tab.hidden = true;
  }
  return !tab.hidden;
}

function deliveriesTable(deliveries) {
  if (!deliveries.length) return node("p", { class: "hint", text: "No deliveries yet." });
  const head = node("tr", {}, ...["Created", "Type", "Status", "Attempts", "Response", "Delivered"]
    .map((h) => node("th", { scope: "col", text: h })));
  const rows = deliveries.map((d) => node("tr", {},
    node("td", { text: when(d.createdAt) }),
    node("td", { text: d.type }),
    node("td", { class: `delivery-${d.status}`, text: d.status }),
    node("td", { text: d.attempts }),
    node("td", { text: d.lastStatusCode ?? (d.lastError || "—") }),
    node("td", { text: when(d.deliveredAt) })));
  return node("div", { class: "table-wrap" },
    node("table", { class: "grid webhook-deliveries" }, node("thead", {}, head), node("tbody", {}, ...rows)));
}

function endpointSection(endpoint, view) {
  const result = node("p", { class: "hint", role: "status", "aria-live": "polite" });
  const button = node("button", { type: "button", class: "webhook-test", text: "Send test" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    result.textContent = "Sending…";
    try {
      const data = await graphql(TEST_MUTATION, { id: endpoint.id });
      const t = data.sendTestWebhook;
      result.textContent = t.ok
        ? `Delivered: HTTP ${t.statusCode} in ${Math.round(t.latencyMs)} ms.`
        : `Not delivered (${t.status}): ${t.error || `HTTP ${t.statusCode}`}.`;
      await renderWebhooks(view, false);
    } catch (error) {
      result.textContent = error instanceof ApiError ? error.message : "The test could not be sent.";
    } finally {
      button.disabled = false;
    }
  });
  const filters = [
    endpoint.threshold != null ? `threshold ${endpoint.threshold} (${endpoint.direction.toLowerCase()})` : null,
    endpoint.minScore != null ? `min score ${endpoint.minScore}` : null,
  ].filter(Boolean).join(", ");
  return node("section", { class: "webhook-endpoint", "aria-label": `Endpoint ${endpoint.url}` },
    node("h2", { text: endpoint.url }),
    node("p", {}, `${endpoint.state.toLowerCase()} · ${endpoint.events.map((e) => e.toLowerCase().replace("_", ".")).join(", ")}`,
      filters ? ` · ${filters}` : "",
      endpoint.disabledReason ? ` · disabled: ${endpoint.disabledReason}` : ""),
    node("p", {}, button), result,
    deliveriesTable(endpoint.deliveries));
}

export async function renderWebhooks(view, focus = true) {
  const heading = node("h1", { id: "view-h", tabindex: "-1", text: "Webhooks" });
  let data;
  try {
    data = await graphql(LIST_QUERY);
  } catch (error) {
    view.replaceChildren(heading, node("p", { role: "alert",
      text: error instanceof ApiError ? error.message : "The webhook endpoints could not be loaded." }));
    return;
  }
  const endpoints = data.webhookEndpoints;
  view.replaceChildren(heading,
    node("p", { class: "hint", text: "Endpoints are created with the createWebhookEndpoint mutation or "
      + "`insider-selling admin webhooks create`; the signing secret is shown once, then." }),
    ...(endpoints.length ? endpoints.map((e) => endpointSection(e, view))
      : [node("p", { text: "This tenant has no webhook endpoints yet." })]));
  if (focus) heading.focus();
}
