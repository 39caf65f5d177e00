// The reading pane: a message (or, in the conversation view, its whole
// conversation) with its headers, its body in a sandboxed frame served
// sanitised by the server (/webmail/message/{id}/html), remote images
// held back until the user allows them (for this message or for every
// message from this sender), and its attachments to preview or download.
import { h, dialog, longDate, person, people, size, toast, icon } from "./dom.js";
import { t } from "./i18n.js";
import { state, on, emit, role, threadsOn } from "./state.js";
import { batch, call, downloadUrl } from "./jmap.js";
import { setKeyword, remove, junk } from "./actions.js";
import { compose, cancelScheduled } from "./compose.js";
import { emails } from "./list.js";

const PROPS = ["id", "blobId", "threadId", "mailboxIds", "keywords", "from", "to", "cc", "bcc", "replyTo", "subject",
  "sentAt", "receivedAt", "messageId", "inReplyTo", "references", "attachments", "size"];
const PART_PROPS = ["partId", "blobId", "size", "name", "type", "disposition", "cid"];
let pane;
let shown = 0; // which show() is current
export let current = []; // the Emails shown, oldest first

export function renderReader(section) {
  pane = section;
  nothing();
}

function nothing() {
  current = [];
  pane.replaceChildren(h("div", { class: "nothing" }, t("Select a message to read it")));
}

on("open", (id) => show(id).catch((e) => emit("error", e)));
on("closeReader", () => { state.openId = null; nothing(); emit("pane", "list"); });

async function show(id) {
  const mine = ++shown;
  const conversation = threadsOn() && !state.search;
  // What the list knows shows at once, and the body starts loading while
  // the rest of the message (addresses, attachments) is asked for.
  const summary = emails.get(id);
  if (summary && !conversation) {
    current = [summary];
    const cards = pane.querySelectorAll("article.message");
    if (cards.length === 1) {
      // The card shown becomes this message's: navigating its frame costs
      // less than making a new one.
      cards[0].dataset.id = id;
      cards[0].className = "message";
      cards[0].querySelector(".banner").classList.add("hidden");
      fill(cards[0], summary, true);
      loadBody(cards[0], summary, true);
    } else {
      draw(id);
    }
  }
  const calls = [["Email/get", { ids: [id], properties: PROPS, bodyProperties: PART_PROPS }, "e"]];
  if (conversation) {
    calls.push(["Thread/get", { "#ids": { resultOf: "e", name: "Email/get", path: "/list/*/threadId" } }, "t"]);
    calls.push(["Email/get", { "#ids": { resultOf: "t", name: "Thread/get", path: "/list/*/emailIds" }, properties: PROPS, bodyProperties: PART_PROPS }, "all"]);
  }
  const r = await batch(calls);
  if (mine !== shown) return;
  const list = r.all ? r.all.list : r.e.list;
  if (!list.length) return nothing();
  // Trash and Junk of a conversation stay out of it unless opened there.
  const hidden = [role("trash"), role("junk")].filter(Boolean).map((m) => m.id).filter((m) => m !== state.mailboxId);
  current = list.filter((e) => e.id === id || !hidden.some((m) => e.mailboxIds[m]));
  draw(id);
  scheduled(list.filter((e) => role("sent") && e.mailboxIds[role("sent").id])).catch(() => {});
  const unread = current.filter((e) => !e.keywords.$seen).map((e) => e.id);
  if (unread.length && state.prefs.markRead !== false) {
    await setKeyword(unread, "$seen", true, true);
    for (const e of current) e.keywords.$seen = true;
  }
}

function draw(openId) {
  const last = current[current.length - 1];
  // The provisional card of the same message: completed where it stands,
  // so its frame is not loaded twice.
  const cards = pane.querySelectorAll("article.message");
  if (current.length === 1 && cards.length === 1 && cards[0].dataset.id === openId) {
    fill(cards[0], current[0], true);
    return;
  }
  pane.replaceChildren(
    h("div", { class: "toolbar phone-only" }, h("button", { onclick: () => emit("closeReader") }, icon("back"), ` ${t("Back")}`)),
    ...current.map((e) => card(e, e.id === openId || e === last || !e.keywords.$seen, e === current[0])));
}

