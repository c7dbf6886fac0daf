// The booking demo page: the whole journey (waiting room, seat map, selecting and holding
// several seats, releasing and extending holds, wallet, one payment for several tickets,
// cancelling a paid ticket for a refund) over the server's public HTTP API only. Plain
// JavaScript, no build step.
//
// Layout of this file: settings and state; the one place that calls the API and the one place
// that turns its errors into messages; then the queue, the catalog and seat map with its
// selection, holds, the wallet and payments, tickets and cancellation, history; then the clock
// and the page's wiring.
"use strict";

// ---------------------------------------------------------------------------------------------
// Settings and state

const POLL_WAITING_MS = 2500; // GET /token while waiting (keeps the entry alive, and admits)
const POLL_ACTIVE_MS = 10000; // GET /token while active (notices the end of the turn)
// Before a scheduled opening an entry need not poll: it asks now and then (in case the opening
// moves), more often in the last seconds, and once right at the opening, spread over a second
// so that a big prequeue does not arrive in the same instant.
const POLL_PREQUEUE_FAR_MS = 60000;
const POLL_PREQUEUE_NEAR_MS = 10000; // in the last minute
const POLL_PREQUEUE_LAST_MS = 3000; // in the last ten seconds
const OPENING_SPREAD_MS = 1000;
const FULL_RETRY_S = [20, 40, 60]; // a full line: try again by ourselves after these waits
const SEATS_REFRESH_MS = 4000; // the seat map and the dates' seats left
const HIDDEN_PAUSE_MS = 60000; // stop polling after the tab has been hidden this long
const LAPSED_SHOWN_MS = 15 * 60 * 1000; // lapsed holds stay listed this long
const SEATS_PER_PAGE = 500; // larger showtimes get a page picker
const STORE_KEY = "booking-demo"; // localStorage: token, user id, position when joined, prequeued
const PICK_KEY = "booking-demo-pick"; // sessionStorage: the chosen concert and date
const NAMES_KEY = "booking-demo-names"; // localStorage: concert titles and dates, for tickets
const NOTES_KEY = "booking-demo-notes"; // localStorage: extensions and refunds, per ticket
// Tickets one visitor may have per date (live holds and paid ones together): the server's
// default. The API does not publish it, so a refusal that names a lower limit lowers it.
const DEFAULT_TICKET_LIMIT = 4;

const state = {
  token: null,
  userId: null,
  joinedAt: null, // position when this entry joined, for the progress bar
  queue: null, // the last QueueStatus
  prequeued: false, // this entry waited for the opening (its place was drawn at random)
  entering: null, // {kind: "rate" | "full", until}: joining was refused; shown until `until`
  fullTries: 0, // tries refused in a row because the line was full
  joining: false, // a POST /token is on its way
  overReason: null, // why the turn ended: "paid", "time", "idle", null
  concerts: [],
  concertId: null,
  showtimes: [],
  showtimeId: null,
  seats: [], // the seat map kept, by number: fetched whole once, then kept current by diffs
  mapKey: null, // whose map state.seats is: "concert:showtime"
  mapVersion: null, // its version (the ETag's value): what the next diff is asked from
  seatPage: 0,
  infoSeat: null, // [seat id, section] described under the map
  selected: [], // seat ids picked on the map and not held yet (this date only)
  holding: false, // a hold request is on its way
  ticketLimit: DEFAULT_TICKET_LIMIT,
  saleOpen: null, // whether the chosen date's sale was open at the last tick
  tickets: [],
  confirming: null, // the paid ticket whose cancellation asks for confirmation
  busy: new Set(), // ticket ids with a release, extension or cancellation on its way
  // Per ticket: extensions made, holds known to be at their extension limit, refunds.
  notes: { extended: {}, maxed: {}, refunds: {}, maxExtensions: null },
  balance: null,
  payments: [],
  points: [],
  names: { concerts: {}, showtimes: {} },
  announced: new Set(), // ticket ids whose lapse was announced
  dismissed: new Set(), // lapsed ticket ids the visitor dismissed
  chargeEdited: false, // the visitor typed an amount: stop suggesting one
  hiddenSince: null,
  asleep: false, // polling stopped because the tab was hidden for long
  clockOffset: 0, // server time minus this browser's time, when they differ noticeably
};

const $ = (sel) => document.querySelector(sel);
const nf = new Intl.NumberFormat("en-US");
const pts = (n) => `${nf.format(n)} points`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Date.now() + state.clockOffset;

// ---------------------------------------------------------------------------------------------
// The API: every request goes through api(); every error message comes from explain().

class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter; // seconds, from a Retry-After header
  }
}

/** Seconds from a Retry-After header (whole seconds, or an HTTP date); null if absent. */
function retryAfter(res) {
  const v = (res.headers.get("Retry-After") || "").trim();
  if (!v) return null;
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now()) / 1000));
}

/**
 * Calls the API; resolves to the JSON body, or throws an ApiError. Retries `busy` (503).
 * With `etag` (sent as If-None-Match) or `raw`, resolves to {notModified, data, etag} instead:
 * a 304 is {notModified: true, data: null}.
 */
async function api(method, path, opts = {}) {
  const { body, key, auth = true, retries = 2, etag = null, raw = false } = opts;
  const headers = { Accept: "application/json" };
  if (auth && state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  if (etag) headers["If-None-Match"] = etag;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network", String(e));
  }
  noteServerClock(res);
  const tag = res.headers.get("ETag");
  if (res.status === 304) return { notModified: true, data: null, etag: tag || etag };
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (res.ok) return etag || raw ? { notModified: false, data, etag: tag } : data;
  const err = data && data.error ? data.error : { code: "internal", message: res.statusText };
  if (err.code === "busy" && retries > 0) {
    await sleep(400);
    return api(method, path, { ...opts, retries: retries - 1 });
  }
  throw new ApiError(res.status, err.code, err.message, retryAfter(res));
}

/** Keeps countdowns honest when this browser's clock differs from the server's. */
function noteServerClock(res) {
  const date = Date.parse(res.headers.get("Date") || "");
  if (Number.isNaN(date)) return;
  const offset = date - Date.now(); // the header has whole seconds: ignore small differences
  state.clockOffset = Math.abs(offset) > 2000 ? offset : 0;
}

/** A fresh Idempotency-Key, so a retried request is not done twice. */
function newKey(what) {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `${what}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Friendly text for an API error; `ctx` may carry a seat number (`seat`), several seat numbers
 * (`seats`) and a price (the total, for several).
 */
function explain(err, ctx = {}) {
  const several = ctx.seats && ctx.seats.length > 1;
  const seat = several ? `seats ${seatList(ctx.seats)}` : ctx.seat ? `seat ${ctx.seat}` : "that seat";
  switch (err.code) {
    case "network":
      return "Can't reach the server. Is booking-server still running? Trying again shortly.";
    case "unauthorized":
      return "Your saved place is no longer valid (the server's database may have been reset). Join the queue again.";
    case "queue_not_active":
      return "Your turn in the waiting room is no longer active.";
    case "forbidden":
      return "That belongs to another visitor.";
    case "seat_unavailable":
      return `Someone else was faster: ${seat} was just taken. Please pick another seat.`;
    case "hold_limit_reached":
      return `You already have as many tickets for this date as one visitor may have (${state.ticketLimit}, held and paid together). Pay for your held seats or release one before holding another.`;
    case "hold_expired":
      return several
        ? "The hold on one of these seats lapsed before you paid, so nothing was paid. Pay for the seats you still hold."
        : `Your hold on ${seat} lapsed before you paid, so the seat was released. Hold it again if it is still free.`;
    case "insufficient_points": {
      const short = ctx.price && state.balance !== null ? ctx.price - state.balance : null;
      return short > 0
        ? `Not enough points: ${seat} ${several ? "cost" : "costs"} ${pts(ctx.price)} and your balance is ${pts(state.balance)}. Charge at least ${pts(short)} in the wallet, then pay.`
        : "Not enough points for this. Charge more in the wallet, then pay.";
    }
    case "sale_not_open":
      return ctx.opens
        ? `The sale for this date has not opened yet: it opens at ${longTime(ctx.opens)}.`
        : "The sale for this date has not opened yet.";
    case "ticket_not_held":
      return `${cap(seat)} is no longer held (it was paid, released or lapsed meanwhile); the page has been refreshed.`;
    case "extension_limit":
      return `The hold on ${seat} can't be extended again: pay for it before the countdown ends.`;
    case "ticket_not_paid":
      return `${cap(seat)} is not a paid ticket, so there is nothing to cancel; the page has been refreshed.`;
    case "cancel_closed":
      return `It is too close to the show to cancel ${seat}: cancellations close a while before the show starts.`;
    case "already_paid":
      return `${cap(seat)} is already paid for: it is in your tickets.`;
    case "showtime_closed":
      return "This date is no longer on sale. Please pick another date.";
    case "balance_limit":
      return "That charge would take your wallet over its limit. Try a smaller amount.";
    case "invalid_amount":
      return "Enter a whole number of points from 1 to 10,000,000.";
    case "not_found":
      return "That is no longer there; the page has been refreshed.";
    case "busy":
      return "The server is busy right now. Please try again in a moment.";
    case "rate_limited":
      return "Too many people are joining from your network. Please try again in a moment.";
    case "queue_full":
      return "The line is full, try again in a moment.";
    case "idempotency_conflict":
    case "idempotency_key_reused":
      return "That request is already being handled. Please wait a moment.";
    default:
      return "Something went wrong on the server. Please try again.";
  }
}

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
const plural = (n, word) => `${n} ${n === 1 ? word : `${word}s`}`;

