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
