// The webmail as two people use it, in headless Chromium (Debian's, driven
// by playwright-core): Alice logs in, reads a message Bob sent over SMTP,
// replies with an attachment, which appears live in Bob's open inbox;
// she searches, makes a folder and drags the message into it, deletes
// (and undoes), marks a message as junk, sets her vacation reply and logs
// out. Then the phone layout. Every step is recorded; on a failure the
// screens are saved in ARTIFACTS and the script exits non-zero.
// Usage: node webmail_journey.mjs MODULES BASE ARTIFACTS
import { mkdirSync } from "node:fs";
import { launch, report, step as record, newPage as openPage, login as logIn } from "./browser.mjs";

const [modules, base, artifacts] = process.argv.slice(2);
const browser = await launch(modules);
const out = report();
const pages = {};

async function newPage(name, viewport) {
  const page = await openPage(browser, out, base, { name, viewport });
  pages[name] = page;
  return page;
}
const step = (name, run) => record(out, name, run);
const login = (page, user) => logIn(page, base, user);

const row = (page, subject) => page.locator(".row:not(.placeholder)", { hasText: subject }).first();
const folder = (page, name) => page.locator(".folder", { hasText: name }).first();

try {
  const alice = await newPage("alice");
  const bob = await newPage("bob");
  await step("bob logs in and waits in his inbox", () => login(bob, "bob@example.test"));
  await step("alice logs in and sees the message that came by SMTP", async () => {
    await login(alice, "alice@example.test");
    await row(alice, "Quarterly figures").waitFor();
    return await alice.locator("#total").textContent();
  });
  await step("alice opens it: the body shows in the sandboxed frame, and it is read", async () => {
    await row(alice, "Quarterly figures").click();
    const frame = alice.frameLocator(".message iframe").first();
    await frame.locator("body", { hasText: "numbers for the third quarter" }).waitFor();
    await alice.locator(".row.open:not(.unread)", { hasText: "Quarterly figures" }).waitFor();
    return await alice.locator(".message iframe").first().getAttribute("sandbox");
  });
  await step("alice replies to bob with an attachment", async () => {
    await alice.locator(".message button", { hasText: "Reply" }).first().click();
    await alice.waitForSelector("#compose-window");
    const to = await alice.inputValue("#compose-to");
    if (!to.includes("bob@example.test")) throw new Error(`reply goes to ${to}`);
    await alice.setInputFiles("#compose-files", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("Figures look good.\n") });
    await alice.waitForSelector("#compose-window .file:not(.uploading)", { hasText: "notes.txt" });
    await alice.locator("#compose-body").press("Control+Home");
    await alice.locator("#compose-body").pressSequentially("Thanks, see the notes attached.");
    await alice.click("#compose-send");
    await alice.locator(".toast", { hasText: "Message sent" }).waitFor();
    await alice.waitForSelector("#compose-window", { state: "detached" });
    return to;
  });
  await step("the reply appears in bob's open inbox without a reload", async () => {
    await row(bob, "Re: Quarterly figures").waitFor();
    await row(bob, "Re: Quarterly figures").click();
    await bob.locator(".attachment", { hasText: "notes.txt" }).waitFor();
    await bob.frameLocator(".message iframe").first().locator("body", { hasText: "Thanks, see the notes attached." }).waitFor();
    return await bob.locator(".row", { hasText: "Re: Quarterly figures" }).count();
  });
  await step("the original is marked answered and the reply is in Sent", async () => {
    await folder(alice, "Sent").click();
    await row(alice, "Re: Quarterly figures").waitFor();
    await folder(alice, "Inbox").click();
    await row(alice, "Quarterly figures").waitFor();
  });
  await step("as conversations, the original and the reply are one row and one reading", async () => {
    await alice.check("#threads");
    await row(alice, "Quarterly figures").locator(".badge", { hasText: "2" }).waitFor();
    await row(alice, "Quarterly figures").click();
    await alice.locator("article.message").nth(1).waitFor();
    const cards = await alice.locator("article.message").count();
    await alice.uncheck("#threads");
    await row(alice, "Quarterly figures").locator(".badge").waitFor({ state: "detached" });
    if (cards !== 2) throw new Error(`${cards} messages in the conversation`);
    return cards;
  });
  await step("alice searches by sender and words", async () => {
    await alice.fill("#search", "from:bob figures");
    await alice.press("#search", "Enter");
    await alice.locator(".list-title", { hasText: "Search: from:bob figures" }).waitFor();
    await row(alice, "Quarterly figures").waitFor();
    const rows = await alice.locator(".row:not(.placeholder)").count();
    if (rows !== 1) throw new Error(`${rows} results`);
    return rows;
  });
  await step("alice creates a folder and drags the message into it", async () => {
    await folder(alice, "Inbox").click();
    await row(alice, "Quarterly figures").waitFor();
    await alice.click("#new-folder");
    await alice.fill(".dialog input", "Projects");
    await alice.click(".dialog button.primary");
    await folder(alice, "Projects").waitFor();
    await row(alice, "Quarterly figures").dragTo(folder(alice, "Projects"));
    await alice.locator(".toast", { hasText: "Moved 1 to Projects" }).waitFor();
    await row(alice, "Quarterly figures").waitFor({ state: "detached" });
    await folder(alice, "Projects").click();
    await row(alice, "Quarterly figures").waitFor();
    // A folder dragged onto another goes under it.
    await alice.click("#new-folder");
    await alice.fill(".dialog input", "Archive 2026");
    await alice.click(".dialog button.primary");
    await folder(alice, "Archive 2026").dragTo(folder(alice, "Projects"));
    await alice.locator("li:has(> .folder[title=Projects]) ul .folder[title='Archive 2026']").waitFor();
  });
  await step("alice deletes it, undoes, and deletes it again", async () => {
    await row(alice, "Quarterly figures").click();
    await alice.click("#act-delete");
    // The Undo of this notice (an earlier one may still show, with its own).
    await alice.locator(".toast", { hasText: "Moved 1 to Trash" }).locator("button", { hasText: "Undo" }).click();
    await alice.locator(".toast", { hasText: "Undone" }).waitFor();
    await row(alice, "Quarterly figures").waitFor();
    await row(alice, "Quarterly figures").click();
    await alice.keyboard.press("#");
    await row(alice, "Quarterly figures").waitFor({ state: "detached" });
    await folder(alice, "Trash").click();
    await row(alice, "Quarterly figures").waitFor();
  });
  await step("alice marks a message as junk", async () => {
    await folder(alice, "Inbox").click();
    await row(alice, "Cheap watches").waitFor();
    await row(alice, "Cheap watches").locator("input[type=checkbox]").check();
    await alice.click("#act-junk");
    await row(alice, "Cheap watches").waitFor({ state: "detached" });
    await folder(alice, "Junk").click();
    await row(alice, "Cheap watches").waitFor();
  });
  await step("alice turns her vacation reply on", async () => {
    await alice.click("#settings");
    await alice.click("#tab-vacation");
    await alice.check("#vacation-on");
    await alice.fill("#vacation-subject", "Away until Monday");
    await alice.fill("#vacation-text", "I am walking in the hills.");
    await alice.click("#vacation-save");
    await alice.locator("#vacation-status", { hasText: "Saved" }).waitFor();
    await alice.keyboard.press("Escape");
  });
  await step("a desktop shows three panes side by side", async () => {
    const box = async (s) => alice.locator(s).boundingBox();
    const [nav, list, reader] = [await box("nav.folders"), await box("section.list"), await box("section.reader")];
    if (!(nav.x < list.x && list.x < reader.x && reader.width > 300)) throw new Error(JSON.stringify({ nav, list, reader }));
    await alice.screenshot({ path: `${artifacts}/desktop.png` });
  });
  await step("alice logs out; a reload shows the login page", async () => {
    await alice.click("#logout");
    await alice.waitForSelector("form.login");
    await alice.reload();
    await alice.waitForSelector("form.login");
  });
  await step("a phone shows one pane at a time and nothing wider than the screen", async () => {
    const phone = await newPage("phone", { width: 390, height: 844 });
    await login(phone, "bob@example.test");
    const visible = async (s) => phone.locator(s).isVisible();
    const listFirst = [await visible("section.list"), await visible("nav.folders"), await visible("section.reader")];
    await row(phone, "Re: Quarterly figures").click();
    await phone.locator(".message iframe").first().waitFor();
    const readerNext = [await visible("section.list"), await visible("section.reader")];
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    await phone.screenshot({ path: `${artifacts}/phone.png` });
    if (listFirst.join() !== "true,false,false" || readerNext.join() !== "false,true" || width > 390) {
      throw new Error(JSON.stringify({ listFirst, readerNext, width }));
    }
    return width;
  });
} catch (e) {
  mkdirSync(artifacts, { recursive: true });
  for (const [name, page] of Object.entries(pages)) {
    await page.screenshot({ path: `${artifacts}/failure-${name}.png` }).catch(() => {});
  }
  out.failed = String(e).slice(0, 2000);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
