// The booking demo page: the whole journey (waiting room, seat map, hold, wallet, payment,
// tickets) over the server's public HTTP API only. Plain JavaScript, no build step.
//
// Layout of this file: settings and state; the one place that calls the API and the one place
// that turns its errors into messages; then the queue, the catalog and seat map, holds, the
// wallet and payments, tickets and history; then the clock and the page's wiring.
"use strict";

// ---------------------------------------------------------------------------------------------
// Settings and state

const POLL_WAITING_MS = 2500; // GET /token while waiting (keeps the entry alive, and admits)
const POLL_ACTIVE_MS = 10000; // GET /token while active (notices the end of the turn)
const SEATS_REFRESH_MS = 4000; // the seat map and the dates' seats left
const HIDDEN_PAUSE_MS = 60000; // stop polling after the tab has been hidden this long
const LAPSED_SHOWN_MS = 15 * 60 * 1000; // lapsed holds stay listed this long
const SEATS_PER_PAGE = 500; // larger showtimes get a page picker
const STORE_KEY = "booking-demo"; // localStorage: token, user id, position when joined
const PICK_KEY = "booking-demo-pick"; // sessionStorage: the chosen concert and date
const NAMES_KEY = "booking-demo-names"; // localStorage: concert titles and dates, for tickets

const state = {
  token: null,
  userId: null,
  joinedAt: null, // position when this entry joined, for the progress bar
  queue: null, // the last QueueStatus
  overReason: null, // why the turn ended: "paid", "time", "idle", null
  concerts: [],
  concertId: null,
  showtimes: [],
  showtimeId: null,
  seats: [],
  seatPage: 0,
  infoSeat: null, // [seat id, section] described under the map
  tickets: [],
  balance: null,
  payments: [],
  points: [],
  names: { concerts: {}, showtimes: {} },
  announced: new Set(), // ticket ids whose lapse was announced
  dismissed: new Set(), // lapsed ticket ids the visitor dismissed
  chargeEdited: false, // the visitor typed an amount: stop suggesting one
  hiddenSince: null,
  paused: false,
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
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the API; resolves to the JSON body, or throws an ApiError. Retries `busy` (503). */
async function api(method, path, { body, key, auth = true, retries = 2 } = {}) {
  const headers = { Accept: "application/json" };
  if (auth && state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
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
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (res.ok) return data;
  const err = data && data.error ? data.error : { code: "internal", message: res.statusText };
  if (err.code === "busy" && retries > 0) {
    await sleep(400);
    return api(method, path, { body, key, auth, retries: retries - 1 });
  }
  throw new ApiError(res.status, err.code, err.message);
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

/** Friendly text for an API error; `ctx` may carry a seat number or a price. */
function explain(err, ctx = {}) {
  const seat = ctx.seat ? `seat ${ctx.seat}` : "that seat";
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
      return "You already hold as many seats as one visitor may hold for this date. Pay for them (or let a hold lapse) before holding another.";
    case "hold_expired":
      return `Your hold on ${seat} lapsed before you paid, so the seat was released. Hold it again if it is still free.`;
    case "insufficient_points": {
      const short = ctx.price && state.balance !== null ? ctx.price - state.balance : null;
      return short > 0
        ? `Not enough points: ${seat} costs ${pts(ctx.price)} and your balance is ${pts(state.balance)}. Charge at least ${pts(short)} in the wallet, then pay.`
        : "Not enough points for this seat. Charge more in the wallet, then pay.";
    }
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
    case "idempotency_conflict":
    case "idempotency_key_reused":
      return "That request is already being handled. Please wait a moment.";
    default:
      return "Something went wrong on the server. Please try again.";
  }
}

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

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
    const names = JSON.parse(localStorage.getItem(NAMES_KEY) || "null");
    if (names && names.concerts && names.showtimes) state.names = names;
    const pick = JSON.parse(sessionStorage.getItem(PICK_KEY) || "{}");
    state.concertId = pick.concert || null;
    state.showtimeId = pick.showtime || null;
  } catch (e) {
    /* unreadable storage: start afresh */
  }
}

