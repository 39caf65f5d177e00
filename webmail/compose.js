// Writing mail: new, reply, reply-all, forward (inline or as an
// attachment) and drafts. The message is a JMAP Email created in Drafts
// (saved by itself every few seconds), sent by an EmailSubmission that
// moves it to Sent — at once or later (FUTURERELEASE, up to a week).
// Attachments upload as they are added (drag and drop too) with progress.
// Addresses complete from those the user wrote to and those in view.
import { h, dialog, toast, size, longDate, person, people, icon } from "./dom.js";
import { t } from "./i18n.js";
import { state, on, emit, role } from "./state.js";
import { batch, call, setOk, upload } from "./jmap.js";
import { emails } from "./list.js";

const AUTOSAVE_MS = 5000;
let open = null; // the compose window shown (or being opened), if any

// Header values never carry line breaks (the server refuses them too).
const oneLine = (s) => (s || "").replace(/[\r\n\t]+/g, " ").trim();

// "Ann <ann@x>, bob@y; "Doe, J" <j@z>" → [{ name, email }]
export function parseAddresses(text) {
  const out = [];
  let part = "", quoted = false, angle = false;
  const push = () => {
    const s = part.trim();
    part = "";
    if (!s) return;
    const m = s.match(/^(.*)<([^<>]*)>\s*$/);
    const name = m ? oneLine(m[1]).replace(/^"(.*)"$/, "$1").trim() : "";
    const email = oneLine(m ? m[2] : s);
    out.push({ name: name || null, email });
  };
  for (const c of text) {
    if (c === '"') quoted = !quoted;
    if (c === "<") angle = true;
    if (c === ">") angle = false;
    if ((c === "," || c === ";") && !quoted && !angle) push();
    else part += c;
  }
  push();
  return out;
}

const validAddress = (a) => /^[^\s@<>()",;]+@[^\s@<>()",;]+$/.test(a.email);
const formatAddresses = (list) => (list || []).map((a) => (a.name ? `"${a.name.replace(/"/g, "")}" <${a.email}>` : a.email)).join(", ");
const mine = (a) => a.email.toLowerCase() === state.session.username.toLowerCase() || state.identities.some((i) => i.email.toLowerCase() === a.email.toLowerCase());

// The original's text, for quoting.
async function originalText(e) {
  const r = await call("Email/get", { ids: [e.id], properties: ["textBody", "bodyValues", "attachments"], fetchTextBodyValues: true, maxBodyValueBytes: 200000 });
  const full = r.list[0] || {};
  const text = (full.textBody || []).map((p) => asText(p, full.bodyValues[p.partId])).join("\n").replace(/\s+$/, "");
  return { text, attachments: full.attachments || [] };
}

// A body part's text; an HTML-only message's (RFC 8621 textBody falls
// back to HTML) as the words it shows, read in an inert document of its
// own (no script runs, nothing loads, nothing reaches ours).
function asText(part, value) {
  const v = (value && value.value) || "";
  if (!/^text\/html/i.test(part.type || "")) return v;
  const doc = new DOMParser().parseFromString(v, "text/html");
  return (doc.body && doc.body.innerText) || (doc.body && doc.body.textContent) || "";
}

const prefixed = (prefix, subject) => (new RegExp(`^${prefix}:`, "i").test(subject || "") ? subject : `${prefix}: ${subject || ""}`);