/** Shows a message in the toast at the bottom of the screen. */
function notify(text, kind = "info") {
  const toast = $("#toast");
  $("#toast-text").textContent = text;
  toast.dataset.kind = kind;
  toast.setAttribute("role", kind === "error" ? "alert" : "status");
  toast.hidden = false;
  clearTimeout(notify.timer);
  if (kind !== "error") notify.timer = setTimeout(() => (toast.hidden = true), 9000);
}

/** Reports an error from an action; the errors that change the page's state are handled. */
function fail(err, ctx) {
  if (err.code === "unauthorized") return forgetToken(explain(err));
  notify(explain(err, ctx), "error");
  if (err.code === "queue_not_active") pollQueue();
}

// ---------------------------------------------------------------------------------------------
// Storage

function loadStore() {
  try {
    const s = JSON.parse(localStorage.getItem(STORE_KEY) || "{}");
    state.token = s.token || null;
    state.userId = s.user_id || null;
    state.joinedAt = s.joined_position || null;
    state.prequeued = Boolean(s.prequeued);
    const names = JSON.parse(localStorage.getItem(NAMES_KEY) || "null");
    if (names && names.concerts && names.showtimes) state.names = names;
    const notes = JSON.parse(localStorage.getItem(NOTES_KEY) || "null");
    if (notes && notes.extended && notes.maxed && notes.refunds) state.notes = notes;
    const pick = JSON.parse(sessionStorage.getItem(PICK_KEY) || "{}");
    state.concertId = pick.concert || null;
    state.showtimeId = pick.showtime || null;
    state.selected = Array.isArray(pick.selected) ? pick.selected : [];
  } catch (e) {
    /* unreadable storage: start afresh */
  }
}

function saveStore() {
  try {
    localStorage.setItem(
      STORE_KEY,
      JSON.stringify({
        token: state.token,
        user_id: state.userId,
        joined_position: state.joinedAt,
        prequeued: state.prequeued,
      }),
    );
    localStorage.setItem(NAMES_KEY, JSON.stringify(state.names));
    localStorage.setItem(NOTES_KEY, JSON.stringify(state.notes));
    sessionStorage.setItem(
      PICK_KEY,
      JSON.stringify({ concert: state.concertId, showtime: state.showtimeId, selected: state.selected }),
    );
  } catch (e) {
    /* storage full or disabled: the page still works until a reload */
  }
}

/** Drops the token (keeping the user id, so tickets and points stay this visitor's). */
function forgetToken(message) {
  state.token = null;
  state.queue = null;
  saveStore();
  render();
  if (message) notify(message, "error");
}

// ---------------------------------------------------------------------------------------------
// Queue: join, poll, and the turn's states

let queueTimer = null;
let enterTimer = null;

/** Enters the waiting room (or gets this visitor's live entry back). */
async function join() {
  if (state.joining) return;
  state.joining = true;
  clearTimeout(enterTimer);
  const buttons = [$("#join"), $("#rejoin"), $("#entering-retry")];
  for (const b of buttons) b.disabled = true;
  try {
    let q;
    try {
      q = await api("POST", "/token", { body: state.userId ? { user_id: state.userId } : {}, auth: false });
    } catch (e) {
      if (!state.userId || e.status !== 400) throw e;
      q = await api("POST", "/token", { body: {}, auth: false }); // an unknown id: a new visitor
    }
    const wasEntering = state.entering;
    state.entering = null;
    state.fullTries = 0;
    state.token = q.token;
    state.userId = q.user_id;
    state.joinedAt = q.position || null;
    state.prequeued = q.status === "prequeue";
    state.overReason = null;
    saveStore();
    await applyQueue(q);
    scheduleQueuePoll(nextPoll(q));
    if (q.status === "waiting") notify(`You joined the queue at position ${q.position}.`);
    else if (wasEntering && q.status === "prequeue") notify("You're in: your entry for the opening is kept.");
  } catch (e) {
    if (e.code === "rate_limited" || e.code === "queue_full") enterLater(e);
    else fail(e);
  } finally {
    state.joining = false;
    for (const b of buttons) b.disabled = false;
    render();
  }
}

/**
 * Joining was refused for now: too many entries from this address (429, wait Retry-After) or a
 * full line (503, wait a while, longer each time). Says so, counts down, and tries again.
 */
function enterLater(e) {
  let wait;
  if (e.code === "rate_limited") {
    wait = (e.retryAfter === null ? 5 : Math.max(1, e.retryAfter)) * 1000;
    state.entering = { kind: "rate", until: Date.now() + wait };
  } else {
    const s = FULL_RETRY_S[Math.min(state.fullTries, FULL_RETRY_S.length - 1)];
    state.fullTries += 1;
    wait = Math.round(s + Math.random() * 5) * 1000; // spread: not every page at once
    state.entering = { kind: "full", until: Date.now() + wait };
  }
  clearTimeout(enterTimer);
  enterTimer = setTimeout(join, wait + 200 + Math.random() * 300); // just past the moment told
  $("#toast").hidden = true;
  const shown = !$("#entering").hidden;
  render();
  if (!shown) $("#entering-h").focus(); // read out once; the countdown itself is not announced
}

function scheduleQueuePoll(ms) {
  clearTimeout(queueTimer);
  if (ms !== null) queueTimer = setTimeout(pollQueue, ms);
}

/** When to ask again about entry `q` (null: not at all, the turn is over). */
function nextPoll(q) {
  if (!q || q.status === "waiting") return POLL_WAITING_MS;
  if (q.status === "active") return POLL_ACTIVE_MS;
  if (q.status === "prequeue") return prequeuePoll(q.opens_at);
  return null;
}

/** Before the opening: rarely, then more often, then once right at the opening. */
function prequeuePoll(opensAt) {
  if (!opensAt) return POLL_PREQUEUE_NEAR_MS; // the opening is not scheduled any more
  const left = Date.parse(opensAt) - now();
  const spread = Math.random() * OPENING_SPREAD_MS;
  if (left <= 0) return 1000 + spread; // opened: the next call places this entry
  if (left <= POLL_PREQUEUE_LAST_MS) return left + 200 + spread; // at the opening
  if (left <= 10000) return Math.min(POLL_PREQUEUE_LAST_MS, left - 1000);
  if (left <= 70000) return Math.min(POLL_PREQUEUE_NEAR_MS, left - 10000);
  return Math.min(POLL_PREQUEUE_FAR_MS, left - 60000);
}

async function pollQueue() {
  clearTimeout(queueTimer);
  if (!state.token) return;
  // Hidden for long: stop asking (the waiting entry drops out, as it would if the tab were
  // closed). A prequeue entry needs no polls, so its few go on: the opening is not missed.
  if (hiddenTooLong() && !(state.queue && state.queue.status === "prequeue")) {
    state.asleep = true; // woken by the visibilitychange handler
    renderWaiting();
    return;
  }
  try {
    await applyQueue(await api("GET", "/token"));
  } catch (e) {
    if (e.code === "unauthorized") return forgetToken(explain(e));
    if (e.code === "network") notify(explain(e), "error");
  }
  if (state.token) scheduleQueuePoll(nextPoll(state.queue));
}

async function applyQueue(q) {
  const prev = state.queue;
  const before = prev ? prev.status : null;
  state.queue = q;
  if (q.status === "prequeue" && !state.prequeued) {
    state.prequeued = true;
    saveStore();
  }
  if (q.status === "waiting" && (!state.joinedAt || q.position > state.joinedAt)) {
    state.joinedAt = q.position;
    saveStore();
  }
  render();
  if (before !== q.status) await onTurnChange(before, q.status);
  else if (q.status === "waiting" && prev.paused !== q.paused) {
    notify(
      q.paused
        ? "Admission is paused by the organiser. You keep your place in line."
        : "Admission has resumed: people are being let in again, in the same order.",
    );
  }
}

