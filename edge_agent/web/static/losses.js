// Downtime by reason (a Pareto over the chosen day or week) and the stops still without one,
// each with a reason to pick for those who may.
import { post } from "./api.js";
import { paretoChart } from "./charts.js";
import { byId, h, replace, setText, showPick } from "./dom.js";
import { categoryName, duration, reasonText, refusal, t } from "./i18n.js";
import { page, machineMeta, mayOperate, zoneOf } from "./store.js";
import { dateKey, dateTime, iso, msOf } from "./time.js";
import { paretoChoice } from "./history.js";

const SHOWN_STOPS = 30;
let wired = false;
let shownStops = "";

function wire(reloadLosses, rerender) {
  if (wired) return;
  wired = true;
  byId("pareto-mode").addEventListener("change", (e) => {
    paretoChoice.mode = e.target.value;
    reloadLosses();
  });
  byId("pareto-date").addEventListener("change", (e) => {
    if (!e.target.value) return;
    paretoChoice.date = e.target.value;
    reloadLosses();
  });
  byId("pareto-group").addEventListener("change", (e) => {
    paretoChoice.group = e.target.checked;
    rerender();
  });
}

function lossRows(windows, group, machine) {
  const categories = new Map((machineMeta(machine)?.reasons || []).map((r) => [r.text, r.category]));
  const totals = new Map();
  for (const w of windows) {
    for (const [reason, seconds] of Object.entries(w.losses_by_reason_s || {})) {
      const key = reason === "unclassified" || !group ? reason : categories.get(reason) || "other";
      totals.set(key, (totals.get(key) || 0) + seconds);
    }
  }
  return [...totals]
    .filter(([, seconds]) => seconds > 0)
    .map(([key, seconds]) => ({
      key,
      seconds: Math.round(seconds * 1000) / 1000,
      label: key === "unclassified" ? t("unclassified") : group ? categoryName(key) : reasonText(key),
      cls: key === "unclassified" ? "unclassified" : "",
    }))
    .sort((a, b) => b.seconds - a.seconds);
}

export function renderLosses(cache, { kind, reload, reloadLosses }) {
  const rerender = () => renderLosses(cache, { kind, reload, reloadLosses });
  wire(reloadLosses, rerender);
  const zone = zoneOf(cache.machine);
  const today = dateKey(Date.now(), zone);
  byId("pareto-mode").value = paretoChoice.mode;
  byId("pareto-date").value = paretoChoice.date ?? cache.lossesDate ?? today;
  byId("pareto-date").max = today;
  byId("pareto-group").checked = paretoChoice.group;
  renderPareto(cache, kind);
  renderStops(cache, reload);
}

function renderPareto(cache, kind) {
  const box = byId("pareto");
  const answer = cache.losses;
  box.dataset.from = iso(cache.lossesSpan.from);
  box.dataset.to = iso(cache.lossesSpan.to);
  box.dataset.window = kind;
  if (!answer?.ok) {
    replace(box, h("p", { class: "muted" }, answer?.status === 404 ? t("not_available") : t("loading")));
    return;
  }
  const rows = lossRows(answer.data.windows, paretoChoice.group, cache.machine);
  if (!rows.length) {
    replace(box, h("p", { class: "muted" }, t("no_losses")));
    return;
  }
  const total = rows.reduce((sum, r) => sum + r.seconds, 0);
  replace(box, paretoChart({
    rows,
    width: Math.max(280, box.clientWidth || 400),
    value: duration,
    label: t("pareto"),
    describe: (row, share) => {
      const own = Math.round((100 * row.seconds) / total);
      return `${row.label}: ${duration(row.seconds)} (${own}%, ${t("cumulative")} ${Math.round(100 * share)}%)`;
    },
    onPick: (text) => showPick("pareto-pick", text),
  }));
}

