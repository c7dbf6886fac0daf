// Browser test of the demo page: starts the real booking-server on fresh databases and drives
// headless Chromium (Debian's /usr/bin/chromium through playwright-core) through the journey.
//
//   node tests/browser/journey.mjs [--update-docs]
//
// Environment: BOOKING_SERVER (the binary; default: `cargo build --bin booking-server`, then
// target/debug/booking-server), CHROMIUM (default /usr/bin/chromium), ARTIFACTS_DIR (default
// artifacts/browser: screenshots and server logs). --update-docs also copies the seat-map
// screenshot to docs/seat-map.png (the README's picture).
//
// Prints one line per test and, last, "browser: N passed, M failed"; exits 1 on any failure.

import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const ART = path.resolve(process.env.ARTIFACTS_DIR || path.join(ROOT, "artifacts", "browser"));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const UPDATE_DOCS = process.argv.includes("--update-docs");
const DEADLINE_MS = 5 * 60 * 1000; // the whole run, whatever happens
const STEP_MS = 15000; // one expectation
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const servers = [];
const tmpDirs = [];
let browser = null;

// ---------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function log(line) {
  process.stdout.write(`${line}\n`);
}

/** Polls `fn` until it returns something truthy; fails naming `what` after `ms`. */
async function until(what, fn, ms = STEP_MS) {
  const end = Date.now() + ms;
  let last = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = null;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (${last.message.split("\n")[0]})` : ""}`);
    }
    await sleep(100);
  }
}

/** Waits until the text of the first match of `selector` matches `re`; returns the text. */
async function text(page, selector, re, ms = STEP_MS) {
  let seen = "";
  try {
    return await until(`${selector} to match ${re}`, async () => {
      const loc = page.locator(selector).first();
      seen = (await loc.count()) ? ((await loc.isVisible()) ? await loc.innerText() : "(hidden)") : "(absent)";
      return re.test(seen) ? seen : null;
    }, ms);
  } catch (e) {
    throw new Error(`${e.message}; it reads: ${JSON.stringify(seen.slice(0, 300))}`);
  }
}

async function visible(page, selector, ms = STEP_MS) {
  await page.locator(selector).first().waitFor({ state: "visible", timeout: ms });
}

const seat = (page, n) => page.getByRole("button", { name: new RegExp(`^Seat ${n}, `) });

/** Waits until seat n's accessible label ends with `status` (e.g. "available", "held by you"). */
async function seatIs(page, n, status, ms = STEP_MS) {
  let label = "";
  try {
    await until(`seat ${n} to be ${status}`, async () => {
      label = (await seat(page, n).getAttribute("aria-label", { timeout: 1000 })) || "";
      return label.endsWith(`, ${status}`);
    }, ms);
  } catch (e) {
    throw new Error(`${e.message}; its label is ${JSON.stringify(label)}`);
  }
}

async function toast(page, re, ms = STEP_MS) {
  return text(page, "#toast-text", re, ms);
}

async function shot(page, name, opts = {}) {
  const file = path.join(ART, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true, ...opts });
  return file;
}

/** A visitor: a fresh browser context (own storage) with one page; page errors fail the test. */
async function visitor(name, viewport) {
  const context = await browser.newContext({ viewport, locale: "en-US", timezoneId: "Asia/Seoul" });
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(`${name}: ${e.message}`));
  page.on("console", (m) => {
    // A 4xx answer is logged by Chromium as a failed resource: those are the scenario's own.
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) page.errors.push(`${name}: console: ${m.text()}`);
  });
  page.visitorName = name;
  return page;
}

async function choose(page, listSelector, re) {
  await page.locator(`${listSelector} button`).filter({ hasText: re }).first().click();
}

/** The holds-panel card of seat n. */
const holdCard = (page, n) => page.locator("#holds-list li").filter({ hasText: new RegExp(`^Seat ${n} ·`) });

// ---------------------------------------------------------------------------------------------
// The server

