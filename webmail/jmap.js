// Talking JMAP (RFC 8620, 8621) to our own server with the session's
// cookie: the API, uploads with progress, downloads and the push stream.
// Every request that changes something carries the CSRF token the login
// answered with.
import { state, emit } from "./state.js";

const USING = [
  "urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
  "urn:ietf:params:jmap:submission", "urn:ietf:params:jmap:vacationresponse",
];

export class JmapError extends Error {
  constructor(type, description) {
    super(description || type);
    this.type = type;
  }
}

function headers(extra) {
  return { "X-Tern-CSRF": state.session ? state.session.csrf : "", ...extra };
}

async function checked(response) {
  if (response.status === 401) {
    emit("signedOut");
    throw new JmapError("unauthorized", "your session ended; log in again");
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new JmapError(problem.type || "http", problem.detail || response.statusText);
  }
  return response.json();
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Plain JSON to one of the webmail's own endpoints. Past the server's
// maxConcurrentRequests (429) the request is tried again a little later.
export async function post(path, body, method = "POST") {
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(path, {
      method, credentials: "same-origin",
      headers: headers({ "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status === 429 && attempt < 5) {
      await pause(150 * (attempt + 1));
      continue;
    }
    return checked(r);
  }
}

export async function getJson(path) {
  return checked(await fetch(path, { credentials: "same-origin", headers: headers() }));
}

// Several method calls in one request: [[name, args, callId]]; the
// account is filled in. Answers { callId: arguments }, throwing on the
// first method error of a call not named in `optional` (whose error is
// its answer instead: { error }).
export async function batch(calls, optional = []) {
  const methodCalls = calls.map(([name, args, id]) => [name, { accountId: state.session.accountId, ...args }, id]);
  const body = await post("/jmap/api", { using: USING, methodCalls });
  const out = {};
  for (const [name, args, id] of body.methodResponses) {
    // An implicit call (EmailSubmission's onSuccessUpdateEmail) answers
    // under the same id after the call itself: the call's answer is kept,
    // and the follow-up's failure does not undo what the call did.
    if (id in out) continue;
    if (name === "error") {
      const error = new JmapError(args.type, args.description);
      if (!optional.includes(id)) throw error;
      out[id] = { error };
      continue;
    }
    out[id] = args;
  }
  return out;
}

export async function call(name, args) {
  return (await batch([[name, args, "0"]]))["0"];
}

// A /set that must succeed whole: throws with the first failure.
export function setOk(result) {
  for (const key of ["notCreated", "notUpdated", "notDestroyed"]) {
    const failed = result[key] && Object.values(result[key])[0];
    if (failed) throw new JmapError(failed.type, failed.description || failed.type);
  }
  return result;
}

// Uploads a file (RFC 8620 §6.1); progress(fraction) while it goes.
export function upload(file, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/jmap/upload/${state.session.accountId}/`);
    xhr.setRequestHeader("X-Tern-CSRF", state.session.csrf);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && progress) progress(e.loaded / e.total); };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new JmapError(body.type || "upload", body.detail || body.description || xhr.statusText));
    };
    xhr.onerror = () => reject(new JmapError("network", "the upload failed"));
    xhr.send(file);
  });
}

export function downloadUrl(blobId, name, type) {
  const n = encodeURIComponent(name || "attachment");
  return `/jmap/download/${state.session.accountId}/${blobId}/${n}?accept=${encodeURIComponent(type || "application/octet-stream")}`;
}

// Push (RFC 8620 §7.3): changed(typeStates) for each StateChange of our
// account; the browser reconnects by itself after a drop.
export function listen(changed) {
  const source = new EventSource("/jmap/eventsource?types=*&closeafter=no&ping=60");
  // After a drop the browser reconnects; what changed meanwhile is
  // fetched again. A session that ended signs the page out.
  let opened = false;
  source.addEventListener("open", () => {
    if (opened) changed({ Mailbox: "", Email: "" });
    opened = true;
  });
  source.addEventListener("error", async () => {
    try {
      const r = await fetch("/webmail/session", { credentials: "same-origin", headers: headers() });
      if (r.status === 401) {
        source.close();
        emit("signedOut");
      }
    } catch { /* the server is away: the browser keeps trying */ }
  });
  source.addEventListener("state", (e) => {
    try {
      const change = JSON.parse(e.data);
      const mine = change.changed && change.changed[state.session.accountId];
      if (mine) changed(mine);
    } catch { /* a ping or a malformed event: nothing to do */ }
  });
  return () => source.close();
}
