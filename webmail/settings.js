// Settings: the look (theme, language, conversations), identities and
// their signatures (JMAP Identity/set), the vacation reply (JMAP
// VacationResponse), the password, and senders whose images are shown.
// Preferences are kept on the server (/webmail/prefs) and saved a moment
// after they change.
import { h, dialog, toast, icon } from "./dom.js";
import { t, useLanguage, LANGUAGES } from "./i18n.js";
import { state, on, emit } from "./state.js";
import { call, post, setOk } from "./jmap.js";
import { reset } from "./list.js";

let saveTimer = null;
on("prefs", () => {
  applyTheme();
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => post("/webmail/prefs", state.prefs, "PUT").catch((e) => emit("error", e)), 400);
});

export function applyTheme() {
  const theme = state.prefs.theme || "auto";
  if (theme === "auto") document.documentElement.removeAttribute("data-theme");
  else document.documentElement.setAttribute("data-theme", theme);
}

const TABS = [["general", "General"], ["identities", "Identities and signatures"], ["vacation", "Vacation reply"], ["password", "Password"], ["images", "Remote images"]];

export function openSettings(tab = "general") {
  return dialog(t("Settings"), (done) => {
    const body = h("div", { id: "settings-body" });
    const tabs = h("div", { class: "tabs", role: "tablist" });
    const show = (name) => {
      for (const b of tabs.children) b.classList.toggle("current", b.dataset.tab === name);
      body.replaceChildren(h("p", { class: "muted" }, t("Loading…")));
      PANES[name](body).catch((e) => body.replaceChildren(h("p", { class: "error" }, e.message)));
    };
    for (const [name, label] of TABS) tabs.append(h("button", { role: "tab", "data-tab": name, id: `tab-${name}`, onclick: () => show(name) }, t(label)));
    show(tab);
    return h("div", {}, h("div", { class: "settings" }, tabs, body),
      h("div", { class: "buttons" }, h("button", { class: "primary", onclick: () => done() }, t("Close"))));
  }, { wide: true });
}

const row = (label, control) => [h("label", { for: control.id }, label), control];
const utc = (d) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

