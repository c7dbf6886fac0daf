// Browser test of the demo page: starts the real booking-server on fresh databases and drives
// headless Chromium (Debian's /usr/bin/chromium through playwright-core) through the journey.
//
//   node tests/browser/journey.mjs [--update-docs]
//
// Environment: BOOKING_SERVER (the binary; default: `cargo build --bin booking-server --bin
// booking-cli`, then target/debug/booking-server), BOOKING_CLI (default: booking-cli beside
// BOOKING_SERVER; it prepares a database before a server starts), CHROMIUM (default
// /usr/bin/chromium), ARTIFACTS_DIR (default artifacts/browser: screenshots and server logs).
// --update-docs also copies the seat-map screenshot to docs/seat-map.png (the README's picture).
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

/** Requests for a seat map: the whole map, or (with ?since=) what changed. */
const SEAT_MAP = /\/concerts\/\d+:\d+(\?since=[^&]*)?$/;

/**
 * Makes the page's seat map stale: seat n is shown available whatever it is. Every seat map
 * request is answered with every seat (n forged) and a version the server never had, so that
 * the page's refreshes keep getting the forged map; once the returned function has put the
 * server back, the page's next refresh (from that unknown version) gets every seat as it is.
 */
async function staleSeat(page, n) {
  const forge = async (route) => {
    const asked = new URL(route.request().url());
    const url = new URL(asked);
    url.searchParams.set("since", "stale"); // unknown to the server: every seat
    const headers = { ...route.request().headers() };
    delete headers["if-none-match"];
    const resp = await route.fetch({ url: url.toString(), headers });
    if (resp.status() !== 200) return route.fulfill({ response: resp });
    const { seats } = await resp.json();
    for (const s of seats) if (s.number === n) s.status = "available";
    await route.fulfill({
      status: 200,
      headers: { ETag: '"stale"' },
      json: asked.searchParams.has("since") ? { version: "stale", seats } : seats,
    });
  };
  await page.route(SEAT_MAP, forge);
  return () => page.unroute(SEAT_MAP, forge);
}

/** The holds-panel card of seat n. */
const holdCard = (page, n) => page.locator("#holds-list li").filter({ hasText: new RegExp(`^Seat ${n} ·`) });

// ---------------------------------------------------------------------------------------------
// The server

/** The binaries: {server, cli}. */
function binaries() {
  let server;
  if (process.env.BOOKING_SERVER) {
    server = path.resolve(process.env.BOOKING_SERVER);
  } else {
    log("browser: building booking-server and booking-cli (cargo build --bin booking-server --bin booking-cli)");
    execFileSync("cargo", ["build", "--quiet", "--bin", "booking-server", "--bin", "booking-cli"], { cwd: ROOT, stdio: "inherit" });
    const target = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, "target");
    server = path.join(target, "debug", "booking-server");
  }
  const cli = process.env.BOOKING_CLI ? path.resolve(process.env.BOOKING_CLI) : path.join(path.dirname(server), "booking-cli");
  for (const b of [server, cli]) if (!fs.existsSync(b)) throw new Error(`no binary at ${b}`);
  return { server, cli };
}

/** Runs booking-cli --json on a database; returns its JSON answer. */
function cli(bin, db, ...args) {
  const out = execFileSync(bin.cli, ["--db", db, "--json", ...args], { encoding: "utf8" });
  return JSON.parse(out);
}

/**
 * Starts booking-server --demo on a fresh database (which `prepare(db)` may fill first, say
 * with booking-cli); resolves to {url, out}.
 */
