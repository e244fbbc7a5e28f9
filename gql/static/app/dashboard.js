// The dashboard: key -> leaderboard, coin view, run status, track record, validation; live through scoreUpdates,
// polling when the socket is down. Plain ES module, no build step. Views are chosen by the URL's
// hash (#/, #/coin/<id>, #/status, #/track, #/validation); the key is never part of it.
import { ApiError, graphql, keyMessage, keyStore, subscribe } from "./api.js";
import { renderWebhooks, showWebhooksTab } from "./webhooks.js";

const POLL_SECONDS = 30;
const SPARK_RUNS = 24;
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
const EXTRAS_QUERY = `query BoardExtras($limit: Int!, $minScore: Float!, $dayAgo: DateTime!) {
  insiderSelling(limit: $limit, minScore: $minScore) { coins { coinId
    venues { fundingRatePerHour openInterestUsd }
    history(first: ${SPARK_RUNS}) { at score }
    dayAgo: history(first: 1, before: $dayAgo) { at venues { openInterestUsd } } } }
  runs(first: 10) { runId status } }`;
const PREVIOUS_QUERY = `query Previous($id: ID!) { run(id: $id) { runId at ranking(limit: 500) { coins { coinId score } } } }`;
const SEARCH_QUERY = `query Search($text: String!) { searchCoins(text: $text, first: 8) { coinId symbol name score manipulationPhase } }`;
const MARKET_QUERY = `query Market($id: ID!, $from: DateTime!, $first: Int!, $after: String) {
  scoreHistory(coinId: $id, from: $from, first: $first, after: $after) {
    edges { node { at score venues { venue exchange fundingRatePerHour openInterestUsd basis markPrice } } }
    pageInfo { hasNextPage endCursor } } }`;
const DAY_AGO_QUERY = `query DayAgo($id: ID!, $before: DateTime!) {
  coin(coinId: $id) { coinId dayAgo: history(first: 1, before: $before) { at venues { openInterestUsd } } } }`;
const COLUMNS = [
  { key: "rank", label: "#", num: true },
  { key: "symbol", label: "Coin" },
  { key: "manipulationPhase", label: "Phase" },
  { key: "score", label: "Score", num: true },
  { key: "scoreChange", label: "Change", num: true, secondary: true, title: "Rank and score change since the previous run" },
  { key: "spark", label: "Last runs", secondary: true, nosort: true, title: `Score over the last ${SPARK_RUNS} runs` },
  { key: "negativeVenues", label: "Neg. venues", num: true, secondary: true, title: "Venues with negative funding now, of the venues with data" },
  { key: "consecutiveNegativeDays", label: "Streak (days)", num: true, secondary: true },
  { key: "avgFunding72h", label: "Funding 72 h (per 8 h)", num: true, secondary: true },
  { key: "oiChange24h", label: "OI 24 h", num: true, secondary: true, title: "Open interest change over 24 h, all venues" },
  { key: "priceChange24h", label: "Price 24 h", num: true, secondary: true },
  { key: "priceChange7d", label: "Price 7 d", num: true, secondary: true },
];
//: The published score bands (methodology, "The scale"), calibrated on real data.
const BANDS = [
  { id: "b1", lo: 0, hi: 2.5, label: "0 – 2.5", meaning: "the weaker half of listed coins: negative funding with little confirmation" },
  { id: "b2", lo: 2.5, hi: 5, label: "2.5 – 5", meaning: "the stronger half, below the top tenth" },
  { id: "b3", lo: 5, hi: 7.5, label: "5 – 7.5", meaning: "the top tenth: negative funding confirmed by open interest and price" },
  { id: "b4", lo: 7.5, hi: 10.01, label: "7.5 – 10", meaning: "the top hundredth" },
];
const PHASES = [
  ["short-squeeze-risk", "Short-squeeze risk", "Funding is negative, but shorts are covering: open interest falling, taker buying, price up."],
  ["active-hedge-pressure", "Active hedge pressure", "The last 24 h are at least as negative as the 72 h average and open interest is rising."],
  ["persistent-shorting", "Persistent shorting", "Negative in most hours of the window, for two or more UTC days."],
  ["supply-risk-supported", "Supply risk", "None of the above, but the on-chain supply context is strong."],
  ["emerging-pressure", "Emerging pressure", "A negative-funding streak younger than a day."],
  ["hedge-pressure", "Hedge pressure", "Any other coin with negative cross-venue funding."],
  ["none", "Not listed", "No negative cross-venue funding: score 0."],
];
const PHASE_LABEL = new Map(PHASES.map(([slug, label]) => [slug, label]));
const phaseLabel = (slug) => PHASE_LABEL.get(slug) || slug;
const band = (score) => (score > 0 ? BANDS.find((b) => score >= b.lo && score < b.hi) || BANDS[3] : null);
const RANGES = [["24h", "24 h", 24], ["7d", "7 d", 24 * 7], ["30d", "30 d", 24 * 30]];
const WATCH_KEY = "insider-selling:watchlist";  // coin ids only (never the key)
const WATCH_MAX = 200;

