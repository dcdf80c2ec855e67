// OEE trends (per shift over 14 days, per hour over yesterday and today) and today's timeline.
import { timelineBar, trendChart } from "./charts.js";
import { byId, h, replace, showPick, swatch } from "./dom.js";
import { duration, num, pct, reasonText, t } from "./i18n.js";
import { page, zoneOf } from "./store.js";
import { clock, dayStart, msOf, parts, shortDate } from "./time.js";

const HOUR = 3600e3;
const DOWN_COLOURS = ["#c53030", "#9b2c2c", "#e05252", "#7b1f1f", "#ef7b7b", "#b83280"];

function shiftName(machine, shift) {
  const meta = page.meta?.machines.find((m) => m.id === machine);
  return meta?.shifts?.find((x) => x.name === shift)?.display_name || shift || "";
}

function boxWidth(element) {
  return Math.max(280, Math.floor(element.clientWidth || element.parentElement.clientWidth || 600));
}

const pickLine = (id) => (text) => showPick(id, text);

function unavailable(box, answer) {
  const text = answer && answer.status === 404 ? t("not_available") : t("loading");
  replace(box, h("p", { class: "muted" }, answer && !answer.ok ? text : t("no_windows")));
}

function describeWindow(w, zone) {
  const lang = page.lang;
  const start = msOf(w.start);
  const when = `${shortDate(start, zone, lang)} ${clock(start, zone, lang)}–${clock(msOf(w.end), zone, lang)}`;
  const lines = [
    w.window === "shift" ? `${shiftName(w.machine, w.shift)} ${when}` : when,
    `${t("oee")} ${pct(w.oee)} · ${t("availability")} ${pct(w.availability)} · ` +
      `${t("performance")} ${pct(w.performance)} · ${t("quality")} ${pct(w.quality)}`,
    `${t("parts")} ${num(w.total_count)} · ${t("good_parts")} ${num(w.good_count)} · ` +
      `${t("rejects")} ${num(w.reject_count)} · ${t("down_time")} ${duration(w.down_time_s)}`,
  ];
  lines.push(`${t("micro_stops", { n: num(w.micro_stops ?? 0) })} · ` +
    `MTBF ${duration(w.mtbf_s)} · MTTR ${duration(w.mttr_s)}`);
  if (w.unknown_time_s >= 60) lines.push(`${t("nodata_share")} ${duration(w.unknown_time_s)}`);
  if (w.simulated) lines.push(t("simulated"));
  return lines.join("\n");
}

// Why the open window has time without data: the agent started after it began, or the link.
export function noDataNote(w) {
  if (!w || w.final || !(w.unknown_time_s >= 60)) return null;
  const zone = zoneOf(w.machine);
  const started = msOf(page.live?.agent?.started);
  const args = { d: duration(w.unknown_time_s), w: t(w.window === "shift" ? "of_shift" : "of_hour") };
  if (started && started > msOf(w.start)) {
    return t("no_data_agent", { ...args, at: clock(started, zone, page.lang) });
  }
  return t("no_data_link", args);
}

function legend(windows) {
  const simulated = windows.filter((w) => w.simulated).length;
  return [
    h("div", { class: "legend" },
      h("span", {}, swatch("bar-oee"), t("oee")),
      h("span", {}, swatch("line-availability"), t("availability")),
      h("span", {}, swatch("line-performance"), t("performance")),
      h("span", {}, swatch("line-quality"), t("quality")),
      h("span", {}, swatch("nodata"), t("nodata_share")),
      simulated ? h("span", {}, swatch("sim"), t("simulated")) : null),
    simulated ? h("p", { class: "muted sim-note" }, t("simulated_count", { n: simulated })) : null,
  ];
}

function trendBox(id, answer, options) {
  const box = byId(id);
  const windows = answer?.ok ? answer.data.windows : [];
  if (answer?.ok) Object.assign(box.dataset, { from: answer.data.from, to: answer.data.to });
  if (!answer?.ok || !windows.length) {
    unavailable(box, answer);
    return;
  }
  const svg = trendChart({ ...options, windows, width: boxWidth(box), onPick: pickLine(`${id}-pick`) });
  const open = windows.at(-1);
  const note = noDataNote(open);
  replace(box, svg, legend(windows), note ? h("p", { class: "nodata-note" }, note) : null);
  box.dataset.windows = String(windows.length);
}

export function renderTrends(cache, kind) {
  const zone = zoneOf(cache.machine);
  const lang = page.lang;
  byId("trend-shift-panel").hidden = kind !== "shift";
  if (kind === "shift") {
    const windows = cache.shift?.ok ? cache.shift.data.windows : [];
    const days = windows.map((w) => dayStart(msOf(w.start), zone));
    trendBox("trend-shift", cache.shift, {
      slots: windows.length,
      slotOf: (w) => windows.indexOf(w),
      tick: (i) => (i === 0 || days[i] !== days[i - 1]
        ? shortDate(msOf(windows[i].start), zone, lang)
        : null),
      describe: (w) => describeWindow(w, zone),
      label: t("trend_shift"),
    });
  }
  const from = cache.at.yesterday;
  const slots = Math.round((cache.at.tomorrow - from) / HOUR);
  trendBox("trend-hour", cache.hour, {
    slots,
    slotOf: (w) => Math.floor((msOf(w.start) - from) / HOUR),
    tick: (i) => {
      const at = from + i * HOUR;
      const hour = parts(at, zone).hour;
      if (hour === 0) return shortDate(at, zone, lang);
      return hour % 6 === 0 ? clock(at, zone, lang) : null;
    },
    describe: (w) => describeWindow(w, zone),
    label: t("trend_hour"),
  });
}

export function renderTimeline(cache) {
  const box = byId("timeline");
  const answer = cache.timeline;
  if (!answer?.ok) {
    unavailable(box, answer);
    return;
  }
  const zone = zoneOf(cache.machine);
  const lang = page.lang;
  const periods = answer.data.periods.map((p) => ({ ...p, startMs: msOf(p.start), endMs: msOf(p.end) }));
  // Each reason of a down period its own red, the same in the bar and the legend.
  const downs = periods.filter((p) => p.state === "down").map((p) => p.reason ?? "");
  const reasons = [...new Set(downs)].sort();
  const red = (reason) => DOWN_COLOURS[reasons.indexOf(reason ?? "") % DOWN_COLOURS.length];
  const colourOf = (p) => (p.state === "down" ? red(p.reason) : null);
  const describe = (p) => {
    const end = p.endMs ?? Date.now();
    const what = [t(p.state), reasonText(p.reason)].filter(Boolean).join(" · ");
    const until = p.endMs ? clock(end, zone, lang) : "…";
    return `${what}\n${clock(p.startMs, zone, lang)}–${until} (${duration((end - p.startMs) / 1000)})`;
  };
  const svg = timelineBar({
    from: cache.at.today, to: cache.at.tomorrow, now: Date.now(), periods, width: boxWidth(box),
    tickLabel: (at) => clock(at, zone, lang), describe, colourOf, label: t("timeline"),
    onPick: pickLine("timeline-pick"),
  });
  const states = ["running", "idle", "planned", "unknown"]
    .map((state) => h("span", {}, swatch(`tl-${state}`), t(state)));
  const reds = reasons.map((reason) => h("span", {},
    h("span", { class: "swatch", style: `background:${red(reason)}`, "aria-hidden": "true" }),
    `${t("down")}${reason ? " · " + reasonText(reason) : ""}`));
  replace(box, svg, h("div", { class: "legend" }, states, reds));
  Object.assign(box.dataset, { from: answer.data.from, to: answer.data.to });
}
