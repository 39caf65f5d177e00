// What the whole application shares: the session, the user's preferences,
// the mailboxes, where the user is, and a small event bus between views.
export const state = {
  session: null, // { username, accountId, csrf }
  prefs: {}, // kept on the server: /webmail/prefs
  mailboxes: [], // Mailbox objects (RFC 8621 §2)
  mailboxId: null, // the mailbox shown, or null while searching everywhere
  search: null, // { text, filter } while a search is shown
  selected: new Set(), // ids ticked in the list
  cursor: null, // id under the keyboard cursor
  openId: null, // id shown in the reading pane
  identities: [],
};

const listeners = new Map();

export function on(event, fn) {
  if (!listeners.has(event)) listeners.set(event, new Set());
  listeners.get(event).add(fn);
}

export function emit(event, data) {
  for (const fn of listeners.get(event) || []) {
    try { fn(data); } catch (e) { console.warn(event, e); }
  }
}

export const role = (r) => state.mailboxes.find((m) => m.role === r);
export const mailbox = (id) => state.mailboxes.find((m) => m.id === id);
export const threadsOn = () => state.prefs.threads === true;
