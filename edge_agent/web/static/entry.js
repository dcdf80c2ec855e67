// What people enter or take away for the machine: rejects found after the count, and the
// shift report as a file in the page's language.
import { post } from "./api.js";
import { byId, h, replace, setText } from "./dom.js";
import { refusal, t } from "./i18n.js";
import { page, machineMeta, mayOperate, zoneOf } from "./store.js";
import { dateKey, msOf } from "./time.js";

let wired = false;
let reloadAfterReject = null;

function wire() {
  if (wired) return;
  wired = true;
  byId("reject-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const count = Number(byId("reject-count").value);
    const reason = byId("reject-reason").value.trim();
    const status = byId("reject-status");
    if (!(count >= 1) || !reason) return;
    const button = byId("reject-save");
    button.disabled = true;
    const [code, answer] = await post("api/history/rejects", { machine: page.machine, count, reason });
    button.disabled = false;
    status.title = code === 200 ? "" : answer.error || "";
    const exceeded = answer.code === "rejects_exceed_good";
    setText(status, code === 200 ? t("reject_saved")
      : exceeded ? t("rejects_exceed_good", { n: answer.good }) : refusal(code));
    if (code === 200) {
      byId("reject-count").value = "";
      await reloadAfterReject?.();
    }
  });
  for (const id of ["report-date", "report-shift"]) byId(id).addEventListener("change", reportLinks);
}

export function renderEntry(cache, { reload }) {
  wire();
  reloadAfterReject = reload;
  const meta = machineMeta(cache.machine);
  byId("rejects-section").hidden = !mayOperate();
  const reasons = meta?.reasons || [];
  const quality = reasons.filter((r) => r.category === "quality");
  const offered = quality.length ? quality : reasons;
  replace(byId("reject-reasons"), offered.map((r) => h("option", { value: r.text })));
  renderReports(cache, meta);
}

function renderReports(cache, meta) {
  const shifts = meta?.shifts || [];
  const box = byId("report-form");
  byId("report-none").hidden = shifts.length > 0;
  box.hidden = shifts.length === 0;
  if (!shifts.length) return;
  const select = byId("report-shift");
  const chosen = select.value;
  replace(select, shifts.map((s) => h("option", { value: s.name }, s.display_name || s.name)));
  const dateInput = byId("report-date");
  if (!dateInput.value || !chosen) {
    // The last shift that has ended: the report people ask for first.
    const zone = zoneOf(cache.machine);
    const closed = (cache.shift?.ok ? cache.shift.data.windows : []).filter((w) => w.final).at(-1);
    dateInput.value = dateKey(closed ? msOf(closed.start) : Date.now(), zone);
    select.value = closed?.shift ?? shifts[0].name;
  } else {
    select.value = chosen;
  }
  dateInput.max = dateKey(Date.now(), zoneOf(cache.machine));
  reportLinks();
}

function reportLinks() {
  const params = new URLSearchParams({
    date: byId("report-date").value, shift: byId("report-shift").value, lang: page.lang || "en",
    machine: page.machine ?? "",
  });
  for (const kind of ["csv", "xlsx"]) {
    const link = byId(`report-${kind}`);
    link.href = `api/report/shift.${kind}?${params}`;
    link.setAttribute("download", ""); // the agent names the file
    setText(link, t(`report_${kind}`));
  }
}