const state = {
  board: null, limit: 100, minScore: 0, phase: "", sort: { key: "rank", dir: "ascending" },
  changed: new Map(), unsubscribe: null, pollTimer: null, retryTimer: null, retryDelay: 5000,
  firstLoad: false, route: null, disposeChart: null, trackWindow: "H24", trackTimer: null,
  extras: new Map(), watchOnly: false, range: "24h", disposers: [], searchTimer: null, searchSeq: 0,
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
  // after an error the key stays in the field to be corrected (it is a password field, and
  // goes nowhere else); "Forget key" empties it
  input.setAttribute("aria-invalid", message ? "true" : "false");
  input.focus();
  if (message && input.value) input.select();
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

/** A row is marked as changed by a new run when it is new in the ranking, moved in rank, or its
 * score moved by at least SCORE_STEP (a run that shifts every score by a hair marks nothing). */
const SCORE_STEP = 0.1;

function applyBoard(next, isUpdate) {
  const prev = state.board;
  if (isUpdate && prev && next.signal.lastRunAt === prev.signal.lastRunAt && next.count === prev.count) return;
  if (isUpdate && prev) {
    const before = new Map(prev.coins.map((c, i) => [c.coinId, { score: c.score, rank: i + 1 }]));
    state.changed = new Map();
    next.coins.forEach((c, i) => {
      const old = before.get(c.coinId);
      if (!old) state.changed.set(c.coinId, "new in the ranking");
      else if (old.rank !== i + 1) state.changed.set(c.coinId, `rank ${old.rank} → ${i + 1}, score ${old.score.toFixed(2)} → ${c.score.toFixed(2)}`);
      else if (Math.abs(old.score - c.score) >= SCORE_STEP) state.changed.set(c.coinId, `score ${old.score.toFixed(2)} → ${c.score.toFixed(2)}`);
    });
    announce(`New scoring run at ${new Date(next.signal.lastRunAt).toISOString().slice(11, 16)} UTC: ` +
      `${state.changed.size} of ${next.coins.length} rows changed.`);
  }
  state.board = next;
  if (isUpdate && prev) state.extras = new Map();  // the second query follows the new run
  if (state.route && state.route.name === "board") renderBoardBody();
  if (isUpdate && prev) loadExtras();
  if (isUpdate && prev && state.route && state.route.name === "coin") renderCoin(state.route.id, true);
  if (isUpdate && prev && state.route && state.route.name === "status") renderStatus();
  if (isUpdate && prev && state.route && state.route.name === "track") renderTrack(true);  // windows may have closed
}

// -- watchlist (localStorage: coin ids only) ---------------------------------------------------

const watchlist = {
  get() {
    try {
      const ids = JSON.parse(localStorage.getItem(WATCH_KEY) || "[]");
      return new Set(Array.isArray(ids) ? ids.filter((id) => typeof id === "string" && id.length <= 200).slice(0, WATCH_MAX) : []);
    } catch { return new Set(); }
  },
  toggle(id) {
    const ids = this.get();
    if (ids.has(id)) ids.delete(id); else if (ids.size < WATCH_MAX) ids.add(id);
    localStorage.setItem(WATCH_KEY, JSON.stringify([...ids]));
    return ids.has(id);
  },
};

function starButton(coinId, label) {
  const on = watchlist.get().has(coinId);
  return el("button", {
    type: "button", class: "star", "aria-pressed": String(on), "data-watch": coinId,
    title: on ? "Remove from the watchlist" : "Add to the watchlist", "aria-label": `Watch ${label}`,
    text: on ? "★" : "☆",
    onclick: (e) => {
      const now = watchlist.toggle(coinId);
      const b = e.currentTarget;
      b.setAttribute("aria-pressed", String(now));
      b.textContent = now ? "★" : "☆";
      b.title = now ? "Remove from the watchlist" : "Add to the watchlist";
      if (state.route && state.route.name === "board") renderBoardBody();
    },
  });
}

// -- leaderboard -----------------------------------------------------------------------------

async function loadBoard() {
  const data = await graphql(BOARD_QUERY, boardVars());
  state.changed = new Map();
  applyBoard(data.insiderSelling, false);
}

/** The leaderboard's second query (after the table is shown: first load stays fast): per coin the
 * venues' funding now, the last runs' scores, the open interest a day ago; and the previous run's
 * ranking for the change columns. */
async function loadExtras() {
  const board = state.board;
  if (!board || !board.signal.lastRunAt) return;
  const dayAgo = new Date(Date.parse(board.signal.lastRunAt) - 24 * 3600 * 1000).toISOString();
  let data;
  try { data = await graphql(EXTRAS_QUERY, { ...boardVars(), dayAgo }); } catch (error) { handleError(error); return; }
  const current = data.insiderSelling.coins;
  const succeeded = data.runs.filter((r) => r.status === "SUCCEEDED");
  let previous = null;
  if (succeeded.length > 1) {
    try { previous = (await graphql(PREVIOUS_QUERY, { id: succeeded[1].runId })).run; } catch { previous = null; }
  }
  const prevRank = new Map();
  if (previous && previous.ranking) previous.ranking.coins.forEach((c, i) => prevRank.set(c.coinId, { rank: i + 1, score: c.score }));
  const extras = new Map();
  for (const c of current) {
    const withData = c.venues.filter((v) => v.fundingRatePerHour != null);
    const oiNow = sumOi(c.venues);
    const oiThen = c.dayAgo.length ? sumOi(c.dayAgo[0].venues) : null;
    extras.set(c.coinId, {
      negative: withData.filter((v) => v.fundingRatePerHour < 0).length,
      venues: withData.length,
      oiChange24h: oiNow != null && oiThen ? (oiNow / oiThen - 1) * 100 : null,
      spark: c.history.slice().reverse().map((h) => ({ at: h.at, score: h.score })),
      previous: previous ? prevRank.get(c.coinId) || { rank: null, score: null } : undefined,
    });
  }
  state.extras = extras;
  if (state.route && state.route.name === "board") renderBoardBody();
}

function sumOi(venues) {
  const known = venues.map((v) => v.openInterestUsd).filter((v) => v != null);
  return known.length ? known.reduce((a, b) => a + b, 0) : null;
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
    try { await loadBoard(); startLive(); loadExtras(); } catch (error) { handleError(error); }
  };
  const watchOnly = el("input", { id: "watch-only", type: "checkbox", checked: state.watchOnly,
    onchange: (e) => { state.watchOnly = e.target.checked; renderBoardBody(); } });
  const form = el("form", { class: "filters", id: "filters", onsubmit: apply },
    el("div", { class: "field" }, el("label", { for: "min-score", text: "Minimum score" }), minScore),
    el("div", { class: "field" }, el("label", { for: "phase-filter", text: "Phase" }), phases),
    el("div", { class: "field" }, el("label", { for: "limit", text: "Rows (as REST's limit)" }), limit),
    el("button", { type: "submit", text: "Apply" }),
    el("label", { class: "check" }, watchOnly, " Watchlist only"),
    el("button", { type: "button", class: "secondary", id: "csv-export", text: "Download CSV", onclick: downloadCsv }));
  const head = el("tr", {}, COLUMNS.map((col) => el("th", { scope: "col", "data-key": col.key, class: col.secondary ? "sec" : null, title: col.title },
    col.nosort ? col.label : el("button", { type: "button", text: col.label, onclick: () => sortBy(col.key) }))));
  view.replaceChildren(
    el("h1", { id: "view-h", tabindex: "-1", text: "Leaderboard" }),
    el("p", { id: "run-line", class: "hint" }),
    form,
    el("p", { id: "watch-line", class: "hint", hidden: true }),
    el("div", { class: "table-wrap" },
      el("table", { class: "board", id: "board" },
        el("caption", { class: "visually-hidden", text: "Listed coins; column headers sort" }),
        el("thead", {}, head), el("tbody"))),
    el("p", { id: "board-empty", class: "hint", hidden: true, text: "No coin matches these filters." }),
    legend(),
  );
  renderBoardBody();
}

