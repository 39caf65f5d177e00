// What the webmail's browser scripts share: Debian's Chromium under
// playwright-core, a report of steps, and pages that record what a page
// must not do — throw, log an error, open a dialog — and any request that
// leaves for another host. Each script prints the report as JSON.
export async function launch(modules) {
  const { chromium } = await import(`${modules}/playwright-core/index.mjs`);
  return chromium.launch({ executablePath: process.env.TERN_CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
}

export function report() {
  return { steps: [], errors: [], requests: [] };
}

// Runs one named step; a failure is recorded and thrown on.
export async function step(out, name, run) {
  try {
    out.steps.push({ name, ok: true, value: await run() });
  } catch (e) {
    out.steps.push({ name, ok: false, error: String(e).slice(0, 2000) });
    throw e;
  }
}

// A page in a new context whose console errors (but those matching
// `expected`), page errors and dialogs go to `out.errors`, and whose
// requests to anywhere but `base` are recorded in `out.requests` and
// refused.
export async function newPage(browser, out, base, { name = "page", viewport = { width: 1280, height: 800 }, locale, expected = /status of 401/ } = {}) {
  const context = await browser.newContext({ viewport, locale });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("pageerror", (e) => out.errors.push(`${name}: ${e}`));
  page.on("dialog", async (d) => { out.errors.push(`${name}: dialog ${d.message()}`); await d.dismiss(); });
  page.on("console", (m) => {
    if (m.type() === "error" && !expected.test(m.text())) out.errors.push(`${name}: console ${m.text()}`);
  });
  await context.route((url) => !url.href.startsWith(base) && !url.href.startsWith("data:"), async (route) => {
    out.requests.push(route.request().url());
    await route.abort();
  });
  return page;
}

// Logs in through the login form and waits for the inbox.
export async function login(page, base, user, password = "secret") {
  await page.goto(base + "/");
  await page.fill("#username", user);
  await page.fill("#password", password);
  await page.click("form.login button[type=submit]");
  await page.waitForSelector(".folder.current[data-role=inbox]", { state: "attached" });
}