function reasonSelect(machine) {
  const reasons = machineMeta(machine)?.reasons || [];
  const groups = new Map();
  for (const r of reasons) {
    if (!groups.has(r.category)) groups.set(r.category, []);
    groups.get(r.category).push(r);
  }
  return h("select", { class: "stop-reason", "aria-label": t("stop_reason") },
    h("option", { value: "" }, t("pick_reason")),
    [...groups].map(([category, list]) => h("optgroup", { label: categoryName(category) },
      list.map((r) => h("option", { value: r.code }, r.text)))));
}

function stopKind(stop) {
  const code = stop.reason_code ? ` (${t("stop_code", { c: stop.reason_code })})` : "";
  return `${t(stop.state)}${code}`;
}

function renderStops(cache, reload) {
  const box = byId("stops");
  if (!cache.stops?.ok) {
    const why = cache.stops?.status === 404 ? t("not_available") : t("loading");
    replace(box, h("p", { class: "muted" }, why));
    shownStops = "";
    return;
  }
  const open = cache.stops.data.stops.filter((s) => !s.classified_by);
  open.sort((a, b) => msOf(b.start) - msOf(a.start));
  const shown = open.slice(0, SHOWN_STOPS);
  const act = mayOperate();
  const signature = JSON.stringify([page.lang, act, shown.map((s) => s.id)]);
  if (signature === shownStops && box.firstElementChild) return; // what someone types stays
  const kept = new Map([...box.querySelectorAll("tr[data-stop]")].map((tr) => [
    tr.dataset.stop, [tr.querySelector(".stop-reason")?.value, tr.querySelector(".stop-note")?.value],
  ]));
  shownStops = signature;
  if (!open.length) {
    replace(box, h("p", { class: "muted" }, t("stops_none")));
    return;
  }
  const zone = zoneOf(cache.machine);
  const rows = shown.map((stop) =>
    stopRow(stop, zone, act, cache.machine, reload, kept.get(String(stop.id))));
  replace(box,
    h("div", { class: "scroll" }, h("table", { class: "stops" },
      h("thead", {}, h("tr", {},
        h("th", {}, t("stop_start")), h("th", { class: "num" }, t("stop_duration")),
        h("th", {}, t("stop_state")), act ? h("th", {}, t("stop_reason")) : null)),
      h("tbody", {}, rows))),
    open.length > shown.length
      ? h("p", { class: "muted" }, t("stops_more", { n: open.length - shown.length }))
      : null);
}

function stopRow(stop, zone, act, machine, reload, kept) {
  const row = h("tr", { "data-stop": stop.id },
    h("td", {}, dateTime(msOf(stop.start), zone, page.lang),
      stop.simulated ? h("span", { class: "tag-sim" }, t("simulated")) : null),
    h("td", { class: "num" }, duration(stop.duration_s)),
    h("td", {}, stopKind(stop)));
  if (!act) return row;
  const select = reasonSelect(machine);
  const note = h("input", {
    class: "stop-note", type: "text", maxlength: 120, "aria-label": t("stop_note"),
    placeholder: t("stop_note"),
  });
  const status = byId("stops-status");
  const save = h("button", { type: "button", class: "save-reason" }, t("save"));
  if (kept) [select.value, note.value] = [kept[0] ?? "", kept[1] ?? ""];
  save.addEventListener("click", async () => {
    const body = {};
    if (select.value) body.code = select.value;
    if (note.value.trim()) body.note = note.value.trim();
    if (!body.code && !body.note) {
      select.focus();
      return;
    }
    save.disabled = true;
    status.title = "";
    const [code, answer] = await post(`api/history/stops/${encodeURIComponent(stop.id)}/reason`, body);
    save.disabled = false;
    if (code === 200) {
      setText(status, t("saved"));
      await reload();
    } else {
      setText(status, refusal(code));
      status.title = answer.error || "";
    }
  });
  row.append(h("td", { class: "stop-form" }, select, note, save));
  return row;
}