function serverBinary() {
  if (process.env.BOOKING_SERVER) return path.resolve(process.env.BOOKING_SERVER);
  log("browser: building booking-server (cargo build --bin booking-server)");
  execFileSync("cargo", ["build", "--quiet", "--bin", "booking-server"], { cwd: ROOT, stdio: "inherit" });
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, "target");
  return path.join(target, "debug", "booking-server");
}

/** Starts booking-server --demo on a fresh database; resolves to {url, out}. */
async function startServer(bin, name, flags) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "booking-browser-"));
  tmpDirs.push(dir);
  const args = ["--db", path.join(dir, "booking.db"), "--addr", "127.0.0.1:0", "--demo", ...flags];
  const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  const srv = { name, proc, out: "", err: "" };
  servers.push(srv);
  proc.stdout.on("data", (d) => (srv.out += d));
  proc.stderr.on("data", (d) => (srv.err += d));
  const exited = new Promise((r) => proc.on("exit", (code, sig) => r(`exited (${code ?? sig})`)));
  const up = until(`${name} to print its address`, () => /openapi\.json/.test(srv.out), 20000);
  const first = await Promise.race([up, exited]);
  if (typeof first === "string") throw new Error(`${name}: booking-server ${first}: ${srv.err.trim()}`);
  const m = srv.out.split("\n")[0].match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
  if (!m) throw new Error(`${name}: no address on the first line: ${srv.out}`);
  srv.url = `${m[1]}/`;
  log(`browser: ${name}: booking-server ${flags.join(" ")} at ${srv.url}`);
  return srv;
}

function stopServers() {
  for (const s of servers) {
    if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill("SIGTERM");
  }
}