async function onTurnChange(before, after) {
  if (after === "active") {
    if (before === "waiting" || before === "prequeue") notify("It's your turn! Pick a concert, a date and a seat.");
    await Promise.all([loadConcerts(), loadWallet(), loadTickets(), loadHistory()]);
    scheduleSeatRefresh(0);
  } else if (after === "expired") {
    if (!state.overReason) {
      state.overReason = before === "waiting" || before === "prequeue" ? "idle" : before === "active" ? "time" : null;
    }
    stopSeatRefresh();
    render();
    await Promise.all([loadWallet(), loadTickets(), loadHistory()]);
  } else if (after === "waiting") {
    if (before === "prequeue") {
      // Placed in line: from now on the entry must poll; a hidden tab gets its full minute.
      if (state.hiddenSince !== null) state.hiddenSince = Date.now();
      notify(`The sale is open. Your place in line: ${state.queue.position}.`);
    }
    stopSeatRefresh();
  } else if (after === "prequeue") {
    stopSeatRefresh();
  }
}

function hiddenTooLong() {
  return document.hidden && state.hiddenSince !== null && Date.now() - state.hiddenSince > HIDDEN_PAUSE_MS;
}

function onVisibility() {
  if (document.hidden) {
    state.hiddenSince = Date.now();
    return;
  }
  state.hiddenSince = null;
  if (state.asleep) {
    state.asleep = false;
    notify("Welcome back: checking your place in the queue.");
  }
  pollQueue();
  if (view() === "active") scheduleSeatRefresh(0);
}

/**
 * Which screen to show: "none" (not joined), "loading", "prequeue", "waiting", "active" or
 * "expired".
 */
function view() {
  if (!state.token) return "none";
  return state.queue ? state.queue.status : "loading";
}

// ---------------------------------------------------------------------------------------------
// Catalog: concerts, dates, seats

let seatTimer = null;
let seatLoads = Promise.resolve(); // seat map loads, one after another
const seatIndex = new Map(); // seat id → its entry in state.seats

async function loadConcerts() {
  try {
    state.concerts = await api("GET", "/concerts");
    for (const c of state.concerts) state.names.concerts[c.id] = c.title;
    saveStore();
    renderConcerts();
    const known = state.concerts.some((c) => c.id === state.concertId);
    if (known) await loadShowtimes();
    else state.concertId = state.showtimeId = null;
    if (state.showtimeId) await loadSeats();
  } catch (e) {
    fail(e);
  }
}

async function loadShowtimes() {
  if (!state.concertId) return;
  state.showtimes = await api("GET", `/concerts/${state.concertId}`);
  for (const s of state.showtimes) state.names.showtimes[s.id] = s.starts_at;
  if (!state.showtimes.some((s) => s.id === state.showtimeId)) state.showtimeId = null;
  saveStore();
  renderDates();
}

/**
 * Brings the chosen date's seat map up to date. The first load of a map fetches it whole and
 * keeps its version (the ETag); every later one asks only for the seats that changed since that
 * version (`?since=`), with the ETag as If-None-Match, so that an unchanged map costs a 304 with
 * no body. Only the seats that changed are drawn again. Loads run one after another, so each
 * asks from the latest version.
 */
function loadSeats() {
  const run = seatLoads.then(loadSeatsNow);
  seatLoads = run.catch(() => {});
  return run;
}

async function loadSeatsNow() {
  if (!state.concertId || !state.showtimeId) return;
  const key = `${state.concertId}:${state.showtimeId}`;
  const from = state.mapKey === key ? state.mapVersion : null;
  const r = from
    ? await api("GET", `/concerts/${key}?since=${encodeURIComponent(from)}`, { etag: `"${from}"` })
    : await api("GET", `/concerts/${key}`, { raw: true });
  if (key !== `${state.concertId}:${state.showtimeId}`) return; // the choice changed meanwhile
  if (r.notModified) return; // nothing changed: nothing to draw
  if (Array.isArray(r.data)) {
    keepMap(key, r.data, versionOf(r.etag));
    pruneSelection();
    renderSeats();
    return;
  }
  if (state.mapKey !== key || state.mapVersion !== from) return; // the map was dropped meanwhile
  const changed = applyChanges(r.data.seats);
  state.mapVersion = r.data.version;
  if (changed && !changed.length) return; // (seats coming again, as they were)
  pruneSelection();
  renderSeats(changed);
}

/** Keeps `seats` as the map `key` at `version`. */
function keepMap(key, seats, version) {
  state.seats = seats;
  state.mapKey = key;
  state.mapVersion = version;
  seatIndex.clear();
  for (const s of seats) seatIndex.set(s.id, s);
}

/** The version an ETag names (`"17.1767312000000"`, maybe weak); null if there is none. */
function versionOf(etag) {
  const m = /^(?:W\/)?"([^"]*)"$/.exec((etag || "").trim());
  return m ? m[1] : null;
}

/**
 * Applies the seats of a diff to the map in place; resolves to the seats whose status changed,
 * or null when the map's layout changed (a seat it did not have, a price), to draw it all.
 */
function applyChanges(seats) {
  const changed = [];
  let layout = false;
  for (const s of seats) {
    const seat = seatIndex.get(s.id);
    if (!seat) {
      state.seats.push(s);
      seatIndex.set(s.id, s);
      layout = true;
    } else if (seat.status !== s.status || seat.price !== s.price || seat.number !== s.number) {
      layout = layout || seat.price !== s.price || seat.number !== s.number;
      Object.assign(seat, s);
      changed.push(seat);
    }
  }
  if (!layout) return changed;
  state.seats.sort((a, b) => a.number - b.number);
  return null;
}

/** Drops selected seats that someone else took meanwhile (or that are not of this date). */
function pruneSelection() {
  if (state.holding || !state.selected.length) return;
  const taken = [];
  const keep = state.selected.filter((id) => {
    const seat = currentSeat(id);
    if (seat && seat.status !== "available") taken.push(seat.number);
    return seat && seat.status === "available";
  });
  if (keep.length === state.selected.length) return;
  state.selected = keep;
  saveStore();
  if (taken.length && view() === "active") {
    notify(
      taken.length > 1
        ? `Seats ${seatList(taken)} were just taken by someone else, so they are no longer selected.`
        : `Seat ${taken[0]} was just taken by someone else, so it is no longer selected.`,
    );
  }
}

async function selectConcert(id) {
  state.concertId = id;
  state.showtimeId = null;
  state.showtimes = [];
  keepMap(null, [], null);
  state.selected = [];
  saveStore();
  renderConcerts();
  renderDates();
  renderSeats();
  try {
    await loadShowtimes();
    $("#dates-h").focus();
  } catch (e) {
    fail(e);
  }
}

async function selectShowtime(id) {
  if (id !== state.showtimeId) state.selected = [];
  state.showtimeId = id;
  state.seatPage = 0;
  state.saleOpen = null;
  saveStore();
  renderDates();
  try {
    await loadSeats();
    $("#seats-h").focus();
    scheduleSeatRefresh(SEATS_REFRESH_MS);
  } catch (e) {
    fail(e);
  }
}

function scheduleSeatRefresh(ms) {
  clearTimeout(seatTimer);
  seatTimer = setTimeout(refreshSeats, ms);
}

function stopSeatRefresh() {
  clearTimeout(seatTimer);
}

async function refreshSeats() {
  if (view() !== "active" || document.hidden) return; // restarted when visible or active again
  try {
    if (state.concertId) await loadShowtimes();
    await loadSeats();
  } catch (e) {
    if (e.code === "queue_not_active") return pollQueue();
    if (e.code === "not_found") await loadConcerts();
  }
  // Only what changed comes back (usually nothing: a 304), however large the map.
  scheduleSeatRefresh(SEATS_REFRESH_MS);
}

/**
 * The seat's status as this visitor sees it: available, selected, mine, held, sold, owned, or
 * unopened (available, but the date's sale has not opened yet).
 */
function seatStatus(seat) {
  const t = state.tickets.find((x) => x.seat_id === seat.id && (liveHold(x) || x.status === "paid"));
  if (seat.status === "held" && t && liveHold(t)) return "mine";
  if (seat.status === "sold" && t && t.status === "paid") return "owned";
  if (seat.status === "available") {
    if (!saleOpen(currentShow())) return "unopened";
    if (state.selected.includes(seat.id)) return "selected";
  }
  return seat.status;
}

const STATUS_TEXT = {
  available: "available",
  selected: "selected",
  mine: "held by you",
  held: "held by someone else",
  sold: "sold",
  owned: "sold to you",
  unopened: "not on sale yet",
};

const currentShow = () => state.showtimes.find((s) => s.id === state.showtimeId) || null;

/** Whether holds may be made for the showtime `s` (its sale has no opening time, or it passed). */
const saleOpen = (s) => !s || !s.sale_opens_at || Date.parse(s.sale_opens_at) <= now();

/** This visitor's tickets that count against the per-date limit: live holds and paid ones. */
const ticketsFor = (showtimeId) =>
  state.tickets.filter((t) => t.showtime_id === showtimeId && (liveHold(t) || t.status === "paid"));

/** How many more seats this visitor may select (and hold) for the chosen date. */
const roomLeft = () => Math.max(0, state.ticketLimit - ticketsFor(state.showtimeId).length);

/** The selected seats, by number. */
const selectedSeats = () =>
  state.selected
    .map(currentSeat)
    .filter(Boolean)
    .sort((a, b) => a.number - b.number);