const PANES = {
  async general(body) {
    const select = (id, value, options, change) => h("select", { id, onchange: (e) => change(e.target.value) },
      options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
    body.replaceChildren(h("div", { class: "form" },
      ...row(t("Theme"), select("pref-theme", state.prefs.theme || "auto", [["auto", t("Like the system")], ["light", t("Light")], ["dark", t("Dark")]],
        (v) => { state.prefs.theme = v; emit("prefs"); })),
      ...row(t("Language"), select("pref-lang", state.prefs.lang || "auto", [["auto", t("Like the browser")], ...Object.entries(LANGUAGES)],
        async (v) => { state.prefs.lang = v; localStorage.setItem("tern.lang", v); emit("prefs"); await useLanguage(v); toast(t("The new language shows after a reload.")); })),
      ...row(t("Group by conversation"), h("input", { type: "checkbox", id: "pref-threads", checked: state.prefs.threads === true, onchange: (e) => { state.prefs.threads = e.target.checked; emit("prefs"); emit("listChanged"); reset(); } })),
      ...row(t("Mark as read when opened"), h("input", { type: "checkbox", id: "pref-read", checked: state.prefs.markRead !== false, onchange: (e) => { state.prefs.markRead = e.target.checked; emit("prefs"); } })),
      ...row(t("Write in plain text"), h("input", { type: "checkbox", id: "pref-plain", checked: state.prefs.plainText === true, onchange: (e) => { state.prefs.plainText = e.target.checked; emit("prefs"); } }))));
  },

  async identities(body) {
    const r = await call("Identity/get", {});
    state.identities = r.list;
    body.replaceChildren(...r.list.map((i) => {
      const name = h("input", { type: "text", id: `id-name-${i.id}`, value: i.name || "" });
      const replyTo = h("input", { type: "email", id: `id-reply-${i.id}`, value: i.replyTo && i.replyTo[0] ? i.replyTo[0].email : "" });
      const signature = h("textarea", { id: `id-sig-${i.id}` });
      signature.value = i.textSignature || "";
      const status = h("span", { class: "muted", role: "status" });
      return h("form", {
        class: "form", style: "margin-bottom:18px", onsubmit: async (e) => {
          e.preventDefault();
          try {
            const patch = { name: name.value.replace(/[\r\n]/g, " ").trim(), textSignature: signature.value, replyTo: replyTo.value.trim() ? [{ name: null, email: replyTo.value.trim() }] : null };
            setOk(await call("Identity/set", { update: { [i.id]: patch } }));
            Object.assign(i, patch);
            status.textContent = t("Saved");
          } catch (err) { status.textContent = err.message; }
        },
      }, h("strong", { class: "wide" }, i.email),
      ...row(t("Your name"), name), ...row(t("Reply-To"), replyTo), ...row(t("Signature"), signature),
      h("span"), h("div", {}, h("button", { class: "primary", type: "submit" }, t("Save")), " ", status));
    }));
  },

  async vacation(body) {
    const r = await call("VacationResponse/get", { ids: ["singleton"] });
    const v = r.list[0] || {};
    const enabled = h("input", { type: "checkbox", id: "vacation-on", checked: !!v.isEnabled });
    const subject = h("input", { type: "text", id: "vacation-subject", value: v.subject || "" });
    const text = h("textarea", { id: "vacation-text" });
    text.value = v.textBody || "";
    const day = (iso) => (iso ? iso.slice(0, 10) : "");
    const from = h("input", { type: "date", id: "vacation-from", value: day(v.fromDate) });
    const to = h("input", { type: "date", id: "vacation-to", value: day(v.toDate) });
    const status = h("span", { class: "muted", role: "status", id: "vacation-status" });
    body.replaceChildren(h("form", {
      class: "form", onsubmit: async (e) => {
        e.preventDefault();
        try {
          const patch = {
            isEnabled: enabled.checked, subject: subject.value.replace(/[\r\n]/g, " ") || null, textBody: text.value || null,
            // The days as the user means them: local midnight to midnight.
            fromDate: from.value ? utc(new Date(`${from.value}T00:00:00`)) : null,
            toDate: to.value ? utc(new Date(`${to.value}T23:59:59`)) : null,
          };
          setOk(await call("VacationResponse/set", { update: { singleton: patch } }));
          status.textContent = t("Saved");
        } catch (err) { status.textContent = err.message; }
      },
    }, ...row(t("Send an automatic reply"), enabled), ...row(t("Subject"), subject), ...row(t("Message"), text),
    ...row(t("From (optional)"), from), ...row(t("Until (optional)"), to),
    h("span"), h("div", {}, h("button", { class: "primary", type: "submit", id: "vacation-save" }, t("Save")), " ", status)));
  },

  async password(body) {
    const current = h("input", { type: "password", id: "pw-current", autocomplete: "current-password" });
    const next = h("input", { type: "password", id: "pw-new", autocomplete: "new-password", minlength: 8 });
    const again = h("input", { type: "password", id: "pw-again", autocomplete: "new-password" });
    const status = h("span", { role: "status", id: "pw-status" });
    body.replaceChildren(h("form", {
      class: "form", onsubmit: async (e) => {
        e.preventDefault();
        status.className = "error";
        if (next.value !== again.value) { status.textContent = t("The new passwords differ."); return; }
        try {
          await post("/webmail/password", { current: current.value, new: next.value });
          status.className = "muted";
          status.textContent = t("Your password is changed.");
          current.value = next.value = again.value = "";
        } catch (err) { status.textContent = t(err.message); }
      },
    }, ...row(t("Current password"), current), ...row(t("New password"), next), ...row(t("New password again"), again),
    h("span"), h("div", {}, h("button", { class: "primary", type: "submit", id: "pw-save" }, t("Change password")), " ", status)));
  },

  async images(body) {
    const draw = () => {
      const senders = state.prefs.imageSenders || [];
      body.replaceChildren(h("p", { class: "muted" }, t("Remote images are shown at once in mail from these senders.")),
        senders.length ? h("ul", {}, senders.map((s) => h("li", {}, s, " ", h("button", {
          class: "icon", title: t("Remove"), "aria-label": `${t("Remove")} ${s}`,
          onclick: () => { state.prefs.imageSenders = senders.filter((x) => x !== s); emit("prefs"); draw(); },
        }, icon("close"))))) : h("p", {}, t("None yet.")));
    };
    draw();
  },
};
