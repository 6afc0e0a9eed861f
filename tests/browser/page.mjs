// Drives the wsauth test page in headless Chromium, as a person would: type,
// choose, click, and read what the page shows. Run by tests/browser.rs, one
// scenario per run:
//
//   node page.mjs load       the page loads with no console errors and no CSP violations
//   node page.mjs echo       connect, see the greeting, send, see the echo, disconnect
//   node page.mjs refused    connecting fails before "open"; the page says the server refused
//   node page.mjs closed     the socket opens, then the server closes it with a code
//
// Settings come from the environment:
//   WSAUTH_PAGE_URL      the page, e.g. http://127.0.0.1:8000/
//   WSAUTH_TOKEN         put in the page address as #token=...
//   WSAUTH_METHOD        subprotocol, query or first-message
//   WSAUTH_SOCKET_HOST   (optional) host:port of another server for the page's socket,
//                        to play a page from a foreign origin
//   WSAUTH_EXPECT        refused: the HTTP status behind the refusal; closed: "CODE reason"
//   WSAUTH_SCREENSHOT    where to save a PNG of the final state
//   WSAUTH_CHROMIUM      the browser (default /usr/bin/chromium)
//   WSAUTH_IGNORE_CERT_ERRORS  "true": accept the test server's self-signed certificate (https, wss)
//
// Prints "PASS <scenario>" and exits 0, or prints why and exits 1.

import { chromium } from "playwright-core";

const scenario = process.argv[2];
const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) fail(`${name} is not set`);
  return value;
};
const WAIT = { timeout: 10_000 }; // for any one thing to appear on the page

// A hard stop, so a hung browser cannot hang `cargo test`.
setTimeout(() => fail("timed out after 45 s"), 45_000).unref();

function fail(message) {
  console.error(`FAIL ${scenario}: ${message}`);
  process.exit(1);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const ignoreCertErrors = process.env.WSAUTH_IGNORE_CERT_ERRORS === "true";
const browser = await chromium.launch({
  executablePath: env("WSAUTH_CHROMIUM", "/usr/bin/chromium"),
  headless: true, // Playwright adds --headless and a fresh temporary --user-data-dir itself
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ...(ignoreCertErrors ? ["--ignore-certificate-errors"] : []),
  ],
});
const socketHost = process.env.WSAUTH_SOCKET_HOST;
const context = await browser.newContext({
  viewport: { width: 900, height: 900 },
  // A page from another origin carries no CSP of ours: without this, the page's
  // own connect-src 'self' would stop it before the server is even asked.
  bypassCSP: Boolean(socketHost),
  ignoreHTTPSErrors: ignoreCertErrors,
});
const page = await context.newPage();

const consoleErrors = [];
const pageErrors = [];
page.on("console", (msg) => {
  if (msg.type() === "error" || msg.type() === "warning") consoleErrors.push(msg.text());
});
page.on("pageerror", (error) => pageErrors.push(String(error)));
await page.addInitScript(() => {
  window.cspViolations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    window.cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
  });
});
if (socketHost) {
  // The page only ever connects to its own host; point its sockets elsewhere,
  // as a page served from a foreign origin would.
  await page.addInitScript((host) => {
    const NativeWebSocket = window.WebSocket;
    window.WebSocket = class extends NativeWebSocket {
      constructor(url, protocols) {
        const target = new URL(url);
        target.host = host;
        super(target, protocols);
      }
    };
  }, socketHost);
}

/** Waits for a log line of this kind whose text contains `text`. */
async function logLine(kind, text) {
  const line = page
    .locator("#log li")
    .filter({ has: page.locator(".kind", { hasText: new RegExp(`^${kind}$`) }) })
    .filter({ hasText: text })
    .first();
  await line.waitFor(WAIT);
  return line.innerText();
}

async function status() {
  return page.locator("#status").getAttribute("data-state");
}

async function connect() {
  await page.locator(`input[name=method][value=${env("WSAUTH_METHOD")}]`).check();
  await page.locator("#connect").click();
}

const scenarios = {
  async load(response) {
    const headers = response.headers();
    check(headers["content-security-policy"], "the page came without a Content-Security-Policy");
    check(await page.locator("#token").inputValue() === env("WSAUTH_TOKEN"),
      "the token field is not filled from #token=");
    for (const method of ["subprotocol", "query", "first-message"]) {
      check(await page.locator(`input[name=method][value=${method}]`).isVisible(), `no ${method} choice`);
    }
    check(await status() === "disconnected", "the status is not 'disconnected'");
    check(await page.locator("#send").isDisabled(), "Send is enabled with no connection");
    await logLine("ready", "token taken from the page address");
  },

  async echo() {
    await connect();
    await logLine("open", "accepted the upgrade");
    await logLine("greeting", "Hello alice");
    await page.locator("#message").fill("hi from Chromium");
    await page.locator("#message").press("Enter");
    await logLine("sent", "hi from Chromium");
    await logLine("received", "Message text was: hi from Chromium");
    check(await status() === "connected", "the status is not 'connected'");
    await page.screenshot({ path: env("WSAUTH_SCREENSHOT"), fullPage: true });
    await page.locator("#disconnect").click();
    await logLine("close", "1000 normal closure");
    check(await status() === "disconnected", "the status is not 'disconnected' after closing");
  },

  async refused() {
    await connect();
    const line = await logLine("refused", "the server refused the upgrade");
    check(line.includes("1006"), "the refusal does not name close code 1006");
    check(await status() === "failed", "the status does not show the failure");
    // The page cannot see the HTTP status, but the browser console tells it
    // (Chromium words a 401 with a Bearer challenge as an authentication failure).
    const httpStatus = env("WSAUTH_EXPECT");
    const said = httpStatus === "401"
      ? "HTTP Authentication failed"
      : `Unexpected response code: ${httpStatus}`;
    check(consoleErrors.some((e) => e.includes(said)), `the console does not say "${said}"`);
    consoleErrors.splice(0, consoleErrors.length, ...consoleErrors.filter((e) => !e.includes(said)));
  },

  async closed() {
    await connect();
    await logLine("open", "accepted the upgrade");
    const [code, reason] = env("WSAUTH_EXPECT").split(/ (.*)/);
    const line = await logLine("close", code);
    check(line.includes(`"${reason}"`), `the close does not show the reason "${reason}": ${line}`);
    check(await status() === "failed", "the status does not show the failure");
  },
};

let failure = null;
try {
  check(scenarios[scenario], `unknown scenario "${scenario}"`);
  const url = `${env("WSAUTH_PAGE_URL")}#token=${encodeURIComponent(env("WSAUTH_TOKEN"))}`;
  const response = await page.goto(url);
  check(response.ok(), `the page answered ${response.status()}`);
  await scenarios[scenario](response);
  check(pageErrors.length === 0, `script errors: ${pageErrors.join("; ")}`);
  check(consoleErrors.length === 0, `console errors: ${consoleErrors.join("; ")}`);
  const violations = await page.evaluate(() => window.cspViolations);
  check(violations.length === 0, `CSP violations: ${violations.join("; ")}`);
  if (scenario !== "echo") await page.screenshot({ path: env("WSAUTH_SCREENSHOT"), fullPage: true });
} catch (error) {
  failure = error.message;
}
const log = await page
  .$$eval("#log li", (items) => items.map((li) => [...li.children].map((c) => c.textContent).join("  ")).join("\n"))
  .catch(() => "(no page)");
await browser.close();
if (failure) {
  console.error(`page log:\n${log}\nconsole: ${JSON.stringify(consoleErrors)}`);
  fail(failure);
}
console.log(`PASS ${scenario}\n${log}`);