/** Consecutive seats of one price, numbered A, B, C… when prices differ. */
function sections(seats) {
  const out = [];
  for (const s of seats) {
    const last = out[out.length - 1];
    if (last && last.price === s.price) last.seats.push(s);
    else out.push({ price: s.price, seats: [s] });
  }
  out.forEach((sec, i) => {
    sec.name = `Section ${String.fromCharCode(65 + (i % 26))}`;
    sec.named = out.length > 1;
  });
  return out;
}

function onSeatClick(seat) {
  const status = seatStatus(seat);
  if (status === "available" || status === "selected") return toggleSeat(seat, status);
  const text = {
    mine: `You hold seat ${seat.number}: pay for it under "Your held seats".`,
    held: `Seat ${seat.number} is held by someone else. It comes back if they do not pay in time.`,
    sold: `Seat ${seat.number} is sold. Please pick an available seat.`,
    owned: `Seat ${seat.number} is yours: it is in your tickets.`,
    unopened: `Seat ${seat.number} is not on sale yet: the sale for this date opens at ${longTime(currentShow().sale_opens_at)}.`,
  }[status];
  notify(text);
}

/** Selects or deselects an available seat, within the visitor's limit for this date. */
function toggleSeat(seat, status) {
  if (status === "selected") {
    state.selected = state.selected.filter((id) => id !== seat.id);
  } else {
    const room = roomLeft();
    if (state.selected.length >= room) {
      const have = ticketsFor(state.showtimeId).length;
      notify(
        room === 0
          ? `You already have ${plural(have, "ticket")} for this date, the most one visitor may have. Release a held seat to pick another.`
          : `You can pick at most ${plural(room, "seat")} for this date (${state.ticketLimit} per visitor, held and paid together). Deselect one to pick another.`,
      );
      return;
    }
    state.selected.push(seat.id);
  }
  saveStore();
  renderSeats();
}

/** Holds every selected seat in one request: all of them, or none. */
async function holdSelected() {
  const picked = selectedSeats();
  if (!picked.length || state.holding) return;
  const button = $("#hold-selected");
  button.setAttribute("aria-busy", "true");
  state.holding = true;
  let held = false;
  try {
    const answer = await api("POST", "/tickets", {
      body: { showtime_id: state.showtimeId, seat_ids: picked.map((s) => s.id) },
    });
    const list = Array.isArray(answer) ? answer : [answer];
    const ids = new Set(list.map((t) => t.id));
    state.tickets = [...list, ...state.tickets.filter((x) => !ids.has(x.id))];
    for (const t of list) {
      const seat = currentSeat(t.seat_id);
      if (seat) seat.status = "held"; // before the map is asked again
    }
    state.selected = [];
    saveStore();
    const nums = list.map((t) => t.seat_number).sort((a, b) => a - b);
    const until = clockTime(list[0].held_until);
    notify(
      nums.length === 1
        ? `Seat ${nums[0]} is yours until ${until}. Pay for it under "Your held seats" before the countdown ends.`
        : `Seats ${seatList(nums)} are yours until ${until}. Pay for them under "Your held seats" before the countdown ends.`,
    );
    held = true;
  } catch (e) {
    await holdRefused(e, picked);
  } finally {
    state.holding = false;
    button.removeAttribute("aria-busy");
  }
  renderHolds();
  renderWallet();
  renderSeats();
  if (held || !state.selected.length) $(held ? "#holds-h" : "#seats-h").focus();
  await Promise.all([loadSeats(), loadShowtimes()]).catch(() => {});
}

/** Explains why a hold of `picked` was refused, and adjusts the selection to it. */
async function holdRefused(e, picked) {
  const numbers = picked.map((s) => s.number);
  if (e.code === "seat_unavailable") {
    // The message names the first taken seat by id ("seat 25 is not available").
    const m = /seat (\d+)/i.exec(e.message || "");
    let taken = m ? picked.find((s) => s.id === Number(m[1])) : null;
    if (!taken) {
      await loadSeats().catch(() => {});
      taken = picked.map((s) => currentSeat(s.id)).find((s) => s && s.status !== "available") || null;
    }
    if (taken) state.selected = state.selected.filter((id) => id !== taken.id);
    saveStore();
    if (picked.length === 1) return notify(explain(e, { seat: numbers[0] }), "error");
    return notify(
      taken
        ? `Someone else was faster: seat ${taken.number} was just taken, so none of the ${picked.length} seats were held. Seat ${taken.number} is no longer selected: hold the others, or pick another seat.`
        : `Someone else was faster: one of the seats you selected was just taken, so none of them were held. Please check your selection and try again.`,
      "error",
    );
  }
  if (e.code === "hold_limit_reached") {
    // The message names the limit ("you already hold 4 seats ..."); else this try bounds it.
    const m = /(\d+) seats/.exec(e.message || "");
    const have = ticketsFor(state.showtimeId).length;
    const limit = m ? Number(m[1]) : Math.max(have, have + picked.length - 1);
    state.ticketLimit = Math.min(state.ticketLimit, limit);
    const room = roomLeft();
    state.selected = state.selected.slice(0, room);
    saveStore();
    if (room === 0) return notify(explain(e), "error");
    return notify(
      `One visitor may have at most ${state.ticketLimit} tickets for this date (held and paid together), and you have ${have}: hold at most ${room} more. Your selection was trimmed to ${room}.`,
      "error",
    );
  }
  if (e.code === "sale_not_open" || e.code === "showtime_closed") {
    await loadShowtimes().catch(() => {});
    const show = currentShow();
    return notify(explain(e, { opens: show && show.sale_opens_at }), "error");
  }
  fail(e, { seat: numbers[0], seats: numbers });
}

function clearSelection() {
  state.selected = [];
  saveStore();
  renderSeats();
  $("#seats-h").focus();
}

// ---------------------------------------------------------------------------------------------
// Holds, wallet, payments

const liveHold = (t) => t.status === "held" && Date.parse(t.held_until) > now();

function lapsedHolds() {
  return state.tickets.filter(
    (t) =>
      (t.status === "expired" || (t.status === "held" && !liveHold(t))) &&
      Date.parse(t.held_until) > now() - LAPSED_SHOWN_MS &&
      !state.dismissed.has(t.id),
  );
}

async function loadTickets() {
  try {
    const wasLive = new Set(state.tickets.filter(liveHold).map((t) => t.id));
    state.tickets = await api("GET", "/tickets");
    const lapsed = state.tickets.filter(
      (t) =>
        wasLive.has(t.id) &&
        (t.status === "held" || t.status === "expired") &&
        !liveHold(t) &&
        !state.announced.has(t.id),
    );
    if (lapsed.length) onLapse(lapsed);
    for (const t of state.tickets) if (!liveHold(t)) state.announced.add(t.id); // lapsed before
    renderHolds();
    renderTickets();
    renderSeats();
    renderWallet();
  } catch (e) {
    if (e.code === "unauthorized") forgetToken(explain(e));
  }
}

async function loadWallet() {
  try {
    state.balance = (await api("GET", "/points")).balance;
    renderWallet();
  } catch (e) {
    /* shown as "–" until the next refresh */
  }
}

async function loadHistory() {
  try {
    [state.payments, state.points] = await Promise.all([
      api("GET", "/payment_history"),
      api("GET", "/point_history"),
    ]);
    renderHistory();
  } catch (e) {
    /* the history is shown on the next refresh */
  }
}

async function charge(event) {
  event.preventDefault();
  const input = $("#charge-amount");
  const amount = Number(input.value);
  if (!Number.isInteger(amount) || amount < 1 || amount > 10000000) {
    notify(explain({ code: "invalid_amount" }), "error");
    input.focus();
    return;
  }
  const button = $("#charge");
  button.disabled = true;
  try {
    const w = await api("POST", "/points", { body: { amount }, key: newKey("charge") });
    state.balance = w.balance;
    state.chargeEdited = false;
    input.value = "";
    notify(`Charged ${pts(amount)}. Your balance is ${pts(w.balance)}.`);
    renderWallet();
    renderHolds();
    loadHistory();
  } catch (e) {
    fail(e);
  } finally {
    button.disabled = false;
  }
}

/** Puts the server's newer copy of a ticket in place of the old one. */
function replaceTicket(t) {
  const i = state.tickets.findIndex((x) => x.id === t.id);
  if (i >= 0) state.tickets[i] = t;
  else state.tickets.unshift(t);
}

/** Marks a seat of the map as `status` at once, before the map is asked again. */
function markSeat(seatId, status) {
  const seat = currentSeat(seatId);
  if (seat) seat.status = status;
}

