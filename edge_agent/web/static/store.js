// What the page knows right now, shared by its modules (one page, one reader: no framework).
export const page = {
  lang: "",            // "en" or "zh-CN"; "" until the agent's own language is known
  me: { user: null, role: null, csrf: null },
  live: null,          // the last api/state answer
  meta: null,          // api/meta, or what api/state tells when the agent has no api/meta
  machine: null,       // id of the machine whose history is shown
};

export const mayOperate = () =>
  Boolean(page.me.csrf) && (page.me.role === "operator" || page.me.role === "engineer");
export const mayEngineer = () => Boolean(page.me.csrf) && page.me.role === "engineer";

export function machineMeta(id) {
  return page.meta?.machines.find((m) => m.id === id) ?? null;
}

// The unit of a `device.tag` reference as configured ("°C", "mm/s"), or "".
export function unitOf(ref) {
  const [device, tag] = (ref || "").split(".", 2);
  const d = page.meta?.devices.find((x) => x.id === device);
  return d?.tags.find((x) => x.id === tag)?.unit || "";
}

export function machineName(id) {
  return machineMeta(id)?.display_name || id || "";
}

// The machine's calendar zone; a machine without a calendar is measured in UTC hours.
export function zoneOf(id) {
  return machineMeta(id)?.timezone || plantZone();
}

export function plantZone() {
  return page.meta?.machines.find((m) => m.timezone)?.timezone || "UTC";
}