// A message in Sent that still waits to leave (sent later) says when,
// and can be called back to Drafts until then.
async function scheduled(sentEmails) {
  if (!sentEmails.length) return;
  const r = await batch([
    ["EmailSubmission/query", { filter: { emailIds: sentEmails.map((e) => e.id), undoStatus: "pending" } }, "q"],
    ["EmailSubmission/get", { "#ids": { resultOf: "q", name: "EmailSubmission/query", path: "/ids" }, properties: ["id", "emailId", "sendAt"] }, "g"],
  ]);
  for (const s of r.g.list) {
    const el = pane.querySelector(`article.message[data-id="${s.emailId}"] .banner`);
    if (!el) continue;
    el.classList.remove("hidden");
    el.replaceChildren(
      h("span", { class: "scheduled" }, t("Scheduled to leave at {time}.", { time: new Date(s.sendAt).toLocaleString() })),
      h("button", {
        id: "cancel-scheduled",
        onclick: () => cancelScheduled(s.id, s.emailId).then(() => emit("closeReader")).catch((x) => emit("error", x)),
      }, t("Cancel sending")));
  }
}

// Pushed changes: the keywords and folders of what is shown.
export async function refreshReader() {
  if (!current.length) return;
  const r = await call("Email/get", { ids: current.map((e) => e.id), properties: ["keywords", "mailboxIds"] });
  if (!r.list.length) return emit("closeReader");
  for (const fresh of r.list) {
    const e = current.find((x) => x.id === fresh.id);
    if (e) Object.assign(e, fresh);
  }
  const flags = pane.querySelectorAll("[data-flag-for]");
  for (const b of flags) {
    const e = current.find((x) => x.id === b.dataset.flagFor);
    if (e) b.replaceChildren(...flagLabel(e));
  }
}

function card(e, expanded, first) {
  const el = h("article", { class: `message${expanded ? "" : " collapsed"}`, "data-id": e.id },
    h("header"), h("div", { class: "banner hidden" }), h("div", { class: "body" }), h("div", { class: "attachments hidden" }));
  fill(el, e, first);
  if (expanded) loadBody(el, e);
  return el;
}

// The card's header and attachments, from what is known of the message.
function fill(el, e, first) {
  const sender = e.from && e.from[0];
  const header = h("header", { onclick: () => { if (el.classList.contains("collapsed")) { el.classList.remove("collapsed"); loadBody(el, e); } } },
    first ? h("h2", {}, e.subject || t("(no subject)")) : null,
    h("div", { class: "from" }, h("strong", {}, person(sender) || t("(nobody)")), h("span", { class: "muted" }, longDate(e.sentAt || e.receivedAt))),
    h("div", { class: "addresses" },
      e.to && e.to.length ? h("div", {}, `${t("To")}: ${people(e.to)}`) : null,
      e.cc && e.cc.length ? h("div", {}, `${t("Cc")}: ${people(e.cc)}`) : null,
      e.bcc && e.bcc.length ? h("div", {}, `${t("Bcc")}: ${people(e.bcc)}`) : null),
    actions(e));
  el.querySelector("header").replaceWith(header);
  el.querySelector(".attachments").replaceWith(attachments(e));
}

const flagLabel = (e) => [h("span", { class: `i i-star${e.keywords.$flagged ? " filled" : ""}`, "aria-hidden": "true" }), " ", e.keywords.$flagged ? t("Flagged") : t("Flag")];

function actions(e) {
  const inJunk = role("junk") && e.mailboxIds[role("junk").id];
  // Until the whole message is loaded (the card may show the list's
  // summary first) its buttons wait: a reply needs its Message-ID.
  const b = (label, action, cls, name) => h("button", { class: cls || "", disabled: !e.blobId, onclick: (ev) => { ev.stopPropagation(); Promise.resolve(action()).catch((x) => emit("error", x)); } }, name ? icon(name) : null, name ? " " : null, label);
  return h("div", { class: "toolbar", style: "border:none;padding-left:0" },
    b(t("Reply"), () => compose({ reply: e }), "", "reply"),
    b(t("Reply all"), () => compose({ reply: e, all: true }), "", "replyall"),
    b(t("Forward"), () => compose({ forward: e }), "", "forward"),
    b(t("Forward as attachment"), () => compose({ forward: e, asAttachment: true })),
    h("span", { class: "spacer" }),
    h("button", { "data-flag-for": e.id, onclick: async (ev) => { ev.stopPropagation(); await setKeyword([e.id], "$flagged", !e.keywords.$flagged, true); await refreshReader(); } },
      ...flagLabel(e)),
    b(t("Mark as unread"), async () => { await setKeyword([e.id], "$seen", false, true); e.keywords.$seen = false; }),
    inJunk ? b(t("Not junk"), () => junk([e.id], false, true)) : b(t("Junk"), () => junk([e.id], true, true)),
    b(t("Delete"), () => remove([e.id], true), "danger", "trash"),
    b(t("View source"), () => viewSource(e)));
}

