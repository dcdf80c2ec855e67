// The page's charts, drawn as SVG at the width of their box: an OEE trend, a state timeline
// and a Pareto of downtime. Every mark carries its figures as data attributes and a title, and
// a tap on it calls `onPick` (a phone has no hover).
import { s } from "./dom.js";

const FIGURES = ["availability", "performance", "quality"];
let serial = 0; // ids of hatch patterns, unique on the page
const PAD = { left: 40, right: 8, top: 10, bottom: 30 };

function root(width, height, label) {
  return s("svg", {
    class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": label,
  });
}

function pickable(element, text, onPick) {
  element.append(s("title", {}, text));
  element.setAttribute("tabindex", "0");
  element.addEventListener("click", () => onPick?.(text));
  element.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") onPick?.(text);
  });
  return element;
}

/**
 * OEE windows as bars (OEE) with lines (availability, performance, quality) over slots.
 * `slotOf(w)` places a window; `tick(i)` labels slot i on the x axis (or null); the share of a
 * window without data is a grey band from the top; simulated windows are hatched.
 */
export function trendChart({ windows, slots, slotOf, tick, describe, width, label, onPick }) {
  const height = 190;
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const highest = Math.max(1, ...windows.map((w) => w.performance ?? 0));
  const top = Math.min(1.5, Math.ceil(highest * 10) / 10);
  const y = (ratio) => PAD.top + plotH * (1 - Math.min(ratio, top) / top);
  const slotW = plotW / Math.max(1, slots);
  const x = (i) => PAD.left + slotW * (i + 0.5);
  const svg = root(width, height, label);
  serial += 1;
  svg.append(s("defs", {}, s("pattern", {
    id: `hatch-${serial}`, width: 4, height: 4, patternUnits: "userSpaceOnUse",
    patternTransform: "rotate(45)",
  }, s("rect", { width: 4, height: 4, class: "hatch-bg" }),
  s("line", { x1: 0, y1: 0, x2: 0, y2: 4, class: "hatch-line" }))));
  const hatch = `url(#hatch-${serial})`;
  for (const ratio of [0, 0.5, 1]) {
    const at = y(ratio);
    svg.append(s("line", { class: "grid", x1: PAD.left, x2: width - PAD.right, y1: at, y2: at }));
    svg.append(s("text", { class: "axis", x: PAD.left - 4, y: at + 4, "text-anchor": "end" },
      `${ratio * 100}%`));
  }
  let lastTick = -Infinity;
  for (let i = 0; i < slots; i += 1) {
    const text = tick(i);
    const at = PAD.left + slotW * i;
    if (!text || at - lastTick < 44) continue; // labels never overlap, on a phone fewer show
    svg.append(s("text", { class: "axis", x: at, y: height - 14 }, text));
    lastTick = at;
  }
  const barW = Math.max(2, Math.min(18, slotW * 0.6));
  const placed = windows.map((w) => [slotOf(w), w]).filter(([i]) => i >= 0 && i < slots);
  for (const [i, w] of placed) {
    const busy = w.planned_busy_time_s || 0;
    const share = busy > 0 ? Math.min(1, (w.unknown_time_s || 0) / busy) : 0;
    const group = s("g", {
      class: "slot", "data-start": w.start, "data-end": w.end, "data-shift": w.shift ?? "",
      "data-oee": w.oee ?? "", "data-availability": w.availability ?? "",
      "data-performance": w.performance ?? "", "data-quality": w.quality ?? "",
      "data-unknown-s": w.unknown_time_s ?? 0, "data-simulated": w.simulated ? "true" : "false",
      "data-final": w.final ? "true" : "false",
    });
    const left = x(i) - barW / 2;
    group.append(s("rect", { class: "hit", x: x(i) - slotW / 2, y: PAD.top, width: slotW, height: plotH }));
    if (share > 0) {
      group.append(s("rect", { class: "nodata", x: left, y: PAD.top, width: barW, height: plotH * share }));
    }
    if (w.oee !== null && w.oee !== undefined) {
      group.append(s("rect", {
        class: `bar-oee${w.final ? "" : " open"}`, x: left, y: y(w.oee), width: barW,
        height: Math.max(0.5, y(0) - y(w.oee)), fill: w.simulated ? hatch : null,
      }));
    }
    if (w.simulated) {
      const under = height - PAD.bottom + 2;
      group.append(s("rect", { class: "sim-mark", x: left, y: under, width: barW, height: 3 }));
    }
    svg.append(pickable(group, describe(w), onPick));
  }
  for (const figure of FIGURES) svg.append(line(placed, figure, x, y));
  return svg;
}