function sortBy(key) {
  const same = state.sort.key === key;
  const firstDir = key === "rank" || key === "symbol" || key === "manipulationPhase" ? "ascending" : "descending";
  state.sort = { key, dir: same ? (state.sort.dir === "ascending" ? "descending" : "ascending") : firstDir };
  renderBoardBody();
}

/** The rows as shown: ranked, filtered (phase, watchlist) and sorted, with the second query's columns. */
function shownRows() {
  const board = state.board;
  const watched = watchlist.get();
  let rows = board.coins.map((c, i) => {
    const x = state.extras.get(c.coinId) || {};
    const prev = x.previous;
    return {
      ...c, rank: i + 1, watched: watched.has(c.coinId),
      negativeVenues: x.venues ? x.negative : null, venueCount: x.venues ?? null,
      oiChange24h: x.oiChange24h ?? null, spark: x.spark || null,
      previousRank: prev ? prev.rank : undefined, previousScore: prev ? prev.score : undefined,
      scoreChange: prev && prev.score != null ? c.score - prev.score : null,
    };
  });
  if (state.phase) rows = rows.filter((c) => c.manipulationPhase === state.phase);
  if (state.watchOnly) rows = rows.filter((c) => c.watched);
  const { key, dir } = state.sort;
  const sign = dir === "ascending" ? 1 : -1;
  rows.sort((a, b) => {
    const x = a[key], y = b[key];
    if (x == null || y == null) return (x == null) - (y == null) || a.rank - b.rank;  // no data last
    const cmp = typeof x === "string" ? x.localeCompare(y) : x - y;
    return cmp * sign || a.rank - b.rank;
  });
  return rows;
}

/** The change since the previous run: rank arrow and score delta ("new" when it was not listed). */
function changeCell(c) {
  if (c.previousRank === undefined) return { node: noData(), text: "" };
  if (c.previousRank === null) return { node: el("span", { class: "chg new", text: "new" }), text: "new" };
  const moved = c.previousRank - c.rank;  // > 0: up the ranking
  const arrow = moved > 0 ? "▲" : moved < 0 ? "▼" : "=";
  const rankText = moved === 0 ? "=" : `${arrow}${Math.abs(moved)}`;
  const d = c.scoreChange;
  const scoreText = `${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(2)}`;
  const text = `${rankText} ${scoreText}`;
  return {
    node: el("span", { class: `chg ${moved > 0 ? "up" : moved < 0 ? "down" : "same"}`,
      title: `Rank ${c.previousRank} → ${c.rank}, score ${c.previousScore.toFixed(2)} → ${c.score.toFixed(2)} since the previous run`,
      text }),
    text,
  };
}

const NS = "http://www.w3.org/2000/svg";
/** A score sparkline (0 to 10, oldest left): an SVG polyline; no data leaves a gap, never a 0. */
function sparkline(points) {
  const w = 84, h = 22;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("width", String(w));
  svg.setAttribute("height", String(h));
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  svg.dataset.points = String(points.length);
  const scores = points.map((p) => p.score);
  svg.setAttribute("aria-label", `Score over the last ${points.length} runs: ${scores.map((v) => v.toFixed(1)).join(", ")}`);
  const x = (i) => (points.length === 1 ? w - 3 : 2 + (i * (w - 5)) / (points.length - 1));
  const y = (v) => h - 2 - (Math.min(10, Math.max(0, v)) / 10) * (h - 4);
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", points.map((p, i) => `${x(i).toFixed(1)},${y(p.score).toFixed(1)}`).join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", "1.5");
  const dot = document.createElementNS(NS, "circle");
  dot.setAttribute("cx", x(points.length - 1).toFixed(1));
  dot.setAttribute("cy", y(scores[scores.length - 1]).toFixed(1));
  dot.setAttribute("r", "2");
  dot.setAttribute("fill", "currentColor");
  svg.append(line, dot);
  return svg;
}

