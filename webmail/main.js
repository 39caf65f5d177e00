// The webmail's entry: log in (or resume the session), then the shell —
// folders, the message list and the reading pane — kept live by push.
import { h, toast, icon } from "./dom.js";
import { t, useLanguage } from "./i18n.js";
import { state, on, emit } from "./state.js";
import { getJson, post, listen, call } from "./jmap.js";
import { renderFolders, loadMailboxes } from "./mailboxes.js";
import { renderList, openMailbox, refreshList } from "./list.js";
import { renderReader, refreshReader } from "./reader.js";
import { compose } from "./compose.js";
import { searchForm } from "./search.js";
import { openSettings, applyTheme } from "./settings.js";
import { bindKeys } from "./keys.js";

const app = document.getElementById("app");
let stopListening = null;

async function start() {
  await useLanguage(localStorage.getItem("tern.lang"));
  try {
    state.session = await getJson("/webmail/session");
  } catch {
    return showLogin();
  }
  await enter();
}

function showLogin(message) {
  if (stopListening) stopListening();
  state.session = null;
  document.title = "Tern Mail";
  const user = h("input", { type: "text", id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { type: "password", id: "password", name: "password", autocomplete: "current-password", required: true });
  const remember = h("input", { type: "checkbox", id: "remember" });
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const button = h("button", { class: "primary", type: "submit" }, t("Log in"));
  const form = h("form", {
    class: "login", onsubmit: async (e) => {
      e.preventDefault();
      button.disabled = true;
      error.textContent = "";
      try {
        const r = await fetch("/webmail/login", {
          method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ username: user.value.trim(), password: password.value, remember: remember.checked }),
        });
        const body = await r.json().catch(() => ({}));
        if (!r.ok) throw new Error(body.detail || r.statusText);
        state.session = body;
        await enter();
      } catch (err) {
        error.textContent = t(err.message);
        button.disabled = false;
        password.select();
      }
    },
  },
  h("h1", {}, h("img", { src: "/app/icon.svg", alt: "" }), "Tern Mail"),
  h("label", { for: "username" }, t("Email address")), user,
  h("label", { for: "password" }, t("Password")), password,
  h("label", { class: "remember" }, remember, t("Keep me logged in on this computer")),
  error, button);
  app.replaceChildren(form);
  user.focus();
}

async function enter() {
  try {
    state.prefs = await getJson("/webmail/prefs");
  } catch { state.prefs = {}; }
  applyTheme();
  if (!state.prefs || typeof state.prefs !== "object" || Array.isArray(state.prefs)) state.prefs = {};
  if (typeof state.prefs.lang === "string" && state.prefs.lang !== localStorage.getItem("tern.lang")) {
    localStorage.setItem("tern.lang", state.prefs.lang);
    await useLanguage(state.prefs.lang);
  }
  shell();
  await loadMailboxes();
  const inbox = state.mailboxes.find((m) => m.role === "inbox") || state.mailboxes[0];
  await openMailbox(inbox ? inbox.id : null);
  call("Identity/get", {}).then((r) => { state.identities = r.list; }).catch(() => {});
  stopListening = listen(onPush);
}

// A StateChange: what moved is fetched again, at most every 250 ms.
let pending = {}, timer = null;
function onPush(changed) {
  Object.assign(pending, changed);
  clearTimeout(timer);
  timer = setTimeout(async () => {
    const types = pending;
    pending = {};
    if (types.Mailbox || types.Email) await loadMailboxes();
    if (types.Email) { await refreshList(); await refreshReader(); }
    if (types.Identity) call("Identity/get", {}).then((r) => { state.identities = r.list; }).catch(() => {});
  }, 250);
}

function shell() {
  const nav = h("nav", { class: "folders", "aria-label": t("Folders") });
  const list = h("section", { class: "list", "aria-label": t("Messages") });
  const reader = h("section", { class: "reader", "aria-label": t("Message") });
  const top = h("header", { class: "top" },
    h("button", { class: "icon phone-only", title: t("Folders"), "aria-label": t("Folders"), onclick: () => showPane("folders") }, icon("menu")),
    h("span", { class: "brand" }, h("img", { src: "/app/icon.svg", alt: "" }), h("span", {}, "Tern Mail")),
    searchForm(),
    h("button", { class: "primary", id: "compose", title: `${t("Compose")} (c)`, onclick: () => compose({}) }, icon("drafts"), " ", h("span", { class: "wide-only" }, t("Compose"))),
    h("button", { class: "icon", id: "settings", title: t("Settings"), "aria-label": t("Settings"), onclick: () => openSettings() }, icon("gear")),
    h("span", { class: "user", title: state.session.username }, state.session.username),
    h("button", { id: "logout", onclick: logout }, t("Log out")));
  const root = h("div", { class: "shell", id: "shell" }, top, nav, list, reader);
  app.replaceChildren(root);
  renderFolders(nav);
  renderList(list);
  renderReader(reader);
  document.title = `${state.session.username} — Tern Mail`;
}

// On a phone one pane shows at a time.
function showPane(which) {
  const root = document.getElementById("shell");
  if (!root) return;
  root.classList.toggle("show-folders", which === "folders");
  root.classList.toggle("show-reader", which === "reader");
}
on("pane", showPane);

// The page starts over after logging out: nothing of this user's (an open
// draft, addresses, identities) stays in the tab for the next one.
async function logout() {
  try {
    await post("/webmail/logout", {});
  } catch (e) {
    toast(`${t("Could not log out")}: ${e.message}`);
    return;
  }
  location.replace("/");
}

on("logout", logout);
on("signedOut", () => { if (state.session) showLogin(t("Your session ended; log in again.")); });
on("error", (e) => toast(`${t("Something went wrong")}: ${e && e.message ? e.message : e}`));
window.addEventListener("unhandledrejection", (e) => { emit("error", e.reason); });

bindKeys();
start();
