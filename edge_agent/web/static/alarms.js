// The alarm list with what operators (acknowledge, shelve) and engineers (out of service) may
// do. Rows are kept by alarm id and updated in place, so the value ticking every poll does not
// replace a button under someone's finger.
import { post } from "./api.js";
import { byId, h, keyed, replace, setText } from "./dom.js";
import { alarmDetail, num, refusal, t } from "./i18n.js";
import { page, machineName, mayEngineer, mayOperate, zoneOf, plantZone, unitOf } from "./store.js";
import { dateTime, msOf } from "./time.js";

// What needs someone first: unacknowledged, then active, then what is set aside or quiet.
const ORDER = {
  unack_active: 0, unack_rtn: 1, ack_active: 2, shelved: 3, out_of_service: 4, suppressed: 5,
  normal: 6,
};
const RANK = { urgent: 0, high: 1, medium: 2, low: 3 };
const DURATIONS = {
  shelve: [["h_15m", 900], ["h_1h", 3600], ["h_4h", 14400], ["h_8h", 28800], ["h_24h", 86400]],
  out_of_service: [["h_8h", 28800], ["h_24h", 86400], ["h_3d", 259200], ["h_7d", 604800]],
};
const COLUMNS = ["alarm", "state"];

let afterCommand = () => {};
let asking = null; // {id, command} while the dialog is open

const isActive = (a) => a.state === "unack_active" || a.state === "ack_active";

export function activeCount(machine) {
  return (page.live?.alarms || []).filter((a) => a.machine === machine && isActive(a)).length;
}

function metaOf(alarm) {
  return page.meta?.alarms?.find((m) => m.id === alarm.id) ?? {};
}

const alarmName = (a) => a.display_name || metaOf(a).display_name || a.id;
const zoneFor = (a) => (a.machine ? zoneOf(a.machine) : plantZone());

export function initAlarms(onCommand) {
  afterCommand = onCommand;
  byId("alarm-dialog-form").addEventListener("submit", confirmDialog);
  byId("alarm-cancel").addEventListener("click", () => byId("alarm-dialog").close());
}

export function renderAlarms(alarms) {
  const box = byId("alarms");
  if (!alarms) {
    box.replaceChildren();
    return;
  }
  if (!alarms.length) {
    replace(box, h("p", { class: "muted" }, t("no_alarms")));
    return;
  }
  const act = mayOperate();
  let table = box.querySelector("table");
  const heading = JSON.stringify([page.lang, act]);
  if (!table || table.dataset.heading !== heading) {
    table = h("table", { class: "alarms", "data-heading": heading },
      h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { scope: "col" }, t(c))),
        act ? h("th", {}, t("actions")) : null)),
      h("tbody"));
    replace(box, h("div", { class: "scroll" }, table));
  }
  const sorted = [...alarms].sort((a, b) =>
    (ORDER[a.state] ?? 9) - (ORDER[b.state] ?? 9) ||
    (RANK[a.priority] ?? 9) - (RANK[b.priority] ?? 9) ||
    alarmName(a).localeCompare(alarmName(b)));
  keyed(table.tBodies[0], sorted, (a) => a.id, createRow, updateRow);
}

function createRow(alarm) {
  const row = h("tr", { "data-alarm": alarm.id });
  for (let i = 0; i < COLUMNS.length; i += 1) row.append(h("td"));
  return row;
}

