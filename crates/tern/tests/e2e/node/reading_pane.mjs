// Opens reading-pane pages of hostile mails in headless Chromium (Debian's,
// driven by playwright-core) and reports, per page, what a safe page must
// not do: open a dialog, throw, log an error, or request anything outside
// the page itself. Every request leaves through a route that records and
// aborts it, so nothing reaches the network.
// Usage: node reading_pane.mjs MODULES BASE COOKIE PATH...
const [modules, base, cookie, ...paths] = process.argv.slice(2);
const { chromium } = await import(`${modules}/playwright-core/index.mjs`);

const browser = await chromium.launch({
  executablePath: process.env.TERN_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const results = [];
try {
  const context = await browser.newContext();
  const url = new URL(base);
  const [name, value] = cookie.split("=", 2);
  await context.addCookies([{ name, value, domain: url.hostname, path: "/", httpOnly: true, sameSite: "Strict" }]);
  for (const path of paths) {
    const page = await context.newPage();
    const seen = { path, dialogs: [], errors: [], console: [], requests: [], scripts: null, text: "" };
    page.on("dialog", async (d) => { seen.dialogs.push(d.message()); await d.dismiss(); });
    page.on("pageerror", (e) => seen.errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") seen.console.push(m.text()); });
    await page.route("**/*", async (route) => {
      const target = route.request().url();
      if (target === base + path) {
        await route.continue();
      } else {
        seen.requests.push(target);
        await route.abort();
      }
    });
    const response = await page.goto(base + path, { waitUntil: "load" });
    seen.status = response.status();
    // Until nothing is being fetched: a late image or style would show.
    await page.waitForLoadState("networkidle");
    seen.scripts = await page.evaluate(() => document.scripts.length);
    seen.text = await page.evaluate(() => document.body ? document.body.innerText : "");
    results.push(seen);
    await page.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