// What the window starts with, from what it was opened for.
async function initial({ reply, all, forward, asAttachment, draftId, to }) {
  const start = { to: to || [], cc: [], bcc: [], subject: "", text: "", quote: "", files: [], inReplyTo: null, references: null, origin: null };
  if (reply) {
    const { text } = await originalText(reply);
    const from = reply.replyTo && reply.replyTo.length ? reply.replyTo : reply.from || [];
    start.to = from;
    if (all) {
      const seen = new Set(from.map((a) => a.email.toLowerCase()));
      const rest = [...(reply.to || []), ...(reply.cc || [])].filter((a) => !mine(a) && !seen.has(a.email.toLowerCase()) && seen.add(a.email.toLowerCase()));
      start.cc = rest;
    }
    start.subject = prefixed("Re", reply.subject);
    start.inReplyTo = reply.messageId || null;
    start.references = [...(reply.references || []), ...(reply.messageId || [])];
    start.quote = `${t("On {date}, {who} wrote:", { date: longDate(reply.sentAt || reply.receivedAt), who: person((reply.from || [])[0]) })}\n${text.split("\n").map((l) => `> ${l}`).join("\n")}`;
    start.origin = { id: reply.id, keyword: "$answered" };
  } else if (forward) {
    start.subject = prefixed("Fwd", forward.subject);
    start.origin = { id: forward.id, keyword: "$forwarded" };
    if (asAttachment) {
      start.files = [{ blobId: forward.blobId, type: "message/rfc822", name: `${oneLine(forward.subject || "message").slice(0, 80)}.eml`, size: forward.size }];
    } else {
      const { text, attachments } = await originalText(forward);
      start.quote = [`---------- ${t("Forwarded message")} ----------`,
        `${t("From")}: ${people(forward.from)}`, `${t("Date")}: ${longDate(forward.sentAt || forward.receivedAt)}`,
        `${t("Subject")}: ${forward.subject || ""}`, `${t("To")}: ${people(forward.to)}`, "", text].join("\n");
      start.files = attachments.map((a) => ({ blobId: a.blobId, type: a.type, name: a.name || "attachment", size: a.size }));
    }
  } else if (draftId) {
    const r = await call("Email/get", { ids: [draftId], properties: ["from", "to", "cc", "bcc", "subject", "textBody", "bodyValues", "attachments", "inReplyTo", "references"], fetchTextBodyValues: true });
    const d = r.list[0];
    if (!d) throw new Error(t("This draft is no longer there."));
    {
      Object.assign(start, { to: d.to || [], cc: d.cc || [], bcc: d.bcc || [], subject: d.subject || "", inReplyTo: d.inReplyTo, references: d.references, draftId });
      start.text = (d.textBody || []).map((p) => asText(p, d.bodyValues[p.partId])).join("\n");
      start.files = (d.attachments || []).map((a) => ({ blobId: a.blobId, type: a.type, name: a.name || "attachment", size: a.size }));
      start.fromEmail = d.from && d.from[0] && d.from[0].email;
    }
  }
  return start;
}

export async function compose(options) {
  if (open) { if (open.focus) open.focus(); return; }
  // Taken before waiting, so a second press opens no second window.
  open = { pending: true };
  try {
    if (!state.identities.length) state.identities = (await call("Identity/get", {})).list;
    const start = await initial(options || {});
    open = new Composer(start);
  } catch (e) {
    open = null;
    throw e;
  }
}

on("compose", () => compose({}));
on("editDraft", (id) => compose({ draftId: id }).catch((e) => { toast(e.message); emit("listStale"); }));

class Composer {
  constructor(start) {
    this.start = start;
    this.draftId = start.draftId || null;
    this.files = [];
    this.dirty = false;
    this.busy = false;
    this.rich = state.prefs.plainText !== true;
    this.build();
    for (const f of start.files) this.addUploaded(f);
    this.timer = setInterval(() => { if (this.dirty && !this.busy && !this.sending) this.save().catch(() => {}); }, AUTOSAVE_MS);
  }

