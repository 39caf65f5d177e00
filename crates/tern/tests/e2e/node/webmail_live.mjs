// The webmail and an IMAP client on one account, each seeing the other's
// changes as they happen: IMAP flags, marks read and appends, and the
// open webmail shows it without a reload (JMAP push); the webmail marks
// unread and moves, and an IMAP session in IDLE is told (Python's imaplib
// for IMAP). On a failure the screen is saved in ARTIFACTS.
// Usage: node webmail_live.mjs MODULES BASE ARTIFACTS IMAP_PORT
import { execFileSync, spawn } from "node:child_process";
import { launch, report, step as record, newPage, login } from "./browser.mjs";

const [modules, base, artifacts, imapPort] = process.argv.slice(2);
const browser = await launch(modules);
const out = report();

const IMAP = `
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("alice@example.test", "secret")
m.select("INBOX")
`;
function imap(code) {
  return execFileSync("python3", ["-c", IMAP + code, imapPort], { encoding: "utf8", timeout: 20000 });
}

// An IMAP session in IDLE on INBOX, reporting untagged responses until an
// EXPUNGE. Resolves with the lines once it has them.
function idle() {
  const code = IMAP + `
tag = m._new_tag().decode()
m.send(("%s IDLE\\r\\n" % tag).encode())
assert m.readline().startswith(b"+")
print("ready", flush=True)
m.sock.settimeout(30)
while True:
    line = m.readline().decode().strip()
    print(line, flush=True)
    if line.endswith("EXPUNGE"):
        break
`;
  const child = spawn("python3", ["-c", code, imapPort]);
  let text = "";
  const ready = new Promise((resolve) => child.stdout.on("data", (d) => { text += d; if (text.includes("ready")) resolve(); }));
  const done = new Promise((resolve, reject) => child.on("exit", (c) => (c === 0 ? resolve(text.split("\n").slice(1).filter(Boolean)) : reject(new Error(`idle: ${c} ${text}`)))));
  return { ready, done };
}

const step = (name, run) => record(out, name, run);
const page = await newPage(browser, out, base);
const row = (subject) => page.locator(".row:not(.placeholder)", { hasText: subject }).first();
try {
  await step("alice logs in", async () => {
    await login(page, base, "alice@example.test");
    await row("First note").waitFor();
  });
  await step("a flag set over IMAP shows in the open list", async () => {
    imap(`m.store("1", "+FLAGS", "(\\\\Flagged)")`);
    await row("First note").locator(".flag.on").waitFor();
  });
  await step("read over IMAP: the row is no longer unread", async () => {
    imap(`m.store("1", "+FLAGS", "(\\\\Seen)")`);
    await page.locator(".row:not(.unread)", { hasText: "First note" }).waitFor();
  });
  await step("a message appended over IMAP appears", async () => {
    imap(`m.append("INBOX", None, None, b"From: carol@remote.test\\r\\nTo: alice@example.test\\r\\nSubject: Appended by IMAP\\r\\n\\r\\nhello\\r\\n")`);
    await row("Appended by IMAP").waitFor();
  });
  await step("the webmail marks unread and moves; IMAP in IDLE is told", async () => {
    const watcher = idle();
    await watcher.ready;
    await row("First note").locator("input[type=checkbox]").check();
    await page.click("#act-unread");
    await page.locator(".row.unread", { hasText: "First note" }).waitFor();
    await row("First note").locator("input[type=checkbox]").uncheck();
    await row("Appended by IMAP").locator("input[type=checkbox]").check();
    await page.selectOption("select[aria-label='Move to']", { label: "Archive" });
    await row("Appended by IMAP").waitFor({ state: "detached" });
    const lines = await watcher.done;
    const unread = lines.some((l) => /FETCH/.test(l) && /FLAGS/.test(l) && !/\\Seen/.test(l));
    const expunged = lines.some((l) => /EXPUNGE$/.test(l));
    if (!unread || !expunged) throw new Error(JSON.stringify(lines));
    return lines;
  });
  await step("IMAP sees the moved message in Archive", () => {
    const n = imap(`typ, data = m.select("Archive")\nprint(data[0].decode())`).trim();
    if (n !== "1") throw new Error(`Archive holds ${n}`);
    return n;
  });
} catch (e) {
  await page.screenshot({ path: `${artifacts}/failure-live.png` }).catch(() => {});
  out.failed = String(e).slice(0, 2000);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
