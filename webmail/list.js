// The message list: one JMAP Email/query page (100) at a time, only the
// rows in view in the page (virtual scrolling), so a mailbox of 100,000
// messages costs what its visible part costs. Conversations collapse with
// `collapseThreads`; rows tick for bulk actions and drag onto folders.
import { h, shortDate, shortPerson, icon } from "./dom.js";
import { t } from "./i18n.js";
import { state, on, emit, mailbox, threadsOn } from "./state.js";
import { batch } from "./jmap.js";
import { mailboxName } from "./mailboxes.js";
import { toolbar, listControls } from "./actions.js";

const ROW = 56; // px, as .row in style.css
const PAGE = 100;
const PROPS = ["id", "threadId", "mailboxIds", "keywords", "from", "to", "subject", "receivedAt", "preview", "hasAttachment", "size"];

export const emails = new Map(); // id → the list's properties of an Email
const threadSize = new Map(); // threadId → how many emails
let pages = new Map(); // page number → ids
let loading = new Map(); // page number → generation being loaded
let total = 0;
let generation = 0;
// The latest request for each page: an older answer arriving after a
// newer one (two changes pushed in quick succession) is dropped.
const latest = new Map();
let requests = 0;
let viewport, spacer, heading, headingText, totalText, empty;

export function renderList(section) {
  headingText = h("span", { class: "name" });
  totalText = h("span", { class: "muted", id: "total" });
  heading = h("div", { class: "list-title" }, h("span", {}, headingText, " ", totalText), listControls());
  viewport = h("div", { class: "viewport", tabindex: 0, role: "listbox", "aria-label": t("Messages"), "aria-multiselectable": "true" });
  spacer = h("div", { class: "spacer" });
  empty = h("div", { class: "empty hidden" }, t("No messages"));
  viewport.append(spacer, empty);
  viewport.addEventListener("scroll", () => requestAnimationFrame(draw));
  viewport.addEventListener("click", onClick);
  viewport.addEventListener("dragstart", onDragStart);
  section.replaceChildren(toolbar(), heading, viewport);
  new ResizeObserver(() => draw()).observe(viewport);
}

function currentFilter() {
  if (state.search) return state.search.filter;
  return { inMailbox: state.mailboxId };
}

const sort = () => [{ property: state.prefs.sort || "receivedAt", isAscending: state.prefs.sort === "subject" || state.prefs.sort === "from" }];

export async function openMailbox(id) {
  state.mailboxId = id;
  state.search = null;
  const input = document.getElementById("search");
  if (input) input.value = "";
  await reset();
}

// A new query (another mailbox, a search, the sort or the threading).
export async function reset() {
  generation++;
  pages = new Map();
  loading = new Map();
  total = 0;
  state.selected.clear();
  state.cursor = null;
  if (viewport) viewport.scrollTop = 0;
  emit("listChanged");
  const first = ensure(0, true);
  // The previous folder's rows go at once: none of them may be clicked
  // while the new one loads.
  draw();
  await first;
}

// The same query again (push said something changed): the pages in view
// are fetched again and the rest forgotten.
export async function refreshList() {
  const [first, last] = visibleRange();
  const wanted = new Set();
  for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) wanted.add(p);
  if (!wanted.size) wanted.add(0);
  pages = new Map([...pages].filter(([p]) => wanted.has(p)));
  await Promise.all([...wanted].map((p) => load(p, generation)));
}

function visibleRange() {
  if (!viewport) return [0, 0];
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW) - 5);
  const last = Math.min(Math.max(total - 1, 0), Math.ceil((viewport.scrollTop + viewport.clientHeight) / ROW) + 5);
  return [first, last];
}

async function ensure(index, force) {
  const p = Math.floor(index / PAGE);
  if (force || (!pages.has(p) && loading.get(p) !== generation)) await load(p, generation);
}

async function load(p, gen) {
  loading.set(p, gen);
  const mine = ++requests;
  latest.set(p, mine);
  const threads = threadsOn() && !state.search;
  const calls = [
    ["Email/query", { filter: currentFilter(), sort: sort(), collapseThreads: threads, position: p * PAGE, limit: PAGE, calculateTotal: true }, "q"],
    ["Email/get", { "#ids": { resultOf: "q", name: "Email/query", path: "/ids" }, properties: PROPS }, "g"],
  ];
  if (threads) calls.push(["Thread/get", { "#ids": { resultOf: "g", name: "Email/get", path: "/list/*/threadId" } }, "t"]);
  let r;
  try {
    r = await batch(calls);
  } catch (e) {
    if (gen === generation) emit("error", e);
    return;
  } finally {
    if (loading.get(p) === gen) loading.delete(p);
  }
  if (gen !== generation || latest.get(p) !== mine) return;
  for (const e of r.g.list) emails.set(e.id, e);
  if (r.t) for (const th of r.t.list) threadSize.set(th.id, th.emailIds.length);
  pages.set(p, r.q.ids);
  total = r.q.total;
  draw();
}

function idAt(i) {
  const page = pages.get(Math.floor(i / PAGE));
  return page ? page[i % PAGE] : undefined;
}

export function indexOf(id) {
  for (const [p, ids] of pages) {
    const i = ids.indexOf(id);
    if (i >= 0) return p * PAGE + i;
  }
  return -1;
}

