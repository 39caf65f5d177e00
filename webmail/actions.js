// What the user does to messages: read/unread, flag, move, delete to
// Trash, junk / not junk (moving into or out of Junk is what trains the
// spam filter, in the Store), empty a folder — each with an Undo where
// one is possible. Acts on the ticked rows, else the open message; in the
// conversation view, on every message of the conversation in the folder.
import { h, toast, confirmDialog, icon } from "./dom.js";
import { t } from "./i18n.js";
import { state, on, emit, role, mailbox, threadsOn } from "./state.js";
import { batch, call, setOk } from "./jmap.js";
import { mailboxName } from "./mailboxes.js";
import { emails, selectAll, reset } from "./list.js";

let lastUndo = null;

export function targets() {
  if (state.selected.size) return [...state.selected];
  if (state.openId) return [state.openId];
  if (state.cursor) return [state.cursor];
  return [];
}

// In the conversation view a row stands for its conversation.
async function expand(ids, inFolderOnly) {
  if (!threadsOn() || state.search || !ids.length) return ids;
  const r = await batch([
    ["Email/get", { ids, properties: ["threadId"] }, "e"],
    ["Thread/get", { "#ids": { resultOf: "e", name: "Email/get", path: "/list/*/threadId" } }, "t"],
    ["Email/get", { "#ids": { resultOf: "t", name: "Thread/get", path: "/list/*/emailIds" }, properties: ["mailboxIds"] }, "all"],
  ]);
  return r.all.list.filter((e) => !inFolderOnly || !state.mailboxId || e.mailboxIds[state.mailboxId]).map((e) => e.id);
}

// A notice whose Undo undoes this action (and z the latest one).
function offerUndo(text, undo, ms) {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    if (lastUndo === once) lastUndo = null;
    // The list shows it at once, not only when the push arrives.
    try { await undo(); emit("listStale"); toast(t("Undone")); } catch (e) { emit("error", e); }
  };
  lastUndo = once;
  toast(text, { label: t("Undo"), run: once }, ms);
}

export async function runUndo() {
  if (lastUndo) await lastUndo();
}

// `exact`: these messages only, not their conversations (a card of the
// reading pane stands for one message).
export async function setKeyword(ids, keyword, value, exact = false) {
  if (!exact) ids = await expand(ids, false);
  if (!ids.length) return;
  const update = Object.fromEntries(ids.map((id) => [id, { [`keywords/${keyword}`]: value ? true : null }]));
  setOk(await call("Email/set", { update }));
  for (const id of ids) {
    const e = emails.get(id);
    if (e) { if (value) e.keywords[keyword] = true; else delete e.keywords[keyword]; }
  }
  emit("mailboxes");
}

// Moves to `to`; `keywords` changes ride along (junk marks). Undo puts
// every message back where it was.
export async function moveTo(ids, to, keywords = {}, label, exact = false) {
  if (!exact) ids = await expand(ids, true);
  if (!ids.length) return;
  const before = (await call("Email/get", { ids, properties: ["mailboxIds", "keywords"] })).list;
  const update = {};
  for (const e of before) {
    const patch = { mailboxIds: { [to]: true } };
    for (const [k, v] of Object.entries(keywords)) patch[`keywords/${k}`] = v || null;
    update[e.id] = patch;
  }
  setOk(await call("Email/set", { update }));
  state.selected.clear();
  emit("listStale");
  if (ids.includes(state.openId)) emit("closeReader");
  const target = mailbox(to);
  offerUndo(label || t("Moved {n} to {folder}", { n: before.length, folder: target ? mailboxName(target) : "" }), async () => {
    const back = {};
    for (const e of before) {
      const patch = { mailboxIds: e.mailboxIds };
      for (const k of Object.keys(keywords)) patch[`keywords/${k}`] = e.keywords[k] || null;
      back[e.id] = patch;
    }
    setOk(await call("Email/set", { update: back }));
  });
}

export async function remove(ids, exact = false) {
  const trash = role("trash");
  if (!ids.length) return;
  if (!trash || state.mailboxId === trash.id) {
    if (!exact) ids = await expand(ids, true);
    const ok = await confirmDialog(t("Delete for ever"), t("Delete {n} messages for ever? This cannot be undone.", { n: ids.length }), t("Delete"));
    if (!ok) return;
    setOk(await call("Email/set", { destroy: ids }));
    state.selected.clear();
    emit("closeReader");
    return;
  }
  await moveTo(ids, trash.id, {}, t("Moved {n} to Trash", { n: ids.length }), exact);
}