const fmtFunding = (d) => (d == null ? null : `${d > 0 ? "+" : d < 0 ? "−" : ""}${Math.abs(d * 100).toFixed(4)} %`);
const fmtPct = (v, digits = 1) => (v == null ? null : `${v > 0 ? "+" : v < 0 ? "−" : ""}${Math.abs(v).toFixed(digits)} %`);
const signClass = (v) => (v == null ? null : v < 0 ? "neg" : v > 0 ? "pos" : null);
const cellText = (text, v) => (text == null ? noData() : el("span", { class: signClass(v), text }));

function renderBoardBody() {
  const table = $("board");
  const board = state.board;
  if (!table || !board) return;
  const phaseSelect = $("phase-filter");
  const phases = [...new Set(board.coins.map((c) => c.manipulationPhase))].sort();
  if (state.phase && !phases.includes(state.phase)) phases.push(state.phase);
  phaseSelect.replaceChildren(el("option", { value: "", text: "All phases" }),
    ...phases.map((p) => el("option", { value: p, selected: p === state.phase, text: phaseLabel(p) })));
  const s = board.signal;
  $("run-line").replaceChildren("Run of ", when(s.lastRunAt), ` · ${board.count} coins listed · next run planned `,
    when(s.nextRunAt), ` · model ${s.modelVersion}`);
  const rows = shownRows();
  const { key, dir } = state.sort;
  for (const th of table.querySelectorAll("thead th")) {
    if (th.dataset.key === key) th.setAttribute("aria-sort", dir); else th.removeAttribute("aria-sort");
  }
  const body = rows.map((c) => {
    const change = state.changed.get(c.coinId);
    const b = band(c.score);
    const chg = changeCell(c);
    const days = `${c.consecutiveNegativeDays}`;
    const venuesText = c.venueCount == null ? null : `${c.negativeVenues}/${c.venueCount}`;
    const fold = [  // the secondary columns, folded under the coin on a narrow screen (one item per span)
      chg.text ? chg.text : null,
      venuesText == null ? null : `${venuesText} venues neg.`,
      `streak ${days} d`,
      c.oiChange24h == null ? null : `OI ${fmtPct(c.oiChange24h)}`,
    ].filter(Boolean);
    return el("tr", { "data-coin-id": c.coinId, "data-band": b ? b.id : null, class: change ? "changed" : null,
      title: change ? `Changed in the last run: ${change}` : null },
      el("td", { class: "rank" }, String(c.rank), change ? el("span", { class: "visually-hidden", text: ` (changed: ${change})` }) : null),
      el("td", { class: "coin" }, starButton(c.coinId, c.symbol), " ",
        el("a", { href: `#/coin/${encodeURIComponent(c.coinId)}`, text: c.symbol }),
        el("span", { class: "name", text: ` ${c.name}` }),
        el("span", { class: "fold" }, fold.flatMap((t, i) => [i ? " · " : null, el("span", { text: t })]))),
      el("td", { class: "phase", "data-phase": c.manipulationPhase, title: c.manipulationPhase, text: phaseLabel(c.manipulationPhase) }),
      el("td", { class: `score ${b ? b.id : ""}`, title: b ? `Band ${b.label}: ${b.meaning}` : null, text: c.score.toFixed(2) }),
      el("td", { class: "sec change" }, chg.node),
      el("td", { class: "sec sparkcell" }, c.spark && c.spark.length ? sparkline(c.spark) : noData()),
      el("td", { class: "sec venues-neg" }, venuesText == null ? noData() : venuesText),
      el("td", { class: "sec days", text: days }),
      el("td", { class: "sec" }, cellText(fmtFunding(c.avgFunding72h), c.avgFunding72h)),
      el("td", { class: "sec oi" }, cellText(fmtPct(c.oiChange24h), c.oiChange24h)),
      el("td", { class: "sec" }, cellText(fmtPct(c.priceChange24h, 2), c.priceChange24h)),
      el("td", { class: "sec" }, cellText(fmtPct(c.priceChange7d, 2), c.priceChange7d)));
  });
  table.tBodies[0].replaceChildren(...body);
  $("board-empty").hidden = rows.length > 0;
  const watched = [...watchlist.get()];
  const listed = new Set(board.coins.map((c) => c.coinId));
  const outside = watched.filter((id) => !listed.has(id));
  const line = $("watch-line");
  line.hidden = outside.length === 0;
  line.replaceChildren("Watched, not in this ranking: ",
    ...outside.flatMap((id, i) => [i ? ", " : "", el("a", { href: `#/coin/${encodeURIComponent(id)}`, text: id })]));
}

// -- CSV export: the table as shown ---------------------------------------------------------------

const CSV_HEADER = ["rank", "symbol", "name", "coin_id", "phase", "score", "rank_change", "score_change",
  "negative_venues", "venues", "streak_days", "funding_72h_per_8h_pct", "oi_change_24h_pct", "price_change_24h_pct",
  "price_change_7d_pct", "watched"];

function csvRows() {
  const num = (v, digits) => (v == null ? "" : v.toFixed(digits));
  return shownRows().map((c) => [
    String(c.rank), c.symbol, c.name, c.coinId, phaseLabel(c.manipulationPhase), c.score.toFixed(2),
    c.previousRank == null ? (c.previousRank === null ? "new" : "") : String(c.previousRank - c.rank),
    c.scoreChange == null ? "" : c.scoreChange.toFixed(2),
    c.venueCount == null ? "" : String(c.negativeVenues), c.venueCount == null ? "" : String(c.venueCount),
    String(c.consecutiveNegativeDays), c.avgFunding72h == null ? "" : (c.avgFunding72h * 100).toFixed(4),
    num(c.oiChange24h, 1), num(c.priceChange24h, 2), num(c.priceChange7d, 2), c.watched ? "yes" : "no",
  ]);
}

