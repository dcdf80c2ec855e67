// Building elements without innerHTML: names from the configuration may hold any text.
const SVG = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
export const s = (tag, attrs, ...children) =>
  build(document.createElementNS(SVG, tag), attrs, children);

export const byId = (id) => document.getElementById(id);

export function replace(parent, ...children) {
  parent.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
}

export function setText(element, text) {
  const value = String(text ?? "");
  if (element.textContent !== value) element.textContent = value;
}

// Keeps one element per key and updates it in place, so a button someone is about to press
// is not swapped for a new one by the next refresh.
export function keyed(parent, items, keyOf, create, update) {
  const old = new Map([...parent.children].map((el) => [el.dataset.key, el]));
  let previous = null;
  for (const item of items) {
    const key = String(keyOf(item));
    let el = old.get(key);
    old.delete(key);
    if (!el) {
      el = create(item);
      el.dataset.key = key;
    }
    update(el, item);
    const expected = previous ? previous.nextElementSibling : parent.firstElementChild;
    if (expected !== el) parent.insertBefore(el, expected);
    previous = el;
  }
  for (const el of old.values()) el.remove();
}

// A small colour chip for legends.
export const swatch = (cls) => h("span", { class: `swatch ${cls}`, "aria-hidden": "true" });

// What a tap on a chart mark says, in the line under the chart (until then: a hint).
export function showPick(id, text) {
  const line = byId(id);
  line.classList.remove("muted");
  setText(line, text);
}