async function startServer(bin, name, flags, prepare = null) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "booking-browser-"));
  tmpDirs.push(dir);
  const db = path.join(dir, "booking.db");
  if (prepare) prepare(db);
  const args = ["--db", db, "--addr", "127.0.0.1:0", "--demo", ...flags];
  const proc = spawn(bin.server, args, { stdio: ["ignore", "pipe", "pipe"] });
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
  srv.db = db;
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
    await text(a, "#selection-count", /^Select up to 4 seats, then hold them together\.$/);
    await seat(a, 3).click();
    await seatIs(a, 3, "selected");
    await text(a, "#selection-count", /^1 of 4 selected: seat 3 · 150,000 points$/);
    await seat(a, 4).focus();
    await a.keyboard.press("Enter");
    await seatIs(a, 4, "selected");
    await text(a, "#selection-count", /^2 of 4 selected: seats 3 and 4 · 300,000 points$/);
    await a.getByRole("button", { name: "Hold 2 seats" }).click();
    await toast(a, /Seats 3 and 4 are yours until/);
    await seatIs(a, 3, "held by you");
    await seatIs(a, 4, "held by you");
    await text(a, "#holds-list", /Seat 3 ·[\s\S]*Held for you: \d+:\d\d left/);
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
    await b.getByRole("button", { name: "Hold 1 seat" }).click();
    await toast(b, /Seat 5 is yours until/);
    await seatIs(b, 5, "held by you");
    // Two more seats selected for the picture, then the selection is cleared.
    await seat(b, 13).click();
    await seat(b, 14).click();
    await seatIs(b, 14, "selected");
    await text(b, "#selection-count", /^2 of 3 selected: seats 13 and 14 · 220,000 points$/);
    await b.locator("#seatmap").hover({ position: { x: 5, y: 5 } }); // no seat under the mouse
    await seat(b, 12).hover();
    await text(b, "#seat-info", /Seat 12 · Section B · 110,000 points · available/);
    await b.getByRole("button", { name: "Dismiss message" }).click();
    const mapShot = await shot(b, "05-seat-map-desktop");
    await b.setViewportSize(PHONE);
    await shot(b, "06-seat-map-phone");
    await b.setViewportSize(DESKTOP);
    await b.getByRole("button", { name: "Clear", exact: true }).click();
    await seatIs(b, 13, "available");
    await seatIs(b, 14, "available");
    if (UPDATE_DOCS) {
      fs.mkdirSync(path.join(ROOT, "docs"), { recursive: true });
      fs.copyFileSync(mapShot, path.join(ROOT, "docs", "seat-map.png"));
      log("browser: updated docs/seat-map.png");
    }

    // A race B loses: B's map is stale (seat 4 shown available); the server answers 409.
    const fresh = await staleSeat(b, 4);
    await seatIs(b, 4, "available", 10000);
    await seat(b, 4).click();
    await b.getByRole("button", { name: "Hold 1 seat" }).click();
    await toast(b, /Someone else was faster: seat 4 was just taken/);
    await seatIs(b, 4, "available"); // (the stale map) but no longer selected
    await shot(b, "07-someone-else-was-faster-desktop", { fullPage: false });
    await fresh();
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
 * Two visitors on the same date's map. A's page fetches the map whole once, then asks only for
 * what changed (`?since=`, with If-None-Match: a 304 while nothing did). B holds seat 7: A's
 * page, never reloaded (a mark left on its window survives, no navigation), shows it held by
 * someone else within the refresh period, redrawing that seat in place; B releases it: A sees it
 * available again. A made one whole-map request, and no diff carried the whole map.
 */
