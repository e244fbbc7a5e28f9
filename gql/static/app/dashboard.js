// The dashboard: key -> leaderboard, coin view, run status, track record, validation; live through scoreUpdates,
// polling when the socket is down. Plain ES module, no build step. Views are chosen by the URL's
// hash (#/, #/coin/<id>, #/status, #/track, #/validation); the key is never part of it.
import { ApiError, graphql, keyMessage, keyStore, subscribe } from "./api.js";
import { renderWebhooks, showWebhooksTab } from "./webhooks.js";

const POLL_SECONDS = 30;
const SUB_SCORES = [
  ["fundingMagnitude", "Funding magnitude"],
  ["fundingPersistence", "Funding persistence"],
  ["marketConfirmation", "Market confirmation"],
  ["distributionPressure", "Distribution pressure"],
  ["walletConcentration", "Wallet concentration"],
  ["holderQualityDeterioration", "Holder quality deterioration"],
  ["coordinationRisk", "Coordination risk"],
];
const COVERAGE = [
  ["hedgePressure", "Hedge pressure (funding)"],
  ["marketConfirmation", "Market confirmation"],
  ["sellSideFlow", "Sell-side flow"],
  ["supplyContext", "Supply context (on-chain)"],
];
const BOARD_FIELDS = `count signal { lastRunAt nextRunAt modelVersion updateFrequency }
  coins { coinId symbol name score manipulationPhase consecutiveNegativeDays avgFunding72h priceChange24h priceChange7d }`;
const BOARD_QUERY = `query Board($limit: Int!, $minScore: Float!) {
  insiderSelling(limit: $limit, minScore: $minScore) { ${BOARD_FIELDS} } }`;
const LIVE_QUERY = `subscription Live($limit: Int!, $minScore: Float!) {
  scoreUpdates(limit: $limit, minScore: $minScore) { ${BOARD_FIELDS} } }`;
const COIN_QUERY = `query CoinView($id: ID!) {
  coin(coinId: $id) { coinId symbol name score manipulationPhase consecutiveNegativeDays signalStartDate updatedAt
    avgFunding72h priceChange24h priceChange7d top10HoldersPct volumeToLiquidity24h oldWalletSwapPct1d
    holdersChangePct top10HoldersPctChange
    subScores { ${SUB_SCORES.map(([k]) => k).join(" ")} }
    coverage { ${COVERAGE.map(([k]) => k).join(" ")} }
    venues { venue exchange at fundingRate fundingIntervalHours fundingRatePerHour openInterestUsd basis } }
  scoreHistory(coinId: $id, first: 500) { edges { node { at runId score manipulationPhase } } pageInfo { hasNextPage } } }`;
const STATUS_QUERY = `query Status { signal { lastRunAt nextRunAt modelVersion updateFrequency }
  runs(first: 10) { runId status at startedAt finishedAt coins listed error
    venues { venue exchange status latencyMs markets requests rejected error } } }`;
const TRACK_QUERY = `query Track($window: TrackWindow!) {
  trackRecord(window: $window) { window benchmark topN runs from to modelVersions simulated bootstrapReps blockHours
    selections { id kind label n coins runs meanExcessReturn ci95Low ci95High hitRate }
    series { runId at closesAt topCumulative listedCumulative } } }`;
const COLUMNS = [
  { key: "rank", label: "#", num: true },
  { key: "symbol", label: "Coin" },
  { key: "manipulationPhase", label: "Phase" },
  { key: "score", label: "Score", num: true },
  { key: "consecutiveNegativeDays", label: "Streak (days)", num: true },
  { key: "avgFunding72h", label: "Funding 72 h (per 8 h)", num: true },
  { key: "priceChange24h", label: "Price 24 h", num: true },
  { key: "priceChange7d", label: "Price 7 d", num: true },
];

const state = {
  board: null, limit: 100, minScore: 0, phase: "", sort: { key: "rank", dir: "ascending" },
  changed: new Map(), unsubscribe: null, pollTimer: null, retryTimer: null, retryDelay: 5000,
  firstLoad: false, route: null, disposeChart: null, trackWindow: "H24", trackTimer: null,
};