// The body's frame; the server says how many remote images it held back.
async function loadBody(el, e, again = false) {
  const body = el.querySelector(".body");
  if (body.firstChild && !again) return;
  const sender = e.from && e.from[0] && e.from[0].email.toLowerCase();
  const allowed = sender && (state.prefs.imageSenders || []).includes(sender);
  const src = (images) => `/webmail/message/${encodeURIComponent(e.id)}/html${images ? "?images=1" : ""}`;
  let frame = body.querySelector("iframe");
  if (frame) {
    frame.dataset.loaded = "";
  } else {
    frame = h("iframe", { sandbox: "allow-popups allow-popups-to-escape-sandbox", title: t("Message body"), referrerpolicy: "no-referrer" });
    // For tests and benchmarks: when the body has been shown.
    frame.addEventListener("load", () => { if (frame.src) { frame.dataset.loaded = "1"; frame.dataset.loadedAt = String(performance.now()); } });
    body.append(frame);
  }
  if (allowed) {
    frame.src = src(true);
    return;
  }
  // The frame loads while the page is asked for once more on the side,
  // for how many remote images it held back (a frame's headers are not
  // the parent's to read); rendering it twice costs the server about a
  // millisecond, waiting for one before the other would cost the reader.
  frame.src = src(false);
  const r = await fetch(src(false), { credentials: "same-origin" });
  const blocked = Number(r.headers.get("x-tern-blocked-images") || 0);
  await r.arrayBuffer();
  // Another message may have taken the card meanwhile.
  if (el.dataset.id !== e.id) return;
  if (!blocked) return;
  const banner = el.querySelector(".banner");
  banner.classList.remove("hidden");
  banner.replaceChildren(
    h("span", {}, t("{n} remote images are hidden to protect your privacy.", { n: blocked })),
    h("button", { id: "show-images", onclick: () => { frame.src = src(true); banner.classList.add("hidden"); } }, t("Show images")),
    sender ? h("button", {
      onclick: () => {
        // The newest 500 senders (the preferences stay within 64 KiB).
        state.prefs.imageSenders = [...new Set([sender, ...(state.prefs.imageSenders || [])])].slice(0, 500);
        emit("prefs");
        frame.src = src(true);
        banner.classList.add("hidden");
        toast(t("Images from {sender} will always be shown.", { sender }));
      },
    }, t("Always show from {sender}", { sender })) : null);
}

function attachments(e) {
  const list = e.attachments || [];
  if (!list.length) return h("div", { class: "attachments hidden" });
  return h("div", { class: "attachments", "aria-label": t("Attachments") }, list.map((a) => {
    const name = a.name || t("attachment");
    const url = downloadUrl(a.blobId, name, a.type);
    const previewable = /^image\/(png|jpeg|gif|webp|bmp)$/i.test(a.type) || /^text\//i.test(a.type) || /^application\/pdf$/i.test(a.type);
    return h("div", { class: "attachment" },
      icon(/^image\//.test(a.type) ? "image" : "clip"),
      h("span", { class: "name", title: name }, name),
      h("span", { class: "muted" }, size(a.size || 0)),
      previewable ? h("button", { class: "icon", title: t("Preview"), "aria-label": `${t("Preview")} ${name}`, onclick: () => preview(a, name, url) }, icon("eye")) : null,
      h("a", { href: url, download: name, title: t("Download"), "aria-label": `${t("Download")} ${name}` }, icon("download")));
  }));
}

async function preview(a, name, url) {
  if (/^application\/pdf$/i.test(a.type)) {
    window.open(`${url}&inline=1`, "_blank", "noopener");
    return;
  }
  let content;
  if (/^image\//i.test(a.type)) {
    content = h("img", { class: "preview-image", src: url, alt: name });
  } else {
    const r = await fetch(url, { credentials: "same-origin" });
    const text = await r.text();
    content = h("pre", { class: "source" }, text.length > 500000 ? `${text.slice(0, 500000)}\n…` : text);
  }
  await dialog(name, (done) => h("div", {}, content, h("div", { class: "buttons" },
    h("a", { href: url, download: name }, t("Download")), h("button", { class: "primary", onclick: () => done() }, t("Close")))), { wide: true });
}

async function viewSource(e) {
  const name = `${(e.subject || "message").replace(/[\\/:*?"<>|]+/g, "_").slice(0, 80)}.eml`;
  const url = downloadUrl(e.blobId, name, "message/rfc822");
  const r = await fetch(url, { credentials: "same-origin" });
  const text = await r.text();
  await dialog(t("Message source"), (done) => h("div", {},
    h("pre", { class: "source", id: "source" }, text),
    h("div", { class: "buttons" }, h("a", { href: url, download: name }, t("Download .eml")), h("button", { class: "primary", onclick: () => done() }, t("Close")))), { wide: true });
}