async function liveMap(bin) {
  const REFRESH_MS = 4000; // the page's refresh period (web/app.js)
  const srv = await startServer(bin, "live", []);
  const a = await visitor("A", DESKTOP);
  const b = await visitor("B", PHONE);
  const pages = [a, b];
  const whole = [];
  const diffs = [];
  const bodies = [];
  let notModified = 0;
  let navigations = 0;
  a.on("request", (r) => {
    const url = new URL(r.url());
    if (r.method() !== "GET" || !/^\/concerts\/\d+:\d+$/.test(url.pathname)) return;
    if (!url.searchParams.has("since")) return whole.push(url.pathname);
    diffs.push([url.searchParams.get("since"), r.headers()["if-none-match"] || null]);
  });
  a.on("response", (r) => {
    const url = new URL(r.url());
    if (!/^\/concerts\/\d+:\d+$/.test(url.pathname) || !url.searchParams.has("since")) return;
    if (r.status() === 304) notModified += 1;
    else if (r.status() === 200) bodies.push(r.json().catch(() => null));
  });
  a.on("framenavigated", (f) => {
    if (f === a.mainFrame()) navigations += 1;
  });
  try {
    for (const p of pages) {
      await p.goto(srv.url);
      await p.getByRole("button", { name: "Join the queue" }).click();
      await visible(p, "#catalog");
      await choose(p, "#concerts", /Aurora Strings/);
      await p.locator("#dates button").first().click();
      await seatIs(p, 7, "available");
    }
    const loaded = navigations;
    await a.evaluate(() => {
      window.stillThisPage = true;
      document.querySelector('#seatmap button[aria-label^="Seat 7,"]').keptInPlace = true;
    });

    // B holds seat 7: A's page shows it held by someone else, without a reload.
    await seat(b, 7).click();
    await b.getByRole("button", { name: "Hold 1 seat" }).click();
    await seatIs(b, 7, "held by you");
    const held = Date.now();
    await seatIs(a, 7, "held by someone else", REFRESH_MS + 2000);
    const after = Date.now() - held;
    const kept = await a.evaluate(() => ({
      page: window.stillThisPage === true,
      seat: document.querySelector('#seatmap button[aria-label^="Seat 7,"]').keptInPlace === true,
    }));
    if (!kept.page || navigations !== loaded) throw new Error("A's page was loaded again");
    if (!kept.seat) throw new Error("A's map was drawn anew rather than seat 7 updated in place");
    await shot(a, "22-seat-held-elsewhere-desktop", { fullPage: false });

    // B releases it: A sees it available again.
    await holdCard(b, 7).getByRole("button", { name: "Release seat 7" }).click();
    await seatIs(b, 7, "available");
    await seatIs(a, 7, "available", REFRESH_MS + 2000);
    await until("a 304 for an unchanged map", () => notModified > 0, REFRESH_MS + 2000);

    // One whole map, then only diffs, each from a version with its ETag; none the whole map.
    if (whole.length !== 1) throw new Error(`A fetched the whole map ${whole.length} times: ${whole.join(", ")}`);
    if (!diffs.length) throw new Error("A never asked for what changed (?since=)");
    // A version: one counter, or 32 (one per slot) joined by "-", then "." and the last lapse.
    const odd = diffs.filter(([since, tag]) => !/^\d+(?:(?:-\d+){31})?\.\d+$/.test(since) || tag !== `"${since}"`);
    if (odd.length) throw new Error(`diffs asked as ${JSON.stringify(odd)}`);
    const sizes = (await Promise.all(bodies)).filter(Boolean).map((d) => d.seats.length);
    if (!sizes.some((n) => n > 0) || sizes.some((n) => n > 2)) throw new Error(`A's diffs carried ${JSON.stringify(sizes)} seats`);
    log(`browser:      A saw B's hold after ${(after / 1000).toFixed(1)} s; 1 whole map, ${diffs.length} diffs asked, ${notModified} of them 304`);
  } catch (e) {
    for (const p of pages) await shot(p, `failed-live-${p.visitorName}`).catch(() => {});
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
    await c.getByRole("button", { name: "Hold 1 seat" }).click();
    await seatIs(c, 1, "held by you");
    await text(c, "#holds-list", /Held for you: 0:0[0-4] left/);
    await seat(c, 2).click();
    await c.getByRole("button", { name: "Hold 1 seat" }).click();
    await toast(c, /You already have as many tickets for this date as one visitor may have \(1, held and paid together\)/);
    await seatIs(c, 2, "available");
    await text(c, "#selection-count", /^You have 1 ticket for this date, the most one visitor may have/);
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

/** A small client of the API for the scenario's other visitors: resolves to the JSON answer. */
async function call(srv, method, route, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(new URL(route, srv.url), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

/** The time `iso` as the page shows it in Seoul: "8:00 PM GMT+9 on Sat, Dec 5, 2026". */
function seoulTime(iso) {
  const opts = { timeZone: "Asia/Seoul" };
  const hour = new Intl.DateTimeFormat("en-US", { ...opts, hour: "numeric", minute: "2-digit", timeZoneName: "short" });
  const day = new Intl.DateTimeFormat("en-US", { ...opts, weekday: "short", month: "short", day: "numeric", year: "numeric" });
  return `${hour.format(new Date(iso))} on ${day.format(new Date(iso))}`;
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The order lifecycle, one visitor (D) on a 2-minute hold TTL. Another visitor (E, over the
 * API) holds seat 25. D selects 24 and 25 on a stale map and loses the race for both (all or
 * none); selects 21, 22 and 24 (the limit of 4 shown and kept), holds them together, releases
 * 24, extends 21 (its countdown restarts; a second extension is refused), charges and pays for
 * both in one payment, cancels 22 for a refund (fee kept), sees the refund in the wallet and
 * payment histories, and, back in the queue, seat 22 available again. A date whose sale opens
 * in three days (made with booking-cli before the server starts) shows when, and its seats
 * cannot be selected.
 */
async function lifecycle(bin) {
  const day = 86400000;
  const minute = (ms) => new Date(Math.floor(ms / 60000) * 60000).toISOString();
  const opensAt = minute(Date.now() + 3 * day);
  const srv = await startServer(bin, "lifecycle", ["--hold-ttl", "2m"], (db) => {
    cli(bin, db, "seed", "demo");
    const neon = cli(bin, db, "concert", "list").find((c) => c.title === "Neon Tide Live");
    const startsAt = `${new Date(Date.now() + 21 * day).toISOString().slice(0, 10)}T19:30:00+09:00`;
    cli(bin, db, "showtime", "add", "--concert", String(neon.id), "--starts-at", startsAt, "--seats", "20", "--price", "66000", "--sale-opens-at", opensAt);
  });
  const d = await visitor("D", DESKTOP);
  try {
    // E, over the API, holds seat 25 of Aurora Strings' first date.
    const e = await call(srv, "POST", "/token", { body: {} });
    const [first] = await call(srv, "GET", "/concerts/1", { token: e.token });
    const seats = await call(srv, "GET", `/concerts/1:${first.id}`, { token: e.token });
    const s25 = seats.find((x) => x.number === 25);
    await call(srv, "POST", "/tickets", { token: e.token, body: { showtime_id: first.id, seat_ids: [s25.id] } });

    await d.goto(srv.url);
    await d.getByRole("button", { name: "Join the queue" }).click();
    await visible(d, "#catalog");
    await choose(d, "#concerts", /Aurora Strings/);
    await d.locator("#dates button").first().click();
    await seatIs(d, 25, "held by someone else");

    // A stale map shows seat 25 available: holding 24 and 25 together fails for both.
    const fresh = await staleSeat(d, 25);
    await seatIs(d, 25, "available", 10000);
    await seat(d, 24).click();
    await seat(d, 25).click();
    await text(d, "#selection-count", /^2 of 4 selected: seats 24 and 25 · 220,000 points$/);
    await d.getByRole("button", { name: "Hold 2 seats" }).click();
    await toast(d, /Someone else was faster: seat 25 was just taken, so none of the 2 seats were held\. Seat 25 is no longer selected/);
    await seatIs(d, 24, "selected");
    await text(d, "#selection-count", /^1 of 4 selected: seat 24 ·/);
    await shot(d, "12-several-seats-refused-desktop", { fullPage: false });
    await fresh();
    await seatIs(d, 25, "held by someone else", 10000);
    if (await d.locator("#holds-list li").count()) throw new Error("a refused hold of two seats held one");

    // Up to the limit: 21 (mouse), 22 (keyboard, Space) and 23 make four; a fifth is refused;
    // 23 deselected again.
    await seat(d, 21).click();
    await seat(d, 22).focus();
    await d.keyboard.press("Space");
    await seat(d, 23).click();
    await text(d, "#selection-count", /^4 of 4 selected: seats 21, 22, 23 and 24 · 440,000 points$/);
    await seat(d, 26).click();
    await toast(d, /You can pick at most 4 seats for this date/);
    await seatIs(d, 26, "available");
    await seat(d, 23).click();
    await seatIs(d, 23, "available");
    await text(d, "#selection-count", /^3 of 4 selected: seats 21, 22 and 24 · 330,000 points$/);
    await d.reload(); // the selection survives a reload
    await seatIs(d, 22, "selected");
    await text(d, "#selection-count", /^3 of 4 selected: seats 21, 22 and 24 · 330,000 points$/);
    await d.getByRole("button", { name: "Hold 3 seats" }).click();
    await toast(d, /^Seats 21, 22 and 24 are yours until/);
    for (const n of [21, 22, 24]) await seatIs(d, n, "held by you");
    await until("three hold cards", async () => (await d.locator("#holds-list li.hold").count()) === 3);
    await text(d, "#selection-count", /^Select up to 1 more seat \(4 per visitor for each date; you have 3\)\.$/);
    await text(d, "#pay-all", /^Pay for all \(3\) · 330,000 points$/);
    await shot(d, "13-three-holds-desktop");

    // Release 24: available again at once, listed as released.
    await holdCard(d, 24).getByRole("button", { name: "Release seat 24" }).click();
    await toast(d, /^Seat 24 released: it is available to others again\.$/);
    await seatIs(d, 24, "available");
    await until("two hold cards", async () => (await d.locator("#holds-list li.hold").count()) === 2);
    await text(d, "#tickets-list", /Seat 24 ·[\s\S]*Released — you gave this seat back/);

    // Extend 21: held_until moves later and its countdown restarts; 22's does not move.
    const leftOf = async (n) => {
      const [m, sec] = (await holdCard(d, n).locator(".time-left").innerText()).split(":").map(Number);
      return m * 60 + sec;
    };
    const untilOf = (n) => holdCard(d, n).locator(".time-left").getAttribute("data-until");
    await until("seat 21's countdown to run", async () => (await leftOf(21)) <= 118, 8000);
    const before = { until: await untilOf(21), left: await leftOf(21), until22: await untilOf(22) };
    await holdCard(d, 21).getByRole("button", { name: "Extend the hold on seat 21" }).click();
    await toast(d, /^The hold on seat 21 was extended: it is yours until/);
    await until("seat 21's held_until to move later", async () => Date.parse(await untilOf(21)) > Date.parse(before.until) + 1000);
    const after = await leftOf(21);
    if (after <= before.left || after < 118) throw new Error(`seat 21's countdown went from ${before.left} s to ${after} s`);
    if ((await untilOf(22)) !== before.until22) throw new Error("extending seat 21 moved seat 22's hold");
    await text(d, "#holds-list", /Seat 21 ·[\s\S]*Extended once\./);
    // A second extension is past the limit (one by default): refused, then the button says so.
    await holdCard(d, 21).getByRole("button", { name: "Extend the hold on seat 21" }).click();
    await toast(d, /The hold on seat 21 can't be extended again: pay for it before the countdown ends/);
    const used = holdCard(d, 21).getByRole("button", { name: "Can't extend the hold on seat 21 again" });
    await until("the extend button to be disabled", () => used.isDisabled());
    await text(d, "#holds-list", /Seat 21 ·[\s\S]*Extended as often as a hold may be/);
    await d.reload(); // and so does what the page learnt about it
    await until("the extend button to stay disabled", () => used.isDisabled());
    await shot(d, "14-extended-hold-desktop");

    // Charge what is due, and pay for both holds at once: one payment of two tickets.
    await text(d, "#charge-hint", /You need 220,000 points more/);
    await d.getByRole("button", { name: "Charge", exact: true }).click();
    await text(d, "#balance", /^220,000 points$/);
    await d.getByRole("button", { name: /^Pay for all \(2\) · 220,000 points$/ }).click();
    await toast(d, /^Paid! One payment of 220,000 points for seats 21 and 22: they are yours/);
    await text(d, "#tickets-list", /Seat 22 ·[\s\S]*Paid[\s\S]*Seat 21 ·[\s\S]*Paid[\s\S]*Seat 24 ·[\s\S]*Released/);
    await visible(d, "#over");
    await text(d, "#balance", /^0 points$/);
    await d.locator("#payments-box summary").click();
    await d.locator("#points-box summary").click();
    await text(d, "#payments-list", /^Seats 21 and 22, Aurora Strings: Winter Gala: 220,000 points/);
    if ((await d.locator("#payments-list li").count()) !== 1) throw new Error("paying for two holds made more than one payment");

    // Cancel 22 for a refund: asked to confirm, then the refund (less the 10 % fee).
    const card22 = d.locator("#tickets-list li").filter({ hasText: /^Seat 22 ·/ });
    await card22.getByRole("button", { name: "Cancel for refund: seat 22" }).click();
    await text(d, "#tickets-list", /Cancel seat 22\? Its price comes back to your wallet, less a cancellation fee/);
    const focused = await d.evaluate(() => document.activeElement.textContent);
    if (focused !== "Yes, cancel seat 22") throw new Error(`the confirmation has focus on ${JSON.stringify(focused)}`);
    await card22.getByRole("button", { name: "Yes, cancel seat 22" }).click();
    await toast(d, /^Seat 22 cancelled: 99,000 points refunded \(a fee of 11,000 points was kept\)\. Your balance is 99,000 points\.$/);
    await text(d, "#tickets-list", /Seat 21 ·[\s\S]*Paid[\s\S]*Seat 22 ·[\s\S]*Cancelled — 99,000 points refunded, a fee of 11,000 points kept/);
    await text(d, "#balance", /^99,000 points$/);
    await text(d, "#points-list", /^Refunded \+99,000 → 99,000 points[\s\S]*Paid −220,000 → 0 points[\s\S]*Charged \+220,000 → 220,000 points/);
    await text(d, "#payments-list", /^Seats 21 and 22, Aurora Strings: Winter Gala: 220,000 points · 99,000 points refunded/);
    await d.setViewportSize(PHONE);
    await shot(d, "15-cancelled-and-refunded-phone");
    await d.setViewportSize(DESKTOP);

    // Back in the queue (let in at once): seat 22 is for sale again, 21 is D's.
    await d.getByRole("button", { name: "Join the queue again" }).click();
    await visible(d, "#catalog");
    await seatIs(d, 22, "available");
    await seatIs(d, 24, "available");
    await seatIs(d, 21, "sold to you");
    await text(d, "#selection-count", /^Select up to 3 more seats \(4 per visitor for each date; you have 1\)\.$/);

    // A date whose sale has not opened: its opening time, and seats that cannot be selected.
    const holds = [];
    d.on("request", (r) => {
      if (r.method() === "POST" && new URL(r.url()).pathname === "/tickets") holds.push(r.url());
    });
    await choose(d, "#concerts", /Neon Tide Live/);
    const opening = `Sale opens at ${seoulTime(opensAt)}`;
    const later = d.locator("#dates button").filter({ hasText: opening });
    await until(`a date reading "${opening}"`, async () => (await later.count()) === 1);
    await text(d, "#dates", /50 of 50 seats left/);
    await later.click();
    await text(d, "#sale-note", new RegExp(`^${escapeRe(opening)} \\(in 3 days\\)\\. You can look at the seats now`));
    await seatIs(d, 1, "not on sale yet");
    await seatIs(d, 20, "not on sale yet");
    if (await d.locator("#selection").isVisible()) throw new Error("the selection is offered before the sale opens");
    await seat(d, 1).focus(); // (aria-disabled: a click is refused by the test driver itself)
    await d.keyboard.press("Enter");
    await toast(d, new RegExp(`^Seat 1 is not on sale yet: the sale for this date opens at ${escapeRe(seoulTime(opensAt))}\\.$`));
    await seatIs(d, 1, "not on sale yet");
    if (holds.length) throw new Error(`a hold was asked before the sale opened: ${holds.join(", ")}`);
    await shot(d, "16-sale-not-open-desktop");
  } catch (err) {
    await shot(d, "failed-lifecycle-D").catch(() => {});
    throw err;
  } finally {
    checkErrors([d]);
    await d.context().close().catch(() => {});
  }
}

/** `ms` as booking-cli takes it: RFC 3339 in whole seconds. */
const rfc3339 = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/** The opening as the page shows it in Seoul: "8:00:07 PM GMT+9 on Sat, Dec 5, 2026". */
function seoulOpening(iso) {
  const opts = { timeZone: "Asia/Seoul" };
  const withSeconds = new Date(iso).getUTCSeconds() !== 0;
  const hour = new Intl.DateTimeFormat("en-US", {
    ...opts, hour: "numeric", minute: "2-digit", ...(withSeconds ? { second: "2-digit" } : {}), timeZoneName: "short",
  });
  const day = new Intl.DateTimeFormat("en-US", { ...opts, weekday: "short", month: "short", day: "numeric", year: "numeric" });
  return `${hour.format(new Date(iso))} on ${day.format(new Date(iso))}`;
}

/** Seconds shown by a countdown "m:ss". */
const secondsOf = (t) => t.split(":").reduce((n, x) => n * 60 + Number(x), 0);

/** Counts the GET /token requests of a page. */
function countPolls(page) {
  const polls = [];
  page.on("request", (r) => {
    if (r.method() === "GET" && new URL(r.url()).pathname === "/token") polls.push(Date.now());
  });
  return polls;
}

/**
 * The opening of a sale. X (over the API) is let in before any opening is scheduled
 * (max-active 1). booking-cli then schedules the opening 7 s ahead on the running server's
 * database, and P joins: the prequeue screen says when the sale opens, counts down, explains
 * that arriving early buys nothing, survives a reload, and asks the server only now and then.
 * At the opening P's place is drawn and shown (1: P is the whole prequeue, and X's turn is
 * still on); when X pays, which ends X's turn, P is let in.
 */
async function opening(bin) {
  const srv = await startServer(bin, "opening", ["--max-active", "1"]);
  const x = await call(srv, "POST", "/token", { body: {} });
  if (x.status !== "active") throw new Error(`X was not let in at once: ${JSON.stringify(x)}`);
  const opensAt = rfc3339(Math.ceil((Date.now() + 7000) / 1000) * 1000);
  const show = cli(bin, srv.db, "queue", "open-at", opensAt);
  if (Date.parse(show.opens_at) !== Date.parse(opensAt)) throw new Error(`queue open-at answered ${JSON.stringify(show)}`);
  const p = await visitor("P", DESKTOP);
  const polls = countPolls(p);
  try {
    await p.goto(srv.url);
    await p.getByRole("button", { name: "Join the queue" }).click();
    await visible(p, "#prequeue");
    const joined = polls.length;
    await text(p, "#prequeue", new RegExp(`The sale opens at ${escapeRe(seoulOpening(opensAt))}`));
    await text(p, "#prequeue", /Arriving earlier buys nothing: at the opening, everyone who is here is placed in line in a random order/);
    const first = await text(p, "#opens-in", /^0:0[1-7]$/);
    await text(p, "#turn", /^Sale opens in 0:0\d$/);
    await shot(p, "17-prequeue-desktop");
    await p.reload(); // the entry survives a reload
    await text(p, "#opens-at", new RegExp(`^${escapeRe(seoulOpening(opensAt))}$`));
    const later = await text(p, "#opens-in", /^0:0\d$/);
    await until("the countdown to go down", async () => secondsOf(await p.locator("#opens-in").innerText()) < secondsOf(first), 3000);
    if (secondsOf(later) > secondsOf(first)) throw new Error(`the countdown went from ${first} to ${later}`);

    // The opening: P's place is drawn and shown; X is still active, so P waits.
    await text(p, "#drawn", /^Your place in line: 1 \(drawn at random at the opening\)$/, 15000);
    const inPrequeue = polls.length - joined;
    if (Date.now() < Date.parse(opensAt)) throw new Error("a place was shown before the opening");
    // A reload and the countdown's few checks, and one at the opening; nothing like every second.
    if (inPrequeue > 6) throw new Error(`${inPrequeue} GET /token before the opening`);
    await text(p, "#waiting-h", /^The sale is open: you are in line$/);
    await text(p, "#position", /^1$/);
    await text(p, "#turn", /^Waiting · position 1$/);
    await toast(p, /^The sale is open\. Your place in line: 1\.$/);
    await p.setViewportSize(PHONE);
    await shot(p, "18-place-drawn-phone");
    await p.setViewportSize(DESKTOP);

    // X pays, which ends X's turn: P is let in.
    await payOnce(srv, x.token, 30);
    await visible(p, "#catalog");
    await toast(p, /It's your turn/);
    await text(p, "#turn", /^Your turn · \d+:\d\d left$/);
  } catch (e) {
    await shot(p, "failed-opening-P").catch(() => {});
    throw e;
  } finally {
    checkErrors([p]);
    await p.context().close().catch(() => {});
  }
}

/** X, over the API, holds a seat and pays for it: that ends X's turn. */
async function payOnce(srv, token, number) {
  const [first] = await call(srv, "GET", "/concerts/1", { token });
  const seats = await call(srv, "GET", `/concerts/1:${first.id}`, { token });
  const s = seats.find((x) => x.number === number);
  const held = await call(srv, "POST", "/tickets", { token, body: { showtime_id: first.id, seat_id: s.id } });
  await call(srv, "POST", "/points", { token, body: { amount: held.price } });
  await call(srv, "POST", "/payments", { token, body: { ticket_id: held.id } });
}

/**
 * The operator's pause, and a full line (max-active 1, max-waiting 1). X (over the API) is
 * let in; P waits at position 1; Q finds the line full (503): told so, with a button to try
 * again. `booking-cli queue pause`: P's page says admission is paused and P keeps the place
 * (no estimate), even once X's turn ends; `queue resume`: P is let in, and Q, trying again,
 * gets the place in line.
 */
async function pausedAndFull(bin) {
  const srv = await startServer(bin, "pause", ["--max-active", "1", "--max-waiting", "1"]);
  const x = await call(srv, "POST", "/token", { body: {} });
  const p = await visitor("P", DESKTOP);
  const q = await visitor("Q", PHONE);
  const pages = [p, q];
  try {
    await p.goto(srv.url);
    await p.getByRole("button", { name: "Join the queue" }).click();
    await text(p, "#position", /^1$/);
    await text(p, "#eta", /about \d+ min|under a minute/);
    if (await p.locator("#paused-note").isVisible()) throw new Error("a paused note before any pause");

    // The line is full: Q is told so, and may try again.
    await q.goto(srv.url);
    await q.getByRole("button", { name: "Join the queue" }).click();
    await visible(q, "#entering");
    await text(q, "#entering-h", /^The line is full$/);
    await text(q, "#entering-text", /^The line is full, try again in a moment\.$/);
    await text(q, "#entering-later", /^This page tries again by itself in \d+ s\.$/);
    await visible(q, "#entering-retry");
    if (await q.locator("#welcome").isVisible()) throw new Error("the welcome screen is still shown");
    if (await q.locator("#toast").isVisible()) throw new Error(`a message for a full line: ${await q.locator("#toast-text").innerText()}`);
    await shot(q, "19-line-full-phone");

    // Paused: P keeps the place, with no estimate.
    const paused = cli(bin, srv.db, "queue", "pause");
    if (paused.paused !== true) throw new Error(`queue pause answered ${JSON.stringify(paused)}`);
    await visible(p, "#paused-note", 8000);
    await text(p, "#paused-note", /^Admission is paused by the organiser\. Nobody is let in for now, and you keep your place in line/);
    await text(p, "#eta", /^Paused$/);
    await text(p, "#position", /^1$/);
    await text(p, "#turn", /^Waiting · position 1 · paused$/);
    await toast(p, /^Admission is paused by the organiser\. You keep your place in line\.$/);
    await shot(p, "20-paused-desktop");
    // X's turn ends, yet nobody is let in while paused.
    await payOnce(srv, x.token, 30);
    const poll = await p.waitForResponse((r) => r.request().method() === "GET" && new URL(r.url()).pathname === "/token", { timeout: 8000 });
    if ((await poll.json()).status !== "waiting") throw new Error("P was let in while admission was paused");
    await sleep(300);
    await text(p, "#paused-note", /Admission is paused/, 1000);
    await text(p, "#position", /^1$/, 1000);

    // Resumed: P is let in.
    const resumed = cli(bin, srv.db, "queue", "resume");
    if (resumed.paused !== false) throw new Error(`queue resume answered ${JSON.stringify(resumed)}`);
    await visible(p, "#catalog", 8000);
    await toast(p, /It's your turn/);

    // Q tries again: in line now.
    await q.getByRole("button", { name: "Try again now" }).click();
    await visible(q, "#waiting");
    await text(q, "#position", /^1$/);
    await toast(q, /^You joined the queue at position 1\.$/);
  } catch (e) {
    for (const pg of pages) await shot(pg, `failed-pause-${pg.visitorName}`).catch(() => {});
    throw e;
  } finally {
    checkErrors(pages);
    for (const pg of pages) await pg.context().close().catch(() => {});
  }
}

/**
 * Entries limited per address: 12 a minute (one more every 5 s). The test's own 12 entries
 * (from the same address) use them up; R's entry is refused (429): the page says why, counts
 * down from Retry-After, and gets in by itself, with no error shown.
 */
async function rateLimited(bin) {
  const rate = 12;
  const srv = await startServer(bin, "rate", ["--enter-rate-per-ip", String(rate)]);
  const r = await visitor("R", DESKTOP);
  const posts = [];
  r.on("response", (res) => {
    if (res.request().method() === "POST" && new URL(res.url()).pathname === "/token") posts.push(res.status());
  });
  try {
    await r.goto(srv.url);
    for (let i = 0; i < rate; i += 1) await call(srv, "POST", "/token", { body: {} });
    await r.getByRole("button", { name: "Join the queue" }).click();
    const first = await text(r, "#entering-text", /^Too many people are joining from your network; trying again in [1-5] s\.$/);
    await text(r, "#entering-later", /this page joins the queue by itself/);
    if (await r.locator("#entering-retry").isVisible()) throw new Error("a retry button while the wait is known");
    await text(r, "#turn", /^Joining the queue…$/);
    await shot(r, "21-too-many-joining-desktop");
    const n = (t) => Number(t.match(/in (\d+) s/)[1]);
    if (n(first) > 1) {
      await until("the wait to count down", async () => {
        const t = await r.locator("#entering-text").innerText();
        return /in \d+ s/.test(t) && n(t) < n(first);
      }, 3000);
    }
    await visible(r, "#catalog", 12000);
    await text(r, "#turn", /^Your turn · \d+:\d\d left$/);
    if (posts[0] !== 429 || posts[posts.length - 1] !== 201) throw new Error(`POST /token answered ${posts.join(", ")}`);
    if (await r.locator("#toast[data-kind=error]").isVisible()) throw new Error(`an error: ${await r.locator("#toast-text").innerText()}`);
  } catch (e) {
    await shot(r, "failed-rate-R").catch(() => {});
    throw e;
  } finally {
    checkErrors([r]);
    await r.context().close().catch(() => {});
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
  const bin = binaries();
  // launch() gives Chromium a fresh, temporary profile (user-data dir) of its own.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60000,
  });
  const tests = [
    ["two visitors: waiting room, hold, race, charge, pay, ticket", twoVisitors],
    ["two visitors on one map: a seat held by one turns held on the other's page, by diffs, with no reload", liveMap],
    ["a hold that lapses is shown as lapsed and released", lapsedHold],
    ["several seats held at once, released, extended, paid together, cancelled for a refund; a sale not open yet", lifecycle],
    ["the opening of a sale: the prequeue counts down, then a place is drawn and the visitor let in", opening],
    ["admission paused by the organiser, then resumed; a full line", pausedAndFull],
    ["too many entries from one address: a friendly wait, then in", rateLimited],
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