const $ = (id) => document.getElementById(id);

// -- formatting -----------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child != null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
const noData = () => el("span", { class: "nodata", text: "no data" });
const num = (v, digits) => (v == null ? noData() : v.toFixed(digits));
const signed = (v, digits, suffix = "") => {
  if (v == null) return noData();
  return el("span", { class: v < 0 ? "neg" : v > 0 ? "pos" : null, text: `${v > 0 ? "+" : ""}${v.toFixed(digits)}${suffix}` });
};
const pct = (v, digits = 2) => signed(v, digits, " %");
const funding = (decimal, digits = 4) => (decimal == null ? noData() : signed(decimal * 100, digits, " %"));
function when(iso) {
  if (!iso) return noData();
  const d = new Date(iso);
  const text = `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  return el("time", { datetime: iso, text });
}
const usd = (v) => (v == null ? noData() : v >= 1e9 ? `$${(v / 1e9).toFixed(2)} B` : v >= 1e6 ? `$${(v / 1e6).toFixed(2)} M` : `$${Math.round(v).toLocaleString("en-US")}`);

// -- messages and key ---------------------------------------------------------------------

function showMessage(text, kind = "error") {
  const box = $("app-message");
  box.hidden = !text;
  box.className = `message ${kind}`;
  box.textContent = text || "";
}

function announce(text) { $("announce").textContent = text; }

function showKeyView(message) {
  stopLive();
  $("app-view").hidden = true;
  $("key-view").hidden = false;
  const box = $("key-message");
  box.hidden = !message;
  box.textContent = message || "";
  const input = $("key-input");
  input.value = "";
  input.setAttribute("aria-invalid", message ? "true" : "false");
  input.focus();
}

function handleError(error) {
  if (error instanceof ApiError && error.isKeyProblem) {
    keyStore.clear();
    state.board = null;
    showKeyView(keyMessage(error.code));
    return;
  }
  const text = error instanceof ApiError ? error.message : "Something went wrong while loading the data.";
  showMessage(text);
}

// -- live updates ----------------------------------------------------------------------------

function setLive(mode, text) {
  const live = $("live");
  live.dataset.state = mode;
  live.textContent = text;
}

function stopLive() {
  if (state.unsubscribe) state.unsubscribe();
  state.unsubscribe = null;
  clearInterval(state.pollTimer);
  clearTimeout(state.retryTimer);
  state.pollTimer = state.retryTimer = null;
}

function boardVars() { return { limit: state.limit, minScore: state.minScore }; }

function startLive() {
  if (state.unsubscribe) state.unsubscribe();
  clearTimeout(state.retryTimer);
  if (!state.pollTimer) setLive("connecting", "Connecting to live updates…");
  state.unsubscribe = subscribe(LIVE_QUERY, boardVars(), {
    onOpen() {
      state.retryDelay = 5000;
      clearInterval(state.pollTimer);
      state.pollTimer = null;
      setLive("live", "Live: new runs appear here as they are scored.");
    },
    onNext(data) { applyBoard(data.scoreUpdates, true); },
    onError(error) { if (error.isKeyProblem) handleError(error); else showMessage(error.message, "warn"); },
    onClose() {
      state.unsubscribe = null;
      if (!keyStore.get()) return;
      startPolling();
      state.retryTimer = setTimeout(startLive, state.retryDelay);
      state.retryDelay = Math.min(state.retryDelay * 2, 120000);
    },
  });
}

function startPolling() {
  if (state.pollTimer) return;
  setLive("polling", `Live updates are disconnected: checking for new runs every ${POLL_SECONDS} s instead.`);
  const tick = async () => {
    try {
      const data = await graphql(BOARD_QUERY, boardVars());
      applyBoard(data.insiderSelling, true);
    } catch (error) {
      handleError(error);
    }
  };
  state.pollTimer = setInterval(tick, POLL_SECONDS * 1000);
  tick();
}

function applyBoard(next, isUpdate) {
  const prev = state.board;
  if (isUpdate && prev && next.signal.lastRunAt === prev.signal.lastRunAt && next.count === prev.count) return;
  if (isUpdate && prev) {
    const before = new Map(prev.coins.map((c, i) => [c.coinId, { score: c.score, rank: i + 1 }]));
    state.changed = new Map();
    next.coins.forEach((c, i) => {
      const old = before.get(c.coinId);
      if (!old) state.changed.set(c.coinId, "new in the ranking");
      else if (old.score !== c.score) state.changed.set(c.coinId, `score ${old.score.toFixed(2)} → ${c.score.toFixed(2)}`);
      else if (old.rank !== i + 1) state.changed.set(c.coinId, `rank ${old.rank} → ${i + 1}`);
    });
    announce(`New scoring run at ${new Date(next.signal.lastRunAt).toISOString().slice(11, 16)} UTC: ` +
      `${state.changed.size} rows changed.`);
  }
  state.board = next;
  if (state.route && state.route.name === "board") renderBoardBody();
  if (isUpdate && prev && state.route && state.route.name === "coin") renderCoin(state.route.id, true);
  if (isUpdate && prev && state.route && state.route.name === "status") renderStatus();
  if (isUpdate && prev && state.route && state.route.name === "track") renderTrack(true);  // windows may have closed
}

// -- leaderboard -----------------------------------------------------------------------------

async function loadBoard() {
  const data = await graphql(BOARD_QUERY, boardVars());
  state.changed = new Map();
  applyBoard(data.insiderSelling, false);
}

function renderBoard(view) {
  const phases = el("select", { id: "phase-filter", onchange: (e) => { state.phase = e.target.value; renderBoardBody(); } });
  const minScore = el("input", { id: "min-score", type: "number", min: "0", max: "10", step: "0.5", value: String(state.minScore) });
  const limit = el("select", { id: "limit" }, [100, 200, 500].map((n) => el("option", { value: n, selected: n === state.limit, text: String(n) })));
  const apply = async (event) => {
    event.preventDefault();
    const value = Number(minScore.value);
    if (!Number.isFinite(value) || value < 0 || value > 10) {
      minScore.setAttribute("aria-invalid", "true");
      showMessage("The minimum score must be a number from 0 to 10.");
      return;
    }
    minScore.setAttribute("aria-invalid", "false");
    showMessage("");
    state.minScore = value;
    state.limit = Number(limit.value);
    try { await loadBoard(); startLive(); } catch (error) { handleError(error); }
  };
  const form = el("form", { class: "filters", id: "filters", onsubmit: apply },
    el("div", { class: "field" }, el("label", { for: "min-score", text: "Minimum score" }), minScore),
    el("div", { class: "field" }, el("label", { for: "phase-filter", text: "Phase" }), phases),
    el("div", { class: "field" }, el("label", { for: "limit", text: "Rows (as REST's limit)" }), limit),
    el("button", { type: "submit", text: "Apply" }));
  const head = el("tr", {}, COLUMNS.map((col) => el("th", { scope: "col", "data-key": col.key },
    el("button", { type: "button", text: col.label, onclick: () => sortBy(col.key) }))));
  view.replaceChildren(
    el("h1", { id: "view-h", tabindex: "-1", text: "Leaderboard" }),
    el("p", { id: "run-line", class: "hint" }),
    form,
    el("div", { class: "table-wrap" },
      el("table", { class: "board", id: "board" },
        el("caption", { class: "visually-hidden", text: "Listed coins; column headers sort" }),
        el("thead", {}, head), el("tbody"))),
    el("p", { id: "board-empty", class: "hint", hidden: true, text: "No coin matches these filters." }),
  );
  renderBoardBody();
}

function sortBy(key) {
  const same = state.sort.key === key;
  const firstDir = key === "rank" || key === "symbol" || key === "manipulationPhase" ? "ascending" : "descending";
  state.sort = { key, dir: same ? (state.sort.dir === "ascending" ? "descending" : "ascending") : firstDir };
  renderBoardBody();
}

function renderBoardBody() {
  const table = $("board");
  const board = state.board;
  if (!table || !board) return;
  const phaseSelect = $("phase-filter");
  const phases = [...new Set(board.coins.map((c) => c.manipulationPhase))].sort();
  if (state.phase && !phases.includes(state.phase)) phases.push(state.phase);
  phaseSelect.replaceChildren(el("option", { value: "", text: "All phases" }),
    ...phases.map((p) => el("option", { value: p, selected: p === state.phase, text: p })));
  const s = board.signal;
  $("run-line").replaceChildren("Run of ", when(s.lastRunAt), ` · ${board.count} coins listed · next run planned `,
    when(s.nextRunAt), ` · model ${s.modelVersion}`);
  let rows = board.coins.map((c, i) => ({ ...c, rank: i + 1 }));
  if (state.phase) rows = rows.filter((c) => c.manipulationPhase === state.phase);
  const { key, dir } = state.sort;
  const sign = dir === "ascending" ? 1 : -1;
  rows.sort((a, b) => {
    const x = a[key], y = b[key];
    const cmp = typeof x === "string" ? x.localeCompare(y) : x - y;
    return cmp * sign || a.rank - b.rank;
  });
  for (const th of table.querySelectorAll("thead th")) {
    if (th.dataset.key === key) th.setAttribute("aria-sort", dir); else th.removeAttribute("aria-sort");
  }
  const body = rows.map((c) => {
    const change = state.changed.get(c.coinId);
    return el("tr", { "data-coin-id": c.coinId, class: change ? "changed" : null, title: change ? `Changed in the last run: ${change}` : null },
      el("td", {}, String(c.rank), change ? el("span", { class: "visually-hidden", text: ` (changed: ${change})` }) : null),
      el("td", {}, el("a", { href: `#/coin/${encodeURIComponent(c.coinId)}`, text: c.symbol }), ` ${c.name}`),
      el("td", { text: c.manipulationPhase }),
      el("td", { class: "score", text: c.score.toFixed(2) }),
      el("td", { text: String(c.consecutiveNegativeDays) }),
      el("td", {}, funding(c.avgFunding72h)),
      el("td", {}, pct(c.priceChange24h)),
      el("td", {}, pct(c.priceChange7d)));
  });
  table.tBodies[0].replaceChildren(...body);
  $("board-empty").hidden = rows.length > 0;
}

