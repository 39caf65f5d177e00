// The rest of what a webmail user does, in headless Chromium: the page in
// Vietnamese for a Vietnamese browser; remote images held back until
// allowed for a sender (and then fetched, and remembered); attachments
// previewed and the source viewed; a signature set in Settings and used;
// a draft saved by itself, reopened, scheduled, the schedule undone and
// the draft discarded; a forward as an attachment; the shortcut list; the
// dark theme; emptying Trash undone; compose fields that try to add a
// header line; a password change. Screens saved in ARTIFACTS on failure.
// Usage: node webmail_more.mjs MODULES BASE ARTIFACTS
import { launch, report, step as record, newPage, login as logIn } from "./browser.mjs";

const [modules, base, artifacts] = process.argv.slice(2);
const browser = await launch(modules);
const out = report();
let page;
let allowedImages = false;
const step = (name, run) => record(out, name, run);
// Expected in the console besides the login page's 401: the 403 of the
// wrong current password, and the refused remote image.
const open = (locale) => newPage(browser, out, base, { locale, expected: /status of 40[13]|net::ERR_FAILED/ });
const login = (p, password) => logIn(p, base, "alice@example.test", password);

const row = (subject) => page.locator(".row:not(.placeholder)", { hasText: subject }).first();
const folder = (name) => page.locator(".folder", { hasText: name }).first();
const toast = (text) => page.locator(".toast", { hasText: text }).first().waitFor();

