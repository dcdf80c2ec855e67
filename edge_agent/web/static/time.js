// Calendar arithmetic in a named time zone (the machine's), whatever the browser's zone is.
const formats = new Map();

function format(zone, lang, options) {
  const key = JSON.stringify([zone, lang, options]);
  if (!formats.has(key)) {
    formats.set(key, new Intl.DateTimeFormat(lang || "en", { timeZone: zone, ...options }));
  }
  return formats.get(key);
}

const NUMERIC = {
  year: "numeric", month: "numeric", day: "numeric",
  hour: "numeric", minute: "numeric", second: "numeric", hourCycle: "h23",
};

export function parts(ms, zone) {
  const out = {};
  for (const p of format(zone, "en-US", NUMERIC).formatToParts(new Date(ms))) {
    if (p.type !== "literal") out[p.type] = Number(p.value);
  }
  return out;
}

// How far the zone's wall clock is ahead of UTC at `ms`.
function offsetMs(ms, zone) {
  const p = parts(ms, zone);
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return wall - (ms - (((ms % 1000) + 1000) % 1000));
}

// The instant a wall-clock time happens in `zone` (the later one is taken in a DST gap).
function wallToMs(year, month, day, hour = 0, zone = "UTC") {
  const wall = Date.UTC(year, month - 1, day, hour);
  let ms = wall - offsetMs(wall, zone);
  ms = wall - offsetMs(ms, zone);
  return ms;
}

// Midnight starting the day `ms` falls on in `zone`, moved by `days` whole days.
export function dayStart(ms, zone, days = 0) {
  const p = parts(ms, zone);
  return wallToMs(p.year, p.month, p.day + days, 0, zone);
}

export function dateKey(ms, zone) {
  const p = parts(ms, zone);
  return `${p.year}-${String(p.month).padStart(2, "0")}-${String(p.day).padStart(2, "0")}`;
}

export function keyToMs(key, zone) {
  const [y, m, d] = key.split("-").map(Number);
  return wallToMs(y, m, d, 0, zone);
}

export const iso = (ms) => new Date(ms).toISOString();
export const msOf = (text) => (text ? Date.parse(text) : null);

export const clock = (ms, zone, lang) =>
  format(zone, lang, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(ms);
export const shortDate = (ms, zone, lang) =>
  format(zone, lang, { month: "numeric", day: "numeric" }).format(ms);
export const dateTime = (ms, zone, lang) =>
  format(zone, lang, {
    month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(ms);