// -- coin view -------------------------------------------------------------------------------

async function renderCoin(id, refresh = false) {
  const view = $("view");
  if (!refresh) view.replaceChildren(el("p", { class: "hint", text: "Loading…" }));
  let data;
  try {
    data = await graphql(COIN_QUERY, { id });
  } catch (error) {
    handleError(error);
    return;
  }
  if (!state.route || state.route.name !== "coin" || state.route.id !== id) return;
  const coin = data.coin;
  const back = el("p", {}, el("a", { href: "#/", text: "← Leaderboard" }));
  if (!coin) {
    view.replaceChildren(back, el("h1", { id: "view-h", tabindex: "-1", text: "Coin not found" }),
      el("p", { text: `No coin with the id “${id}” was scored in the latest run.` }));
    focusHeading(refresh);
    return;
  }
  const runs = data.scoreHistory.edges.map((e) => e.node).reverse();  // oldest first
  const chartBox = el("div", { id: "score-chart", class: "chart", role: "img",
    "aria-label": `Score at each of the last ${runs.length} runs; the table below lists them` });
  const historyTable = el("table", { class: "grid", id: "history-table" },
    el("caption", { text: "Score at each stored run" }),
    el("thead", {}, el("tr", {}, ["Run time", "Score", "Phase"].map((t) => el("th", { scope: "col", text: t })))),
    el("tbody", {}, runs.slice().reverse().map((r) => el("tr", { "data-run-id": r.runId },
      el("td", {}, when(r.at)), el("td", { text: r.score.toFixed(2) }), el("td", { text: r.manipulationPhase })))));
  const barList = (id, items, values) => el("ul", { class: "bars", id }, items.map(([key, label]) => {
    const v = values[key];
    return el("li", { "data-key": key },
      el("span", { text: label }),
      el("span", { class: "track", "aria-hidden": "true" }, el("span", { class: "fill", style: `width:${(v * 100).toFixed(1)}%` })),
      el("span", { class: "val", text: v.toFixed(2) }));
  }));
  const bars = barList("sub-scores", SUB_SCORES, coin.subScores);
  const coverage = coin.coverage
    ? [el("p", { class: "hint", text: "Share of each family's inputs that had data (1 = all)." }),
      barList("coverage", COVERAGE, coin.coverage)]
    : el("p", { id: "coverage", class: "nodata", text: "no data (this run predates coverage reporting)" });
  const venues = coin.venues.slice().sort((a, b) => (a.fundingRatePerHour ?? 0) - (b.fundingRatePerHour ?? 0));
  const venueTable = el("table", { class: "grid", id: "venues" },
    el("caption", { text: "Latest funding per venue (negative: shorts pay longs)" }),
    el("thead", {}, el("tr", {}, ["Venue", "Interval", "As published", "Per hour", "Per 8 h", "Open interest", "Basis", "Sampled"]
      .map((t) => el("th", { scope: "col", text: t })))),
    el("tbody", {}, venues.map((v) => el("tr", { "data-venue": v.venue },
      el("th", { scope: "row", text: v.exchange }),
      el("td", { text: v.fundingIntervalHours == null ? "no data" : `${v.fundingIntervalHours} h` }),
      el("td", {}, funding(v.fundingRate)),
      el("td", {}, funding(v.fundingRatePerHour)),
      el("td", {}, funding(v.fundingRatePerHour == null ? null : v.fundingRatePerHour * 8)),
      el("td", {}, usd(v.openInterestUsd)),
      el("td", {}, v.basis == null ? noData() : signed(v.basis * 100, 3, " %")),
      el("td", {}, when(v.at))))));
  const onchain = el("dl", { class: "kv", id: "onchain" },
    el("dt", { text: "Top-10 holders' share" }), el("dd", {}, coin.top10HoldersPct == null ? noData() : `${coin.top10HoldersPct.toFixed(1)} %`),
    el("dt", { text: "Change in top-10 share" }), el("dd", {}, coin.top10HoldersPctChange == null ? noData() : signed(coin.top10HoldersPctChange, 2, " pp")),
    el("dt", { text: "Holder count change" }), el("dd", {}, coin.holdersChangePct == null ? noData() : pct(coin.holdersChangePct * 100)),
    el("dt", { text: "DEX volume / liquidity (24 h)" }), el("dd", {}, num(coin.volumeToLiquidity24h, 2)),
    el("dt", { text: "Swaps by older wallets (1 d)" }), el("dd", {}, coin.oldWalletSwapPct1d == null ? noData() : `${coin.oldWalletSwapPct1d.toFixed(1)} %`));
  const streakDays = coin.consecutiveNegativeDays;
  view.replaceChildren(
    back,
    el("h1", { id: "view-h", tabindex: "-1" }, `${coin.symbol} `, el("span", { class: "hint", text: coin.name })),
    el("div", { class: "cards" },
      el("section", { class: "card", "aria-labelledby": "score-h" },
        el("h2", { id: "score-h", text: "Score" }),
        el("p", { class: "big", id: "coin-score", text: coin.score.toFixed(2) }),
        el("p", {}, `Phase: ${coin.manipulationPhase}`), el("p", { class: "hint" }, "Updated ", when(coin.updatedAt))),
      el("section", { class: "card", "aria-labelledby": "streak-h" },
        el("h2", { id: "streak-h", text: "Negative-funding streak" }),
        el("p", { class: "big", id: "streak" }, `${streakDays} ${streakDays === 1 ? "day" : "days"}`),
        el("p", {}, "Started ", when(coin.signalStartDate)),
        el("p", {}, "72 h funding (per 8 h): ", funding(coin.avgFunding72h))),
      el("section", { class: "card", "aria-labelledby": "price-h" },
        el("h2", { id: "price-h", text: "Price" }),
        el("dl", { class: "kv" }, el("dt", { text: "24 h" }), el("dd", {}, pct(coin.priceChange24h)),
          el("dt", { text: "7 d" }), el("dd", {}, pct(coin.priceChange7d))))),
    el("section", { "aria-labelledby": "history-h" },
      el("h2", { id: "history-h", text: "Score history" }),
      el("p", { class: "hint", text: `One point per stored run (${runs.length}${data.scoreHistory.pageInfo.hasNextPage ? ", the latest 500" : ""}); hover or tap for the run time.` }),
      chartBox,
      el("details", {}, el("summary", { text: "The runs as a table" }), historyTable)),
    el("div", { class: "cards" },
      el("section", { class: "card", "aria-labelledby": "subs-h" }, el("h2", { id: "subs-h", text: "Sub-scores (0 to 1)" }), bars),
      el("section", { class: "card", "aria-labelledby": "onchain-h" }, el("h2", { id: "onchain-h", text: "On-chain context" }), onchain),
      el("section", { class: "card", "aria-labelledby": "coverage-h" }, el("h2", { id: "coverage-h", text: "Data coverage" }), coverage)),
    el("section", { "aria-labelledby": "venues-h" },
      el("h2", { id: "venues-h", text: "Funding by venue" }),
      venues.length ? el("div", { class: "table-wrap" }, venueTable)
        : el("p", { class: "nodata", text: "No per-venue data for this coin in the latest run (it is not listed)." })),
  );
  if (state.disposeChart) state.disposeChart();
  const { scoreChart } = await import("./chart.js");
  state.disposeChart = scoreChart(chartBox, runs);
  focusHeading(refresh);
}