try {
  await step("a Vietnamese browser gets the page in Vietnamese", async () => {
    const vi = await open("vi-VN");
    await vi.goto(base + "/");
    const button = await vi.locator("form.login button[type=submit]").textContent();
    await vi.fill("#username", "alice@example.test");
    await vi.fill("#password", "secret");
    await vi.click("form.login button[type=submit]");
    await vi.locator(".folder[data-role=inbox]", { hasText: "Hộp thư đến" }).waitFor();
    await vi.context().close();
    if (button !== "Đăng nhập") throw new Error(button);
    return button;
  });
  page = await open("en-GB");
  await step("log in", () => login(page));
  await step("remote images wait until allowed for the sender, then load and stay allowed", async () => {
    await row("Newsletter").click();
    await page.locator(".banner", { hasText: "remote images are hidden" }).waitFor();
    await page.frameLocator(".message iframe").first().locator("body", { hasText: "This week" }).waitFor();
    if (out.requests.some((u) => u.includes("images.remote.test"))) throw new Error("fetched before it was allowed");
    // Once allowed, the browser asks for the image (refused here, and recorded).
    const asked = page.context().waitForEvent("request", { predicate: (r) => r.url().includes("images.remote.test"), timeout: 10000 });
    await page.locator(".banner button", { hasText: "Always show from news@remote.test" }).click();
    await toast("will always be shown");
    await asked;
    await row("Photo attached").click();
    await row("Newsletter").click();
    await page.locator(".message iframe").first().waitFor();
    if (await page.locator(".banner:not(.hidden)").count()) throw new Error("asked again");
    allowedImages = true;
    const prefs = await page.evaluate(async () => (await fetch("/webmail/prefs")).json());
    return prefs.imageSenders;
  });
  await step("attachments preview (text, image) and the source shows", async () => {
    await row("Photo attached").click();
    await page.locator(".attachment", { hasText: "data.txt" }).locator("button").click();
    await page.locator(".dialog pre", { hasText: "temperature,21" }).waitFor();
    await page.keyboard.press("Escape");
    await page.locator(".attachment", { hasText: "dot.png" }).locator("button").click();
    const width = await page.locator(".dialog img").evaluate((img) => new Promise((r) => (img.complete ? r(img.naturalWidth) : (img.onload = () => r(img.naturalWidth)))));
    await page.keyboard.press("Escape");
    await page.locator(".message button", { hasText: "View source" }).click();
    await page.locator("#source", { hasText: "Subject: Photo attached" }).waitFor();
    await page.keyboard.press("Escape");
    if (width !== 1) throw new Error(`image width ${width}`);
    return width;
  });
  await step("a message forwarded as an attachment", async () => {
    await folder("Inbox").click();
    await row("Photo attached").click();
    await page.locator(".message button", { hasText: "Forward as attachment" }).click();
    await page.locator("#compose-window .file", { hasText: "Photo attached.eml" }).waitFor();
    await page.fill("#compose-to", "bob@example.test");
    await page.click("#compose-send");
    await toast("Message sent");
  });
  await step("a signature set in Settings starts a new message", async () => {
    await page.click("#settings");
    await page.click("#tab-identities");
    const name = page.locator("input[id^=id-name-]").first();
    await name.fill("Alice Liddell");
    await page.locator("textarea[id^=id-sig-]").first().fill("Alice, in haste");
    await page.locator("#settings-body button[type=submit]").first().click();
    await page.locator("#settings-body [role=status]", { hasText: "Saved" }).first().waitFor();
    await page.keyboard.press("Escape");
    await page.locator("section.list .viewport").focus();
    await page.keyboard.press("c");
    await page.waitForSelector("#compose-window");
    const body = await page.locator("#compose-body").innerText();
    const from = await page.locator("#compose-from option").first().textContent();
    if (!body.includes("Alice, in haste") || !from.includes("Alice Liddell")) throw new Error(JSON.stringify({ body, from }));
    return from;
  });
  await step("the draft saves itself, reopens from Drafts, is scheduled, unscheduled and discarded", async () => {
    // Bob was written to before (the forward): "bo" completes to him.
    await page.locator("#compose-to").pressSequentially("bo");
    await page.locator(".suggest li", { hasText: "bob@example.test" }).waitFor();
    await page.press("#compose-to", "Enter");
    const to = await page.inputValue("#compose-to");
    if (!to.includes("bob@example.test")) throw new Error(`completed to ${to}`);
    await page.fill("#compose-subject", "Plans for Friday");
    await page.locator("#compose-body").press("Control+Home");
    await page.locator("#compose-body").pressSequentially("Shall we walk?");
    // Plain text and back keep the words.
    await page.click("#compose-plain");
    const plain = await page.inputValue("textarea#compose-body");
    await page.click("#compose-rich");
    if (!plain.includes("Shall we walk?")) throw new Error(plain);
    await page.locator("#compose-window .status", { hasText: "Saved" }).waitFor();
    await page.click("#compose-window .title button");
    await page.waitForSelector("#compose-window", { state: "detached" });
    await folder("Drafts").click();
    await row("Plans for Friday").click();
    await page.waitForSelector("#compose-window");
    const subject = await page.inputValue("#compose-subject");
    await page.click("#compose-later");
    await page.click(".dialog button.primary");
    await page.locator(".toast", { hasText: "Scheduled for" }).waitFor();
    // In Sent it says when it leaves, and can be called back from there.
    await folder("Sent").click();
    await row("Plans for Friday").click();
    await page.locator(".banner", { hasText: "Scheduled to leave at" }).waitFor();
    await page.click("#cancel-scheduled");
    await toast("back in Drafts");
    await folder("Drafts").click();
    // The list as it is now (the scheduled copy is a new message).
    await page.click("#act-refresh");
    await row("Plans for Friday").waitFor();
    await row("Plans for Friday").click();
    await page.waitForSelector("#compose-window");
    await page.click("#compose-discard");
    await toast("Draft discarded");
    await row("Plans for Friday").waitFor({ state: "detached" });
    return subject;
  });
  await step("compose fields cannot add header lines (subject, name, address)", async () => {
    const r = await page.evaluate(async () => {
      const { call } = await import("/app/jmap.js");
      const drafts = (await call("Mailbox/get", {})).list.find((m) => m.role === "drafts").id;
      const base = { mailboxIds: { [drafts]: true }, from: [{ name: "A", email: "alice@example.test" }], to: [{ name: "B", email: "bob@example.test" }],
        subject: "Hi", bodyValues: { t: { value: "x" } }, textBody: [{ partId: "t", type: "text/plain" }] };
      return call("Email/set", { create: {
        ok: base,
        subject: { ...base, subject: "Hi\r\nBcc: evil@remote.test" },
        name: { ...base, from: [{ name: "A\r\nX-Evil: 1", email: "alice@example.test" }] },
        address: { ...base, to: [{ name: "B", email: "bob@example.test\r\nBcc: evil@remote.test" }] },
      } });
    });
    // Each is refused, or made with the line break gone: no message
    // carries a header line of the attacker's.
    const raws = await page.evaluate(async (created) => {
      const out = {};
      for (const [key, e] of Object.entries(created)) {
        out[key] = await (await fetch(`/jmap/download/a1/${e.blobId}/x.eml?accept=text/plain`)).text();
      }
      const { call } = await import("/app/jmap.js");
      await call("Email/set", { destroy: Object.values(created).map((e) => e.id) });
      return out;
    }, r.created || {});
    const injected = Object.entries(raws).filter(([, raw]) => /^(Bcc|X-Evil):/mi.test(raw.split("\r\n\r\n")[0]));
    if (!raws.ok || injected.length || Object.keys(raws).length + Object.keys(r.notCreated || {}).length !== 4) {
      throw new Error(JSON.stringify({ r, injected }));
    }
    return { refused: Object.keys(r.notCreated || {}), made: Object.keys(raws) };
  });
  await step("the shortcut list opens with ?, and e archives", async () => {
    await page.locator("section.list .viewport").focus();
    await page.keyboard.press("?");
    await page.locator(".dialog", { hasText: "Keyboard shortcuts" }).waitFor();
    await page.keyboard.press("Escape");
    await folder("Inbox").click();
    await row("Photo attached").click();
    await page.keyboard.press("e");
    await row("Photo attached").waitFor({ state: "detached" });
    await folder("Archive").click();
    await row("Photo attached").waitFor();
    await folder("Inbox").click();
  });
  await step("the dark theme", async () => {
    await page.click("#settings");
    await page.selectOption("#pref-theme", "dark");
    await page.keyboard.press("Escape");
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.screenshot({ path: `${artifacts}/dark.png` });
    if (bg !== "rgb(22, 25, 29)") throw new Error(bg);
    return bg;
  });
  await step("emptying Trash can be undone", async () => {
    await folder("Inbox").click();
    await row("Newsletter").click();
    await page.click("#act-delete");
    await folder("Trash").click();
    await row("Newsletter").waitFor();
    await folder("Trash").hover();
    await folder("Trash").locator(".more").click();
    await page.locator(".dialog button", { hasText: "Empty" }).click();
    await page.locator(".dialog button.primary", { hasText: "Empty" }).click();
    await page.locator(".toast", { hasText: "Emptying" }).locator("button").click();
    await toast("Undone");
    await page.click("#act-refresh");
    await row("Newsletter").waitFor();
  });
  await step("the password changes (the old one is refused first)", async () => {
    await page.click("#settings");
    await page.click("#tab-password");
    await page.fill("#pw-current", "wrong");
    await page.fill("#pw-new", "Tern-New-Password-7");
    await page.fill("#pw-again", "Tern-New-Password-7");
    await page.click("#pw-save");
    await page.locator("#pw-status", { hasText: "not right" }).waitFor();
    await page.fill("#pw-current", "secret");
    await page.click("#pw-save");
    await page.locator("#pw-status", { hasText: "Your password is changed." }).waitFor();
  });
} catch (e) {
  if (page) await page.screenshot({ path: `${artifacts}/failure-more.png` }).catch(() => {});
  if (page) out.debug = await page.evaluate(async () => {
    const { call } = await import("/app/jmap.js");
    const q = await call("Email/query", { filter: {} });
    const g = await call("Email/get", { ids: q.ids, properties: ["subject", "mailboxIds", "keywords"] });
    return g.list;
  }).catch((e) => String(e));
  out.failed = String(e).slice(0, 2000);
} finally {
  await browser.close();
}
// Once the sender was allowed, its image is asked for whenever shown.
if (allowedImages) out.requests = out.requests.filter((u) => !u.includes("images.remote.test"));
console.log(JSON.stringify(out));
