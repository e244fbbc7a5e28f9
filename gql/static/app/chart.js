// The score-history chart: uPlot (a small time-series library), one point per stored run.
import uPlot from "/assets/vendor/uplot@1.6.32/dist/uPlot.esm.js";

const fmtTime = uPlot.fmtDate("{YYYY}-{MM}-{DD} {HH}:{mm} UTC");
const fmtHour = uPlot.fmtDate("{HH}:{mm}");
const fmtDay = uPlot.fmtDate("{MM}-{DD}");

// uPlot formats with local-time getters: shift each instant so that they read UTC
const utc = (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC");

// 24-hour UTC tick labels; the date under the first tick and under each midnight
function timeTicks(u, splits) {
  return splits.map((s, i) => {
    const d = utc(s);
    const midnight = d.getHours() === 0 && d.getMinutes() === 0;
    return i === 0 || midnight ? `${fmtHour(d)}\n${fmtDay(d)}` : fmtHour(d);
  });
}

/**
 * Draw `runs` ([{at: ISO string, score}], oldest first) into `el`. The element gets
 * `data-points` from the plotted series (what uPlot holds, not what was passed in).
 */
export function scoreChart(el, runs) {
  el.textContent = "";
  const xs = runs.map((r) => Date.parse(r.at) / 1000);
  const ys = runs.map((r) => r.score);
  const width = Math.max(280, Math.floor(el.getBoundingClientRect().width) || 600);
  const opts = {
    width,
    height: 240,
    tzDate: utc,
    scales: {
      // a single run still gets a readable axis: an hour either side
      x: { time: true, range: (u, min, max) => (min === max ? [min - 3600, max + 3600] : [min, max]) },
      y: { range: [0, 10] },
    },
    axes: [
      { stroke: "#1b1f24", grid: { stroke: "#e3e7ec" }, values: timeTicks },
      { stroke: "#1b1f24", grid: { stroke: "#e3e7ec" }, label: "score" },
    ],
    series: [
      { label: "run", value: (u, v) => (v == null ? "—" : fmtTime(utc(v))) },
      {
        label: "score",
        stroke: "#0a58b8",
        width: 2,
        points: { show: true, size: 7, fill: "#0a58b8" },
        value: (u, v) => (v == null ? "—" : v.toFixed(2)),
      },
    ],
    legend: { live: true },
    cursor: { points: { size: 9 } },
  };
  const plot = new uPlot(opts, [xs, ys], el);
  el.dataset.points = String(plot.data[0].length);
  const resize = () => {
    const w = Math.max(280, Math.floor(el.getBoundingClientRect().width));
    if (w && Math.abs(w - plot.width) > 8) plot.setSize({ width: w, height: 240 });
  };
  const observer = new ResizeObserver(resize);
  observer.observe(el);
  return () => { observer.disconnect(); plot.destroy(); };
}

/**
 * The track record's chart: cumulative excess return (percent) of the top N and of every listed
 * coin against the universe median, over `points` ([{closesAt, topCumulative, listedCumulative}], the
 * chain of runs whose windows do not overlap, oldest first); the universe is the zero line. The
 * element gets `data-points` and `data-series` from what uPlot holds.
 */
export function trackChart(el, points, topN) {
  el.textContent = "";
  const xs = points.map((p) => Date.parse(p.closesAt) / 1000);  // a return is realized when its window closes
  const top = points.map((p) => p.topCumulative * 100);
  const listed = points.map((p) => p.listedCumulative * 100);
  const universe = points.map(() => 0);
  const width = Math.max(280, Math.floor(el.getBoundingClientRect().width) || 600);
  const pctValue = (u, v) => (v == null ? "—" : `${v > 0 ? "+" : ""}${v.toFixed(2)} %`);
  const opts = {
    width,
    height: 260,
    tzDate: utc,
    scales: { x: { time: true, range: (u, min, max) => (min === max ? [min - 86400, max + 86400] : [min, max]) } },
    axes: [
      { stroke: "#1b1f24", grid: { stroke: "#e3e7ec" }, values: timeTicks },
      { stroke: "#1b1f24", grid: { stroke: "#e3e7ec" }, label: "cumulative excess return, %", size: 60 },
    ],
    series: [
      { label: "window closed", value: (u, v) => (v == null ? "—" : fmtTime(utc(v))) },
      { label: `Top ${topN}`, stroke: "#b5473a", width: 2, points: { show: true, size: 6, fill: "#b5473a" }, value: pctValue },
      { label: "All listed", stroke: "#0a58b8", width: 2, dash: [6, 4], points: { show: true, size: 6, fill: "#0a58b8" }, value: pctValue },
      { label: "Universe (median)", stroke: "#4b5563", width: 1, value: pctValue },
    ],
    legend: { live: true },
    cursor: { points: { size: 8 } },
  };
  const plot = new uPlot(opts, [xs, top, listed, universe], el);
  el.dataset.points = String(plot.data[0].length);
  el.dataset.series = plot.series.slice(1).map((s) => s.label).join("|");
  const resize = () => {
    const w = Math.max(280, Math.floor(el.getBoundingClientRect().width));
    if (w && Math.abs(w - plot.width) > 8) plot.setSize({ width: w, height: 260 });
  };
  const observer = new ResizeObserver(resize);
  observer.observe(el);
  return () => { observer.disconnect(); plot.destroy(); };
}

// -- the coin view's market charts ---------------------------------------------------------------

/** 13 distinguishable line colours (one per venue), dark enough on white (≥ 3:1 for graphics). */
export const PALETTE = ["#0a58b8", "#b5473a", "#176534", "#8a5a00", "#6b3fa0", "#00708a", "#a3366f",
  "#4b5563", "#c2410c", "#1d4ed8", "#15803d", "#7c2d12", "#334155"];

/**
 * A time chart over a fixed window (`from`..`to`, epoch seconds: the range the user chose, so a single
 * run sits at its time inside a readable axis). `series`: [{label, values (null = no data: a gap,
 * never a 0), stroke, scale, value(v) -> legend text}], `axes`: extra y axes ({scale, label, side,
 * values}). The element gets `data-points` (x values uPlot holds) and `data-series` (labels).
 */
export function timeChart(el, { xs, series, axes, scales, from, to, height = 240 }) {
  el.textContent = "";
  const width = Math.max(280, Math.floor(el.getBoundingClientRect().width) || 600);
  const narrow = width < 480;
  const opts = {
    width,
    height,
    tzDate: utc,
    scales: { x: { time: true, range: () => [from, to] }, ...scales },
    axes: [
      { stroke: "#1b1f24", grid: { stroke: "#e3e7ec" }, values: timeTicks, space: narrow ? 70 : 60 },
      ...axes.map((a) => ({
        scale: a.scale, side: a.side ?? 3, label: narrow ? null : a.label, stroke: "#1b1f24",
        grid: { show: a.grid ?? false, stroke: "#e3e7ec" }, values: a.values, size: a.size ?? 60,
      })),
    ],
    series: [
      { label: "run", value: (u, v) => (v == null ? "—" : fmtTime(utc(v))) },
      ...series.map((s) => ({
        label: s.label, scale: s.scale, stroke: s.stroke, width: s.width ?? 1.5, dash: s.dash,
        spanGaps: false, points: { show: xs.length < 3, size: 6, fill: s.stroke },
        // no cursor: a dash; a run without this series' data: "no data" (a gap in the line, never a 0)
        value: (u, v, si, idx) => (idx == null ? "—" : v == null ? "no data" : s.value(v)),
      })),
    ],
    legend: { live: true },
    cursor: { points: { size: 7 } },
  };
  const plot = new uPlot(opts, [xs, ...series.map((s) => s.values)], el);
  el.dataset.points = String(plot.data[0].length);
  el.dataset.series = plot.series.slice(1).map((s) => s.label).join("|");
  // what is drawn: per series, the points with data and the gaps (null: nothing drawn, never a 0)
  el.dataset.drawn = plot.data.slice(1).map((vs) => vs.filter((v) => v != null).length).join("|");
  el.dataset.gaps = plot.data.slice(1).map((vs) => vs.filter((v) => v == null).length).join("|");
  const resize = () => {
    const w = Math.max(280, Math.floor(el.getBoundingClientRect().width));
    if (w && Math.abs(w - plot.width) > 8) plot.setSize({ width: w, height });
  };
  const observer = new ResizeObserver(resize);
  observer.observe(el);
  return () => { observer.disconnect(); plot.destroy(); };
}