// -- run status ------------------------------------------------------------------------------

async function renderStatus() {
  const view = $("view");
  let data;
  try { data = await graphql(STATUS_QUERY); } catch (error) { handleError(error); return; }
  if (!state.route || state.route.name !== "status") return;
  const [last] = data.runs;
  const finished = data.runs.find((r) => r.status !== "RUNNING");
  const statusText = (s) => el("span", { class: `run-${s.toLowerCase()}`, text: s.toLowerCase() });
  const summary = el("dl", { class: "kv", id: "run-summary" },
    el("dt", { text: "Last run" }), el("dd", {}, last ? [when(last.at), " — ", statusText(last.status)] : noData()),
    el("dt", { text: "Last successful run" }), el("dd", {}, when(data.signal.lastRunAt)),
    el("dt", { text: "Next run (planned)" }), el("dd", {}, when(data.signal.nextRunAt)),
    el("dt", { text: "Schedule" }), el("dd", { text: data.signal.updateFrequency }),
    el("dt", { text: "Model version" }), el("dd", { text: data.signal.modelVersion }));
  const venueRows = (finished ? finished.venues : []).map((v) => el("tr", { "data-venue": v.venue },
    el("th", { scope: "row", text: v.exchange }), el("td", {}, statusText(v.status)),
    el("td", { text: String(v.markets) }), el("td", { text: String(v.requests) }),
    el("td", { text: `${Math.round(v.latencyMs)} ms` }), el("td", { text: String(v.rejected) }),
    el("td", {}, v.error ? v.error : "—")));
  const runRows = data.runs.map((r) => el("tr", {},
    el("td", {}, when(r.at)), el("td", {}, statusText(r.status)),
    el("td", { text: r.coins == null ? "—" : String(r.coins) }), el("td", { text: r.listed == null ? "—" : String(r.listed) }),
    el("td", { text: r.error || "—" })));
  view.replaceChildren(
    el("h1", { id: "view-h", tabindex: "-1", text: "Run status" }),
    summary,
    el("h2", {}, "Each venue in the last finished run", finished ? [" (", when(finished.at), ")"] : ""),
    venueRows.length ? el("div", { class: "table-wrap" }, el("table", { class: "grid", id: "venue-outcomes" },
      el("thead", {}, el("tr", {}, ["Venue", "Outcome", "Markets", "Requests", "Latency", "Rejected", "Error"]
        .map((t) => el("th", { scope: "col", text: t })))), el("tbody", {}, venueRows)))
      : el("p", { class: "nodata", text: "No venue outcomes recorded for the last run." }),
    el("h2", { text: "Recent runs" }),
    el("div", { class: "table-wrap" }, el("table", { class: "grid", id: "recent-runs" },
      el("thead", {}, el("tr", {}, ["Run time", "Status", "Coins", "Listed", "Error"].map((t) => el("th", { scope: "col", text: t })))),
      el("tbody", {}, runRows))));
  focusHeading(false);
}

