// Keyboard shortcuts, the common Gmail set; "?" lists them.
import { h, dialog } from "./dom.js";
import { t } from "./i18n.js";
import { state, emit, role } from "./state.js";
import { moveCursor, open, toggle, emails } from "./list.js";
import { targets, setKeyword, remove, junk, runUndo, moveTo } from "./actions.js";
import { current } from "./reader.js";
import { compose } from "./compose.js";

const KEYS = [
  ["c", "Compose"], ["j / k", "Next / previous message"], ["o, Enter", "Open"], ["u", "Back to the list"],
  ["r", "Reply"], ["a", "Reply all"], ["f", "Forward"], ["x", "Select"], ["s", "Flag"],
  ["e", "Archive"], ["#", "Delete"], ["!", "Report as junk"], ["Shift+I", "Mark as read"], ["Shift+U", "Mark as unread"],
  ["z", "Undo"], ["/", "Search"], ["g then i / s / d / t", "Go to Inbox / Sent / Drafts / Trash"], ["?", "These shortcuts"],
];

let g = false;

function shown() {
  return current.find((e) => e.id === state.openId) || current[current.length - 1];
}

const act = (f) => Promise.resolve(f()).catch((e) => emit("error", e));

export function bindKeys() {
  document.addEventListener("keydown", (e) => {
    if (!state.session || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable], .dialog, .compose")) return;
    if (document.querySelector(".backdrop")) return;
    const key = e.key;
    if (g) {
      g = false;
      const r = { i: "inbox", s: "sent", d: "drafts", t: "trash" }[key];
      if (r && role(r)) { emit("openMailbox", role(r).id); e.preventDefault(); }
      return;
    }
    const handlers = {
      c: () => compose({}),
      j: () => moveCursor(1),
      k: () => moveCursor(-1),
      o: () => state.cursor && open(state.cursor),
      Enter: () => state.cursor && open(state.cursor),
      u: () => emit("closeReader"),
      r: () => shown() && compose({ reply: shown() }),
      a: () => shown() && compose({ reply: shown(), all: true }),
      f: () => shown() && compose({ forward: shown() }),
      x: () => state.cursor && toggle(state.cursor),
      s: () => { const ids = targets(); const first = emails.get(ids[0]); return setKeyword(ids, "$flagged", !(first && first.keywords.$flagged)); },
      e: () => role("archive") && moveTo(targets(), role("archive").id),
      "#": () => remove(targets()),
      "!": () => junk(targets(), true),
      I: () => setKeyword(targets(), "$seen", true),
      U: () => setKeyword(targets(), "$seen", false),
      z: () => runUndo(),
      "/": () => document.getElementById("search").focus(),
      g: () => { g = true; setTimeout(() => { g = false; }, 1500); },
      "?": () => help(),
    };
    const handler = handlers[key];
    if (!handler) return;
    e.preventDefault();
    act(handler);
  });
}

function help() {
  return dialog(t("Keyboard shortcuts"), (done) => h("div", {},
    h("table", { class: "keys" }, KEYS.map(([k, what]) => h("tr", {}, h("td", {}, h("kbd", {}, k)), h("td", {}, t(what))))),
    h("div", { class: "buttons" }, h("button", { class: "primary", onclick: () => done() }, t("Close")))));
}