function saveStore() {
  try {
    localStorage.setItem(
      STORE_KEY,
      JSON.stringify({ token: state.token, user_id: state.userId, joined_position: state.joinedAt }),
    );
    localStorage.setItem(NAMES_KEY, JSON.stringify(state.names));
    sessionStorage.setItem(
      PICK_KEY,
      JSON.stringify({ concert: state.concertId, showtime: state.showtimeId }),
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

async function join() {
  const button = state.queue ? $("#rejoin") : $("#join");
  button.disabled = true;
  try {
    let q;
    try {
      q = await api("POST", "/token", { body: state.userId ? { user_id: state.userId } : {}, auth: false });
    } catch (e) {
      if (!state.userId || e.status !== 400) throw e;
      q = await api("POST", "/token", { body: {}, auth: false }); // an unknown id: a new visitor
    }
    state.token = q.token;
    state.userId = q.user_id;
    state.joinedAt = q.position || null;
    state.overReason = null;
    saveStore();
    await applyQueue(q);
    scheduleQueuePoll(q.status === "waiting" ? POLL_WAITING_MS : POLL_ACTIVE_MS);
    if (q.status === "waiting") notify(`You joined the queue at position ${q.position}.`);
  } catch (e) {
    fail(e);
  } finally {
    button.disabled = false;
  }
}

function scheduleQueuePoll(ms) {
  clearTimeout(queueTimer);
  queueTimer = setTimeout(pollQueue, ms);
}

async function pollQueue() {
  clearTimeout(queueTimer);
  if (!state.token) return;
  if (hiddenTooLong()) {
    state.paused = true; // resumed by the visibilitychange handler
    renderWaiting();
    return;
  }
  try {
    await applyQueue(await api("GET", "/token"));
  } catch (e) {
    if (e.code === "unauthorized") return forgetToken(explain(e));
    if (e.code === "network") notify(explain(e), "error");
  }
  const status = state.queue && state.queue.status;
  if (status === "waiting" || status === "active" || !state.queue) {
    scheduleQueuePoll(status === "waiting" || !state.queue ? POLL_WAITING_MS : POLL_ACTIVE_MS);
  }
}

async function applyQueue(q) {
  const before = state.queue ? state.queue.status : null;
  state.queue = q;
  if (q.status === "waiting" && (!state.joinedAt || q.position > state.joinedAt)) {
    state.joinedAt = q.position;
    saveStore();
  }
  render();
  if (before !== q.status) await onTurnChange(before, q.status);
}

async function onTurnChange(before, after) {
  if (after === "active") {
    if (before === "waiting") notify("It's your turn! Pick a concert, a date and a seat.");
    await Promise.all([loadConcerts(), loadWallet(), loadTickets(), loadHistory()]);
    scheduleSeatRefresh(0);
  } else if (after === "expired") {
    if (!state.overReason) {
      state.overReason = before === "waiting" ? "idle" : before === "active" ? "time" : null;
    }
    stopSeatRefresh();
    render();
    await Promise.all([loadWallet(), loadTickets(), loadHistory()]);
  } else if (after === "waiting") {
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
  if (state.paused) {
    state.paused = false;
    notify("Welcome back: checking your place in the queue.");
  }
  pollQueue();
  if (view() === "active") scheduleSeatRefresh(0);
}

/** Which screen to show: "none" (not joined), "loading", "waiting", "active" or "expired". */
function view() {
  if (!state.token) return "none";
  return state.queue ? state.queue.status : "loading";
}

// ---------------------------------------------------------------------------------------------
// Catalog: concerts, dates, seats

let seatTimer = null;

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

async function loadSeats() {
  if (!state.concertId || !state.showtimeId) return;
  const key = `${state.concertId}:${state.showtimeId}`;
  const seats = await api("GET", `/concerts/${key}`);
  if (key !== `${state.concertId}:${state.showtimeId}`) return; // the choice changed meanwhile
  state.seats = seats;
  renderSeats();
}

async function selectConcert(id) {
  state.concertId = id;
  state.showtimeId = null;
  state.showtimes = [];
  state.seats = [];
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
  state.showtimeId = id;
  state.seatPage = 0;
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
  // A large showtime's map is a large answer: ask for it less often.
  scheduleSeatRefresh(SEATS_REFRESH_MS * Math.max(1, Math.ceil(state.seats.length / 2000)));
}

/** The seat's status as this visitor sees it: available, mine, held, sold or owned. */
function seatStatus(seat) {
  const t = state.tickets.find((x) => x.seat_id === seat.id && x.showtime_id === state.showtimeId);
  if (seat.status === "held" && t && liveHold(t)) return "mine";
  if (seat.status === "sold" && t && t.status === "paid") return "owned";
  return seat.status;
}

const STATUS_TEXT = {
  available: "available",
  mine: "held by you",
  held: "held by someone else",
  sold: "sold",
  owned: "sold to you",
};

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

async function hold(seat) {
  const button = seatButton(seat.id);
  if (button) button.setAttribute("aria-busy", "true");
  try {
    const t = await api("POST", "/tickets", { body: { showtime_id: state.showtimeId, seat_id: seat.id } });
    state.tickets = [t, ...state.tickets.filter((x) => x.id !== t.id)];
    notify(`Seat ${t.seat_number} is yours until ${clockTime(t.held_until)}. Pay for it under "Your held seats" before the countdown ends.`);
    renderHolds();
    renderWallet();
  } catch (e) {
    fail(e, { seat: seat.number });
    if (e.code === "showtime_closed") await loadShowtimes().catch(() => {});
  } finally {
    if (button) button.removeAttribute("aria-busy");
  }
  await Promise.all([loadSeats(), loadShowtimes()]).catch(() => {});
}

function onSeatClick(seat) {
  const status = seatStatus(seat);
  if (status === "available") return hold(seat);
  const text = {
    mine: `You hold seat ${seat.number}: pay for it under "Your held seats".`,
    held: `Seat ${seat.number} is held by someone else. It comes back if they do not pay in time.`,
    sold: `Seat ${seat.number} is sold. Please pick an available seat.`,
    owned: `Seat ${seat.number} is yours: it is in your tickets.`,
  }[status];
  notify(text);
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
      (t) => wasLive.has(t.id) && t.status !== "paid" && !liveHold(t) && !state.announced.has(t.id),
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

/** Pays for one held ticket; true when paid. */
async function pay(t) {
  try {
    await api("POST", "/payments", { body: { ticket_id: t.id }, key: newKey("pay") });
    state.overReason = "paid";
    notify(`Paid! Seat ${t.seat_number} (${concertName(t)}, ${showDate(t.showtime_id)}) is yours.`);
    return true;
  } catch (e) {
    fail(e, { seat: t.seat_number, price: t.price });
    return false;
  }
}

async function payFor(tickets) {
  for (const b of document.querySelectorAll(".pay-btn, #pay-all")) b.disabled = true;
  let paid = 0;
  for (const t of tickets) {
    if (!(await pay(t))) break;
    paid += 1;
  }
  if (paid > 1) notify(`Paid for ${paid} seats. Enjoy the show!`);
  await Promise.all([loadTickets(), loadWallet(), loadHistory()]);
  if (paid > 0) {
    await pollQueue(); // a payment ends the turn in the waiting room
    $("#mine-h").focus();
  }
  renderHolds();
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
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c);
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

function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function aboutDuration(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  if (seconds < 60) return "under a minute";
  const m = Math.round(seconds / 60);
  return m < 90 ? `about ${m} min` : `about ${Math.round(m / 60)} h`;
}

function render() {
  const v = view();
  $("#welcome").hidden = v !== "none" && v !== "loading";
  $("#join").hidden = v === "loading";
  $("#loading").hidden = v !== "loading";
  $("#waiting").hidden = v !== "waiting";
  $("#catalog").hidden = v !== "active";
  $("#over").hidden = v !== "expired";
  $("#side").hidden = v !== "active" && v !== "expired";
  arrangeSide(v);
  renderTurn();
  renderSteps();
  renderWaiting();
  renderOver();
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
  const text = {
    none: "Not in the queue",
    loading: "Checking your place…",
    waiting: q && `Waiting · position ${q.position}`,
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

function renderWaiting() {
  const q = state.queue;
  if (!q || q.status !== "waiting") return;
  $("#position").textContent = String(q.position);
  $("#eta").textContent = aboutDuration(q.estimated_wait_seconds);
  const start = Math.max(state.joinedAt || q.position, q.position);
  const bar = $("#queue-progress");
  bar.value = Math.round((100 * (start - q.position + 1)) / (start + 1));
  bar.setAttribute("aria-valuetext", `position ${q.position} of ${start} when you joined`);
  $("#waiting-note").textContent = state.paused
    ? "Paused while this tab is in the background. Come back to this tab to keep your place."
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
  const more = holding ? " You can still pay for the seats you hold." : "";
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
      h(
        "span",
        { class: left ? "muted" : "muted soldout" },
        left ? `${nf.format(left)} of ${nf.format(s.total_seats)} seats left` : "Sold out",
      ),
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

/** Draws the seat map, or updates it in place (keeping keyboard focus) when only statuses changed. */
function renderSeats() {
  const box = $("#seatmap");
  $("#seats-box").hidden = !state.showtimeId;
  if (!state.showtimeId || !state.seats.length) return box.replaceChildren();
  const pages = Math.ceil(state.seats.length / SEATS_PER_PAGE);
  state.seatPage = Math.min(state.seatPage, pages - 1);
  const shown = state.seats.slice(state.seatPage * SEATS_PER_PAGE, (state.seatPage + 1) * SEATS_PER_PAGE);
  const layout = `${state.showtimeId}/${state.seatPage}/${shown.length}/${shown.map((s) => s.price).join(",")}`;
  if (box.dataset.layout !== layout) {
    box.dataset.layout = layout;
    box.replaceChildren(...drawSections(shown));
    state.infoSeat = null;
    $("#seat-info").textContent = "Hover over or focus a seat to see its price.";
    renderSeatPages(pages);
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
    b.setAttribute("aria-disabled", String(status !== "available"));
  }
  if (state.infoSeat) showSeatInfo(...state.infoSeat); // its status may have changed
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

const currentSeat = (id) => state.seats.find((s) => s.id === id);

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
  const hint = status === "available" ? " — click or press Enter to hold it" : "";
  const where = sec.named ? ` · ${sec.name}` : "";
  const text = `Seat ${seat.number}${where} · ${pts(seat.price)} · ${STATUS_TEXT[status]}${hint}`;
  if ($("#seat-info").textContent !== text) $("#seat-info").textContent = text; // no repeated announcements
}

function renderHolds() {
  const live = state.tickets.filter(liveHold).sort((a, b) => a.seat_number - b.seat_number);
  const lapsed = lapsedHolds();
  $("#holds-empty").hidden = live.length + lapsed.length > 0;
  $("#holds").hidden = view() === "expired" && live.length + lapsed.length === 0;
  $("#holds-empty").textContent =
    view() === "active" ? "No seats held yet. Pick one on the seat map." : "You hold no seats.";
  $("#holds-list").replaceChildren(
    ...live.map((t) =>
      h(
        "li",
        { class: "card hold", "data-ticket": t.id },
        ticketTitle(t),
        h("p", { class: "countdown" }, "Held for you: ", h("strong", { class: "time-left", "data-until": t.held_until }, countdown(Date.parse(t.held_until) - now())), " left"),
        h("button", { type: "button", class: "pay-btn primary-btn", onclick: () => payFor([t]) }, `Pay ${pts(t.price)}`),
      ),
    ),
    ...lapsed.map((t) =>
      h(
        "li",
        { class: "card lapsed", "data-ticket": t.id },
        ticketTitle(t),
        h("p", { class: "lapsed-note" }, h("strong", {}, "Hold lapsed"), ` — seat ${t.seat_number} was released.`),
        h("button", { type: "button", class: "link-btn", onclick: () => dismissLapsed(t.id) }, "Dismiss"),
      ),
    ),
  );
  $("#holds-jump").hidden = !live.length;
  $("#holds-jump a").textContent = `You hold ${live.length === 1 ? "1 seat" : `${live.length} seats`}: pay below ↓`;
  const pay = $("#pay-all");
  pay.hidden = live.length < 2;
  pay.disabled = false;
  pay.textContent = `Pay for all ${live.length} seats (${pts(live.reduce((n, t) => n + t.price, 0))})`;
  pay.onclick = () => payFor(live);
  renderSteps();
  renderOver();
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

function renderTickets() {
  const paid = state.tickets.filter((t) => t.status === "paid");
  $("#tickets-empty").hidden = paid.length > 0;
  $("#tickets-list").replaceChildren(
    ...paid.map((t) =>
      h("li", { class: "card ticket", "data-ticket": t.id }, ticketTitle(t), h("p", { class: "paid-note" }, h("strong", {}, "Paid"), " — your ticket")),
    ),
  );
  renderSteps();
}

function renderHistory() {
  const kinds = { charge: "Charged", payment: "Paid", refund: "Refunded" };
  $("#payments-list").replaceChildren(
    ...(state.payments.length
      ? state.payments.map((p) => {
          const t = state.tickets.find((x) => x.id === p.ticket_id);
          const what = t ? `Seat ${t.seat_number}, ${concertName(t)}` : `Ticket #${p.ticket_id}`;
          return h("li", {}, h("span", {}, `${what}: ${pts(p.amount)}`), h("span", { class: "muted" }, stamp(p.paid_at)));
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
  $("#charge-form").addEventListener("submit", charge);
  $("#seatmap").addEventListener("keydown", onSeatKey);
  $("#charge-amount").addEventListener("input", () => (state.chargeEdited = true));
  $("#toast-close").addEventListener("click", () => ($("#toast").hidden = true));
  $("#forget").addEventListener("click", () => {
    if (!confirm("Forget this visitor (its place in the queue, tickets and points) and start over?")) return;
    localStorage.removeItem(STORE_KEY);
    sessionStorage.removeItem(PICK_KEY);
    location.reload();
  });
  document.addEventListener("visibilitychange", onVisibility);
  render();
  if (state.token) pollQueue();
  setInterval(tick, 1000);
}

start();