// -- track record ----------------------------------------------------------------------------

const ret = (v) => (v == null ? noData() : pct(v * 100));
const ci = (lo, hi) => (lo == null || hi == null ? noData() : `[${(lo * 100).toFixed(2)}, ${(hi * 100).toFixed(2)}] %`);

async function renderTrack(refresh = false) {
  const view = $("view");
  if (!refresh) view.replaceChildren(el("p", { class: "hint", text: "Loading…" }));
  let data;
  try { data = await graphql(TRACK_QUERY, { window: state.trackWindow }); } catch (error) { handleError(error); return; }
  if (!state.route || state.route.name !== "track") return;
  const t = data.trackRecord;
  const label = t.window === "H24" ? "24 h" : "7 d";
  const windows = el("div", { class: "filters", role: "group", "aria-label": "Window" },
    [["H24", "24 h"], ["D7", "7 d"]].map(([value, text]) => el("button", {
      type: "button", class: value === state.trackWindow ? null : "secondary", "aria-pressed": String(value === state.trackWindow),
      "data-window": value, text: `${text} returns`,
      onclick: () => { state.trackWindow = value; renderTrack(true); },
    })));
  const simulated = t.simulated ? el("p", { class: "message warn", id: "track-simulated",
    text: "Simulated market: this server runs the demo, so these are returns of a simulated market, not of real coins. " +
      "Nothing here is evidence about real markets." }) : null;
  const chartBox = el("div", { id: "track-chart", class: "chart", role: "img",
    "aria-label": `Cumulative ${label} excess return of the top ${t.topN} and of every listed coin against the universe median` });
  const rows = t.selections.map((s) => el("tr", { "data-id": s.id },
    el("th", { scope: "row", text: s.label }), el("td", { text: String(s.n) }), el("td", { text: String(s.coins) }),
    el("td", { text: String(s.runs) }), el("td", {}, ret(s.meanExcessReturn)), el("td", {}, ci(s.ci95Low, s.ci95High)),
    el("td", {}, s.hitRate == null ? noData() : s.hitRate.toFixed(2))));
  view.replaceChildren(
    el("h1", { id: "view-h", tabindex: "-1", text: "Track record" }),
    simulated,
    el("p", { class: "hint", id: "track-summary" },
      `Realized ${label} forward returns of ${t.runs} closed runs against the universe median, computed when each window ` +
      `closed from the prices stored then, under each run's own model version (${t.modelVersions.join(", ") || "none yet"}). ` +
      "It updates as runs close."),
    windows,
    t.series.length ? chartBox : el("p", { class: "nodata", id: "track-empty", text: "No run's window has closed yet." }),
    el("p", { class: "hint" }, `The chart compounds the mean excess of each run in a chain whose ${label} windows do not overlap; ` +
      "the universe is the zero line."),
    el("h2", { text: "By selection and score band" }),
    el("div", { class: "table-wrap" }, el("table", { class: "grid", id: "track-table" },
      el("caption", { text: `Mean ${label} excess return with its 95 % interval (bootstrap over coins and ${t.blockHours / 24}-day blocks, ${t.bootstrapReps} draws); hit rate = share below the universe` }),
      el("thead", {}, el("tr", {}, ["Selection", "Pairs", "Coins", "Runs", "Mean excess", "95 % interval", "Hit rate"]
        .map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows))));
  if (state.disposeChart) { state.disposeChart(); state.disposeChart = null; }
  if (t.series.length) {
    const { trackChart } = await import("./chart.js");
    if (!state.route || state.route.name !== "track") return;
    state.disposeChart = trackChart(chartBox, t.series, t.topN);
  }
  clearTimeout(state.trackTimer);
  state.trackTimer = setTimeout(() => {  // windows close between announced runs too
    if (keyStore.get() && !$("app-view").hidden && state.route && state.route.name === "track") renderTrack(true);
  }, POLL_SECONDS * 1000);
  focusHeading(refresh);
}

// -- validation ------------------------------------------------------------------------------

async function renderValidation() {
  const view = $("view");
  const heading = el("h1", { id: "view-h", tabindex: "-1", text: "Validation on real market data" });
  if ($("main").dataset.validation === "missing") {  // known when the page was served: no request to fail
    view.replaceChildren(heading, el("p", { class: "message warn", id: "validation-missing",
      text: "The validation report has not been published on this server yet: docs/validation.md is not here." }),
    el("p", {}, "Meanwhile, the ", el("a", { href: "/docs/methodology", text: "methodology" }),
      " describes how the score is validated."));
    focusHeading(false);
    return;
  }
  let response;
  try {
    response = await fetch("/docs/validation", { credentials: "omit", headers: { Accept: "text/html" } });
  } catch {
    showMessage("The server could not be reached.");
    return;
  }
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  if (!state.route || state.route.name !== "validation") return;
  const article = doc.querySelector("article.prose");
  if (!response.ok || !article) {
    const notice = doc.querySelector(".notice");
    view.replaceChildren(heading, el("p", { class: "message warn", id: "validation-missing",
      text: notice ? notice.textContent : "The validation report is not available on this server." }));
  } else {
    const content = el("div", { class: "prose", id: "validation-report" });
    content.append(...[...article.childNodes].map((n) => document.importNode(n, true)));
    const first = content.querySelector("h1");
    if (first) first.remove();
    view.replaceChildren(heading, content, el("p", {}, el("a", { href: "/docs/validation", text: "The report on its own page" })));
  }
  focusHeading(false);
}

// -- routing ---------------------------------------------------------------------------------

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const coin = hash.match(/^\/coin\/(.+)$/);
  if (coin) return { name: "coin", id: decodeURIComponent(coin[1]) };
  if (hash === "/status") return { name: "status" };
  if (hash === "/validation") return { name: "validation" };
  if (hash === "/track") return { name: "track" };
  if (hash === "/webhooks") return { name: "webhooks" };
  return { name: "board" };
}