function csvCell(value) {
  // a text cell starting like a formula is quoted as text (spreadsheets run =, +, -, @ cells)
  const text = /^[=+\-@]/.test(value) && !/^[+-]?\d/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function downloadCsv() {
  const lines = [CSV_HEADER, ...csvRows()].map((r) => r.map(csvCell).join(","));
  const csv = lines.join("\r\n") + "\r\n";
  const at = state.board && state.board.signal.lastRunAt ? state.board.signal.lastRunAt.slice(0, 16).replace(/[:T]/g, "") : "now";
  const link = el("a", { href: `data:text/csv;charset=utf-8,${encodeURIComponent(csv)}`, download: `insider-selling-${at}.csv`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  announce(`Downloaded ${lines.length - 1} rows as CSV.`);
}

// -- legend: score bands and phases -------------------------------------------------------------

function legend() {
  const bands = el("table", { class: "grid", id: "band-legend" },
    el("caption", { text: "Score bands, calibrated on real market data (methodology, “The scale”)" }),
    el("thead", {}, el("tr", {}, ["Score", "Among listed coins of a real market"].map((t) => el("th", { scope: "col", text: t })))),
    el("tbody", {}, BANDS.map((b) => el("tr", { "data-band": b.id },
      el("td", { class: `score ${b.id}`, text: b.label }), el("td", { text: b.meaning })))));
  const phases = el("dl", { class: "kv", id: "phase-legend" },
    PHASES.flatMap(([slug, label, meaning]) => [el("dt", { title: slug, text: label }), el("dd", { text: meaning })]));
  const realData = el("div", { id: "band-validation" }, el("p", { class: "hint", text: "Loading the real-data band table…" }));
  const details = el("details", { class: "legend", id: "legend", ontoggle: (e) => { if (e.target.open) loadBandTable(realData); } },
    el("summary", { text: "What the scores, colours and phases mean" }),
    el("p", {}, "A score is above 0 only when funding is negative across venues; open interest, basis, taker flow, DEX " +
      "flow and on-chain supply raise it. Missing inputs never raise a score; where a source has nothing, the dashboard " +
      "says “no data” instead of drawing a 0."),
    bands,
    el("h3", { text: "How each band did on real data (held-out half of the Binance replay)" }),
    realData,
    el("h3", { text: "Phases" }), phases);
  return details;
}

async function loadBandTable(box) {
  if (box.dataset.loaded) return;
  box.dataset.loaded = "1";
  let response;
  try { response = await fetch("/docs/validation", { credentials: "omit", headers: { Accept: "text/html" } }); } catch {
    box.replaceChildren(el("p", { class: "nodata", text: "The validation report could not be loaded." }));
    return;
  }
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  const heading = [...doc.querySelectorAll("article.prose h3")].find((h) => /score bands on the held-out half/.test(h.textContent));
  let table = heading ? heading.nextElementSibling : null;
  while (table && table.tagName !== "TABLE" && !/^H[1-3]$/.test(table.tagName)) table = table.nextElementSibling;
  if (!response.ok || !table || table.tagName !== "TABLE") {
    box.replaceChildren(el("p", { class: "nodata", text: "The validation report with the band table is not published on this server." }));
    return;
  }
  const copy = document.importNode(table, true);  // our own report, rendered without raw HTML
  copy.id = "band-table";
  copy.className = "grid";
  box.replaceChildren(el("p", { class: "hint", text: `${heading.textContent.trim()}: share of listed pairs and realized excess returns.` }),
    el("div", { class: "table-wrap" }, copy));
}

// -- coin view -------------------------------------------------------------------------------

//: The sub-scores' signal families: a family without any data shows "no data", never a 0 bar.
const FAMILY_OF = {
  fundingMagnitude: "hedgePressure", fundingPersistence: "hedgePressure", marketConfirmation: "marketConfirmation",
  distributionPressure: "sellSideFlow", walletConcentration: "supplyContext",
  holderQualityDeterioration: "supplyContext", coordinationRisk: "supplyContext",
};

/** The coin in one sentence, built from its fields only (tests rebuild it from the API). */
function coinSentence(coin, oiChange24h) {
  const withData = coin.venues.filter((v) => v.fundingRatePerHour != null);
  const negative = withData.filter((v) => v.fundingRatePerHour < 0).length;
  const days = coin.consecutiveNegativeDays;
  const parts = [];
  if (!withData.length) parts.push("No venue reported funding for this coin in the latest run");
  else if (coin.score > 0) {
    const span = days >= 1 ? `for ${days} ${days === 1 ? "day" : "days"}` : "for less than a day";
    parts.push(`Funding negative on ${negative} of ${withData.length} venues ${span}`);
  } else parts.push(`Funding negative on ${negative} of ${withData.length} venues, not enough across venues for a signal`);
  if (oiChange24h != null) {
    parts.push(Math.abs(oiChange24h) < 0.5 ? "open interest flat in 24 h"
      : `open interest ${oiChange24h > 0 ? "up" : "down"} ${Math.abs(oiChange24h).toFixed(0)} % in 24 h`);
  }
  const p = coin.priceChange24h;
  if (p != null) parts.push(Math.abs(p) < 0.05 ? "price flat in 24 h" : `price ${p > 0 ? "up" : "down"} ${Math.abs(p).toFixed(1)} % in 24 h`);
  const b = band(coin.score);
  const verdict = b ? `score ${coin.score.toFixed(2)}, ${b.meaning.split(":")[0]} of listed coins` : "score 0: not listed";
  return `${parts.join(", ")}; ${verdict}.`;
}

async function renderCoin(id, refresh = false) {
  const view = $("view");
  if (!refresh) view.replaceChildren(el("p", { class: "hint", text: "Loading…" }));
  let data, dayAgo;
  try {
    data = await graphql(COIN_QUERY, { id });
    const last = state.board && state.board.signal.lastRunAt ? Date.parse(state.board.signal.lastRunAt) : Date.now();
    dayAgo = data.coin ? (await graphql(DAY_AGO_QUERY, { id, before: new Date(last - 24 * 3600 * 1000).toISOString() })).coin : null;
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
  const then = dayAgo && dayAgo.dayAgo.length ? sumOi(dayAgo.dayAgo[0].venues) : null;
  const now = sumOi(coin.venues);
  const oiChange24h = now != null && then ? (now / then - 1) * 100 : null;
  const runs = data.scoreHistory.edges.map((e) => e.node).reverse();  // oldest first
  const chartBox = el("div", { id: "score-chart", class: "chart", role: "img",
    "aria-label": `Score at each of the last ${runs.length} runs; the table below lists them` });
  const historyTable = el("table", { class: "grid", id: "history-table" },
    el("caption", { text: "Score at each stored run" }),
    el("thead", {}, el("tr", {}, ["Run time", "Score", "Phase"].map((t) => el("th", { scope: "col", text: t })))),
    el("tbody", {}, runs.slice().reverse().map((r) => el("tr", { "data-run-id": r.runId },
      el("td", {}, when(r.at)), el("td", { text: r.score.toFixed(2) }), el("td", { text: phaseLabel(r.manipulationPhase) })))));
  const barList = (id, items, values, missing = () => false) => el("ul", { class: "bars", id }, items.map(([key, label]) => {
    const v = values[key];
    const none = v == null || missing(key);
    return el("li", { "data-key": key, "data-nodata": none ? "true" : null },
      el("span", { text: label }),
      none ? el("span", { class: "track nodata-bar", "aria-hidden": "true", title: "no data" })
        : el("span", { class: "track", "aria-hidden": "true" }, el("span", { class: "fill", style: `width:${(v * 100).toFixed(1)}%` })),
      none ? el("span", { class: "val nodata", text: "no data" }) : el("span", { class: "val", text: v.toFixed(2) }));
  }));
  // a family with no input at all has no sub-score to show (its 0 would read as "no pressure")
  const bars = barList("sub-scores", SUB_SCORES, coin.subScores,
    (key) => coin.coverage != null && coin.coverage[FAMILY_OF[key]] === 0);
  const coverage = coin.coverage
    ? [el("p", { class: "hint", text: "Share of each family's inputs that had data (1 = all, 0 = none)." }),
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
  const b = band(coin.score);
  const ranges = el("div", { class: "filters", role: "group", "aria-label": "Chart range", id: "range" },
    RANGES.map(([value, text]) => el("button", {
      type: "button", class: value === state.range ? null : "secondary", "aria-pressed": String(value === state.range),
      "data-range": value, text,
      onclick: () => { state.range = value; renderMarketCharts(coin); },
    })));
  view.replaceChildren(
    back,
    el("h1", { id: "view-h", tabindex: "-1" }, `${coin.symbol} `, el("span", { class: "hint", text: coin.name }), " ", starButton(coin.coinId, coin.symbol)),
    el("p", { class: "sentence", id: "coin-sentence", "data-oi-change": oiChange24h == null ? "" : oiChange24h.toFixed(3) },
      coinSentence(coin, oiChange24h)),
    el("div", { class: "cards" },
      el("section", { class: "card", "aria-labelledby": "score-h" },
        el("h2", { id: "score-h", text: "Score" }),
        el("p", { class: `big score ${b ? b.id : ""}`, id: "coin-score", text: coin.score.toFixed(2) }),
        el("p", {}, `Phase: ${phaseLabel(coin.manipulationPhase)}`, el("span", { class: "hint", text: ` (${coin.manipulationPhase})` })),
        el("p", { class: "hint" }, "Updated ", when(coin.updatedAt))),
      el("section", { class: "card", "aria-labelledby": "streak-h" },
        el("h2", { id: "streak-h", text: "Negative-funding streak" }),
        el("p", { class: "big", id: "streak" }, `${streakDays} ${streakDays === 1 ? "day" : "days"}`),
        el("p", {}, "Started ", coin.score > 0 ? when(coin.signalStartDate) : noData()),
        el("p", {}, "72 h funding (per 8 h): ", funding(coin.avgFunding72h))),
      el("section", { class: "card", "aria-labelledby": "price-h" },
        el("h2", { id: "price-h", text: "Price and open interest" }),
        el("dl", { class: "kv" }, el("dt", { text: "Price 24 h" }), el("dd", {}, pct(coin.priceChange24h)),
          el("dt", { text: "Price 7 d" }), el("dd", {}, pct(coin.priceChange7d)),
          el("dt", { text: "Open interest" }), el("dd", {}, usd(now)),
          el("dt", { text: "OI 24 h" }), el("dd", { id: "oi-change" }, oiChange24h == null ? noData() : pct(oiChange24h, 1))))),
    el("section", { "aria-labelledby": "market-h" },
      el("h2", { id: "market-h", text: "Market history" }),
      ranges,
      el("div", { id: "market-charts" })),
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
        : el("p", { class: "nodata", text: "No per-venue data for this coin in the latest run." })),
  );
  await renderMarketCharts(coin);  // first: the page above the score chart is laid out when it is drawn
  if (!state.route || state.route.name !== "coin" || state.route.id !== id) return;
  if (state.disposeChart) state.disposeChart();
  const { scoreChart } = await import("./chart.js");
  state.disposeChart = scoreChart(chartBox, runs);
  focusHeading(refresh);
}

function disposeMarket() {
  for (const dispose of state.disposers) dispose();
  state.disposers = [];
}

/** The three market charts over the chosen range, from the stored runs (scoreHistory pages). */
async function renderMarketCharts(coin) {
  const box = $("market-charts");
  if (!box) return;
  for (const b of document.querySelectorAll("#range button")) {
    const on = b.dataset.range === state.range;
    b.setAttribute("aria-pressed", String(on));
    b.className = on ? "" : "secondary";
  }
  const [, rangeLabel, hours] = RANGES.find(([v]) => v === state.range);
  const to = state.board && state.board.signal.lastRunAt ? Date.parse(state.board.signal.lastRunAt) / 1000 : Date.now() / 1000;
  const from = to - hours * 3600;
  const nodes = [];
  let after = null;
  try {
    for (let page = 0; page < 4; page++) {  // at most 2000 runs: 30 days of half-hourly runs fit
      const first = Math.min(500, hours * 2 + 2);
      const data = await graphql(MARKET_QUERY, { id: coin.coinId, from: new Date(from * 1000).toISOString(), first, after });
      nodes.push(...data.scoreHistory.edges.map((e) => e.node));
      if (!data.scoreHistory.pageInfo.hasNextPage) break;
      after = data.scoreHistory.pageInfo.endCursor;
    }
  } catch (error) { handleError(error); return; }
  if (!state.route || state.route.name !== "coin" || state.route.id !== coin.coinId) return;
  const runs = nodes.reverse();  // oldest first
  disposeMarket();
  const xs = runs.map((r) => Date.parse(r.at) / 1000);
  const venueIds = [...new Set(runs.flatMap((r) => r.venues.map((v) => v.venue)))].sort();
  const exchange = new Map(runs.flatMap((r) => r.venues.map((v) => [v.venue, v.exchange])));
  const perVenue = (field, scale) => venueIds.map((venue) => runs.map((r) => {
    const v = r.venues.find((x) => x.venue === venue);
    return v == null || v[field] == null ? null : scale(v[field]);
  }));
  const { timeChart, PALETTE } = await import("./chart.js");
  const hint = (id, text) => el("p", { class: "hint", id, text });
  const fundingBox = el("div", { id: "funding-chart", class: "chart", role: "img", "aria-label": `Funding per venue over ${rangeLabel}, per 8 hours` });
  const oiBox = el("div", { id: "oi-chart", class: "chart", role: "img", "aria-label": `Open interest, price and score over ${rangeLabel}` });
  const basisBox = el("div", { id: "basis-chart", class: "chart", role: "img", "aria-label": `Basis per venue over ${rangeLabel}` });
  if (!runs.length) {
    box.replaceChildren(el("p", { class: "nodata", id: "market-empty", text: `No stored run in the last ${rangeLabel}.` }));
    return;
  }
  const withVenues = runs.filter((r) => r.venues.length).length;
  box.replaceChildren(
    el("h3", { text: "Funding per venue (per 8 h, %)" }),
    hint("funding-hint", `${runs.length} runs in the last ${rangeLabel}${withVenues < runs.length ? `; ${runs.length - withVenues} without venue data (gaps, not zeros)` : ""}. Each venue's rate is normalised to 8 hours.`),
    fundingBox,
    el("h3", { text: "Open interest and price (% change over the range), score on the right axis" }),
    oiBox,
    el("h3", { text: "Basis per venue (mark vs index, %)" }),
    basisBox);
  const pctFmt = (v) => `${v > 0 ? "+" : ""}${v.toFixed(4)} %`;
  const venueSeries = (values, fmt) => venueIds.map((venue, i) => ({
    label: exchange.get(venue) || venue, values: values[i], stroke: PALETTE[i % PALETTE.length], scale: "y", value: fmt,
  }));
  state.disposers.push(timeChart(fundingBox, {
    xs, from, to, scales: {}, axes: [{ scale: "y", label: "% per 8 h", grid: true, values: (u, vals) => vals.map((v) => `${v.toFixed(3)}`) }],
    series: venueSeries(perVenue("fundingRatePerHour", (f) => f * 8 * 100), pctFmt),
  }));
  // a run missing venues that the range's runs usually have is a gap, not a fall in open interest
  const counts = runs.map((r) => r.venues.filter((v) => v.openInterestUsd != null).length).sort((a, b) => a - b);
  const usual = counts[Math.floor(counts.length / 2)];
  const oiTotal = runs.map((r) => (r.venues.filter((v) => v.openInterestUsd != null).length < usual ? null : sumOi(r.venues)));
  const price = runs.map((r) => {
    const marks = r.venues.map((v) => v.markPrice).filter((m) => m != null).sort((a, b) => a - b);
    return marks.length ? marks[Math.floor(marks.length / 2)] : null;  // the venues' median mark
  });
  const relative = (values) => {
    const base = values.find((v) => v != null);
    return values.map((v) => (v == null || !base ? null : (v / base - 1) * 100));
  };
  const oiRel = relative(oiTotal), priceRel = relative(price);
  state.disposers.push(timeChart(oiBox, {
    xs, from, to, height: 260,
    scales: { score: { range: [0, 10] } },
    axes: [
      { scale: "pct", label: "% since the range's first run", grid: true, values: (u, vals) => vals.map((v) => `${v.toFixed(1)}`) },
      { scale: "score", label: "score", side: 1, size: 40 },
    ],
    series: [
      { label: "Open interest", values: oiRel, stroke: "#0a58b8", scale: "pct", width: 2,
        value: (v) => `${pctFmt(v).replace(/(\.\d)\d+/, "$1")}` },
      { label: "Price", values: priceRel, stroke: "#176534", scale: "pct", width: 2,
        value: (v) => `${pctFmt(v).replace(/(\.\d)\d+/, "$1")}` },
      { label: "Score", values: runs.map((r) => r.score), stroke: "#b5473a", scale: "score", width: 2, dash: [5, 3],
        value: (v) => v.toFixed(2) },
    ],
  }));
  state.disposers.push(timeChart(basisBox, {
    xs, from, to, scales: {}, axes: [{ scale: "y", label: "basis, %", grid: true, values: (u, vals) => vals.map((v) => `${v.toFixed(2)}`) }],
    series: venueSeries(perVenue("basis", (b) => b * 100), (v) => `${v > 0 ? "+" : ""}${v.toFixed(3)} %`),
  }));
  oiBox.dataset.oiFirst = oiTotal.find((v) => v != null) ?? "";
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
  // the demo simulates every venue in-process: no request is made, so there is no latency to show
  const simulated = (v) => v.requests === 0 && v.latencyMs === 0 && v.status === "ok";
  const venueRows = (finished ? finished.venues : []).map((v) => el("tr", { "data-venue": v.venue },
    el("th", { scope: "row", text: v.exchange }), el("td", {}, statusText(v.status)),
    el("td", { text: String(v.markets) }),
    el("td", {}, simulated(v) ? el("span", { class: "nodata", text: "none (simulated)" }) : String(v.requests)),
    el("td", {}, simulated(v) ? el("span", { class: "nodata", text: "— (simulated)" }) : `${Math.round(v.latencyMs)} ms`),
    el("td", { text: String(v.rejected) }),
    el("td", {}, v.error ? v.error : "—")));
  const explain = el("p", { class: "hint", id: "venue-help" },
    "Markets: perpetual markets read from the venue in the run. Requests: HTTP calls made to the venue's public API. " +
    "Latency: how long the venue took to answer them. Rejected: rows or responses refused by validation (kept out of the scores). ",
    finished && finished.venues.length && finished.venues.every(simulated)
      ? el("strong", { text: "This server runs the demo: the market is simulated in-process, so no request is made and there is no latency." })
      : null);
  const runRows = data.runs.map((r) => el("tr", {},
    el("td", {}, when(r.at)), el("td", {}, statusText(r.status)),
    el("td", { text: r.coins == null ? "—" : String(r.coins) }), el("td", { text: r.listed == null ? "—" : String(r.listed) }),
    el("td", { text: r.error || "—" })));
  view.replaceChildren(
    el("h1", { id: "view-h", tabindex: "-1", text: "Run status" }),
    summary,
    el("h2", {}, "Each venue in the last finished run", finished ? [" (", when(finished.at), ")"] : ""),
    explain,
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

// -- search: any coin of the last run, listed or not ----------------------------------------------

function initSearch() {
  const input = $("coin-search");
  const list = $("search-results");
  const open = (coinId) => {
    list.hidden = true;
    input.value = "";
    location.hash = `#/coin/${encodeURIComponent(coinId)}`;
  };
  const search = async () => {
    const text = input.value.trim();
    const seq = ++state.searchSeq;
    if (!text) { list.hidden = true; list.replaceChildren(); return; }
    let found;
    try { found = (await graphql(SEARCH_QUERY, { text: text.slice(0, 40) })).searchCoins; } catch (error) { handleError(error); return; }
    if (seq !== state.searchSeq) return;  // a later keystroke's answer wins
    list.replaceChildren(...(found.length ? found.map((c) => el("li", {},
      el("a", { href: `#/coin/${encodeURIComponent(c.coinId)}`, "data-coin-id": c.coinId, onclick: () => { list.hidden = true; input.value = ""; } },
        el("strong", { text: c.symbol }), ` ${c.name} — `,
        c.score > 0 ? `score ${c.score.toFixed(2)}, ${phaseLabel(c.manipulationPhase)}` : "not listed (score 0)")))
      : [el("li", { class: "nodata", text: `No coin of the latest run matches “${text}”.` })]));
    list.hidden = false;
  };
  input.addEventListener("input", () => {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(search, 200);
  });
  input.addEventListener("keydown", (e) => { if (e.key === "Escape") { list.hidden = true; } });
  $("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearTimeout(state.searchTimer);
    await search();
    const first = list.querySelector("a[data-coin-id]");
    if (first) open(first.dataset.coinId);
  });
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
  disposeMarket();
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
  loadExtras();
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
    state.firstLoad = true;
    const ok = await openDashboard();
    state.firstLoad = false;
    if (ok) {
      input.value = "";
      performance.mark("leaderboard-shown");
      performance.measure("key-to-leaderboard", "key-submitted", "leaderboard-shown");
      const h = $("view-h");
      if (h) h.focus();
    }
  });
  $("forget-key").addEventListener("click", () => {
    keyStore.clear();
    $("key-input").value = "";
    state.board = null;
    showKeyView("");
    $("key-message").hidden = true;
  });
  window.addEventListener("hashchange", () => { route(); });
  initSearch();
  if (keyStore.get()) openDashboard(); else showKeyView("");
}

init();
