// Search: the box takes words and the operators people know from Gmail —
// from:, to:, subject:, has:attachment, is:unread, is:flagged, before:,
// after:, in: — and turns them into one JMAP Email/query filter (RFC 8621
// §4.4.1). Without in:, it searches every folder. The form under the box
// writes the same operators for those who prefer fields.
import { h, icon } from "./dom.js";
import { t } from "./i18n.js";
import { state } from "./state.js";
import { mailboxName } from "./mailboxes.js";
import { reset, openMailbox } from "./list.js";

// 'from:ann subject:"big news" report' → [["from","ann"],["subject","big news"],["","report"]]
export function tokens(text) {
  const out = [];
  const re = /(?:(\w+):)?(?:"([^"]*)"|(\S+))/g;
  let m;
  while ((m = re.exec(text))) out.push([(m[1] || "").toLowerCase(), m[2] !== undefined ? m[2] : m[3]]);
  return out;
}

// A day as the user means it: from local midnight.
const day = (s) => { const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00` : s); return Number.isNaN(d.getTime()) ? null : d; };

export function toFilter(text) {
  const f = {};
  const words = [];
  for (const [op, value] of tokens(text)) {
    switch (op) {
      case "from": case "to": case "cc": case "bcc": case "subject": case "body":
        f[op] = f[op] ? `${f[op]} ${value}` : value; break;
      case "has": if (/^attachments?$/i.test(value)) f.hasAttachment = true; break;
      case "is":
        if (value === "unread") f.notKeyword = "$seen";
        else if (value === "read") f.hasKeyword = "$seen";
        else if (value === "flagged" || value === "starred") f.hasKeyword = "$flagged";
        break;
      case "before": { const d = day(value); if (d) f.before = d.toISOString().replace(/\.\d{3}Z$/, "Z"); break; }
      case "after": { const d = day(value); if (d) f.after = d.toISOString().replace(/\.\d{3}Z$/, "Z"); break; }
      case "in": {
        const v = value.toLowerCase();
        const m = state.mailboxes.find((x) => x.role === v || x.name.toLowerCase() === v || mailboxName(x).toLowerCase() === v);
        if (m) f.inMailbox = m.id;
        break;
      }
      default: words.push(op ? `${op}:${value}` : value);
    }
  }
  if (words.length) f.text = words.join(" ");
  return f;
}

export async function search(text) {
  text = text.trim();
  if (!text) return openMailbox(state.mailboxId);
  state.search = { text, filter: toFilter(text) };
  await reset();
}

export function searchForm() {
  const input = h("input", { type: "search", id: "search", placeholder: t("Search mail (from: to: subject: has:attachment before: after:)"), "aria-label": t("Search mail") });
  const advanced = h("div", { class: "advanced hidden" });
  const field = (label, name, type = "text") => {
    const el = h("input", { type, name, "aria-label": label });
    advanced.append(h("label", {}, label), el);
    return el;
  };
  const from = field(t("From"), "from"), to = field(t("To"), "to"), subject = field(t("Subject"), "subject"),
    words = field(t("Has the words"), "words"), after = field(t("After"), "after", "date"), before = field(t("Before"), "before", "date");
  const attached = h("input", { type: "checkbox", name: "attachment" });
  const quote = (v) => (/\s/.test(v) ? `"${v}"` : v);
  advanced.append(h("label", {}, attached, ` ${t("Has attachment")}`), h("span"),
    h("span"), h("button", {
      type: "button", class: "primary", id: "advanced-search", onclick: () => {
        const parts = [];
        for (const [op, el] of [["from", from], ["to", to], ["subject", subject], ["after", after], ["before", before]]) if (el.value.trim()) parts.push(`${op}:${quote(el.value.trim())}`);
        if (attached.checked) parts.push("has:attachment");
        if (words.value.trim()) parts.push(words.value.trim());
        input.value = parts.join(" ");
        advanced.classList.add("hidden");
        search(input.value);
      },
    }, t("Search")));
  const form = h("form", { class: "search", role: "search", onsubmit: (e) => { e.preventDefault(); advanced.classList.add("hidden"); search(input.value); } },
    input,
    h("button", { type: "button", class: "icon", title: t("Search options"), "aria-label": t("Search options"), onclick: () => advanced.classList.toggle("hidden") }, icon("down")),
    h("button", { type: "submit", class: "icon", title: t("Search"), "aria-label": t("Search") }, icon("search")),
    advanced);
  return form;
}