function focusHeading(refresh) {
  if (refresh || state.firstLoad) return;
  const h = $("view-h");
  if (h) h.focus({ preventScroll: false });
}

async function route() {
  if (!keyStore.get()) return;
  state.route = parseRoute();
  if (state.disposeChart) { state.disposeChart(); state.disposeChart = null; }
  for (const a of document.querySelectorAll(".tabs a")) {
    const active = a.dataset.tab === state.route.name || (a.dataset.tab === "board" && state.route.name === "coin");
    if (active) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  showMessage("");
  if (state.route.name === "board") {
    renderBoard($("view"));
    focusHeading(false);
  } else if (state.route.name === "coin") await renderCoin(state.route.id);
  else if (state.route.name === "status") await renderStatus();
  else if (state.route.name === "track") await renderTrack();
  else if (state.route.name === "webhooks") await renderWebhooks($("view"));
  else await renderValidation();
}

async function openDashboard() {
  $("key-view").hidden = true;
  $("app-view").hidden = false;
  try {
    await loadBoard();
  } catch (error) {
    handleError(error);
    return false;
  }
  if (!keyStore.get()) return false;
  await showWebhooksTab();
  await route();
  startLive();
  return true;
}

function init() {
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("key-input");
    const key = input.value.trim();
    if (!key) {
      showKeyView(keyMessage("missing_api_key"));
      return;
    }
    performance.clearMarks();
    performance.mark("key-submitted");
    keyStore.set(key);
    input.value = "";
    state.firstLoad = true;
    const ok = await openDashboard();
    state.firstLoad = false;
    if (ok) {
      performance.mark("leaderboard-shown");
      performance.measure("key-to-leaderboard", "key-submitted", "leaderboard-shown");
      const h = $("view-h");
      if (h) h.focus();
    }
  });
  $("forget-key").addEventListener("click", () => {
    keyStore.clear();
    state.board = null;
    showKeyView("");
    $("key-message").hidden = true;
  });
  window.addEventListener("hashchange", () => { route(); });
  if (keyStore.get()) openDashboard(); else showKeyView("");
}

init();
