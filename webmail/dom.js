// Building the page: elements from plain data, never from markup, so
// nothing a message says can become part of the application's document.
import { t } from "./i18n.js";

// h("button", { class: "x", onclick: f }, "text", child, [more]) → element.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "style") {
      // Through the CSSOM: the page's policy refuses style attributes.
      el.style.cssText = value;
    } else if (key === "value" || key === "checked" || key === "selected") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

// A message at the bottom of the window; with `action`, a button (Undo).
export function toast(text, action, ms = 6000) {
  const box = document.getElementById("toasts");
  const el = h("div", { class: "toast" }, h("span", {}, text));
  let timer;
  const close = () => { clearTimeout(timer); el.remove(); };
  if (action) {
    el.append(h("button", { onclick: () => { close(); action.run(); } }, action.label));
  }
  box.append(el);
  timer = setTimeout(close, ms);
  return close;
}

// A modal dialog; resolves with what `done(value)` was called with.
export function dialog(title, build, { wide = false } = {}) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    const box = h("div", { class: "dialog", role: "dialog", "aria-modal": "true", "aria-label": title });
    const backdrop = h("div", { class: "backdrop" }, box);
    const done = (value) => {
      backdrop.remove();
      document.removeEventListener("keydown", onKey, true);
      if (previous && previous.focus) previous.focus();
      resolve(value);
    };
    const onKey = (e) => { if (e.key === "Escape") { e.stopPropagation(); done(undefined); } };
    document.addEventListener("keydown", onKey, true);
    backdrop.addEventListener("mousedown", (e) => { if (e.target === backdrop) done(undefined); });
    if (wide) box.style.width = "min(980px, 96vw)";
    box.append(h("h2", {}, title), build(done));
    document.body.append(backdrop);
    const first = box.querySelector("input, textarea, select, button.primary");
    if (first) first.focus();
  });
}

export function confirmDialog(title, text, label) {
  return dialog(title, (done) => h("div", {},
    h("p", {}, text),
    h("div", { class: "buttons" },
      h("button", { onclick: () => done(false) }, t("Cancel")),
      h("button", { class: "primary", onclick: () => done(true) }, label))));
}

export function promptDialog(title, label, value = "") {
  return dialog(title, (done) => {
    const input = h("input", { type: "text", value, "aria-label": label });
    return h("form", { onsubmit: (e) => { e.preventDefault(); done(input.value.trim()); } },
      h("div", { class: "form" }, h("label", {}, label), input),
      h("div", { class: "buttons" },
        h("button", { type: "button", onclick: () => done(undefined) }, t("Cancel")),
        h("button", { class: "primary", type: "submit" }, t("OK"))));
  });
}

const sameDay = (a, b) => a.toDateString() === b.toDateString();

// A date as a list shows it: the time today, the day this year, else in full.
export function shortDate(iso) {
  if (!iso) return "";
  const d = new Date(iso), now = new Date();
  if (sameDay(d, now)) return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (d.getFullYear() === now.getFullYear()) return d.toLocaleDateString([], { month: "short", day: "numeric" });
  return d.toLocaleDateString();
}

export const longDate = (iso) => (iso ? new Date(iso).toLocaleString() : "");

export function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}

// "Name <a@b>" for people, the address alone when there is no name.
export const person = (a) => (a ? (a.name ? `${a.name} <${a.email}>` : a.email) : "");
export const shortPerson = (a) => (a ? a.name || a.email : "");
export const people = (list) => (list || []).map(person).join(", ");

// One of the icons of style.css (decorative: the control carries a label).
export const icon = (name) => h("span", { class: `i i-${name}`, "aria-hidden": "true" });
