// What api/state tells every two seconds: the machines (with their open window's OEE), the
// devices and where the records go.
import { activeCount } from "./alarms.js";
import { byId, h, keyed, replace } from "./dom.js";
import { duration, num, pct, reasonText, t } from "./i18n.js";
import { page, machineName, zoneOf } from "./store.js";
import { clock, dateTime, msOf } from "./time.js";
import { noDataNote } from "./trends.js";

function shiftName(machine, shift) {
  const meta = page.meta?.machines.find((m) => m.id === machine);
  return meta?.shifts?.find((s) => s.name === shift)?.display_name || shift || "";
}

const bar = (ratio, cls) =>
  h("span", { class: `bar ${cls}` },
    h("span", { style: `width:${Math.min(100, 100 * (ratio || 0))}%` }));
const FIGURES = [["oee", "main"], ["availability", ""], ["performance", ""], ["quality", ""]];

function oeeBlock(m) {
  const o = m.oee;
  if (!o) return [h("p", { class: "muted" }, t("no_oee"))];
  const zone = zoneOf(m.name);
  const lang = page.lang;
  const what = o.window === "shift" ? `${t("shift")} ${shiftName(m.name, o.shift)}` : t("this_hour");
  const note = noDataNote(o);
  const busy = o.planned_busy_time_s || 0;
  const withData = busy - (o.unknown_time_s || 0);
  return [
    h("p", { class: "muted" },
      `${what}: ${clock(msOf(o.start), zone, lang)}–${clock(msOf(o.end), zone, lang)}`),
    note ? h("p", { class: "nodata-note" }, note) : null,
    h("div", { class: "oee" }, FIGURES.map(([key, cls]) => [
      h("span", {}, t(key)),
      bar(o[key], cls),
      h("span", { class: "num", "data-figure": key }, pct(o[key])),
    ])),
    note && withData > 0 && o.oee !== null
      ? h("p", { class: "muted" }, `${t("oee_with_data")}: ${pct((o.oee * busy) / withData)}`)
      : null,
    h("p", { class: "muted" },
      `${t("parts")} ${num(o.total_count)} · ${t("good_parts")} ${num(o.good_count)} · ` +
      `${t("rejects")} ${num(o.reject_count)} · ${t("down_time")} ${duration(o.down_time_s)}`),
  ];
}

function card(m) {
  const count = activeCount(m.name);
  const zone = zoneOf(m.name);
  const pressed = m.name === page.machine ? "true" : "false";
  const since = m.since ? ` · ${t("since")} ${dateTime(msOf(m.since), zone, page.lang)}` : "";
  return [
    h("div", { class: "card-head" },
      h("button", { type: "button", class: "machine-name", "aria-pressed": pressed, "aria-controls": "history" },
        machineName(m.name)),
      count
        ? h("span", { class: "badge", "data-count": count },
          t(count === 1 ? "alarm_badge_one" : "alarm_badge", { n: count }))
        : null),
    h("p", {}, h("span", { class: `pill ${m.state}` }, t(m.state)), " ",
      m.reason ? reasonText(m.reason) : "", h("span", { class: "muted" }, since)),
    oeeBlock(m),
  ];
}

export function renderMachines(machines, onPick) {
  const box = byId("machines");
  if (!machines) {
    box.replaceChildren();
    return;
  }
  if (!machines.length) {
    replace(box, h("p", { class: "muted" }, t("none")));
    return;
  }
  keyed(box, machines, (m) => m.name,
    (m) => h("article", { class: "machine", "data-machine": m.name, onclick: () => onPick(m.name) }),
    (el, m) => {
      const shown = JSON.stringify([m, activeCount(m.name), page.lang, page.machine, machineName(m.name)]);
      el.classList.toggle("selected", m.name === page.machine);
      if (el.dataset.shown === shown) return;
      el.dataset.shown = shown;
      replace(el, card(m));
    });
}

function deviceName(d) {
  return d.display_name || page.meta?.devices?.find((x) => x.id === d.name)?.display_name || d.name;
}

function tagName(device, v) {
  const tags = page.meta?.devices?.find((x) => x.id === device.name)?.tags;
  return v.display_name || tags?.find((x) => x.id === v.tag)?.display_name || v.tag;
}

export function renderDevices(devices) {
  const box = byId("devices");
  if (!devices) {
    box.replaceChildren();
    return;
  }
  replace(box, devices.map(device));
}

// A device's link (its error text, in English, as a tooltip) and its values.
function device(d) {
  const link = d.up === null ? "never" : d.up ? "up" : "offline";
  const lastOk = d.last_ok
    ? ` · ${t("last_ok")} ${dateTime(msOf(d.last_ok), zoneOf(page.machine), page.lang)}`
    : "";
  const head = h("tr", {}, h("th", {}, t("tag")), h("th", { class: "num" }, t("value")),
    h("th", {}, t("unit")), h("th", {}, t("signal_quality")));
  const rows = d.values.map((v) => h("tr", { "data-tag": v.tag },
    h("td", {}, tagName(d, v)),
    h("td", { class: "num" }, formatValue(v.value)),
    h("td", {}, v.unit ?? ""),
    h("td", {}, h("span", { class: `pill ${v.quality}` }, t(v.quality)))));
  return h("div", { class: "device", "data-device": d.name },
    h("h3", {}, deviceName(d), " ",
      h("span", { class: `pill ${link}`, title: d.error || null }, t(link)),
      h("span", { class: "muted" }, lastOk)),
    h("div", { class: "scroll" }, h("table", {}, h("thead", {}, head), h("tbody", {}, rows))));
}

function formatValue(value) {
  if (typeof value === "boolean") return t(value ? "yes" : "no");
  if (value === null || value === undefined) return "—";
  return typeof value === "number" ? num(value) : String(value);
}

export function renderSinks(sinks, buffer) {
  const box = byId("sinks");
  if (!sinks) {
    box.replaceChildren();
    return;
  }
  const warnings = [
    buffer.dropped ? t("dropped", { n: buffer.dropped }) : null,
    buffer.full ? t("full") : null,
  ].filter(Boolean);
  const line = h("p", { class: "muted", title: buffer.path },
    `${t("buffer")}: ${num(buffer.records)} ${t("records")}`,
    warnings.length ? [" · ", h("span", { class: "pill down" }, warnings.join(" · "))] : null);
  if (!sinks.length) {
    replace(box, h("p", { class: "muted" }, t("none")), line);
    return;
  }
  const columns = ["sink", "connected", "pending", "oldest", "refused", "error"];
  const numeric = ["pending", "oldest", "refused"];
  const head = h("tr", {}, columns.map((k) => h("th", { class: numeric.includes(k) ? "num" : null }, t(k))));
  const rows = sinks.map((k) => h("tr", {},
    h("td", { title: k.endpoint }, k.name),
    h("td", {}, h("span", { class: `pill ${k.connected ? "up" : "offline"}` }, t(k.connected ? "yes" : "no"))),
    h("td", { class: "num" }, num(k.pending)),
    h("td", { class: "num" }, duration(k.oldest_pending_s)),
    h("td", { class: "num" }, num(k.quarantined)),
    h("td", { title: k.error || null }, k.error ? t("send_failed") : "")));
  // Another client in a sink's place: above the table, where a phone shows it without scrolling.
  const conflicts = sinks.filter((k) => k.conflict).map((k) => h("p", {},
    h("span", { class: "pill down conflict", title: k.conflict }, `${k.name}: ${t("id_conflict")}`)));
  replace(box, conflicts,
    h("div", { class: "scroll" }, h("table", {}, h("thead", {}, head), h("tbody", {}, rows))), line);
}