/** Pays for the held tickets in one request: one payment, every ticket paid or none. */
async function payFor(tickets) {
  for (const b of document.querySelectorAll(".pay-btn, #pay-all")) b.disabled = true;
  const numbers = tickets.map((t) => t.seat_number).sort((a, b) => a - b);
  const total = tickets.reduce((n, t) => n + t.price, 0);
  let paid = false;
  try {
    const p = await api("POST", "/payments", { body: { ticket_ids: tickets.map((t) => t.id) }, key: newKey("pay") });
    state.overReason = "paid";
    // Sold at once on the map; paying ends the turn, so the map is asked again when the visitor
    // is let in again (for what changed since).
    for (const t of tickets) markSeat(t.seat_id, "sold");
    const t = tickets[0];
    notify(
      tickets.length === 1
        ? `Paid! Seat ${t.seat_number} (${concertName(t)}, ${showDate(t.showtime_id)}) is yours.`
        : `Paid! One payment of ${pts(p.amount)} for seats ${seatList(numbers)}: they are yours. Enjoy the show!`,
    );
    paid = true;
  } catch (e) {
    fail(e, { seat: numbers[0], seats: numbers, price: total });
  }
  await Promise.all([loadTickets(), loadWallet(), loadHistory()]);
  if (paid) {
    await pollQueue(); // a payment ends the turn in the waiting room
    $("#mine-h").focus();
  }
  renderHolds();
}

/**
 * Runs `action` for ticket `t` unless one is already on its way for it (a double click), with
 * the ticket's buttons marked busy meanwhile.
 */
async function once(t, action) {
  if (state.busy.has(t.id)) return;
  state.busy.add(t.id);
  for (const b of document.querySelectorAll(`[data-ticket="${t.id}"] button`)) b.setAttribute("aria-busy", "true");
  try {
    await action();
  } finally {
    state.busy.delete(t.id);
    for (const b of document.querySelectorAll(`[data-ticket="${t.id}"] button`)) b.removeAttribute("aria-busy");
  }
}

/** Gives a held seat back: it is available to others at once. */
const release = (t) => once(t, () => releaseNow(t));

async function releaseNow(t) {
  try {
    replaceTicket(await api("DELETE", `/tickets/${t.id}`));
    state.announced.add(t.id);
    markSeat(t.seat_id, "available");
    notify(`Seat ${t.seat_number} released: it is available to others again.`);
  } catch (e) {
    fail(e, { seat: t.seat_number });
    if (e.code === "ticket_not_held" || e.code === "not_found") await loadTickets();
  }
  renderHolds();
  renderTickets();
  renderSeats();
  renderWallet();
  if (view() === "active") Promise.all([loadSeats(), loadShowtimes()]).catch(() => {});
}

/** Restarts a hold's countdown from now (a limited number of times per hold). */
const extend = (t) => once(t, () => extendNow(t));

async function extendNow(t) {
  const n = t.seat_number;
  try {
    const fresh = await api("POST", `/tickets/${t.id}/extend`);
    replaceTicket(fresh);
    state.notes.extended[t.id] = (state.notes.extended[t.id] || 0) + 1;
    notify(`The hold on seat ${n} was extended: it is yours until ${clockTime(fresh.held_until)}.`);
  } catch (e) {
    if (e.code === "extension_limit") {
      // The message names the limit ("already extended 1 time(s)"), when it does.
      const m = /extended (\d+) time/.exec(e.message || "");
      if (m) state.notes.maxExtensions = Number(m[1]);
      state.notes.maxed[t.id] = true;
      notify(explain(e, { seat: n }), "error");
    } else {
      fail(e, { seat: n });
      if (e.code === "hold_expired" || e.code === "ticket_not_held") await loadTickets();
    }
  }
  saveStore();
  renderHolds();
}

/** Whether the hold on `t` is known to be at its extension limit. */
function extensionsUsedUp(t) {
  const max = state.notes.maxExtensions;
  return Boolean(state.notes.maxed[t.id]) || (max !== null && (state.notes.extended[t.id] || 0) >= max);
}

/** Cancels a paid ticket: its price comes back to the wallet, less the cancellation fee. */
const cancelTicket = (t) => once(t, () => cancelNow(t));

async function cancelNow(t) {
  const n = t.seat_number;
  try {
    const r = await api("POST", `/tickets/${t.id}/cancel`, { key: newKey("cancel") });
    replaceTicket(r.ticket);
    state.balance = r.balance;
    state.notes.refunds[t.id] = { refund: r.refund, fee: r.fee };
    saveStore();
    markSeat(t.seat_id, "available");
    notify(
      `Seat ${n} cancelled: ${pts(r.refund)} refunded${r.fee ? ` (a fee of ${pts(r.fee)} was kept)` : ""}. Your balance is ${pts(r.balance)}.`,
    );
  } catch (e) {
    fail(e, { seat: n });
  }
  state.confirming = null;
  renderTickets();
  renderWallet();
  $("#mine-h").focus();
  await Promise.all([loadTickets(), loadWallet(), loadHistory()]);
  if (view() === "active") Promise.all([loadSeats(), loadShowtimes()]).catch(() => {});
}

/** Asks to confirm the cancellation of `t` (ask: true), or puts the question away. */
function askCancel(t, ask) {
  state.confirming = ask ? t.id : null;
  renderTickets();
  const card = document.querySelector(`#tickets-list [data-ticket="${t.id}"]`);
  const target = card && card.querySelector(`[data-action="${ask ? "confirm-cancel" : "cancel"}"]`);
  if (target) target.focus();
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** Creates an element: h("button", {class: "x", onclick: f}, "text", child…). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

const dayFmt = new Intl.DateTimeFormat("en-US", { weekday: "short", month: "short", day: "numeric", year: "numeric" });
const hourFmt = new Intl.DateTimeFormat("en-US", { hour: "numeric", minute: "2-digit", timeZoneName: "short" });
const dateFmt = { format: (d) => `${dayFmt.format(d)} · ${hourFmt.format(d)}` };
const showDate = (showtimeId) => {
  const at = state.names.showtimes[showtimeId];
  return at ? dateFmt.format(new Date(at)) : `date #${showtimeId}`;
};
const concertName = (t) => state.names.concerts[t.concert_id] || `Concert #${t.concert_id}`;
const clockTime = (iso) => new Date(Date.parse(iso) - state.clockOffset).toLocaleTimeString("en-US");
const stamp = (iso) => new Date(iso).toLocaleString("en-US");
/** "8:00 PM GMT+9 on Sat, Dec 5, 2026": a moment in this browser's time zone. */
const longTime = (iso) => `${hourFmt.format(new Date(iso))} on ${dayFmt.format(new Date(iso))}`;

/** "21", "21 and 22", "21, 22 and 24". */
function seatList(numbers) {
  if (numbers.length < 2) return numbers.join("");
  return `${numbers.slice(0, -1).join(", ")} and ${numbers[numbers.length - 1]}`;
}

/** "in 3 days", "in 5 h", "in 12 min", "in under a minute". */
function fromNow(iso) {
  const s = Math.max(0, (Date.parse(iso) - now()) / 1000);
  if (s < 60) return "in under a minute";
  if (s < 3600) return `in ${Math.ceil(s / 60)} min`;
  if (s < 48 * 3600) return `in ${Math.round(s / 3600)} h`;
  return `in ${Math.round(s / 86400)} days`;
}

function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** A countdown that may be long: "0:06", "1:02:03", "3 d 04:05:06". */
function longCountdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const two = (n) => String(n).padStart(2, "0");
  const [d, h, m, sec] = [Math.floor(s / 86400), Math.floor(s / 3600) % 24, Math.floor(s / 60) % 60, s % 60];
  if (d) return `${d} d ${two(h)}:${two(m)}:${two(sec)}`;
  if (h) return `${h}:${two(m)}:${two(sec)}`;
  return `${m}:${two(sec)}`;
}

