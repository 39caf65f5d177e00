// The folder list (RFC 8621 §2 Mailbox): special folders first with their
// icons, then the user's, nested; unread counts; create, rename, nest,
// delete; and a drop target for messages dragged from the list.
import { h, promptDialog, confirmDialog, dialog, toast, icon } from "./dom.js";
import { t } from "./i18n.js";
import { state, on, emit, threadsOn } from "./state.js";
import { call, setOk } from "./jmap.js";
import { moveTo, emptyFolder } from "./actions.js";

const ROLES = ["inbox", "drafts", "sent", "archive", "junk", "trash"];
const NAMES = { inbox: "Inbox", drafts: "Drafts", sent: "Sent", archive: "Archive", junk: "Junk", trash: "Trash" };
let nav = null;

export const mailboxName = (m) => (m.role && NAMES[m.role] && !m.parentId ? t(NAMES[m.role]) : m.name);

let asked = 0; // the latest Mailbox/get: an older answer arriving later is dropped
export async function loadMailboxes() {
  const mine = ++asked;
  const r = await call("Mailbox/get", { ids: null });
  if (mine !== asked) return;
  state.mailboxes = r.list;
  draw();
  emit("mailboxes");
}

export function renderFolders(element) {
  nav = element;
  draw();
}
on("listChanged", () => draw());

function order(a, b) {
  const ra = ROLES.indexOf(a.role), rb = ROLES.indexOf(b.role);
  if ((ra < 0) !== (rb < 0)) return ra < 0 ? 1 : -1;
  if (ra !== rb) return ra - rb;
  return (a.sortOrder || 0) - (b.sortOrder || 0) || a.name.localeCompare(b.name);
}

function draw() {
  if (!nav) return;
  const children = (parentId) => state.mailboxes.filter((m) => (m.parentId || null) === parentId).sort(order);
  const tree = (parentId) => {
    const items = children(parentId);
    if (!items.length) return null;
    return h("ul", { role: parentId ? "group" : "tree" }, items.map((m) => h("li", { role: "treeitem" }, folder(m), tree(m.id))));
  };
  nav.replaceChildren(
    h("button", { class: "primary compose-button phone-only", onclick: () => emit("compose") }, t("Compose")),
    tree(null),
    h("button", { class: "new", id: "new-folder", onclick: () => createFolder(null) }, icon("plus"), ` ${t("New folder")}`),
    h("button", { class: "new phone-only", onclick: () => emit("logout") }, t("Log out")));
}

function folder(m) {
  const unread = threadsOn() ? m.unreadThreads : m.unreadEmails;
  const el = h("div", {
    class: `folder${m.id === state.mailboxId && !state.search ? " current" : ""}`,
    "data-id": m.id, "data-role": m.role || "", tabindex: 0, title: m.name,
    // The user's folders move under another by dragging.
    draggable: m.role ? null : "true",
    ondragstart: (e) => { if (!m.role) { e.dataTransfer.setData("application/x-tern-mailbox", m.id); e.dataTransfer.effectAllowed = "move"; } },
    onclick: () => { emit("openMailbox", m.id); emit("pane", "list"); },
    onkeydown: (e) => { if (e.key === "Enter") emit("openMailbox", m.id); },
    ondragover: (e) => {
      const types = e.dataTransfer.types;
      if (types.includes("application/x-tern-emails") || types.includes("application/x-tern-mailbox")) { e.preventDefault(); el.classList.add("drop"); }
    },
    ondragleave: () => el.classList.remove("drop"),
    ondrop: (e) => {
      e.preventDefault();
      el.classList.remove("drop");
      const child = e.dataTransfer.getData("application/x-tern-mailbox");
      if (child && child !== m.id) {
        call("Mailbox/set", { update: { [child]: { parentId: m.id } } }).then(setOk).then(loadMailboxes)
          .catch((x) => toast(`${t("Could not change the folder")}: ${x.message}`));
        return;
      }
      const ids = JSON.parse(e.dataTransfer.getData("application/x-tern-emails") || "[]");
      if (ids.length) moveTo(ids, m.id);
    },
  },
  icon(ROLES.includes(m.role) ? m.role : "folder"),
  h("span", { class: "name" }, mailboxName(m)),
  unread ? h("span", { class: "count", "aria-label": t("{n} unread", { n: unread }) }, unread) : null,
  h("button", { class: "icon more", title: t("Folder actions"), "aria-label": t("Folder actions"), onclick: (e) => { e.stopPropagation(); folderMenu(m); } }, icon("more")));
  return el;
}

async function folderMenu(m) {
  const choice = await dialog(mailboxName(m), (done) => h("div", { class: "buttons", style: "justify-content:flex-start;flex-wrap:wrap" },
    h("button", { onclick: () => done("sub") }, t("New subfolder")),
    m.role ? null : h("button", { onclick: () => done("rename") }, t("Rename")),
    m.role ? null : h("button", { onclick: () => done("move") }, t("Move to top level")),
    m.role === "trash" || m.role === "junk" ? h("button", { class: "danger", onclick: () => done("empty") }, t("Empty")) : null,
    m.role ? null : h("button", { class: "danger", onclick: () => done("delete") }, t("Delete"))));
  try {
    if (choice === "sub") await createFolder(m.id);
    if (choice === "rename") await renameFolder(m);
    if (choice === "move") setOk(await call("Mailbox/set", { update: { [m.id]: { parentId: null } } }));
    if (choice === "delete") await deleteFolder(m);
    if (choice === "empty") await emptyFolder(m);
  } catch (e) {
    toast(`${t("Could not change the folder")}: ${e.message}`);
  }
  await loadMailboxes();
}

async function createFolder(parentId) {
  const name = await promptDialog(t("New folder"), t("Name"));
  if (!name) return;
  try {
    setOk(await call("Mailbox/set", { create: { n: { name, parentId } } }));
    await loadMailboxes();
  } catch (e) {
    toast(`${t("Could not create the folder")}: ${e.message}`);
  }
}

async function renameFolder(m) {
  const name = await promptDialog(t("Rename folder"), t("Name"), m.name);
  if (!name || name === m.name) return;
  setOk(await call("Mailbox/set", { update: { [m.id]: { name } } }));
}

async function deleteFolder(m) {
  const ok = await confirmDialog(t("Delete folder"),
    t("Delete “{name}” and the {n} messages in it? This cannot be undone.", { name: m.name, n: m.totalEmails }), t("Delete"));
  if (!ok) return;
  setOk(await call("Mailbox/set", { destroy: [m.id], onDestroyRemoveEmails: true }));
  if (state.mailboxId === m.id) {
    const inbox = state.mailboxes.find((x) => x.role === "inbox");
    emit("openMailbox", inbox && inbox.id);
  }
}