// What it is (name, machine, message, detail) | its state (priority, since when, value).
function updateRow(row, a) {
  const zone = zoneFor(a);
  const lang = page.lang;
  const [what, state] = row.cells;
  const message = a.message || metaOf(a).message;
  const about = [a.machine ? machineName(a.machine) : "", message].filter(Boolean).join(" · ");
  const detail = alarmDetail(a, unitOf(a.tag));
  const whatKey = JSON.stringify([alarmName(a), about, detail, lang]);
  if (what.dataset.shown !== whatKey) {
    what.dataset.shown = whatKey;
    replace(what, h("strong", {}, alarmName(a)), about ? h("div", { class: "muted" }, about) : null,
      detail ? h("div", { class: "detail" }, detail) : null);
    what.title = a.id;
  }
  const until = a.shelved_until || a.out_of_service_until;
  const since = a.state === "normal" ? null : a.activated || a.since;
  const when = [`${t("priority")} ${t(a.priority)}`, since ? dateTime(msOf(since), zone, lang) : ""]
    .filter(Boolean).join(" · ");
  const stateKey = JSON.stringify([a.state, when, until, lang]);
  if (state.dataset.shown !== stateKey) {
    state.dataset.shown = stateKey;
    const untilText = until ? t("until", { t: dateTime(msOf(until), zone, lang) }) : null;
    replace(state,
      h("span", { class: `pill ${a.state}` }, t(a.state)),
      h("div", { class: "muted" }, when),
      untilText ? h("div", { class: "muted" }, untilText) : null,
      h("div", { class: "alarm-value" }));
  }
  const unit = unitOf(a.tag);
  const value = a.value === null || a.value === undefined
    ? "" : `${t("value")} ${num(a.value)}${unit ? ` ${unit}` : ""}`;
  setText(state.querySelector(".alarm-value"), value);
  updateActions(row, a);
}

function updateActions(row, a) {
  const act = mayOperate();
  const key = JSON.stringify([a.state, page.me.role, page.lang, act]);
  if (row.dataset.actions === key) return;
  row.dataset.actions = key;
  while (row.cells.length > COLUMNS.length) row.deleteCell(-1);
  if (!act) return;
  const cell = row.insertCell();
  cell.className = "actions";
  const button = (cls, label, run) =>
    h("button", { type: "button", class: cls, "data-id": a.id, onclick: run }, t(label));
  const now = (name) => (e) => command(e.target, a.id, name);
  const buttons = [];
  if (a.state === "unack_active" || a.state === "unack_rtn") buttons.push(button("ack", "ack", now("ack")));
  if (a.state === "shelved") buttons.push(button("unshelve", "unshelve", now("unshelve")));
  else if (a.state !== "out_of_service") buttons.push(button("shelve", "shelve", () => ask(a, "shelve")));
  if (mayEngineer()) {
    buttons.push(a.state === "out_of_service"
      ? button("in-service", "restore", now("in_service"))
      : button("out-of-service", "remove", () => ask(a, "out_of_service")));
  }
  cell.append(...buttons);
}

const commandPath = (id, name) => `api/alarms/${encodeURIComponent(id)}/${name}`;

// A command without questions (acknowledge, unshelve, back in service).
async function command(button, id, name) {
  button.disabled = true;
  const [code, answer] = await post(commandPath(id, name), {});
  button.disabled = false;
  const status = byId("alarm-status");
  setText(status, code === 200 ? "" : refusal(code));
  status.title = code === 200 ? "" : answer.error || "";
  await afterCommand();
}

function ask(alarm, name) {
  asking = { id: alarm.id, command: name };
  const title = name === "shelve" ? "shelve_title" : "remove_title";
  setText(byId("alarm-dialog-title"), t(title, { a: alarmName(alarm) }));
  replace(byId("alarm-duration"),
    DURATIONS[name].map(([label, seconds]) => h("option", { value: seconds }, t(label))));
  byId("alarm-reason").value = "";
  setText(byId("alarm-dialog-error"), "");
  byId("alarm-dialog").showModal();
  byId("alarm-reason").focus();
}

async function confirmDialog(e) {
  e.preventDefault();
  if (!asking) return;
  const reason = byId("alarm-reason").value.trim();
  if (!reason) {
    byId("alarm-reason").focus();
    return;
  }
  const body = { reason, duration_s: Number(byId("alarm-duration").value) };
  const [code, answer] = await post(commandPath(asking.id, asking.command), body);
  if (code === 200) {
    asking = null;
    byId("alarm-dialog").close();
    await afterCommand();
  } else {
    const error = byId("alarm-dialog-error");
    setText(error, refusal(code));
    error.title = answer.error || "";
  }
}