  build() {
    const s = this.start;
    const identityFor = state.identities.find((i) => s.fromEmail && i.email === s.fromEmail) || state.identities[0];
    this.from = h("select", { id: "compose-from", "aria-label": t("From") }, state.identities.map((i) =>
      h("option", { value: i.id, selected: identityFor && i.id === identityFor.id }, i.name ? `${i.name} <${i.email}>` : i.email)));
    this.to = this.addressField("compose-to", t("To"), s.to);
    this.cc = this.addressField("compose-cc", t("Cc"), s.cc);
    this.bcc = this.addressField("compose-bcc", t("Bcc"), s.bcc);
    this.subject = h("input", { type: "text", id: "compose-subject", "aria-label": t("Subject"), value: s.subject, oninput: () => this.changed() });
    this.status = h("span", { class: "status", role: "status" });
    this.fileList = h("div", { class: "files" });
    this.picker = h("input", { type: "file", multiple: true, class: "hidden", id: "compose-files", onchange: (e) => { for (const f of e.target.files) this.addFile(f); e.target.value = ""; } });
    this.editorBox = h("div", { style: "display:flex;flex-direction:column;flex:1;min-height:0" });
    this.formatBar = h("div", { class: "format" });
    this.el = h("div", { class: "compose", role: "dialog", "aria-label": t("Compose"), id: "compose-window" },
      h("div", { class: "title" }, h("span", {}, s.subject || t("New message")),
        h("button", { class: "icon", title: t("Close"), "aria-label": t("Close"), onclick: () => this.close() }, icon("close"))),
      h("div", { class: "fields" },
        h("label", { for: "compose-from" }, t("From")), this.from,
        h("label", { for: "compose-to" }, t("To")), this.to.box,
        h("label", { for: "compose-cc" }, t("Cc")), this.cc.box,
        h("label", { for: "compose-bcc" }, t("Bcc")), this.bcc.box,
        h("label", { for: "compose-subject" }, t("Subject")), this.subject),
      this.formatBar, this.editorBox, this.fileList,
      h("div", { class: "actions" },
        h("button", { class: "primary", id: "compose-send", onclick: () => this.send() }, t("Send")),
        h("button", { id: "compose-later", onclick: () => this.sendLater() }, t("Send later")),
        h("button", { id: "compose-attach", onclick: () => this.picker.click() }, icon("clip"), ` ${t("Attach")}`),
        h("button", { id: "compose-save", onclick: () => this.save().then(() => toast(t("Draft saved"))).catch((e) => this.fail(e)) }, t("Save draft")),
        h("button", { class: "danger", id: "compose-discard", onclick: () => this.discard() }, t("Discard")),
        this.status, this.picker));
    this.el.addEventListener("dragover", (e) => { if (e.dataTransfer.types.includes("Files")) { e.preventDefault(); this.el.classList.add("drag"); } });
    this.el.addEventListener("dragleave", () => this.el.classList.remove("drag"));
    this.el.addEventListener("drop", (e) => {
      if (!e.dataTransfer.files.length) return;
      e.preventDefault();
      this.el.classList.remove("drag");
      for (const f of e.dataTransfer.files) this.addFile(f);
    });
    this.el.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.send(); }
      if (e.key === "Escape") { e.preventDefault(); this.close(); }
      e.stopPropagation();
    });
    this.makeEditor(this.start.text, this.start.quote, true);
    document.body.append(this.el);
    (s.to.length ? this.editor : this.to.input).focus();
  }

  focus() { this.el.querySelector("input, [contenteditable], textarea").focus(); }
  changed() { this.dirty = true; this.status.textContent = ""; }

  identity() { return state.identities.find((i) => i.id === this.from.value) || state.identities[0]; }

  // Rich text (a contenteditable area) or plain text (a textarea);
  // switching keeps the words.
  makeEditor(text, quote, fresh) {
    const identity = this.identity();
    // A draft already carries its signature.
    const signature = fresh && !this.start.draftId && identity && identity.textSignature ? `\n\n-- \n${identity.textSignature}` : "";
    const body = fresh ? `${text}${signature}${quote ? `\n\n${quote}` : ""}` : text;
    if (this.rich) {
      this.editor = h("div", { class: "editor", contenteditable: "true", role: "textbox", "aria-multiline": "true", "aria-label": t("Message"), id: "compose-body", oninput: () => this.changed() });
      for (const [i, line] of body.split("\n").entries()) {
        if (i) this.editor.append(h("br"));
        this.editor.append(line);
      }
      const cmd = (name, label, title, arg) => h("button", { type: "button", class: "icon", title, "aria-label": title, onmousedown: (e) => e.preventDefault(), onclick: () => { document.execCommand(name, false, arg); this.changed(); } }, label);
      this.formatBar.replaceChildren(
        cmd("bold", h("b", {}, "B"), t("Bold")), cmd("italic", h("i", {}, "I"), t("Italic")), cmd("underline", h("u", {}, "U"), t("Underline")),
        cmd("insertUnorderedList", "•", t("Bulleted list")), cmd("insertOrderedList", "1.", t("Numbered list")),
        h("button", { type: "button", class: "icon", title: t("Link"), "aria-label": t("Link"), onmousedown: (e) => e.preventDefault(), onclick: () => this.link() }, t("Link")),
        cmd("removeFormat", icon("close"), t("Clear formatting")),
        h("span", { class: "spacer", style: "flex:1" }),
        h("button", { type: "button", id: "compose-plain", onclick: () => this.switchEditor() }, t("Plain text")));
    } else {
      this.editor = h("textarea", { class: "editor", id: "compose-body", "aria-label": t("Message"), oninput: () => this.changed() });
      this.editor.value = body;
      this.formatBar.replaceChildren(h("span", { style: "flex:1" }), h("button", { type: "button", id: "compose-rich", onclick: () => this.switchEditor() }, t("Rich text")));
    }
    this.editorBox.replaceChildren(this.editor);
  }

  text() { return this.rich ? this.editor.innerText : this.editor.value; }

  switchEditor() {
    const text = this.text();
    this.rich = !this.rich;
    this.makeEditor(text, "", false);
    this.changed();
  }

  link() {
    const url = window.prompt(t("Link address"), "https://");
    if (url && /^(https?:|mailto:)/i.test(url)) { document.execCommand("createLink", false, url); this.changed(); }
  }

  addressField(id, label, value) {
    const input = h("input", { type: "text", id, "aria-label": label, autocomplete: "off", value: formatAddresses(value) });
    const list = h("ul", { class: "suggest hidden", role: "listbox" });
    const box = h("div", { class: "field" }, input, list);
    let choices = [], active = 0;
    const choose = (a) => {
      const parts = input.value.split(/[,;]/);
      parts[parts.length - 1] = ` ${a.name ? `"${a.name}" <${a.email}>` : a.email}`;
      input.value = `${parts.join(",").replace(/^ /, "")}, `;
      list.classList.add("hidden");
      this.changed();
      input.focus();
    };
    const show = () => {
      list.replaceChildren(...choices.map((a, i) => h("li", { class: i === active ? "active" : "", role: "option", onmousedown: (e) => { e.preventDefault(); choose(a); } }, person(a))));
      list.classList.toggle("hidden", !choices.length);
    };
    input.addEventListener("input", () => {
      this.changed();
      const word = input.value.split(/[,;]/).pop().trim().toLowerCase();
      choices = word.length < 1 ? [] : known().filter((a) => a.email.toLowerCase().includes(word) || (a.name || "").toLowerCase().includes(word)).slice(0, 8);
      active = 0;
      show();
    });
    input.addEventListener("keydown", (e) => {
      if (list.classList.contains("hidden")) return;
      if (e.key === "ArrowDown") { active = (active + 1) % choices.length; show(); e.preventDefault(); }
      if (e.key === "ArrowUp") { active = (active + choices.length - 1) % choices.length; show(); e.preventDefault(); }
      if ((e.key === "Enter" || e.key === "Tab") && choices[active]) { e.preventDefault(); choose(choices[active]); }
      if (e.key === "Escape") { list.classList.add("hidden"); e.stopPropagation(); e.preventDefault(); }
    });
    input.addEventListener("blur", () => setTimeout(() => list.classList.add("hidden"), 150));
    return { box, input, value: () => parseAddresses(input.value) };
  }

  addUploaded(f) {
    const entry = { ...f, done: Promise.resolve() };
    entry.el = h("span", { class: "file" }, icon("clip"), ` ${f.name} (${size(f.size || 0)})`, this.removeButton(entry));
    this.files.push(entry);
    this.fileList.append(entry.el);
  }

  removeButton(entry) {
    return h("button", { class: "icon", title: t("Remove"), "aria-label": `${t("Remove")} ${entry.name}`, onclick: () => { this.files = this.files.filter((x) => x !== entry); entry.el.remove(); this.changed(); } }, icon("close"));
  }

  addFile(file) {
    const entry = { name: file.name, type: file.type || "application/octet-stream", size: file.size };
    const bar = h("progress", { max: 1, value: 0 });
    entry.el = h("span", { class: "file uploading" }, icon("clip"), ` ${file.name} (${size(file.size)})`, bar, this.removeButton(entry));
    this.files.push(entry);
    this.fileList.append(entry.el);
    entry.done = upload(file, (p) => { bar.value = p; }).then((r) => {
      entry.blobId = r.blobId;
      bar.remove();
      entry.el.classList.remove("uploading");
      this.changed();
    }, (e) => {
      this.files = this.files.filter((x) => x !== entry);
      entry.el.remove();
      toast(`${t("Could not attach {name}", { name: file.name })}: ${e.message}`);
    });
  }

  // The Email to create (RFC 8621 §4.6), as a draft.
  email() {
    const identity = this.identity();
    const drafts = role("drafts");
    const text = this.text();
    const e = {
      mailboxIds: drafts ? { [drafts.id]: true } : {},
      keywords: { $draft: true, $seen: true },
      from: [{ name: identity && identity.name ? identity.name : null, email: identity ? identity.email : state.session.username }],
      subject: oneLine(this.subject.value),
      bodyValues: { text: { value: text } },
      textBody: [{ partId: "text", type: "text/plain" }],
    };
    for (const [key, field] of [["to", this.to], ["cc", this.cc], ["bcc", this.bcc]]) {
      const list = field.value();
      if (list.length) e[key] = list;
    }
    if (identity && identity.replyTo) e.replyTo = identity.replyTo;
    if (this.start.inReplyTo && this.start.inReplyTo.length) e.inReplyTo = this.start.inReplyTo;
    if (this.start.references && this.start.references.length) e.references = this.start.references;
    if (this.rich) {
      e.bodyValues.html = { value: `<div>${this.editor.innerHTML}</div>` };
      e.htmlBody = [{ partId: "html", type: "text/html" }];
    }
    const files = this.files.filter((f) => f.blobId);
    if (files.length) e.attachments = files.map((f) => ({ blobId: f.blobId, type: f.type, name: f.name, disposition: "attachment" }));
    return e;
  }

  async save() {
    if (!role("drafts")) return;
    this.busy = true;
    try {
      // The new copy first; the old one goes only once it exists (in one
      // /set a failed create would not stop the destroy).
      const r = setOk(await call("Email/set", { create: { draft: this.email() } }));
      const old = this.draftId;
      this.draftId = r.created.draft.id;
      if (old) await call("Email/set", { destroy: [old] }).catch(() => {});
      this.dirty = false;
      this.status.textContent = t("Saved {time}", { time: new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) });
    } finally {
      this.busy = false;
    }
  }

  recipients() {
    return [...this.to.value(), ...this.cc.value(), ...this.bcc.value()];
  }

  check() {
    const all = this.recipients();
    if (!all.length) throw new Error(t("Add at least one recipient."));
    const bad = all.filter((a) => !validAddress(a));
    if (bad.length) throw new Error(t("Not an address: {list}", { list: bad.map((a) => a.email).join(", ") }));
  }

  async send(at) {
    if (this.sending) return;
    this.sending = true;
    try {
      this.check();
      this.status.textContent = t("Waiting for attachments…");
      await Promise.all(this.files.map((f) => f.done));
      // A save under way finishes first (it sets the draft to replace).
      while (this.busy) await new Promise((r) => setTimeout(r, 50));
      this.busy = true;
      this.status.textContent = t("Sending…");
      const identity = this.identity();
      const drafts = role("drafts"), sent = role("sent");
      const submission = { identityId: identity.id, emailId: "#draft" };
      if (at) {
        submission.envelope = {
          mailFrom: { email: identity.email, parameters: { HOLDUNTIL: at.toISOString().replace(/\.\d{3}Z$/, "Z") } },
          rcptTo: this.recipients().map((a) => ({ email: a.email })),
        };
      }
      const afterwards = { "keywords/$draft": null };
      if (drafts) afterwards[`mailboxIds/${drafts.id}`] = null;
      if (sent) afterwards[`mailboxIds/${sent.id}`] = true;
      const calls = [
        ["Email/set", { create: { draft: this.email() } }, "e"],
        ["EmailSubmission/set", { create: { send: submission }, onSuccessUpdateEmail: { "#send": afterwards } }, "s"],
      ];
      if (this.start.origin) calls.push(["Email/set", { update: { [this.start.origin.id]: { [`keywords/${this.start.origin.keyword}`]: true } } }, "k"]);
      // Marking the original answered may fail without the mail being
      // unsent: judged by the submission alone.
      const r = await batch(calls, ["k"]);
      setOk(r.e);
      const old = this.draftId;
      this.draftId = r.e.created.draft.id;
      setOk(r.s);
      this.draftId = null;
      if (old) await call("Email/set", { destroy: [old] }).catch(() => {});
      this.collect();
      this.dismiss();
      const submissionId = r.s.created.send.id;
      if (at) {
        toast(t("Scheduled for {time}", { time: at.toLocaleString() }), { label: t("Undo"), run: () => cancelScheduled(submissionId, r.e.created.draft.id) }, 10000);
      } else {
        toast(t("Message sent"));
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.busy = false;
      this.sending = false;
    }
  }

  async sendLater() {
    const pad = (n) => String(n).padStart(2, "0");
    const local = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
    const soon = new Date(Date.now() + 3600e3), latest = new Date(Date.now() + 7 * 86400e3 - 60e3);
    const when = await dialog(t("Send later"), (done) => {
      const input = h("input", { type: "datetime-local", id: "send-at", value: local(soon), min: local(new Date()), max: local(latest) });
      return h("form", { onsubmit: (e) => { e.preventDefault(); done(new Date(input.value)); } },
        h("div", { class: "form" }, h("label", { for: "send-at" }, t("Send at")), input),
        h("p", { class: "muted" }, t("Up to a week ahead. Until it leaves, Undo on the notice brings it back to Drafts.")),
        h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => done() }, t("Cancel")), h("button", { class: "primary", type: "submit" }, t("Schedule"))));
    });
    if (when && !Number.isNaN(when.getTime())) await this.send(when);
  }

  // Addresses written to are remembered for completion.
  collect() {
    const seen = new Map((state.prefs.collected || []).map((a) => [a.email.toLowerCase(), a]));
    for (const a of this.recipients()) seen.delete(a.email.toLowerCase());
    // Bounded, so the preferences stay within the server's 64 KiB.
    state.prefs.collected = [...this.recipients(), ...seen.values()].slice(0, 300);
    emit("prefs");
  }

  fail(e) {
    this.status.textContent = "";
    toast(`${t("Not sent")}: ${e.message}`, null, 9000);
  }

  async close() {
    if (this.dirty) {
      try { await this.save(); toast(t("Draft saved")); } catch (e) { this.fail(e); return; }
    }
    this.dismiss();
  }

  async discard() {
    if (this.draftId) {
      try { setOk(await call("Email/set", { destroy: [this.draftId] })); } catch (e) { emit("error", e); return; }
    }
    this.dismiss();
    toast(t("Draft discarded"));
  }

  dismiss() {
    clearInterval(this.timer);
    this.el.remove();
    if (open === this) open = null;
  }
}

// Cancels a scheduled message while it waits, and puts it back in Drafts.
export async function cancelScheduled(submissionId, emailId) {
  const drafts = role("drafts"), sent = role("sent");
  const back = { "keywords/$draft": true };
  if (drafts) back[`mailboxIds/${drafts.id}`] = true;
  if (sent) back[`mailboxIds/${sent.id}`] = null;
  // Back in Drafts only once the cancel took (it may have left already).
  setOk(await call("EmailSubmission/set", { update: { [submissionId]: { undoStatus: "canceled" } } }));
  setOk(await call("Email/set", { update: { [emailId]: back } }));
  toast(t("Sending cancelled; the message is back in Drafts."));
}

// Names and addresses to complete from.
function known() {
  const out = new Map();
  const add = (a) => { if (a && a.email && !out.has(a.email.toLowerCase())) out.set(a.email.toLowerCase(), a); };
  for (const a of state.prefs.collected || []) add(a);
  for (const e of emails.values()) for (const a of [...(e.from || []), ...(e.to || [])]) add(a);
  return [...out.values()];
}
