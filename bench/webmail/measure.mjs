// Measures a webmail in headless Chromium (Debian's, driven by
// playwright-core): the first load of the logged-in inbox (bytes
// transferred, compressed, as Chromium's network layer counts them, and
// the time until the first message row shows), opening messages one after
// another (click to body shown, p50/p95), and, for Tern, scrolling to the
// middle of the mailbox (time until the rows there show, and how many
// message summaries were fetched in all).
// opening is timed in the page, from the click event to the body's frame
// having loaded (the browser's own clock), so the driver's overhead does
// not count.
// Usage: node measure.mjs MODULES tern|roundcube BASE COOKIE OPENS
//   COOKIE: "name=value; name2=value2" of a logged-in session.
import zlib from "node:zlib";

const [modules, kind, base, cookieHeader, opens = "50"] = process.argv.slice(2);
const { chromium } = await import(`${modules}/playwright-core/index.mjs`);
const browser = await chromium.launch({ executablePath: process.env.TERN_CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
const url = new URL(base);
const cookies = cookieHeader.split(";").map((c) => c.trim()).filter(Boolean).map((c) => {
  const [name, ...rest] = c.split("=");
  return { name, value: rest.join("="), domain: url.hostname, path: "/" };
});
const SITES = {
  tern: {
    inbox: "/",
    firstRow: ".row:not(.placeholder)",
    rows: ".row:not(.placeholder)",
    // Click the row at index i; resolves with when its body had loaded.
    async open(page, i) {
      // Rows exist only in view: bring row i there first (untimed).
      await page.evaluate((i) => {
        const v = document.querySelector(".viewport");
        if (i * 56 < v.scrollTop || (i + 1) * 56 > v.scrollTop + v.clientHeight) v.scrollTop = Math.max(0, i * 56 - 112);
      }, i);
      const row = page.locator(`.row:not(.placeholder)[data-index="${i}"]`);
      await row.waitFor();
      const id = await row.getAttribute("data-id");
      await row.click();
      const handle = await page.waitForFunction((id) => {
        const f = document.querySelector(`article.message[data-id="${id}"] iframe`);
        return f && f.dataset.loaded === "1" && Number(f.dataset.loadedAt);
      }, id, { polling: "raf" });
      return handle.jsonValue();
    },
  },
  roundcube: {
    inbox: "/?_task=mail&_mbox=INBOX",
    firstRow: "#messagelist tbody tr",
    rows: "#messagelist tbody tr",
    // The preview frame (same origin) has navigated to another message
    // and shows its body.
    async open(page, i) {
      const row = page.locator("#messagelist tbody tr").nth(i);
      const before = await page.evaluate(() => {
        const f = document.getElementById("messagecontframe");
        return f && f.contentWindow ? f.contentWindow.location.href : "";
      });
      await row.click();
      const handle = await page.waitForFunction((before) => {
        const f = document.getElementById("messagecontframe");
        const w = f && f.contentWindow;
        const ready = w && w.location.href !== before && w.location.href.includes("_uid=")
          && f.contentDocument.readyState === "complete" && f.contentDocument.querySelector("#messagebody");
        return ready && performance.now();
      }, before, { polling: "raf" });
      return handle.jsonValue();
    },
  },
};
const site = SITES[kind];
const out = { kind };

const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
await context.addCookies(cookies);
const page = await context.newPage();
page.setDefaultTimeout(60000);
const cdp = await context.newCDPSession(page);
await cdp.send("Network.enable");
await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
let bytes = 0, requests = 0, gzipBodies = 0;
// What a server compressing every text answer would have sent (bodies
// only): `php -S` compresses nothing, a production Apache or nginx would.
cdp.on("Network.loadingFinished", async (e) => {
  bytes += e.encodedDataLength;
  requests++;
  try {
    const r = await cdp.send("Network.getResponseBody", { requestId: e.requestId });
    const body = Buffer.from(r.body, r.base64Encoded ? "base64" : "utf8");
    gzipBodies += zlib.gzipSync(body, { level: 6 }).length;
  } catch { /* a body the browser did not keep (an event stream) */ }
});
// Until nothing more has finished loading for half a second (the push
// stream stays open, so "network idle" never comes).
async function quiet() {
  let last = -1;
  while (requests !== last) {
    last = requests;
    await page.waitForTimeout(500);
  }
}
const started = Date.now();
await page.goto(base + site.inbox);
try {
  await page.locator(site.firstRow).first().waitFor({ timeout: 180000 });
} catch (e) {
  await page.screenshot({ path: `/tmp/webmail-bench-${kind}.png` });
  throw e;
}
out.interactive_ms = Date.now() - started;
await quiet();
out.first_load_bytes = bytes;
out.first_load_bodies_gzipped = gzipBodies;
out.first_load_requests = requests;
out.rows_shown = await page.locator(site.rows).count();
await cdp.send("Network.setCacheDisabled", { cacheDisabled: false });

const times = [];
const n = kind === "tern" ? Number(opens) : Math.min(Number(opens), out.rows_shown);
await page.evaluate(() => document.addEventListener("click", () => { window.clickedAt = performance.now(); }, true));
for (let i = 0; i < n; i++) {
  // Each open from a page at rest, as a reader clicks: what the previous
  // one set off (marking it read, the push that follows) has settled.
  await quiet();
  const shownAt = await site.open(page, i);
  const clickedAt = await page.evaluate(() => window.clickedAt);
  times.push(Math.round(shownAt - clickedAt));
}
times.sort((a, b) => a - b);
const pct = (p) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
out.open_count = times.length;
out.open_p50_ms = pct(50);
out.open_p95_ms = pct(95);

if (kind === "tern") {
  // The middle of the mailbox: the rows there arrive by themselves.
  let summaries = 0;
  page.on("response", async (r) => {
    if (!r.url().endsWith("/jmap/api")) return;
    try {
      for (const [name, args] of (await r.json()).methodResponses) if (name === "Email/get") summaries += args.list.length;
    } catch { /* not JSON */ }
  });
  const total = await page.evaluate(() => Math.round(document.querySelector(".viewport .spacer").offsetHeight / 56));
  const middle = Math.floor(total / 2);
  const t0 = Date.now();
  await page.evaluate((m) => { document.querySelector(".viewport").scrollTop = m * 56; }, middle);
  await page.locator(`.row:not(.placeholder)[data-index="${Math.min(middle + 2, total - 1)}"]`).waitFor();
  out.scroll_to_middle_ms = Date.now() - t0;
  await quiet();
  out.mailbox_total = total;
  out.summaries_fetched_for_scroll = summaries;
}
await browser.close();
console.log(JSON.stringify(out));