function saveServerLogs() {
  for (const s of servers) {
    fs.writeFileSync(path.join(ART, `${s.name}.log`), `${s.out}\n--- stderr ---\n${s.err}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The scenarios

/**
 * Two visitors with max-active 1: A is let in, B waits at position 1 (and keeps it over a
 * reload); A holds two seats, is told points are short, charges, pays for one; that ends A's
 * turn, which lets B in. B sees A's sold and held seats, holds one, loses a race for A's held
 * seat (409), sees it turn sold when A pays for it too, then charges, pays, and sees the ticket.
 */
async function twoVisitors(bin) {
  const srv = await startServer(bin, "journey", ["--max-active", "1", "--hold-ttl", "3m", "--active-ttl", "5m", "--idle-timeout", "1m"]);
  if (!srv.out.includes(`open ${srv.url} in a browser`)) throw new Error(`--demo does not print the page's URL:\n${srv.out}`);
  const a = await visitor("A", PHONE);
  const b = await visitor("B", DESKTOP);
  const pages = [a, b];
  try {
    // A joins and is let in at once.
    await a.goto(srv.url);
    await text(a, "#turn", /^Not in the queue$/);
    await shot(a, "00-welcome-phone");
    await a.getByRole("button", { name: "Join the queue" }).click();
    await visible(a, "#catalog");
    await text(a, "#turn", /^Your turn · \d+:\d\d left$/);

    // B joins and waits at position 1; a reload keeps the place.
    await b.goto(srv.url);
    await b.getByRole("button", { name: "Join the queue" }).click();
    await visible(b, "#waiting");
    await text(b, "#position", /^1$/);
    await text(b, "#eta", /about \d+ min|under a minute/);
    await text(b, "#turn", /^Waiting · position 1$/);
    await shot(b, "01-waiting-room-desktop");
    await b.reload();
    await text(b, "#position", /^1$/);
    await text(b, "#waiting-note", /You are next/);
    await b.setViewportSize(PHONE);
    await shot(b, "02-waiting-room-phone");
    await b.setViewportSize(DESKTOP);

    // B's tab hidden for long: polling stops; visible again: it resumes at once.
    const polls = [];
    b.on("request", (r) => {
      if (r.method() === "GET" && new URL(r.url()).pathname === "/token") polls.push(Date.now());
    });
    await b.evaluate(() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
      document.dispatchEvent(new Event("visibilitychange"));
      state.hiddenSince = Date.now() - 61000; // as if hidden for over a minute
    });
    await text(b, "#waiting-note", /Paused while this tab is in the background/, 6000);
    const pausedAt = polls.length;
    await sleep(3500);
    if (polls.length !== pausedAt) throw new Error("GET /token went on while the tab was hidden");
    await b.evaluate(() => {
      delete document.hidden;
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await until("a poll once the tab is visible", () => polls.length > pausedAt, 2000);
    await text(b, "#waiting-note", /You are next/);

    // A: concert, date (priced sections), two seats: one by mouse, one by keyboard.
    await choose(a, "#concerts", /Aurora Strings/);
    await visible(a, "#dates button");
    await text(a, "#dates", /50 of 50 seats left/);
    await a.locator("#dates button").first().click();
    await visible(a, "#seatmap .seat");
    const sectionTitles = await a.locator("#seatmap h3.section-title").allInnerTexts();
    if (sectionTitles.length !== 3 || !/Section A · seats 1–10 · 150,000 points/.test(sectionTitles[0])) {
      throw new Error(`expected three priced sections, saw ${JSON.stringify(sectionTitles)}`);
    }
    await seatIs(a, 3, "available");
    if ((await seat(a, 12).getAttribute("aria-label")) !== "Seat 12, 110,000 points, available") {
      throw new Error(`seat 12's label: ${await seat(a, 12).getAttribute("aria-label")}`);
    }
    await seat(a, 3).click();
    await toast(a, /Seat 3 is yours until/);
    await seatIs(a, 3, "held by you");
    await text(a, "#holds-list", /Seat 3 ·[\s\S]*Held for you: \d+:\d\d left/);
    await seat(a, 4).focus();
    await a.keyboard.press("Enter");
    await seatIs(a, 4, "held by you");
    await text(a, "#seat-info", /^Seat 4 · Section A · 150,000 points · held by you$/);
    await text(a, "#dates", /48 of 50 seats left/);
    await text(a, "#holds-jump", /You hold 2 seats: pay below/);
    await text(a, "#turn", /Your turn/);

    // A: paying with no points is refused with a clear message; the wallet suggests the amount.
    await holdCard(a, 3).getByRole("button", { name: /^Pay 150,000 points$/ }).click();
    await toast(a, /Not enough points: seat 3 costs 150,000 points and your balance is 0 points/);
    await text(a, "#charge-hint", /You need 300,000 points more/);
    const suggested = await a.locator("#charge-amount").inputValue();
    if (suggested !== "300000") throw new Error(`the charge amount suggested is ${JSON.stringify(suggested)}`);
    await a.getByRole("button", { name: "Charge", exact: true }).click();
    await text(a, "#balance", /^300,000 points$/);
    await toast(a, /Charged 300,000 points/);
    await shot(a, "03-holds-and-wallet-phone");

    // A pays for seat 3: a ticket, the history, and the turn is over (which lets B in).
    await holdCard(a, 3).getByRole("button", { name: /^Pay 150,000 points$/ }).click();
    await toast(a, /Paid! Seat 3 \(Aurora Strings: Winter Gala/);
    await text(a, "#tickets-list", /Seat 3 ·[\s\S]*Paid/);
    await visible(a, "#over");
    await text(a, "#over-text", /Paying ends your turn in the waiting room, so the next person in line has been let in/);
    await text(a, "#over-text", /You can still pay for the seats you hold/);
    await text(a, "#turn", /^Turn over$/);
    await text(a, "#balance", /^150,000 points$/);
    await shot(a, "04-paid-phone");

    // B is let in, and sees A's seats: 3 sold, 4 held by someone else.
    await visible(b, "#catalog", 20000);
    await toast(b, /It's your turn/);
    await choose(b, "#concerts", /Aurora Strings/);
    await b.locator("#dates button").first().click();
    await seatIs(b, 3, "sold");
    await seatIs(b, 4, "held by someone else");
    await text(b, "#dates", /48 of 50 seats left/);
    await seat(b, 5).click();
    await seatIs(b, 5, "held by you");
    await b.locator("#seatmap").hover({ position: { x: 5, y: 5 } }); // no seat under the mouse
    await seat(b, 12).hover();
    await text(b, "#seat-info", /Seat 12 · Section B · 110,000 points · available/);
    await b.getByRole("button", { name: "Dismiss message" }).click();
    const mapShot = await shot(b, "05-seat-map-desktop");
    await b.setViewportSize(PHONE);
    await shot(b, "06-seat-map-phone");
    await b.setViewportSize(DESKTOP);
    if (UPDATE_DOCS) {
      fs.mkdirSync(path.join(ROOT, "docs"), { recursive: true });
      fs.copyFileSync(mapShot, path.join(ROOT, "docs", "seat-map.png"));
      log("browser: updated docs/seat-map.png");
    }

    // A race B loses: B's map is stale (seat 4 shown available); the server answers 409.
    const seatsRoute = /\/concerts\/\d+:\d+$/;
    await b.route(seatsRoute, async (route) => {
      const resp = await route.fetch();
      const seats = await resp.json();
      for (const s of seats) if (s.number === 4) s.status = "available";
      await route.fulfill({ response: resp, json: seats });
    });
    await seatIs(b, 4, "available", 10000);
    await seat(b, 4).click();
    await toast(b, /Someone else was faster: seat 4 was just taken/);
    await shot(b, "07-someone-else-was-faster-desktop", { fullPage: false });
    await b.unroute(seatsRoute);
    await seatIs(b, 4, "held by someone else", 10000);

    // A pays for the other seat after the turn ended; B's map shows it sold.
    await holdCard(a, 4).getByRole("button", { name: /^Pay 150,000 points$/ }).click();
    await toast(a, /Paid! Seat 4/);
    await text(a, "#tickets-list", /Seat 4 ·[\s\S]*Seat 3 ·/);
    await seatIs(b, 4, "sold", 10000);
    await a.locator("#payments-box summary").click();
    await a.locator("#points-box summary").click();
    await text(a, "#payments-list", /Seat 4, Aurora Strings: Winter Gala: 150,000 points[\s\S]*Seat 3, Aurora Strings/);
    await text(a, "#points-list", /Paid −150,000 → 0 points[\s\S]*Paid −150,000 → 150,000 points[\s\S]*Charged \+300,000 → 300,000 points/);
    await shot(a, "08-history-phone");

    // B: charge what the page suggests, pay, see the ticket and that the turn is over.
    await text(b, "#charge-hint", /You need 150,000 points more/);
    await b.getByRole("button", { name: "Charge", exact: true }).click();
    await text(b, "#balance", /^150,000 points$/);
    await holdCard(b, 5).getByRole("button", { name: /^Pay 150,000 points$/ }).click();
    await toast(b, /Paid! Seat 5/);
    await text(b, "#tickets-list", /Seat 5 ·[\s\S]*Paid/);
    await text(b, "#over-text", /Paying ends your turn/);
    await text(b, ".steps li[aria-current=step]", /Ticket/);
    await shot(b, "09-ticket-desktop");

    // B joins again (same visitor: the ticket is still listed) and is let in at once.
    await b.getByRole("button", { name: "Join the queue again" }).click();
    await visible(b, "#catalog");
    await text(b, "#tickets-list", /Seat 5 ·/);
    await seatIs(b, 5, "sold to you");
  } catch (e) {
    for (const p of pages) await shot(p, `failed-journey-${p.visitorName}`).catch(() => {});
    throw e;
  } finally {
    checkErrors(pages);
    for (const p of pages) await p.context().close().catch(() => {});
  }
}

/**
 * A hold that lapses: a 4 s hold TTL and one hold per visitor. The second hold is refused
 * (hold limit), the first lapses: the page says so and the seat is released on the map.
 * A flat-priced concert shows no sections; a reload keeps the turn and the chosen date.
 */
async function lapsedHold(bin) {
  const srv = await startServer(bin, "lapse", ["--hold-ttl", "4s", "--max-holds-per-user", "1"]);
  const c = await visitor("C", DESKTOP);
  try {
    await c.goto(srv.url);
    await c.getByRole("button", { name: "Join the queue" }).click();
    await visible(c, "#catalog");
    await choose(c, "#concerts", /Jazz at Midnight/);
    await c.locator("#dates button").first().click();
    await visible(c, "#seatmap .seat");
    if (await c.locator("#seatmap h3.section-title").count()) throw new Error("a flat-priced date shows sections");
    await text(c, "#seatmap", /Every seat 55,000 points/);
    await c.reload(); // the turn and the chosen date survive a reload
    await seatIs(c, 1, "available");
    await seat(c, 1).focus();
    await c.keyboard.press("ArrowDown");
    await c.keyboard.press("ArrowRight");
    const focused = await c.evaluate(() => document.activeElement.getAttribute("aria-label"));
    if (focused !== "Seat 12, 55,000 points, available") throw new Error(`arrow keys led to ${focused}`);
    await seat(c, 1).click();
    await seatIs(c, 1, "held by you");
    await text(c, "#holds-list", /Held for you: 0:0[0-4] left/);
    await seat(c, 2).click();
    await toast(c, /You already hold as many seats as one visitor may hold/);
    await text(c, "#holds-list", /Hold lapsed — seat 1 was released/, 10000);
    await toast(c, /Your hold on seat 1 lapsed before payment; the seat was released/);
    await seatIs(c, 1, "available", 10000);
    await shot(c, "10-lapsed-hold-desktop");
    await c.setViewportSize(PHONE);
    await shot(c, "11-lapsed-hold-phone");
  } catch (e) {
    await shot(c, "failed-lapse-C").catch(() => {});
    throw e;
  } finally {
    checkErrors([c]);
    await c.context().close().catch(() => {});
  }
}

function checkErrors(pages) {
  const errors = pages.flatMap((p) => p.errors);
  if (errors.length) throw new Error(`errors in the page:\n  ${errors.join("\n  ")}`);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  fs.mkdirSync(ART, { recursive: true });
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's package (apt-get install chromium) or set CHROMIUM`);
  }
  const bin = serverBinary();
  if (!fs.existsSync(bin)) throw new Error(`no booking-server binary at ${bin}`);
  // launch() gives Chromium a fresh, temporary profile (user-data dir) of its own.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60000,
  });
  const tests = [
    ["two visitors: waiting room, hold, race, charge, pay, ticket", twoVisitors],
    ["a hold that lapses is shown as lapsed and released", lapsedHold],
  ];
  let passed = 0;
  let failed = 0;
  for (const [name, fn] of tests) {
    const t0 = Date.now();
    try {
      await fn(bin);
      passed += 1;
      log(`browser: ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed += 1;
      log(`browser: FAIL ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n  ${String(e.message || e).replace(/\n/g, "\n  ")}`);
    }
  }
  log(`browser: screenshots and server logs in ${path.relative(process.cwd(), ART) || "."} (${((Date.now() - started) / 1000).toFixed(1)} s in all)`);
  return [passed, failed];
}

async function cleanup() {
  stopServers();
  if (browser) await browser.close().catch(() => {});
  await sleep(300);
  for (const s of servers) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill("SIGKILL");
  try {
    saveServerLogs();
  } catch (e) {
    /* the artifacts directory is gone: nothing to keep */
  }
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
}

const deadline = setTimeout(async () => {
  log(`browser: FAIL the run took longer than ${DEADLINE_MS / 1000} s`);
  await cleanup();
  log("browser: 0 passed, 1 failed");
  process.exit(1);
}, DEADLINE_MS);

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    await cleanup();
    process.exit(1);
  });
}

let result;
try {
  result = await main();
} catch (e) {
  log(`browser: FAIL ${e.message || e}`);
  result = [0, 1];
}
await cleanup();
clearTimeout(deadline);
log(`browser: ${result[0]} passed, ${result[1]} failed`);
process.exit(result[1] ? 1 : 0);
