// The selected machine's history: what is fetched for it, and when it is drawn again.
import { get } from "./api.js";
import { byId, setText } from "./dom.js";
import { t } from "./i18n.js";
import { renderEntry } from "./entry.js";
import { renderLosses } from "./losses.js";
import { page, machineMeta, machineName, zoneOf } from "./store.js";
import { dayStart, dateKey, iso, keyToMs, msOf } from "./time.js";
import { renderTimeline, renderTrends } from "./trends.js";

// The answers for the machine shown: {ok, data} or {ok: false, status} per part.
export const cache = {};

// The Pareto's choice of range, kept across refreshes.
export const paretoChoice = { mode: "day", date: null, group: false };

function windowKind(machine) {
  const meta = machineMeta(machine);
  if (meta?.window) return meta.window;
  const live = page.live?.machines.find((m) => m.name === machine);
  return live?.oee?.window ?? (meta?.calendar ? "shift" : "hour");
}

function spans(machine) {
  const zone = zoneOf(machine);
  const now = Date.now();
  const date = paretoChoice.date ?? cache.lossesDate ?? dateKey(now, zone);
  const day = keyToMs(date, zone);
  return {
    zone, now,
    today: dayStart(now, zone), tomorrow: dayStart(now, zone, 1),
    yesterday: dayStart(now, zone, -1), weeks: dayStart(now, zone, -13),
    losses: {
      from: paretoChoice.mode === "week" ? dayStart(day, zone, -6) : day,
      to: dayStart(day, zone, 1),
    },
  };
}

async function part(path, params) {
  try {
    return { ok: true, data: await get(path, params) };
  } catch (error) {
    return { ok: false, status: error.status ?? 0, error: error.message };
  }
}

const range = (from, to) => ({ from: iso(from), to: iso(to) });

export async function loadHistory() {
  const machine = page.machine;
  if (!machine) return;
  const at = spans(machine);
  const kind = windowKind(machine);
  const [shift, hour, timeline] = await Promise.all([
    kind === "shift"
      ? part("api/history/oee", { machine, window: "shift", ...range(at.weeks, at.tomorrow) })
      : Promise.resolve(null),
    part("api/history/oee", { machine, window: "hour", ...range(at.yesterday, at.tomorrow) }),
    part("api/history/timeline", { machine, ...range(at.today, at.tomorrow) }),
  ]);
  if (machine !== page.machine) return; // another machine was chosen meanwhile
  // The Pareto opens on the production day of the latest shift that lost time (a night shift
  // belongs to the day it started): minutes into a shift, the night before is what there is to
  // see, not an empty chart. Today for a machine measured by the hour.
  const windows = shift?.ok ? shift.data.windows : [];
  const lost = (w) => Object.values(w.losses_by_reason_s ?? {}).some((s) => s > 0);
  const latest = windows.findLast(lost) ?? windows.at(-1) ?? null;
  const lossesDate = latest ? dateKey(msOf(latest.start), at.zone) : dateKey(at.now, at.zone);
  Object.assign(cache, { machine, shift, hour, timeline, at, lossesDate });
  await loadLosses(false);
  renderHistory();
  const box = byId("history"); // how often it was fetched: a test sees an update happen
  box.dataset.loads = String(Number(box.dataset.loads || 0) + 1);
}

// The Pareto's windows for the range chosen, and the stops without a reason in the time those
// windows cover (a night shift reaches into the next morning).
async function loadLosses(render = true) {
  const machine = page.machine;
  const at = spans(machine);
  const params = { machine, ...range(at.losses.from, at.losses.to) };
  const losses = await part("api/history/oee", { ...params, window: windowKind(machine) });
  const windows = losses.ok ? losses.data.windows : [];
  const from = windows.length ? Math.min(...windows.map((w) => msOf(w.start))) : at.losses.from;
  const to = windows.length ? Math.max(...windows.map((w) => msOf(w.end))) : at.losses.to;
  const stops = await part("api/history/stops", { machine, ...range(from, to) });
  if (machine !== page.machine) return;
  Object.assign(cache, { losses, stops, lossesSpan: at.losses });
  if (render) renderLossesNow();
  const box = byId("pareto");
  box.dataset.loads = String(Number(box.dataset.loads || 0) + 1);
}

export function renderHistory() {
  const machine = cache.machine;
  if (!machine || machine !== page.machine) return;
  for (const id of ["history", "losses-section", "reports-section"]) byId(id).hidden = false;
  setText(byId("history-title"), t("history_of", { m: machineName(machine) }));
  renderTimeline(cache);
  renderTrends(cache, windowKind(machine));
  renderLossesNow();
  renderEntry(cache, { reload: loadHistory });
}

function renderLossesNow() {
  const kind = windowKind(cache.machine);
  renderLosses(cache, { kind, reload: loadHistory, reloadLosses: loadLosses });
}

export function clearHistory() {
  for (const key of Object.keys(cache)) delete cache[key];
  for (const el of document.querySelectorAll(".machine-part")) el.hidden = true;
  for (const id of ["timeline", "trend-shift", "trend-hour", "pareto", "stops"]) {
    byId(id).replaceChildren();
  }
}
