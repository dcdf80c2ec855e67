// The page's start: who is logged in, the live refresh, the language, the machine shown.
import { get, post } from "./api.js";
import { initAlarms, renderAlarms } from "./alarms.js";
import { byId, setText } from "./dom.js";
import { clearHistory, loadHistory, renderHistory } from "./history.js";
import { languages, t } from "./i18n.js";
import { renderDevices, renderMachines, renderSinks } from "./live.js";
import { page, plantZone } from "./store.js";
import { clock } from "./time.js";

const REFRESH_MS = 2000;
const HISTORY_MS = 60000;
let metaMissing = false; // an agent without api/meta: names and zones come from api/state

function chosenLanguage() {
  const asked = new URLSearchParams(location.search).get("lang") || localStorage.getItem("lang") || "";
  return languages.includes(asked) ? asked : "";
}

function applyStatic() {
  document.documentElement.lang = page.lang || "en";
  document.title = page.live ? `${t("title")} · ${page.live.agent.id}` : t("title");
  for (const el of document.querySelectorAll("[data-t]")) setText(el, t(el.dataset.t));
  byId("lang").value = page.lang || "en";
}

function showWho() {
  setText(byId("who"), page.me.user ? `${page.me.user} · ${t(page.me.role)}` : "");
  byId("logout").hidden = !page.me.user;
  byId("login-hint").hidden = Boolean(page.me.user) || !page.live;
}

function showLogin(why) {
  const box = byId("login");
  setText(byId("login-why"), why ? t(why) : "");
  if (!box.hidden) return; // asked again by the next refresh: the cursor stays where it is
  box.hidden = false;
  byId("login-user").focus();
}

async function whoAmI() {
  try {
    const a = await get("api/me");
    page.me = { user: a.user ?? null, role: a.role ?? null, csrf: a.csrf ?? null };
  } catch {
    // shown by the refresh
  }
  showWho();
}

function metaFromState(state) {
  return {
    agent: state.agent,
    machines: state.machines.map((m) => ({
      id: m.name, display_name: m.display_name || m.name, timezone: null,
      window: m.oee?.window ?? null, reasons: [], shifts: [],
    })),
    devices: [], alarms: [],
  };
}

async function loadMeta() {
  if (metaMissing) {
    page.meta = metaFromState(page.live);
    return;
  }
  try {
    page.meta = await get("api/meta");
  } catch (error) {
    if (error.status !== 404) throw error;
    metaMissing = true;
    page.meta = metaFromState(page.live);
  }
}

function renderLive() {
  const live = page.live;
  renderMachines(live?.machines, selectMachine);
  renderAlarms(live?.alarms);
  renderDevices(live?.devices);
  renderSinks(live?.sinks, live?.buffer);
  setText(byId("agent-meta"), live ? `${t("agent")} ${live.agent.id}` : "");
  showWho();
}

function selectMachine(id) {
  if (id === page.machine) return;
  page.machine = id;
  clearHistory();
  renderLive();
  loadHistory();
}

function loggedOut() {
  // Not allowed to read (any more): nothing of what was shown stays on the screen.
  Object.assign(page, { live: null, meta: null, machine: null });
  clearHistory();
  renderLive();
  showLogin("login_needed");
  setText(byId("status"), "");
}

async function refresh() {
  const status = byId("status");
  let state;
  try {
    const r = await fetch("api/state", { cache: "no-store", credentials: "same-origin" });
    if (r.status === 401) {
      loggedOut();
      return;
    }
    state = await r.json();
  } catch {
    status.className = "stale";
    setText(status, t("unreachable"));
    return;
  }
  const first = !page.live;
  page.live = state;
  if (!page.lang) page.lang = state.agent.language;
  if (first) applyStatic();
  if (!page.meta || metaMissing) await loadMeta().catch(() => null);
  const names = state.machines.map((m) => m.name);
  if (!names.includes(page.machine)) {
    const asked = new URLSearchParams(location.search).get("machine");
    selectMachine(names.includes(asked) ? asked : names[0] ?? null);
  }
  renderLive();
  status.className = "muted";
  setText(status, `${t("updated")} ${clock(Date.now(), plantZone(), page.lang)}`);
}

byId("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = byId("login-error");
  setText(error, "");
  const [status, a] = await post("api/login", {
    user: byId("login-user").value, password: byId("login-password").value,
  });
  if (status !== 200) {
    setText(error, t(status === 429 ? "login_slow" : "login_wrong"));
    return;
  }
  page.me = { user: a.user, role: a.role, csrf: a.csrf };
  byId("login-password").value = "";
  byId("login").hidden = true;
  showWho();
  await refresh();
  renderHistory(); // the actions this role may take appear
});

byId("logout").addEventListener("click", async () => {
  await post("api/logout");
  page.me = { user: null, role: null, csrf: null };
  showWho();
  await refresh();
  renderHistory();
});

byId("show-login").addEventListener("click", () => showLogin(""));

byId("lang").addEventListener("change", (e) => {
  page.lang = e.target.value;
  localStorage.setItem("lang", page.lang);
  applyStatic();
  renderLive();
  renderHistory();
});

let resizing = null;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(renderHistory, 200);
});

initAlarms(refresh);
page.lang = chosenLanguage();
applyStatic();
whoAmI().then(refresh);
setInterval(refresh, REFRESH_MS);
setInterval(() => page.live && loadHistory(), HISTORY_MS);