const secFmt = new Intl.DateTimeFormat("en-US", { hour: "numeric", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
/** Like longTime, with the seconds when the moment is not on a whole minute. */
function openingTime(iso) {
  const d = new Date(iso);
  const hour = d.getSeconds() ? secFmt.format(d) : hourFmt.format(d);
  return `${hour} on ${dayFmt.format(d)}`;
}

function aboutDuration(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  if (seconds < 60) return "under a minute";
  const m = Math.round(seconds / 60);
  return m < 90 ? `about ${m} min` : `about ${Math.round(m / 60)} h`;
}

function render() {
  const v = view();
  const entering = Boolean(state.entering);
  $("#entering").hidden = !entering;
  $("#welcome").hidden = entering || (v !== "none" && v !== "loading");
  $("#join").hidden = v === "loading";
  $("#loading").hidden = v !== "loading";
  $("#prequeue").hidden = v !== "prequeue";
  $("#waiting").hidden = v !== "waiting";
  $("#catalog").hidden = v !== "active";
  $("#over").hidden = entering || v !== "expired";
  $("#side").hidden = v !== "active" && v !== "expired";
  arrangeSide(v);
  renderTurn();
  renderSteps();
  renderEntering();
  renderPrequeue();
  renderWaiting();
  renderOver();
  renderSelection();
}

/** While booking: held seats, wallet, tickets. Once the turn is over: tickets first. */
function arrangeSide(v) {
  const side = $("#side");
  const order = v === "expired" ? ["#holds", "#mine", "#wallet"] : ["#holds", "#wallet", "#mine"];
  const want = order.map((s) => $(s));
  if (want.some((el, i) => side.children[i] !== el)) side.append(...want);
}

function renderTurn() {
  const q = state.queue;
  const v = view();
  const opens = q && q.opens_at ? Date.parse(q.opens_at) - now() : 0;
  const text = {
    none: state.entering ? "Joining the queue…" : "Not in the queue",
    loading: "Checking your place…",
    prequeue: opens > 0 ? `Sale opens in ${longCountdown(opens)}` : "Sale opening…",
    waiting: q && `Waiting · position ${q.position}${q.paused ? " · paused" : ""}`,
    active: q && q.expires_at ? `Your turn · ${countdown(Date.parse(q.expires_at) - now())} left` : "Your turn",
    expired: "Turn over",
  }[v];
  const el = $("#turn");
  if (el.textContent !== text) el.textContent = text;
  el.dataset.state = v;
}

function renderSteps() {
  const v = view();
  const paid = state.tickets.some((t) => t.status === "paid");
  const holding = state.tickets.some(liveHold);
  const current =
    v === "active" ? (holding ? "pay" : "seat") : v === "expired" ? (holding ? "pay" : paid ? "ticket" : "queue") : "queue";
  const order = ["queue", "seat", "pay", "ticket"];
  for (const li of document.querySelectorAll(".steps li")) {
    const i = order.indexOf(li.dataset.step);
    const c = order.indexOf(current);
    li.className = i < c ? "done" : i === c ? "current" : "";
    if (i === c) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  }
}

/** Joining refused for now: too many entries from this network, or the line is full. */
function renderEntering() {
  const e = state.entering;
  if (!e) return;
  const left = Math.max(0, Math.ceil((e.until - Date.now()) / 1000));
  const rate = e.kind === "rate";
  const set = (sel, text) => {
    if ($(sel).textContent !== text) $(sel).textContent = text;
  };
  set("#entering-h", rate ? "Joining the queue…" : "The line is full");
  set(
    "#entering-text",
    rate
      ? `Too many people are joining from your network; trying again ${left ? `in ${left} s` : "now"}.`
      : "The line is full, try again in a moment.",
  );
  set(
    "#entering-later",
    state.joining
      ? "Trying again now…"
      : rate
        ? "You don't need to do anything: this page joins the queue by itself."
        : `This page tries again by itself in ${left} s.`,
  );
  $("#entering-retry").hidden = rate;
}

/** Before the opening: when, the time left, and why arriving early does not matter. */
function renderPrequeue() {
  const q = state.queue;
  if (!q || q.status !== "prequeue") return;
  const left = q.opens_at ? Date.parse(q.opens_at) - now() : null;
  const opening = q.opens_at ? openingTime(q.opens_at) : "a time the organiser has not set yet";
  if ($("#opens-at").textContent !== opening) $("#opens-at").textContent = opening;
  const timer = left === null ? "–" : longCountdown(left);
  if ($("#opens-in").textContent !== timer) $("#opens-in").textContent = timer;
  const note =
    left !== null && left <= 0
      ? "The sale is opening: drawing your place in line…"
      : "Keep this tab open: your place in line is shown here as soon as it is drawn. Reloading the page keeps your entry.";
  if ($("#prequeue-note").textContent !== note) $("#prequeue-note").textContent = note;
  $("#prequeue-paused").hidden = !q.paused;
}

function renderWaiting() {
  const q = state.queue;
  if (!q || q.status !== "waiting") return;
  $("#position").textContent = String(q.position);
  $("#eta").textContent = q.paused ? "Paused" : aboutDuration(q.estimated_wait_seconds);
  $("#waiting-h").textContent = state.prequeued ? "The sale is open: you are in line" : "You are in the waiting room";
  $("#drawn").hidden = !state.prequeued;
  $("#drawn-place").textContent = String(q.position);
  $("#paused-note").hidden = !q.paused;
  const start = Math.max(state.joinedAt || q.position, q.position);
  const bar = $("#queue-progress");
  bar.value = Math.round((100 * (start - q.position + 1)) / (start + 1));
  bar.setAttribute("aria-valuetext", `position ${q.position} of ${start} when you joined`);
  $("#waiting-note").textContent = state.asleep
    ? "Paused while this tab is in the background. Come back to this tab to keep your place."
    : q.paused
      ? "We go on checking every few seconds, so that you keep your place. Keep this tab open; reloading keeps your place."
      : q.position === 1
        ? "You are next! We check every few seconds and let you in as soon as a place frees up. Keep this tab open; reloading keeps your place."
        : "We check your place every few seconds and let you in as soon as it is your turn. Keep this tab open; reloading keeps your place.";
}

function renderOver() {
  if (view() !== "expired") return;
  const holding = state.tickets.some(liveHold);
  const base = {
    paid: "Thank you, your payment went through and your tickets are below. Paying ends your turn in the waiting room, so the next person in line has been let in.",
    time: "Your time to book ran out, so the next person in line has been let in.",
    idle: "You were away from the waiting room for too long and lost your place.",
  }[state.overReason] ||
    "Your turn in the waiting room is over (paying ends it, and so does running out of time). Your tickets and points are below.";
  const more = holding ? " You can still pay for the seats you hold, or release them." : "";
  $("#over-text").textContent = `${base}${more} To book more seats, join the queue again.`;
}

/**
 * Keeps a list of choice buttons in step with `items`, rebuilding it only when the items
 * themselves change, so a refresh does not take keyboard focus away from a button.
 */
function renderChoices(list, items, empty, fill) {
  const keys = items.map((x) => x.id).join(",");
  if (list.dataset.keys !== keys || !items.length) {
    list.dataset.keys = keys;
    list.replaceChildren(
      ...(items.length
        ? items.map((x) => h("li", {}, h("button", { type: "button", class: "choice", "data-id": x.id })))
        : [h("li", { class: "muted" }, empty)]),
    );
  }
  for (const x of items) fill(list.querySelector(`button[data-id="${x.id}"]`), x);
}

function renderConcerts() {
  renderChoices($("#concerts"), state.concerts, "No concerts on sale right now.", (b, c) => {
    b.setAttribute("aria-pressed", String(c.id === state.concertId));
    b.onclick = () => selectConcert(c.id);
    b.replaceChildren(h("strong", {}, c.title), h("span", { class: "muted" }, c.venue));
  });
  $("#dates-box").hidden = !state.concertId;
}

function renderDates() {
  $("#dates-box").hidden = !state.concertId;
  renderChoices($("#dates"), state.showtimes, "No upcoming dates for this concert.", (b, s) => {
    const left = s.available_seats;
    b.setAttribute("aria-pressed", String(s.id === state.showtimeId));
    b.onclick = () => selectShowtime(s.id);
    b.replaceChildren(
      h("strong", {}, dayFmt.format(new Date(s.starts_at))),
      h("span", {}, hourFmt.format(new Date(s.starts_at))),
      saleOpen(s)
        ? h(
            "span",
            { class: left ? "muted" : "muted soldout" },
            left ? `${nf.format(left)} of ${nf.format(s.total_seats)} seats left` : "Sold out",
          )
        : h("span", { class: "opens" }, `Sale opens at ${longTime(s.sale_opens_at)}`),
    );
  });
  $("#seats-box").hidden = !state.showtimeId;
}

function seatButton(id) {
  return document.querySelector(`#seatmap button[data-seat="${id}"]`);
}

function seatLabel(seat, status) {
  return `Seat ${seat.number}, ${pts(seat.price)}, ${STATUS_TEXT[status]}`;
}

/**
 * Draws the seat map, or updates it in place (keeping keyboard focus) when only statuses changed;
 * with `changed` (seats of the map drawn, whose status changed), updates only those.
 */
function renderSeats(changed = null) {
  const box = $("#seatmap");
  $("#seats-box").hidden = !state.showtimeId;
  if (!state.showtimeId || !state.seats.length) {
    renderSaleNote();
    renderSelection();
    return box.replaceChildren();
  }
  let shown = changed;
  if (!changed || !(box.dataset.layout || "").startsWith(`${state.showtimeId}/${state.seatPage}/`)) {
    const pages = Math.ceil(state.seats.length / SEATS_PER_PAGE);
    state.seatPage = Math.min(state.seatPage, pages - 1);
    shown = state.seats.slice(state.seatPage * SEATS_PER_PAGE, (state.seatPage + 1) * SEATS_PER_PAGE);
    const layout = `${state.showtimeId}/${state.seatPage}/${shown.length}/${shown.map((s) => s.price).join(",")}`;
    if (box.dataset.layout !== layout) {
      box.dataset.layout = layout;
      box.replaceChildren(...drawSections(shown));
      state.infoSeat = null;
      $("#seat-info").textContent = "Hover over or focus a seat to see its price.";
      renderSeatPages(pages);
    }
  }
  for (const seat of shown) {
    const b = seatButton(seat.id);
    if (!b) continue;
    const status = seatStatus(seat);
    if (b.dataset.status === status) continue;
    b.dataset.status = status;
    b.className = `seat ${status}`;
    b.setAttribute("aria-label", seatLabel(seat, status));
    b.title = `Seat ${seat.number} · ${pts(seat.price)} · ${STATUS_TEXT[status]}`;
    const selectable = status === "available" || status === "selected";
    b.setAttribute("aria-disabled", String(!selectable));
    if (selectable) b.setAttribute("aria-pressed", String(status === "selected"));
    else b.removeAttribute("aria-pressed");
  }
  if (state.infoSeat) showSeatInfo(...state.infoSeat); // its status may have changed
  renderSaleNote();
  renderSelection();
}

/** Above the map of a date whose sale has not opened: when it opens. */
function renderSaleNote() {
  const show = currentShow();
  const note = $("#sale-note");
  const closed = Boolean(state.showtimeId && show && !saleOpen(show));
  note.hidden = !closed;
  $("#seats-intro").hidden = closed;
  $("#legend-unopened").hidden = !closed;
  if (!closed) return;
  const text = `Sale opens at ${longTime(show.sale_opens_at)}`;
  if ($("#sale-when").textContent !== text) $("#sale-when").textContent = text;
  $("#sale-in").dataset.opens = show.sale_opens_at;
  $("#sale-in").textContent = `(${fromNow(show.sale_opens_at)})`;
}

/** Under the map: how many seats are selected, of how many allowed, and the hold button. */
function renderSelection() {
  const box = $("#selection");
  const show = currentShow();
  box.hidden = !state.showtimeId || !state.seats.length || !saleOpen(show) || view() !== "active";
  if (box.hidden) return;
  const picked = selectedSeats();
  const have = ticketsFor(state.showtimeId).length;
  const room = roomLeft();
  const count = $("#selection-count");
  let text;
  if (picked.length) {
    const total = picked.reduce((n, x) => n + x.price, 0);
    text = `${picked.length} of ${Math.max(room, picked.length)} selected: ${picked.length > 1 ? "seats" : "seat"} ${seatList(picked.map((x) => x.number))} · ${pts(total)}`;
  } else if (room === 0) {
    text = `You have ${plural(have, "ticket")} for this date, the most one visitor may have (${state.ticketLimit}, held and paid together).`;
  } else if (have) {
    text = `Select up to ${room} more ${room === 1 ? "seat" : "seats"} (${state.ticketLimit} per visitor for each date; you have ${have}).`;
  } else {
    text = `Select up to ${plural(room, "seat")}, then hold them together.`;
  }
  if (count.textContent !== text) count.textContent = text;
  const hold = $("#hold-selected");
  hold.disabled = !picked.length || state.holding;
  hold.textContent = picked.length ? `Hold ${plural(picked.length, "seat")}` : "Hold seats";
  $("#clear-selection").hidden = !picked.length;
}

function drawSections(seats) {
  const secs = sections(seats);
  const named = secs.length > 1 && secs[0].named;
  return secs.map((sec) => {
    const first = sec.seats[0].number;
    const last = sec.seats[sec.seats.length - 1].number;
    const title = `${sec.name} · seats ${first}–${last} · ${pts(sec.price)}`;
    return h(
      "div",
      { class: "section", role: "group", "aria-label": named ? title : `Seats ${first}–${last}, ${pts(sec.price)} each` },
      named ? h("h3", { class: "section-title" }, title) : h("p", { class: "section-title muted" }, `Every seat ${pts(sec.price)}`),
      h(
        "div",
        { class: "seat-grid" },
        sec.seats.map((seat) =>
          h("button", {
            type: "button",
            class: "seat",
            "data-seat": seat.id,
            onclick: () => onSeatClick(currentSeat(seat.id)),
            onfocus: () => showSeatInfo(seat.id, sec),
            onmouseenter: () => showSeatInfo(seat.id, sec),
          }, String(seat.number)),
        ),
      ),
    );
  });
}

function renderSeatPages(pages) {
  const box = $("#seat-pages");
  box.hidden = pages < 2;
  if (pages < 2) return box.replaceChildren();
  const select = h(
    "select",
    { id: "seat-page", onchange: (e) => { state.seatPage = Number(e.target.value); renderSeats(); } },
    Array.from({ length: pages }, (_, i) => {
      const from = state.seats[i * SEATS_PER_PAGE].number;
      const to = state.seats[Math.min(state.seats.length, (i + 1) * SEATS_PER_PAGE) - 1].number;
      return h("option", { value: i, selected: i === state.seatPage }, `Seats ${from}–${to}`);
    }),
  );
  box.replaceChildren(h("label", { for: "seat-page" }, "Show "), select);
}

const currentSeat = (id) => seatIndex.get(id);

/** Arrow keys move between seats: left and right by one, up and down by a row of ten. */
function onSeatKey(event) {
  const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -10, ArrowDown: 10 }[event.key];
  if (!step || !event.target.classList.contains("seat")) return;
  const all = Array.from(document.querySelectorAll("#seatmap button.seat"));
  const next = all[all.indexOf(event.target) + step];
  if (next) next.focus();
  event.preventDefault();
}

function showSeatInfo(id, sec) {
  const seat = currentSeat(id);
  state.infoSeat = seat ? [id, sec] : null;
  if (!seat) return;
  const status = seatStatus(seat);
  const hint = {
    available: " — click or press Enter to select it",
    selected: " — click or press Enter to deselect it",
  }[status] || "";
  const where = sec.named ? ` · ${sec.name}` : "";
  const text = `Seat ${seat.number}${where} · ${pts(seat.price)} · ${STATUS_TEXT[status]}${hint}`;
  if ($("#seat-info").textContent !== text) $("#seat-info").textContent = text; // no repeated announcements
}

/**
 * Rebuilds a list of cards, then puts keyboard focus back on the same control of the same card
 * (or on the card's first enabled button, or the panel's heading) when it was inside the list.
 */
function rebuildCards(list, cards, heading) {
  const active = document.activeElement;
  const card = active && list.contains(active) ? active.closest("[data-ticket]") : null;
  const was = card ? [card.dataset.ticket, active.dataset.action] : null;
  list.replaceChildren(...cards);
  if (!was) return;
  const again = list.querySelector(`[data-ticket="${was[0]}"]`);
  const target =
    (again && again.querySelector(`[data-action="${was[1]}"]:not(:disabled)`)) ||
    (again && again.querySelector("button:not(:disabled)")) ||
    heading;
  target.focus();
}

function renderHolds() {
  const live = state.tickets.filter(liveHold).sort((a, b) => a.seat_number - b.seat_number);
  const lapsed = lapsedHolds();
  const active = view() === "active";
  $("#holds-empty").hidden = live.length + lapsed.length > 0;
  $("#holds").hidden = view() === "expired" && live.length + lapsed.length === 0;
  $("#holds-empty").textContent = active ? "No seats held yet. Pick them on the seat map." : "You hold no seats.";
  rebuildCards(
    $("#holds-list"),
    [...live.map(holdCard), ...lapsed.map(lapsedCard)],
    $("#holds-h"),
  );
  $("#holds-jump").hidden = !live.length;
  $("#holds-jump a").textContent = `You hold ${live.length === 1 ? "1 seat" : `${live.length} seats`}: pay below ↓`;
  const pay = $("#pay-all");
  const total = live.reduce((n, t) => n + t.price, 0);
  pay.hidden = live.length < 2;
  pay.disabled = false;
  pay.textContent = `Pay for all (${live.length}) · ${pts(total)}`;
  pay.onclick = () => payFor(live);
  renderSteps();
  renderOver();
  renderSelection();
}

function holdCard(t) {
  const n = t.seat_number;
  const extended = state.notes.extended[t.id] || 0;
  const usedUp = extensionsUsedUp(t);
  const active = view() === "active";
  let extendNote = null;
  if (active && usedUp) extendNote = "Extended as often as a hold may be: pay before the countdown ends.";
  else if (extended) extendNote = `Extended ${extended === 1 ? "once" : `${extended} times`}.`;
  return h(
    "li",
    { class: "card hold", "data-ticket": t.id },
    ticketTitle(t),
    h(
      "p",
      { class: "countdown" },
      "Held for you: ",
      h("strong", { class: "time-left", "data-until": t.held_until }, countdown(Date.parse(t.held_until) - now())),
      " left",
    ),
    extendNote && h("p", { class: "muted extend-note" }, extendNote),
    h("button", { type: "button", class: "pay-btn primary-btn", "data-action": "pay", onclick: () => payFor([t]) }, `Pay ${pts(t.price)}`),
    h(
      "div",
      { class: "card-actions" },
      // Extending needs an active turn in the waiting room; releasing does not.
      active &&
        h(
          "button",
          {
            type: "button",
            "data-action": "extend",
            "aria-label": usedUp ? `Can't extend the hold on seat ${n} again` : `Extend the hold on seat ${n}`,
            disabled: usedUp,
            onclick: () => extend(t),
          },
          usedUp ? "Can't extend again" : extended ? "Extend again" : "Extend",
        ),
      h(
        "button",
        { type: "button", "data-action": "release", "aria-label": `Release seat ${n}`, onclick: () => release(t) },
        "Release",
      ),
    ),
  );
}

function lapsedCard(t) {
  return h(
    "li",
    { class: "card lapsed", "data-ticket": t.id },
    ticketTitle(t),
    h("p", { class: "lapsed-note" }, h("strong", {}, "Hold lapsed"), ` — seat ${t.seat_number} was released.`),
    h("button", { type: "button", class: "link-btn", "data-action": "dismiss", onclick: () => dismissLapsed(t.id) }, "Dismiss"),
  );
}

function dismissLapsed(id) {
  state.dismissed.add(id);
  renderHolds();
}

function ticketTitle(t) {
  return h(
    "div",
    { class: "ticket-title" },
    h("strong", {}, `Seat ${t.seat_number}`),
    h("span", {}, ` · ${pts(t.price)}`),
    h("span", { class: "muted block" }, `${concertName(t)} · ${showDate(t.showtime_id)}`),
  );
}

function renderWallet() {
  $("#balance").textContent = state.balance === null ? "–" : pts(state.balance);
  const due = state.tickets.filter(liveHold).reduce((n, t) => n + t.price, 0);
  const short = state.balance === null ? 0 : due - state.balance;
  const input = $("#charge-amount");
  $("#charge-hint").textContent =
    short > 0
      ? `You need ${pts(short)} more to pay for your held seats.`
      : due > 0
        ? "You have enough points to pay for your held seats."
        : "";
  if (!state.chargeEdited && document.activeElement !== input) input.value = short > 0 ? String(short) : "";
}

/** Paid tickets first, then cancelled ones, then released holds; newest first in each. */
function renderTickets() {
  const order = { paid: 0, cancelled: 1, released: 2 };
  const shown = state.tickets
    .filter((t) => t.status in order)
    .map((t, i) => [t, i])
    .sort((a, b) => order[a[0].status] - order[b[0].status] || a[1] - b[1])
    .map(([t]) => t);
  $("#tickets-empty").hidden = shown.length > 0;
  rebuildCards($("#tickets-list"), shown.map(ticketCard), $("#mine-h"));
  renderSteps();
}

function ticketCard(t) {
  const n = t.seat_number;
  if (t.status === "released") {
    return h(
      "li",
      { class: "card released", "data-ticket": t.id },
      ticketTitle(t),
      h("p", { class: "status-note" }, h("strong", {}, "Released"), " — you gave this seat back before paying."),
    );
  }
  if (t.status === "cancelled") {
    const r = state.notes.refunds[t.id];
    const detail = r
      ? ` — ${pts(r.refund)} refunded${r.fee ? `, a fee of ${pts(r.fee)} kept` : ""}.`
      : " — its points were refunded to your wallet.";
    return h(
      "li",
      { class: "card cancelled", "data-ticket": t.id },
      ticketTitle(t),
      h("p", { class: "status-note" }, h("strong", {}, "Cancelled"), detail),
    );
  }
  const asking = state.confirming === t.id;
  return h(
    "li",
    { class: "card ticket", "data-ticket": t.id },
    ticketTitle(t),
    h("p", { class: "paid-note" }, h("strong", {}, "Paid"), " — your ticket"),
    asking
      ? h(
          "div",
          { class: "confirm", role: "group", "aria-label": `Cancel seat ${n}?` },
          h("p", {}, `Cancel seat ${n}? Its price comes back to your wallet, less a cancellation fee, and the seat goes back on sale.`),
          h(
            "div",
            { class: "card-actions" },
            h(
              "button",
              { type: "button", class: "danger-btn", "data-action": "confirm-cancel", onclick: () => cancelTicket(t) },
              `Yes, cancel seat ${n}`,
            ),
            h("button", { type: "button", "data-action": "keep", onclick: () => askCancel(t, false) }, "Keep it"),
          ),
        )
      : h(
          "button",
          {
            type: "button",
            class: "cancel-btn",
            "data-action": "cancel",
            "aria-label": `Cancel for refund: seat ${n}`,
            onclick: () => askCancel(t, true),
          },
          "Cancel for refund",
        ),
  );
}

function renderHistory() {
  const kinds = { charge: "Charged", payment: "Paid", refund: "Refunded" };
  $("#payments-list").replaceChildren(
    ...(state.payments.length
      ? state.payments.map((p) => {
          const ids = p.ticket_ids && p.ticket_ids.length ? p.ticket_ids : [p.ticket_id];
          const ts = ids.map((id) => state.tickets.find((x) => x.id === id));
          const what = ts.every(Boolean)
            ? `${ts.length > 1 ? "Seats" : "Seat"} ${seatList(ts.map((t) => t.seat_number).sort((a, b) => a - b))}, ${concertName(ts[0])}`
            : ids.map((id) => `Ticket #${id}`).join(", ");
          return h(
            "li",
            {},
            h(
              "span",
              {},
              `${what}: ${pts(p.amount)}`,
              p.refunded ? h("span", { class: "refunded" }, ` · ${pts(p.refunded)} refunded`) : null,
            ),
            h("span", { class: "muted" }, stamp(p.paid_at)),
          );
        })
      : [h("li", { class: "muted" }, "No payments yet.")]),
  );
  $("#points-list").replaceChildren(
    ...(state.points.length
      ? state.points.map((p) =>
          h(
            "li",
            {},
            h("span", {}, `${kinds[p.kind] || p.kind} ${p.amount > 0 ? "+" : "−"}${nf.format(Math.abs(p.amount))} → ${pts(p.balance_after)}`),
            h("span", { class: "muted" }, stamp(p.created_at)),
          ),
        )
      : [h("li", { class: "muted" }, "No points yet.")]),
  );
}

// ---------------------------------------------------------------------------------------------
// The clock: countdowns, lapsed holds, the end of the turn (once a second, no requests)

function tick() {
  renderTurn();
  renderEntering();
  renderPrequeue();
  for (const el of document.querySelectorAll(".time-left")) {
    el.textContent = countdown(Date.parse(el.dataset.until) - now());
  }
  const lapsedNow = state.tickets.filter(
    (t) => t.status === "held" && !liveHold(t) && !state.announced.has(t.id),
  );
  if (lapsedNow.length) onLapse(lapsedNow);
  const q = state.queue;
  if (q && q.status === "active" && q.expires_at && Date.parse(q.expires_at) <= now()) {
    q.expires_at = null;
    pollQueue();
  }
  tickSale();
}

/** The chosen date's sale opening: the time left to it, and the map once it opens. */
function tickSale() {
  const show = currentShow();
  const open = saleOpen(show);
  const was = state.saleOpen;
  state.saleOpen = open;
  const left = $("#sale-in");
  if (!open && left.dataset.opens) left.textContent = `(${fromNow(left.dataset.opens)})`;
  if (was === false && open && view() === "active") {
    renderDates();
    renderSeats();
    notify("The sale for this date is open: select your seats and hold them.");
  }
}

function onLapse(tickets) {
  for (const t of tickets) state.announced.add(t.id);
  const seats = tickets.map((t) => t.seat_number).join(", ");
  notify(
    tickets.length > 1
      ? `Your holds on seats ${seats} lapsed before payment; the seats were released for others.`
      : `Your hold on seat ${seats} lapsed before payment; the seat was released for others.`,
    "error",
  );
  renderHolds();
  renderSeats();
  renderWallet();
  // The server decides; ask it once the moment has surely passed there too.
  setTimeout(() => {
    loadTickets();
    if (view() === "active") loadSeats().catch(() => {});
  }, 800);
}

// ---------------------------------------------------------------------------------------------
// Wiring

function start() {
  loadStore();
  $("#join").addEventListener("click", join);
  $("#rejoin").addEventListener("click", join);
  $("#entering-retry").addEventListener("click", join);
  $("#charge-form").addEventListener("submit", charge);
  $("#hold-selected").addEventListener("click", holdSelected);
  $("#clear-selection").addEventListener("click", clearSelection);
  $("#seatmap").addEventListener("keydown", onSeatKey);
  $("#charge-amount").addEventListener("input", () => (state.chargeEdited = true));
  $("#toast-close").addEventListener("click", () => ($("#toast").hidden = true));
  $("#forget").addEventListener("click", () => {
    if (!confirm("Forget this visitor (its place in the queue, tickets and points) and start over?")) return;
    localStorage.removeItem(STORE_KEY);
    localStorage.removeItem(NOTES_KEY);
    sessionStorage.removeItem(PICK_KEY);
    location.reload();
  });
  document.addEventListener("visibilitychange", onVisibility);
  render();
  if (state.token) pollQueue();
  setInterval(tick, 1000);
}

start();