export async function junk(ids, isJunk, exact = false) {
  const to = isJunk ? role("junk") : role("inbox");
  if (!to || !ids.length) return;
  await moveTo(ids, to.id, { $junk: isJunk, $notjunk: !isJunk },
    isJunk ? t("Marked {n} as junk", { n: ids.length }) : t("Marked {n} as not junk", { n: ids.length }), exact);
}

// Empties Trash or Junk: after a few seconds in which Undo still stops it.
export async function emptyFolder(m) {
  const ok = await confirmDialog(t("Empty {folder}", { folder: mailboxName(m) }),
    t("Delete the {n} messages in {folder} for ever?", { n: m.totalEmails, folder: mailboxName(m) }), t("Empty"));
  if (!ok) return;
  let cancelled = false;
  offerUndo(t("Emptying {folder}…", { folder: mailboxName(m) }), async () => { cancelled = true; }, 5000);
  setTimeout(async () => {
    if (cancelled) return;
    try {
      for (;;) {
        const q = await call("Email/query", { filter: { inMailbox: m.id }, limit: 500 });
        if (!q.ids.length) break;
        setOk(await call("Email/set", { destroy: q.ids }));
      }
      if (state.mailboxId === m.id) await reset();
    } catch (e) { emit("error", e); }
  }, 5000);
}

async function run(action) {
  try { await action(); } catch (e) { emit("error", e); }
}

// The list's toolbar; which buttons show depends on the folder.
export function toolbar() {
  const bar = h("div", { class: "toolbar", role: "toolbar", "aria-label": t("Actions") });
  const drawBar = () => {
    const m = mailbox(state.mailboxId);
    const inJunk = m && m.role === "junk";
    const all = h("input", { type: "checkbox", title: t("Select all"), "aria-label": t("Select all"), checked: state.selected.size > 0, onchange: (e) => selectAll(e.target.checked) });
    const move = h("select", { "aria-label": t("Move to"), title: t("Move to"), onchange: (e) => { const to = e.target.value; e.target.value = ""; if (to) run(() => moveTo(targets(), to)); } },
      h("option", { value: "" }, t("Move to…")),
      state.mailboxes.filter((x) => x.id !== state.mailboxId).map((x) => h("option", { value: x.id }, mailboxName(x))));
    const button = (label, name, action, id) => h("button", { class: "icon", title: label, "aria-label": label, id, onclick: () => run(action) }, icon(name));
    bar.replaceChildren(all,
      button(t("Refresh"), "refresh", () => reset(), "act-refresh"),
      button(t("Mark as read"), "read", () => setKeyword(targets(), "$seen", true), "act-read"),
      button(t("Mark as unread"), "unread", () => setKeyword(targets(), "$seen", false), "act-unread"),
      button(t("Flag"), "star", () => setKeyword(targets(), "$flagged", true), "act-flag"),
      button(t("Delete"), "trash", () => remove(targets()), "act-delete"),
      inJunk ? button(t("Not junk"), "check", () => junk(targets(), false), "act-notjunk") : button(t("Junk"), "junk", () => junk(targets(), true), "act-junk"),
      move);
  };
  drawBar();
  on("listChanged", drawBar);
  on("mailboxes", drawBar);
  on("selection", () => { const all = bar.querySelector("input[type=checkbox]"); if (all) all.checked = state.selected.size > 0; });
  return bar;
}

// How the list is shown: by conversation or not, and its order.
export function listControls() {
  const threads = h("input", { type: "checkbox", id: "threads", checked: threadsOn(), onchange: (e) => { state.prefs.threads = e.target.checked; emit("prefs"); reset(); } });
  on("listChanged", () => { threads.checked = threadsOn(); });
  return h("span", { class: "controls" },
    h("label", { class: "muted", title: t("Group messages by conversation") }, threads, " ", t("Conversations")),
    h("select", { "aria-label": t("Sort by"), id: "sort", onchange: (e) => { state.prefs.sort = e.target.value; emit("prefs"); reset(); } },
      [["receivedAt", t("Newest first")], ["from", t("Sender")], ["subject", t("Subject")], ["size", t("Largest first")]]
        .map(([v, label]) => h("option", { value: v, selected: (state.prefs.sort || "receivedAt") === v }, label))));
}

on("flag", ({ ids, on: value }) => run(() => setKeyword(ids, "$flagged", value)));