// One figure as a line through consecutive slots, broken where a window is missing.
function line(placed, figure, x, y) {
  let d = "";
  let last = null;
  const dots = s("g", { class: `dots line-${figure}` });
  for (const [i, w] of placed) {
    const value = w[figure];
    if (value === null || value === undefined) {
      last = null;
      continue;
    }
    d += `${last !== null && i === last + 1 ? "L" : "M"}${x(i).toFixed(1)} ${y(value).toFixed(1)}`;
    dots.append(s("circle", { cx: x(i), cy: y(value), r: 2 }));
    last = i;
  }
  return s("g", { "pointer-events": "none" }, s("path", { class: `line line-${figure}`, d }), dots);
}

/**
 * The day from `from` to `to` as one bar: running where no period says otherwise (up to now),
 * each non-running period in its colour (a down period in its reason's), the future blank.
 */
export function timelineBar(options) {
  const { from, to, now, periods, width, tickLabel, describe, colourOf, label, onPick } = options;
  const height = 62;
  const left = 8;
  const barW = width - left * 2;
  const x = (ms) => left + (barW * (Math.min(Math.max(ms, from), to) - from)) / (to - from);
  const svg = root(width, height, label);
  const top = 6;
  const barH = 30;
  const end = Math.min(now, to);
  svg.append(s("rect", { class: "tl-future", x: left, y: top, width: barW, height: barH }));
  if (end > from) {
    svg.append(s("rect", { class: "tl-running", x: left, y: top, width: x(end) - left, height: barH }));
  }
  for (const p of periods) {
    const start = Math.max(p.startMs, from);
    const stop = Math.min(p.endMs ?? end, to);
    if (stop <= start) continue;
    const rect = s("rect", {
      class: `tl-${p.state} segment`, x: x(start), y: top, width: Math.max(1, x(stop) - x(start)),
      height: barH, fill: colourOf(p), "data-state": p.state, "data-reason": p.reason ?? "",
      "data-start": p.start, "data-end": p.end ?? "",
    });
    svg.append(pickable(rect, describe(p), onPick));
  }
  if (now > from && now < to) {
    svg.append(s("line", { class: "tl-now", x1: x(now), x2: x(now), y1: top - 3, y2: top + barH + 3 }));
  }
  const step = width < 560 ? 6 : 3;
  for (let hour = 0; hour <= 24; hour += step) {
    const at = from + hour * 3600e3;
    if (at > to) break;
    const anchor = hour === 0 ? "start" : hour === 24 ? "end" : "middle";
    svg.append(s("line", { class: "grid", x1: x(at), x2: x(at), y1: top + barH, y2: top + barH + 4 }));
    svg.append(s("text", { class: "axis", x: x(at), y: height - 8, "text-anchor": anchor },
      tickLabel(at)));
  }
  return svg;
}

/** Rows [{key, label, seconds, cls}] sorted largest first, as horizontal bars with their share. */
export function paretoChart({ rows, width, value, label, describe, onPick }) {
  const rowH = 28;
  const labelW = Math.min(170, Math.round(width * 0.34));
  const valueW = width < 500 ? 104 : 132;
  const barMax = Math.max(20, width - labelW - valueW - 12);
  const total = rows.reduce((sum, r) => sum + r.seconds, 0) || 1;
  const largest = rows[0]?.seconds || 1;
  const svg = root(width, rows.length * rowH + 6, label);
  let cumulative = 0;
  rows.forEach((row, i) => {
    cumulative += row.seconds;
    const y = 3 + i * rowH;
    const w = Math.max(1, (barMax * row.seconds) / largest);
    const group = s("g", {
      class: `pareto-row ${row.cls || ""}`, "data-key": row.key, "data-seconds": row.seconds,
    });
    const baseline = y + rowH / 2 + 4;
    group.append(s("rect", { class: "hit", x: 0, y, width, height: rowH }));
    group.append(s("text", { class: "pareto-label", x: labelW - 6, y: baseline, "text-anchor": "end" },
      clip(row.label, labelW)));
    group.append(s("rect", { class: "pareto-bar", x: labelW, y: y + 5, width: w, height: rowH - 10 }));
    group.append(s("text", { class: "pareto-value", x: labelW + w + 6, y: baseline },
      `${value(row.seconds)} · ${Math.round((100 * cumulative) / total)}%`));
    svg.append(pickable(group, describe(row, cumulative / total), onPick));
  });
  return svg;
}

// A label cut to what fits, counting a CJK character as two Latin ones.
function clip(text, px) {
  const room = Math.floor(px / 7);
  let used = 0;
  let out = "";
  for (const ch of text) {
    used += /[\u3000-\u9fff\uff00-\uffef]/.test(ch) ? 2 : 1;
    if (used > room) return out + "…";
    out += ch;
  }
  return out;
}