const loadedIds = () => [...pages.values()].flat();

function title() {
  if (state.search) return t("Search: {q}", { q: state.search.text });
  const m = mailbox(state.mailboxId);
  return m ? mailboxName(m) : "";
}

export function draw() {
  if (!viewport) return;
  headingText.textContent = title();
  totalText.textContent = total ? t("{n} messages", { n: total.toLocaleString() }) : "";
  spacer.style.height = `${total * ROW}px`;
  empty.classList.toggle("hidden", total > 0 || loading.size > 0);
  const [first, last] = visibleRange();
  for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE) && total; p++) {
    if (!pages.has(p) && loading.get(p) !== generation) load(p, generation);
  }
  const rows = [];
  for (let i = first; i <= last && i < total; i++) rows.push(row(i, idAt(i)));
  spacer.replaceChildren(...rows);
}

function row(i, id) {
  const e = id && emails.get(id);
  const style = `top:${i * ROW}px`;
  if (!e) return h("div", { class: "row placeholder", style }, h("span"), h("span"), h("span", { class: "who" }));
  const m = mailbox(state.mailboxId);
  const outgoing = m && (m.role === "sent" || m.role === "drafts");
  const who = outgoing ? `${t("To")}: ${(e.to || []).map(shortPerson).join(", ")}` : (e.from || []).map(shortPerson).join(", ");
  const count = threadsOn() && !state.search ? threadSize.get(e.threadId) : 0;
  const unread = !e.keywords.$seen, flagged = !!e.keywords.$flagged;
  const classes = ["row", unread && "unread", state.selected.has(id) && "selected", state.cursor === id && "cursor", state.openId === id && "open"].filter(Boolean).join(" ");
  return h("div", { class: classes, style, "data-id": id, "data-index": i, draggable: "true", role: "option", "aria-selected": String(state.selected.has(id)) },
    h("input", { type: "checkbox", checked: state.selected.has(id), "aria-label": t("Select") }),
    h("button", { class: `flag${flagged ? " on" : ""}`, title: flagged ? t("Unflag") : t("Flag"), "aria-label": flagged ? t("Unflag") : t("Flag") }, icon("star")),
    h("span", { class: "who" }, who || t("(nobody)"), count > 1 ? h("span", { class: "badge" }, count) : null, e.keywords.$draft ? h("span", { class: "badge error" }, t("Draft")) : null),
    h("span", { class: "date", title: new Date(e.receivedAt).toLocaleString() }, e.hasAttachment ? icon("clip") : "", " ", shortDate(e.receivedAt)),
    h("span", { class: "subject" }, h("b", {}, e.subject || t("(no subject)")), e.preview ? ` — ${e.preview}` : ""));
}

function onClick(e) {
  const rowEl = e.target.closest(".row");
  if (!rowEl || !rowEl.dataset.id) return;
  const id = rowEl.dataset.id;
  if (e.target.matches("input[type=checkbox]") || e.ctrlKey || e.metaKey) {
    toggle(id);
  } else if (e.shiftKey && state.cursor) {
    const a = indexOf(state.cursor), b = Number(rowEl.dataset.index);
    for (let i = Math.min(a, b); i <= Math.max(a, b); i++) if (idAt(i)) state.selected.add(idAt(i));
    draw();
    emit("selection");
  } else if (e.target.closest(".flag")) {
    const em = emails.get(id);
    emit("flag", { ids: [id], on: !em.keywords.$flagged });
  } else {
    open(id);
  }
}

export function toggle(id) {
  if (state.selected.has(id)) state.selected.delete(id);
  else state.selected.add(id);
  state.cursor = id;
  draw();
  emit("selection");
}

export function open(id) {
  const e = emails.get(id);
  // A draft opens where it can be finished.
  if (e && e.keywords.$draft) {
    state.cursor = id;
    draw();
    emit("editDraft", id);
    return;
  }
  state.cursor = id;
  state.openId = id;
  draw();
  emit("open", id);
  emit("pane", "reader");
}

function onDragStart(e) {
  const rowEl = e.target.closest(".row");
  if (!rowEl) return;
  const id = rowEl.dataset.id;
  const ids = state.selected.has(id) ? [...state.selected] : [id];
  e.dataTransfer.setData("application/x-tern-emails", JSON.stringify(ids));
  e.dataTransfer.effectAllowed = "move";
}

// The keyboard cursor moves by `delta` rows (j/k).
export function moveCursor(delta) {
  const current = state.cursor ? indexOf(state.cursor) : -1;
  const next = Math.min(Math.max(current + delta, 0), total - 1);
  const id = idAt(next);
  if (!id) return;
  state.cursor = id;
  const top = next * ROW;
  if (top < viewport.scrollTop) viewport.scrollTop = top;
  else if (top + ROW > viewport.scrollTop + viewport.clientHeight) viewport.scrollTop = top + ROW - viewport.clientHeight;
  draw();
}

export function selectAll(on) {
  if (on) for (const id of loadedIds()) state.selected.add(id);
  else state.selected.clear();
  draw();
  emit("selection");
}

on("openMailbox", (id) => openMailbox(id).then(() => emit("mailboxes")));
on("mailboxes", () => draw());
on("listStale", () => refreshList());
