//! The checker: pure functions from (history, final state) to violations, one named check per
//! rule. An answered write is a fact; a request that got no answer ("unknown") may have been
//! applied or not, at any time after it was sent (a stopped server wakes up and commits it
//! later); an error answer (`4xx`, `503 busy`) changed nothing.
//!
//! Times: the history's are the clients' wall clock (µs), the database's are the servers' (ms,
//! the same clock). A write answered to a request happened between the millisecond the request
//! was sent in and the one its answer came in.
//!
//! The rules, by name:
//!
//! - `acknowledged_writes_present`: every answered write is in the database as answered —
//!   entries, tickets (seat, price, time), extensions, releases, charges (amount and the
//!   balance answered), payments (tickets, amount, time, ledger row), cancellations (refund,
//!   fee, refund row) — at a time inside its request's window.
//! - `nothing_unrequested`: every row could have been made by a request that was answered or
//!   got no answer: each ticket, payment, ledger row, release, cancellation, extension and queue
//!   entry is matched to a distinct such request, made no earlier than it was sent.
//! - `one_claim_per_seat`: no two tickets claim a seat at once — neither the intervals the
//!   database's rows give (from `created_at` to the lapse, release, cancellation, or for good
//!   when paid) nor the ones answered holds prove (from the hold to its answered `held_until`,
//!   for good once its payment was answered, cut at the first release or cancel sent).
//! - `no_hold_after_sale`: no hold is answered that was sent after a sale of its seat had been
//!   answered, unless that sale's cancellation was sent before the hold's answer came.
//! - `payment_ends_the_turn`: no hold or extension is answered that was sent, after one of the
//!   user's payments was answered, with a token of an entry the user had before that payment.
//! - `wallet_matches_history`: each final balance (database and API) equals the answered
//!   charges − payments + refunds, give or take the unknown ones (an interval).
//! - `idempotent_replay`: under one key, every success answers the same (status and body) for
//!   the same request; once it is answered, the same request replays it and another is `422`.
//! - `no_5xx_but_503`: no answer is a 5xx other than `503`.
//! - `verify_clean`: the library's `verify` finds nothing.
//! - `api_agrees_with_db`: what the API answers each user (balance, tickets, point and payment
//!   histories) is what the database holds.

use super::history::{ms, parse_ms, token_entry, Micros, Op, Outcome, Record};
use super::state::State;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const ACKNOWLEDGED_WRITES_PRESENT: &str = "acknowledged_writes_present";
pub const NOTHING_UNREQUESTED: &str = "nothing_unrequested";
pub const ONE_CLAIM_PER_SEAT: &str = "one_claim_per_seat";
pub const NO_HOLD_AFTER_SALE: &str = "no_hold_after_sale";
pub const PAYMENT_ENDS_THE_TURN: &str = "payment_ends_the_turn";
pub const WALLET_MATCHES_HISTORY: &str = "wallet_matches_history";
pub const IDEMPOTENT_REPLAY: &str = "idempotent_replay";
pub const NO_5XX_BUT_503: &str = "no_5xx_but_503";
pub const VERIFY_CLEAN: &str = "verify_clean";
pub const API_AGREES_WITH_DB: &str = "api_agrees_with_db";

/// Every check, in the order they run.
pub const CHECKS: [&str; 10] = [
    ACKNOWLEDGED_WRITES_PRESENT,
    NOTHING_UNREQUESTED,
    ONE_CLAIM_PER_SEAT,
    NO_HOLD_AFTER_SALE,
    PAYMENT_ENDS_THE_TURN,
    WALLET_MATCHES_HISTORY,
    IDEMPOTENT_REPLAY,
    NO_5XX_BUT_503,
    VERIFY_CLEAN,
    API_AGREES_WITH_DB,
];

/// What the checker needs of the servers' policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// The hold TTL, in ms: a hold's `held_until` is its time plus this.
    pub hold_ttl_ms: i64,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub check: &'static str,
    pub detail: String,
}

/// Runs every check; the violations found, in the order of [`CHECKS`].
pub fn check(history: &[Record], state: &State, policy: &Policy) -> Vec<Violation> {
    let f = Facts::new(history, state, policy);
    let mut out = Vec::new();
    out.extend(acknowledged_writes_present(&f));
    out.extend(nothing_unrequested(&f));
    out.extend(one_claim_per_seat(&f));
    out.extend(no_hold_after_sale(&f));
    out.extend(payment_ends_the_turn(&f));
    out.extend(wallet_matches_history(&f));
    out.extend(idempotent_replay(&f));
    out.extend(no_5xx_but_503(&f));
    out.extend(verify_clean(&f));
    out.extend(api_agrees_with_db(&f));
    out
}

/// Violations by check name (every check listed, 0 when clean).
pub fn counts(violations: &[Violation]) -> BTreeMap<&'static str, usize> {
    let mut c: BTreeMap<&'static str, usize> = CHECKS.iter().map(|n| (*n, 0)).collect();
    for v in violations {
        *c.entry(v.check).or_default() += 1;
    }
    c
}

// ---- what the history says, indexed ---------------------------------------------------------

/// A ticket an answered hold made.
struct Held<'a> {
    rec: &'a Record,
    seat: i64,
    price: i64,
    /// The hold's time (ms): `held_until` − TTL.
    at: i64,
    until: i64,
}

/// One charge, payment or cancellation as the server counts it: an unkeyed request, or every
/// request of one user under one key with one fingerprint (those apply at most once).
struct Logical<'a> {
    user: String,
    op: &'a Op,
    attempts: Vec<&'a Record>,
    /// The acknowledged attempt answered first.
    ack: Option<&'a Record>,
    /// Some attempt got no answer.
    maybe: bool,
    /// The earliest an attempt that was not refused was sent.
    start: Micros,
    /// The earliest an answer came (acknowledged only).
    end: Option<Micros>,
}

struct Facts<'a> {
    h: &'a [Record],
    s: &'a State,
    ttl: i64,
    held: BTreeMap<i64, Held<'a>>,
    logical: Vec<Logical<'a>>,
    /// Entry id → when an answer first handed it out.
    issued: BTreeMap<i64, Micros>,
    /// Releases, extensions and cancellations, by ticket.
    on_ticket: BTreeMap<i64, Vec<&'a Record>>,
    /// Answered holds and extensions, by user.
    holds_of: BTreeMap<&'a str, Vec<&'a Record>>,
}

fn v(check: &'static str, detail: String) -> Violation {
    Violation { check, detail }
}

/// The tickets of a hold's answer (one object, or a list for the `seat_ids` form).
fn answered_tickets(body: &Value) -> Vec<&Value> {
    match body {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

fn int(v: &Value, field: &str) -> Option<i64> {
    v.get(field).and_then(Value::as_i64)
}

impl<'a> Facts<'a> {
    fn new(h: &'a [Record], s: &'a State, p: &Policy) -> Facts<'a> {
        let ttl = p.hold_ttl_ms;
        let mut held = BTreeMap::new();
        let mut issued: BTreeMap<i64, Micros> = BTreeMap::new();
        let mut groups: BTreeMap<(String, String, String), Vec<&Record>> = BTreeMap::new();
        let mut on_ticket: BTreeMap<i64, Vec<&Record>> = BTreeMap::new();
        let mut holds_of: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
        for r in h {
            match &r.op {
                Op::Release { ticket } | Op::Extend { ticket } | Op::Cancel { ticket, .. } => {
                    on_ticket.entry(*ticket).or_default().push(r)
                }
                _ => {}
            }
            if let (Op::Hold { .. } | Op::Extend { .. }, Some(_), Some(user)) =
                (&r.op, r.ok(), r.user.as_deref())
            {
                holds_of.entry(user).or_default().push(r);
            }
            match (&r.op, r.ok()) {
                (Op::Enter { .. }, Some(body)) => {
                    if let Some(e) = body["token"].as_str().and_then(token_entry) {
                        let t = issued.entry(e).or_insert(r.complete);
                        *t = (*t).min(r.complete);
                    }
                }
                (Op::Hold { .. }, Some(body)) => {
                    for t in answered_tickets(body) {
                        let (Some(id), Some(until)) = (int(t, "id"), parse_ms(&t["held_until"]))
                        else {
                            continue;
                        };
                        held.insert(
                            id,
                            Held {
                                rec: r,
                                seat: int(t, "seat_id").unwrap_or(-1),
                                price: int(t, "price").unwrap_or(0),
                                at: until - ttl,
                                until,
                            },
                        );
                    }
                }
                _ => {}
            }
            if matches!(r.op, Op::Charge { .. } | Op::Pay { .. } | Op::Cancel { .. }) {
                let user = r.user.clone().unwrap_or_default();
                let key = match r.op.key() {
                    Some(k) => format!("key {k}"),
                    None => format!("request {}", r.id),
                };
                groups
                    .entry((user, key, r.op.fingerprint()))
                    .or_default()
                    .push(r);
            }
        }
        let logical = groups
            .into_iter()
            .map(|((user, _, _), attempts)| {
                let ack = attempts
                    .iter()
                    .filter(|r| r.ok().is_some())
                    .min_by_key(|r| r.complete)
                    .copied();
                Logical {
                    user,
                    op: &attempts[0].op,
                    ack,
                    maybe: attempts.iter().any(|r| r.unknown()),
                    start: attempts
                        .iter()
                        .filter(|r| !r.failed())
                        .map(|r| r.invoke)
                        .min()
                        .unwrap_or(Micros::MAX),
                    end: ack.map(|r| r.complete),
                    attempts,
                }
            })
            .collect();
        Facts {
            h,
            s,
            ttl,
            held,
            logical,
            issued,
            on_ticket,
            holds_of,
        }
    }

    fn seat_of(&self, ticket: i64) -> Option<i64> {
        self.held
            .get(&ticket)
            .map(|t| t.seat)
            .or_else(|| self.s.tickets.get(&ticket).map(|t| t.seat))
    }

    fn price_of(&self, ticket: i64) -> i64 {
        self.held
            .get(&ticket)
            .map(|t| t.price)
            .or_else(|| self.s.tickets.get(&ticket).map(|t| t.price))
            .unwrap_or(0)
    }

    /// Releases, extensions and cancellations of `ticket` that may have been applied (answered
    /// or unknown) and pass `pick`.
    fn not_refused<'b>(
        &'b self,
        ticket: i64,
        pick: impl Fn(&Op) -> bool + 'b,
    ) -> impl Iterator<Item = &'a Record> + 'b {
        self.on_ticket
            .get(&ticket)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |r| !r.failed() && pick(&r.op))
    }

    fn users(&self) -> BTreeSet<String> {
        let mut u: BTreeSet<String> = self.h.iter().filter_map(|r| r.user.clone()).collect();
        u.extend(self.s.wallets.keys().cloned());
        u
    }
}

/// A maximum bipartite matching (Kuhn): `adj[l]` lists the right vertices left vertex `l` may
/// take. Returns, per left vertex, the right vertex it got.
fn matching(adj: &[Vec<usize>], n_right: usize) -> Vec<Option<usize>> {
    fn augment(
        l: usize,
        adj: &[Vec<usize>],
        seen: &mut [bool],
        right: &mut [Option<usize>],
    ) -> bool {
        for &r in &adj[l] {
            if seen[r] {
                continue;
            }
            seen[r] = true;
            if right[r].is_none_or(|other| augment(other, adj, seen, right)) {
                right[r] = Some(l);
                return true;
            }
        }
        false
    }
    let mut right = vec![None; n_right];
    for l in 0..adj.len() {
        let mut seen = vec![false; n_right];
        augment(l, adj, &mut seen, &mut right);
    }
    let mut left = vec![None; adj.len()];
    for (r, l) in right.iter().enumerate() {
        if let Some(l) = l {
            left[*l] = Some(r);
        }
    }
    left
}

/// Positions by user.
fn by_user<'a>(users: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, Vec<usize>> {
    let mut m: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, u) in users.enumerate() {
        m.entry(u).or_default().push(i);
    }
    m
}

/// A logical charge and a charge ledger row: could this row be that charge? For an
/// acknowledged one, only the row it answered (its balance, inside its window).
fn charge_fits(l: &Logical, row: &super::state::LedgerRow) -> bool {
    let Op::Charge { amount, .. } = l.op else {
        return false;
    };
    if row.kind != "charge" || row.user != l.user || row.amount != *amount {
        return false;
    }
    if row.created_at < ms(l.start) {
        return false;
    }
    match (l.ack.and_then(Record::ok), l.end) {
        (Some(body), Some(end)) => {
            int(body, "balance") == Some(row.balance_after) && row.created_at <= ms(end)
        }
        _ => l.maybe,
    }
}

// ---- the checks -----------------------------------------------------------------------------

fn acknowledged_writes_present(f: &Facts) -> Vec<Violation> {
    const C: &str = ACKNOWLEDGED_WRITES_PRESENT;
    let mut out = Vec::new();
    let within = |t: i64, r: &Record| ms(r.invoke) <= t && t <= ms(r.complete);
    let mut extends: BTreeMap<i64, i64> = BTreeMap::new();
    for r in f.h {
        let Some(body) = r.ok() else { continue };
        let user = r.user.clone().unwrap_or_default();
        match &r.op {
            Op::Enter { user: asked } => {
                let got = body["user_id"].as_str().unwrap_or_default();
                if asked.as_deref().is_some_and(|a| a != got) {
                    out.push(v(
                        C,
                        format!("request {}: entered as {got}, not {asked:?}", r.id),
                    ));
                }
                match body["token"].as_str().and_then(token_entry) {
                    None => out.push(v(C, format!("request {}: an entry without a token", r.id))),
                    Some(e) => match f.s.entries.get(&e) {
                        Some(row) if row.user == got => {}
                        Some(row) => out.push(v(
                            C,
                            format!("request {}: entry {e} is {}'s, not {got}'s", r.id, row.user),
                        )),
                        None => out.push(v(C, format!("request {}: entry {e} is missing", r.id))),
                    },
                }
            }
            Op::Hold {
                showtime, seats, ..
            } => {
                let tickets = answered_tickets(body);
                let mut got: Vec<i64> = tickets.iter().filter_map(|t| int(t, "seat_id")).collect();
                let mut asked = seats.clone();
                got.sort_unstable();
                asked.sort_unstable();
                if got != asked {
                    out.push(v(
                        C,
                        format!("request {}: held seats {got:?} for {asked:?}", r.id),
                    ));
                }
                for t in tickets {
                    let id = int(t, "id").unwrap_or(-1);
                    let Some(h) = f.held.get(&id) else {
                        out.push(v(
                            C,
                            format!("request {}: a ticket without id or held_until: {t}", r.id),
                        ));
                        continue;
                    };
                    if !within(h.at, r) {
                        out.push(v(C, format!("request {}: ticket {id} held at {} ms, outside the request's [{}, {}]", r.id, h.at, ms(r.invoke), ms(r.complete))));
                    }
                    match f.s.tickets.get(&id) {
                        None => out.push(v(
                            C,
                            format!("request {}: answered ticket {id} is missing", r.id),
                        )),
                        Some(row) => {
                            if (
                                row.user.as_str(),
                                row.showtime,
                                row.seat,
                                row.price,
                                row.created_at,
                            ) != (user.as_str(), *showtime, h.seat, h.price, h.at)
                            {
                                out.push(v(C, format!("request {}: ticket {id} answered as {t}, stored as {row:?}", r.id)));
                            }
                        }
                    }
                }
            }
            Op::Extend { ticket } => {
                *extends.entry(*ticket).or_default() += 1;
                let until = parse_ms(&body["held_until"]).unwrap_or(i64::MAX);
                if !within(until - f.ttl, r) {
                    out.push(v(C, format!("request {}: ticket {ticket} extended at {} ms, outside the request's window", r.id, until - f.ttl)));
                }
                match f.s.tickets.get(ticket) {
                    Some(row) if row.held_until >= until => {}
                    row => out.push(v(
                        C,
                        format!(
                            "request {}: ticket {ticket} extended to {until}, stored {row:?}",
                            r.id
                        ),
                    )),
                }
            }
            Op::Release { ticket } => match f.s.tickets.get(ticket) {
                Some(row)
                    if row.status == "released" && row.ended_at.is_some_and(|t| within(t, r)) => {}
                row => out.push(v(
                    C,
                    format!("request {}: ticket {ticket} released, stored {row:?}", r.id),
                )),
            },
            _ => {}
        }
    }
    for (ticket, n) in extends {
        match f.s.tickets.get(&ticket) {
            Some(row) if row.extensions >= n => {}
            row => out.push(v(
                C,
                format!("ticket {ticket}: {n} extensions answered, stored {row:?}"),
            )),
        }
    }
    for l in &f.logical {
        let (Some(r), Some(end)) = (l.ack, l.end) else {
            continue;
        };
        let body = r.ok().unwrap();
        let window = |t: i64| ms(l.start) <= t && t <= ms(end);
        match l.op {
            Op::Pay { tickets, .. } => {
                let id = int(body, "id").unwrap_or(-1);
                let amount = int(body, "amount").unwrap_or(-1);
                let paid_at = parse_ms(&body["paid_at"]).unwrap_or(-1);
                let mut asked = tickets.clone();
                asked.sort_unstable();
                let answered: Vec<i64> = body["ticket_ids"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default();
                if answered != asked || !window(paid_at) {
                    out.push(v(
                        C,
                        format!("request {}: paying {asked:?} answered {body}", r.id),
                    ));
                }
                match f.s.payments.get(&id) {
                    None => out.push(v(
                        C,
                        format!("request {}: answered payment {id} is missing", r.id),
                    )),
                    Some(p) => {
                        if (p.user.as_str(), p.amount, p.paid_at)
                            != (l.user.as_str(), amount, paid_at)
                        {
                            out.push(v(
                                C,
                                format!(
                                    "request {}: payment {id} answered {body}, stored {p:?}",
                                    r.id
                                ),
                            ));
                        }
                        let stored: Vec<i64> =
                            f.s.tickets
                                .values()
                                .filter(|t| t.payment_id == Some(id))
                                .map(|t| t.id)
                                .collect();
                        if stored != asked {
                            out.push(v(C, format!("request {}: payment {id} paid {asked:?}, stored for {stored:?}", r.id)));
                        }
                        if !f.s.ledger.iter().any(|e| {
                            e.kind == "payment" && e.payment_id == Some(id) && e.amount == -amount
                        }) {
                            out.push(v(
                                C,
                                format!(
                                    "request {}: payment {id} has no ledger row of -{amount}",
                                    r.id
                                ),
                            ));
                        }
                    }
                }
            }
            Op::Cancel { ticket, .. } => {
                let refund = int(body, "refund").unwrap_or(-1);
                let fee = int(body, "fee").unwrap_or(-1);
                let balance = int(body, "balance").unwrap_or(-1);
                match f.s.tickets.get(ticket) {
                    Some(t)
                        if t.status == "cancelled"
                            && t.refund == Some(refund)
                            && t.fee == Some(fee)
                            && t.ended_at.is_some_and(window) => {}
                    t => out.push(v(
                        C,
                        format!(
                            "request {}: cancel of {ticket} answered {body}, stored {t:?}",
                            r.id
                        ),
                    )),
                }
                if refund > 0
                    && !f.s.ledger.iter().any(|e| {
                        e.kind == "refund"
                            && e.ticket_id == Some(*ticket)
                            && e.amount == refund
                            && e.balance_after == balance
                    })
                {
                    out.push(v(C, format!("request {}: no refund row of {refund} (balance {balance}) for ticket {ticket}", r.id)));
                }
            }
            _ => {}
        }
    }
    // Charges: every acknowledged one has its own ledger row, with the balance it answered.
    let acked: Vec<&Logical> = f
        .logical
        .iter()
        .filter(|l| matches!(l.op, Op::Charge { .. }) && l.ack.is_some())
        .collect();
    let rows: Vec<&super::state::LedgerRow> =
        f.s.ledger.iter().filter(|e| e.kind == "charge").collect();
    let rows_of = by_user(rows.iter().map(|e| e.user.as_str()));
    let adj: Vec<Vec<usize>> = acked
        .iter()
        .map(|l| {
            rows_of
                .get(l.user.as_str())
                .into_iter()
                .flatten()
                .copied()
                .filter(|i| charge_fits(l, rows[*i]))
                .collect()
        })
        .collect();
    for (l, m) in acked.iter().zip(matching(&adj, rows.len())) {
        if m.is_none() {
            let r = l.ack.unwrap();
            out.push(v(
                C,
                format!(
                    "request {}: answered charge {:?} of {} has no ledger row of its own",
                    r.id,
                    r.ok(),
                    l.user
                ),
            ));
        }
    }
    out
}

fn nothing_unrequested(f: &Facts) -> Vec<Violation> {
    const C: &str = NOTHING_UNREQUESTED;
    let mut out = Vec::new();
    // Tickets no answered hold made: each from its own unknown hold of that user and seat.
    let slots: Vec<(&Record, i64, i64)> =
        f.h.iter()
            .filter(|r| r.unknown())
            .filter_map(|r| match &r.op {
                Op::Hold {
                    showtime, seats, ..
                } => Some(seats.iter().map(move |s| (r, *showtime, *s))),
                _ => None,
            })
            .flatten()
            .collect();
    let orphans: Vec<&super::state::TicketRow> =
        f.s.tickets
            .values()
            .filter(|t| !f.held.contains_key(&t.id))
            .collect();
    let adj: Vec<Vec<usize>> = orphans
        .iter()
        .map(|t| {
            (0..slots.len())
                .filter(|i| {
                    let (r, showtime, seat) = slots[*i];
                    r.user.as_deref() == Some(t.user.as_str())
                        && showtime == t.showtime
                        && seat == t.seat
                        && ms(r.invoke) <= t.created_at
                })
                .collect()
        })
        .collect();
    for (t, m) in orphans.iter().zip(matching(&adj, slots.len())) {
        if m.is_none() {
            out.push(v(
                C,
                format!(
                    "ticket {} ({} on seat {} at {}) was made by no request",
                    t.id, t.user, t.seat, t.created_at
                ),
            ));
        }
    }
    // What happened to each ticket since: a request that may have done it, sent before.
    for t in f.s.tickets.values() {
        let ended = t.ended_at.unwrap_or(i64::MIN);
        let sent_before = |r: &Record, at: i64| ms(r.invoke) <= at;
        let done_by =
            |pick: fn(&Op) -> bool| f.not_refused(t.id, pick).any(|r| sent_before(r, ended));
        match t.status.as_str() {
            "released" if !done_by(|op| matches!(op, Op::Release { .. })) => {
                out.push(v(C, format!("ticket {} released by no request", t.id)));
            }
            "cancelled" if !done_by(|op| matches!(op, Op::Cancel { .. })) => {
                out.push(v(C, format!("ticket {} cancelled by no request", t.id)));
            }
            _ => {}
        }
        let extends: Vec<&Record> = f
            .not_refused(t.id, |op| matches!(op, Op::Extend { .. }))
            .collect();
        if t.extensions > extends.len() as i64 {
            out.push(v(
                C,
                format!(
                    "ticket {} extended {} times, by {} requests",
                    t.id,
                    t.extensions,
                    extends.len()
                ),
            ));
        }
        if t.held_until - f.ttl != t.created_at
            && !extends.iter().any(|r| match r.ok() {
                Some(body) => parse_ms(&body["held_until"]) == Some(t.held_until),
                None => sent_before(r, t.held_until - f.ttl),
            })
        {
            out.push(v(
                C,
                format!(
                    "ticket {}: held until {} by no hold or extension",
                    t.id, t.held_until
                ),
            ));
        }
    }
    // Payments nobody was answered: each from its own unanswered payment of those tickets.
    let answered: BTreeSet<i64> = f
        .logical
        .iter()
        .filter(|l| matches!(l.op, Op::Pay { .. }))
        .filter_map(|l| l.ack.and_then(Record::ok).and_then(|b| int(b, "id")))
        .collect();
    let maybe: Vec<&Logical> = f
        .logical
        .iter()
        .filter(|l| matches!(l.op, Op::Pay { .. }) && l.ack.is_none() && l.maybe)
        .collect();
    let orphans: Vec<&super::state::PaymentRow> =
        f.s.payments
            .values()
            .filter(|p| !answered.contains(&p.id))
            .collect();
    let adj: Vec<Vec<usize>> = orphans
        .iter()
        .map(|p| {
            let paid: Vec<i64> =
                f.s.tickets
                    .values()
                    .filter(|t| t.payment_id == Some(p.id))
                    .map(|t| t.id)
                    .collect();
            (0..maybe.len())
                .filter(|i| {
                    let l = maybe[*i];
                    let Op::Pay { tickets, .. } = l.op else {
                        return false;
                    };
                    let mut asked = tickets.clone();
                    asked.sort_unstable();
                    l.user == p.user && asked == paid && ms(l.start) <= p.paid_at
                })
                .collect()
        })
        .collect();
    for (p, m) in orphans.iter().zip(matching(&adj, maybe.len())) {
        if m.is_none() {
            out.push(v(
                C,
                format!(
                    "payment {} ({} of {} at {}) was made by no request",
                    p.id, p.amount, p.user, p.paid_at
                ),
            ));
        }
    }
    // Ledger rows: a charge from its own charge request; payments and refunds from theirs.
    let charges: Vec<&Logical> = f
        .logical
        .iter()
        .filter(|l| matches!(l.op, Op::Charge { .. }) && (l.ack.is_some() || l.maybe))
        .collect();
    let rows: Vec<&super::state::LedgerRow> =
        f.s.ledger.iter().filter(|e| e.kind == "charge").collect();
    let charges_of = by_user(charges.iter().map(|l| l.user.as_str()));
    let adj: Vec<Vec<usize>> = rows
        .iter()
        .map(|e| {
            charges_of
                .get(e.user.as_str())
                .into_iter()
                .flatten()
                .copied()
                .filter(|i| charge_fits(charges[*i], e))
                .collect()
        })
        .collect();
    for (e, m) in rows.iter().zip(matching(&adj, charges.len())) {
        if m.is_none() {
            out.push(v(
                C,
                format!(
                    "ledger row {} (charge of {} for {} at {}) was made by no request",
                    e.id, e.amount, e.user, e.created_at
                ),
            ));
        }
    }
    for e in f.s.ledger.iter().filter(|e| e.kind != "charge") {
        let ok = match e.kind.as_str() {
            "payment" => e
                .payment_id
                .and_then(|p| f.s.payments.get(&p))
                .is_some_and(|p| p.user == e.user && p.amount == -e.amount),
            "refund" => e
                .ticket_id
                .and_then(|t| f.s.tickets.get(&t))
                .is_some_and(|t| t.user == e.user && t.refund == Some(e.amount)),
            _ => false,
        };
        if !ok {
            out.push(v(
                C,
                format!("ledger row {e:?} belongs to no payment or cancellation"),
            ));
        }
    }
    // Queue entries nobody was answered: each from its own unanswered entry request.
    let known: BTreeSet<&str> = f.h.iter().filter_map(|r| r.user.as_deref()).collect();
    let unknown_enters: Vec<&Record> =
        f.h.iter()
            .filter(|r| r.unknown() && matches!(r.op, Op::Enter { .. }))
            .collect();
    let orphans: Vec<&super::state::EntryRow> =
        f.s.entries
            .values()
            .filter(|e| !f.issued.contains_key(&e.id))
            .collect();
    let adj: Vec<Vec<usize>> = orphans
        .iter()
        .map(|e| {
            (0..unknown_enters.len())
                .filter(|i| {
                    let r = unknown_enters[*i];
                    let Op::Enter { user } = &r.op else {
                        return false;
                    };
                    let who = match user {
                        Some(u) => u == &e.user,
                        None => !known.contains(e.user.as_str()),
                    };
                    who && ms(r.invoke) <= e.created_at
                })
                .collect()
        })
        .collect();
    for (e, m) in orphans.iter().zip(matching(&adj, unknown_enters.len())) {
        if m.is_none() {
            out.push(v(
                C,
                format!("queue entry {} of {} was made by no request", e.id, e.user),
            ));
        }
    }
    out
}

fn one_claim_per_seat(f: &Facts) -> Vec<Violation> {
    const C: &str = ONE_CLAIM_PER_SEAT;
    let mut out = Vec::new();
    let overlaps =
        |claims: &mut Vec<(i64, i64, i64)>, what: &str, out: &mut Vec<Violation>, seat: i64| {
            claims.sort_unstable();
            for (i, a) in claims.iter().enumerate() {
                for b in &claims[i + 1..] {
                    if b.0 >= a.1 {
                        break;
                    }
                    out.push(v(
                        C,
                        format!(
                        "seat {seat}: {what} claims of tickets {} [{}, {}) and {} [{}, {}) overlap",
                        a.2, a.0, a.1, b.2, b.0, b.1
                    ),
                    ));
                }
            }
        };
    // The database's claims: from the hold to its lapse, release or cancellation; for good
    // when paid.
    let mut by_seat: BTreeMap<i64, Vec<(i64, i64, i64)>> = BTreeMap::new();
    for t in f.s.tickets.values() {
        let end = match t.status.as_str() {
            "paid" => i64::MAX,
            "released" | "cancelled" => t.ended_at.unwrap_or(t.created_at),
            _ => t.held_until,
        };
        by_seat
            .entry(t.seat)
            .or_default()
            .push((t.created_at, end, t.id));
    }
    for (seat, mut claims) in by_seat {
        overlaps(&mut claims, "stored", &mut out, seat);
    }
    // The answered holds' claims: what the clients were told they had.
    let paid: BTreeSet<i64> = f
        .logical
        .iter()
        .filter(|l| matches!(l.op, Op::Pay { .. }))
        .filter_map(|l| l.ack.and_then(Record::ok))
        .flat_map(|b| b["ticket_ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_i64())
        .collect();
    let mut by_seat: BTreeMap<i64, Vec<(i64, i64, i64)>> = BTreeMap::new();
    for (id, h) in &f.held {
        let mut end = if paid.contains(id) {
            i64::MAX
        } else {
            f.not_refused(*id, |op| matches!(op, Op::Extend { .. }))
                .filter_map(|r| r.ok().and_then(|b| parse_ms(&b["held_until"])))
                .fold(h.until, i64::max)
        };
        for r in f.not_refused(*id, |op| {
            matches!(op, Op::Release { .. } | Op::Cancel { .. })
        }) {
            end = end.min(ms(r.invoke));
        }
        by_seat
            .entry(h.seat)
            .or_default()
            .push((h.at, end.max(h.at), *id));
    }
    for (seat, mut claims) in by_seat {
        overlaps(&mut claims, "answered", &mut out, seat);
    }
    out
}

fn no_hold_after_sale(f: &Facts) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut by_seat: BTreeMap<i64, Vec<(i64, &Held)>> = BTreeMap::new();
    for (id, h) in &f.held {
        by_seat.entry(h.seat).or_default().push((*id, h));
    }
    for l in f.logical.iter().filter(|l| matches!(l.op, Op::Pay { .. })) {
        let (Some(body), Some(sold_by)) = (l.ack.and_then(Record::ok), l.end) else {
            continue;
        };
        for t in body["ticket_ids"].as_array().into_iter().flatten() {
            let Some(t) = t.as_i64() else { continue };
            let Some(seat) = f.seat_of(t) else { continue };
            for (id, h) in by_seat.get(&seat).into_iter().flatten() {
                if *id == t || h.rec.invoke <= sold_by {
                    continue;
                }
                let cancelled_first = f
                    .not_refused(t, |op| matches!(op, Op::Cancel { .. }))
                    .any(|c| c.invoke < h.rec.complete);
                if !cancelled_first {
                    out.push(v(NO_HOLD_AFTER_SALE, format!(
                        "request {}: seat {seat} held (ticket {id}) though request {} sold it (ticket {t}) before it was sent",
                        h.rec.id,
                        l.ack.unwrap().id
                    )));
                }
            }
        }
    }
    out
}

fn payment_ends_the_turn(f: &Facts) -> Vec<Violation> {
    let mut out = Vec::new();
    for l in f.logical.iter().filter(|l| matches!(l.op, Op::Pay { .. })) {
        let (Some(paid), Some(done)) = (l.ack, l.end) else {
            continue;
        };
        let sent = l.attempts.iter().map(|r| r.invoke).min().unwrap_or(done);
        for r in f.holds_of.get(l.user.as_str()).into_iter().flatten() {
            if r.invoke <= done {
                continue;
            }
            let Some(entry) = r.entry else { continue };
            if f.issued.get(&entry).is_some_and(|at| *at < sent) {
                out.push(v(PAYMENT_ENDS_THE_TURN, format!(
                    "request {}: {:?} answered on entry {entry}, sent after payment request {} of {} was answered",
                    r.id, r.op, paid.id, l.user
                )));
            }
        }
    }
    out
}

fn wallet_matches_history(f: &Facts) -> Vec<Violation> {
    let mut out = Vec::new();
    // Per user: the answered total, and how far the unknown ones may move it either way.
    let mut sums: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for l in &f.logical {
        let (exact, lo, hi) = sums.entry(l.user.as_str()).or_default();
        match (l.op, l.ack.and_then(Record::ok)) {
            (Op::Charge { .. }, Some(_))
            | (Op::Pay { .. }, Some(_))
            | (Op::Cancel { .. }, Some(_)) => {
                let body = l.ack.unwrap().ok().unwrap();
                *exact += match l.op {
                    Op::Charge { amount, .. } => *amount,
                    Op::Pay { .. } => -int(body, "amount").unwrap_or(0),
                    _ => int(body, "refund").unwrap_or(0),
                };
            }
            (op, None) if l.maybe => match op {
                Op::Charge { amount, .. } => *hi += amount,
                Op::Pay { tickets, .. } => {
                    *lo -= tickets.iter().map(|t| f.price_of(*t)).sum::<i64>()
                }
                Op::Cancel { ticket, .. } => *hi += f.price_of(*ticket),
                _ => {}
            },
            _ => {}
        }
    }
    for user in f.users() {
        let (exact, lo, hi) = sums.get(user.as_str()).copied().unwrap_or_default();
        let db = f.s.wallets.get(&user).copied().unwrap_or(0);
        let mut seen = vec![("database", db)];
        if let Some(api) = f.s.api.get(&user) {
            seen.push(("API", api.balance));
        }
        for (where_, balance) in seen {
            if balance < exact + lo || balance > exact + hi {
                out.push(v(WALLET_MATCHES_HISTORY, format!(
                    "{user}: {where_} balance {balance}, answered requests make {exact} (unknown ones: {lo:+} to {hi:+})"
                )));
            }
        }
    }
    out
}

fn idempotent_replay(f: &Facts) -> Vec<Violation> {
    const C: &str = IDEMPOTENT_REPLAY;
    let mut out = Vec::new();
    let mut groups: BTreeMap<(&str, &str), Vec<&Record>> = BTreeMap::new();
    for r in f.h {
        if let (Some(user), Some(key)) = (r.user.as_deref(), r.op.key()) {
            groups.entry((user, key)).or_default().push(r);
        }
    }
    for ((user, key), attempts) in groups {
        let Some(first) = attempts
            .iter()
            .filter(|r| r.ok().is_some())
            .min_by_key(|r| r.complete)
        else {
            continue;
        };
        for r in &attempts {
            let same = r.op.fingerprint() == first.op.fingerprint();
            let fine = match &r.outcome {
                Outcome::Ok { .. } => same && r.outcome == first.outcome,
                Outcome::Unknown { .. } => true,
                Outcome::Fail { status: 503, .. } => true,
                Outcome::Fail { status, .. } => {
                    // Sent before the first success was answered, it may have failed on its
                    // own; sent after, it must replay (or be refused as another request).
                    r.invoke < first.complete || (!same && *status == 422)
                }
            };
            if !fine {
                out.push(v(C, format!(
                    "{user} key {key:?}: request {} ({}) answered {:?}, but request {} ({}) was answered {:?} first",
                    r.id,
                    r.op.fingerprint(),
                    r.outcome,
                    first.id,
                    first.op.fingerprint(),
                    first.outcome
                )));
            }
        }
    }
    out
}

fn no_5xx_but_503(f: &Facts) -> Vec<Violation> {
    f.h.iter()
        .filter(|r| r.status().is_some_and(|s| s >= 500 && s != 503))
        .map(|r| {
            v(
                NO_5XX_BUT_503,
                format!("request {}: {:?} answered {:?}", r.id, r.op, r.outcome),
            )
        })
        .collect()
}

fn verify_clean(f: &Facts) -> Vec<Violation> {
    f.s.verify
        .iter()
        .map(|(inv, detail)| v(VERIFY_CLEAN, format!("{inv}: {detail}")))
        .collect()
}

fn api_agrees_with_db(f: &Facts) -> Vec<Violation> {
    const C: &str = API_AGREES_WITH_DB;
    let mut out = Vec::new();
    for (user, api) in &f.s.api {
        let db = f.s.wallets.get(user).copied().unwrap_or(0);
        if api.balance != db {
            out.push(v(
                C,
                format!("{user}: API balance {}, stored {db}", api.balance),
            ));
        }
        let ledger: Vec<(i64, &str, i64, i64)> =
            f.s.ledger
                .iter()
                .rev()
                .filter(|e| &e.user == user)
                .map(|e| (e.id, e.kind.as_str(), e.amount, e.balance_after))
                .collect();
        let answered: Vec<(i64, &str, i64, i64)> = api
            .point_history
            .iter()
            .map(|e| {
                (
                    int(e, "id").unwrap_or(-1),
                    e["kind"].as_str().unwrap_or(""),
                    int(e, "amount").unwrap_or(0),
                    int(e, "balance_after").unwrap_or(-1),
                )
            })
            .collect();
        if ledger != answered {
            out.push(v(
                C,
                format!("{user}: point history {answered:?}, stored {ledger:?}"),
            ));
        }
        let payments: Vec<(i64, i64, Vec<i64>)> =
            f.s.payments
                .values()
                .rev()
                .filter(|p| &p.user == user)
                .map(|p| {
                    let tickets =
                        f.s.tickets
                            .values()
                            .filter(|t| t.payment_id == Some(p.id))
                            .map(|t| t.id)
                            .collect();
                    (p.id, p.amount, tickets)
                })
                .collect();
        let answered: Vec<(i64, i64, Vec<i64>)> = api
            .payment_history
            .iter()
            .map(|p| {
                (
                    int(p, "id").unwrap_or(-1),
                    int(p, "amount").unwrap_or(-1),
                    p["ticket_ids"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_i64).collect())
                        .unwrap_or_default(),
                )
            })
            .collect();
        if payments != answered {
            out.push(v(
                C,
                format!("{user}: payment history {answered:?}, stored {payments:?}"),
            ));
        }
        let stored: Vec<&super::state::TicketRow> = f.s.tickets_of(user).collect();
        let same = stored.len() == api.tickets.len()
            && stored.iter().zip(&api.tickets).all(|(row, t)| {
                let status = t["status"].as_str().unwrap_or("");
                int(t, "id") == Some(row.id)
                    && int(t, "seat_id") == Some(row.seat)
                    && match row.status.as_str() {
                        // A hold reads expired from its end on; one ending after the reads
                        // began may read either way.
                        "held" if row.held_until <= api.read_at => status == "expired",
                        "held" => status == "held" || status == "expired",
                        other => status == other,
                    }
            });
        if !same {
            let answered: Vec<(Option<i64>, &str)> = api
                .tickets
                .iter()
                .map(|t| (int(t, "id"), t["status"].as_str().unwrap_or("")))
                .collect();
            let stored: Vec<(i64, &str, i64)> = stored
                .iter()
                .map(|t| (t.id, t.status.as_str(), t.held_until))
                .collect();
            out.push(v(
                C,
                format!("{user}: tickets {answered:?}, stored {stored:?}"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! Each rule, shown to catch the fault it is there for: a small clean history and state
    //! pass every check, and each planted fault is named by its check.
    use super::*;
    use crate::chaos::state::{ApiView, EntryRow, LedgerRow, PaymentRow, TicketRow};
    use serde_json::json;

    const TTL: i64 = 2_000;
    const T0: i64 = 1_900_000_000_000; // ms
    const ALICE: &str = "11111111-1111-4111-8111-111111111111";
    const BOB: &str = "22222222-2222-4222-8222-222222222222";

    fn policy() -> Policy {
        Policy { hold_ttl_ms: TTL }
    }

    fn rfc(ms: i64) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// A token whose payload names `eid` (the checker reads only that).
    fn token(eid: i64) -> String {
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"sub": "x", "eid": eid}).to_string());
        format!("e30.{payload}.sig")
    }

    /// Builds a history: each request sent at `at` ms and answered 5 ms later.
    #[derive(Default)]
    struct H(Vec<Record>);

    impl H {
        fn push(&mut self, user: &str, entry: i64, at: i64, op: Op, outcome: Outcome) -> &mut Self {
            let id = self.0.len();
            self.0.push(Record {
                id,
                client: 0,
                user: Some(user.to_string()),
                entry: Some(entry),
                server: "s0#1".into(),
                op,
                invoke: at * 1000,
                complete: (at + 5) * 1000,
                outcome,
            });
            self
        }
        fn ok(
            &mut self,
            user: &str,
            entry: i64,
            at: i64,
            op: Op,
            status: u16,
            body: Value,
        ) -> &mut Self {
            self.push(user, entry, at, op, Outcome::Ok { status, body })
        }
    }

    fn ticket_json(id: i64, user: &str, seat: i64, held_at: i64, status: &str) -> Value {
        json!({"id": id, "user_id": user, "concert_id": 1, "showtime_id": 1, "seat_id": seat,
               "seat_number": seat, "price": 100, "status": status, "held_until": rfc(held_at + TTL)})
    }

    /// Alice enters, holds seat 1, charges 100 and pays (keyed, replayed once), then cancels;
    /// Bob then holds seat 1 (after the cancellation), lets it lapse, and charges 50 with no
    /// answer (which did happen). The state is what that makes.
    fn clean() -> (H, State) {
        let mut h = H::default();
        let enter = |user: &str, eid: i64| json!({"user_id": user, "status": "active", "position": 0, "token": token(eid)});
        h.ok(ALICE, 1, T0, Op::Enter { user: None }, 201, enter(ALICE, 1));
        h.ok(
            ALICE,
            1,
            T0 + 10,
            Op::Hold {
                showtime: 1,
                seats: vec![1],
                many: false,
            },
            201,
            ticket_json(1, ALICE, 1, T0 + 12, "held"),
        );
        h.ok(
            ALICE,
            1,
            T0 + 20,
            Op::Charge {
                amount: 100,
                key: None,
            },
            200,
            json!({"user_id": ALICE, "balance": 100}),
        );
        let pay = Op::Pay {
            tickets: vec![1],
            many: false,
            key: Some("k1".into()),
        };
        let paid = json!({"id": 1, "user_id": ALICE, "ticket_id": 1, "ticket_ids": [1],
                          "amount": 100, "refunded": 0, "paid_at": rfc(T0 + 32)});
        h.ok(ALICE, 1, T0 + 30, pay.clone(), 201, paid.clone());
        h.ok(ALICE, 1, T0 + 40, pay, 201, paid);
        h.ok(ALICE, 1, T0 + 50, Op::Cancel { ticket: 1, key: None }, 200,
             json!({"ticket": ticket_json(1, ALICE, 1, T0 + 12, "cancelled"), "refund": 90, "fee": 10, "balance": 90}));
        h.ok(
            BOB,
            2,
            T0 + 60,
            Op::Enter { user: None },
            201,
            enter(BOB, 2),
        );
        h.ok(
            BOB,
            2,
            T0 + 70,
            Op::Hold {
                showtime: 1,
                seats: vec![1],
                many: false,
            },
            201,
            ticket_json(2, BOB, 1, T0 + 72, "held"),
        );
        h.push(
            BOB,
            2,
            T0 + 80,
            Op::Charge {
                amount: 50,
                key: None,
            },
            Outcome::Unknown {
                why: "timeout".into(),
            },
        );

        let mut s = State::default();
        s.entries.insert(
            1,
            EntryRow {
                id: 1,
                user: ALICE.into(),
                status: "expired".into(),
                created_at: T0 + 1,
            },
        );
        s.entries.insert(
            2,
            EntryRow {
                id: 2,
                user: BOB.into(),
                status: "active".into(),
                created_at: T0 + 61,
            },
        );
        s.tickets.insert(
            1,
            TicketRow {
                id: 1,
                user: ALICE.into(),
                showtime: 1,
                seat: 1,
                price: 100,
                status: "cancelled".into(),
                created_at: T0 + 12,
                held_until: T0 + 12 + TTL,
                extensions: 0,
                paid_at: Some(T0 + 32),
                payment_id: Some(1),
                ended_at: Some(T0 + 52),
                refund: Some(90),
                fee: Some(10),
            },
        );
        s.tickets.insert(
            2,
            TicketRow {
                id: 2,
                user: BOB.into(),
                showtime: 1,
                seat: 1,
                price: 100,
                status: "expired".into(),
                created_at: T0 + 72,
                held_until: T0 + 72 + TTL,
                ..TicketRow::default()
            },
        );
        s.payments.insert(
            1,
            PaymentRow {
                id: 1,
                user: ALICE.into(),
                ticket_id: 1,
                amount: 100,
                paid_at: T0 + 32,
            },
        );
        let row =
            |id, user: &str, kind: &str, amount, after, payment_id, ticket_id, at| LedgerRow {
                id,
                user: user.into(),
                kind: kind.into(),
                amount,
                balance_after: after,
                payment_id,
                ticket_id,
                created_at: at,
            };
        s.ledger = vec![
            row(1, ALICE, "charge", 100, 100, None, None, T0 + 22),
            row(2, ALICE, "payment", -100, 0, Some(1), None, T0 + 32),
            row(3, ALICE, "refund", 90, 90, None, Some(1), T0 + 52),
            row(4, BOB, "charge", 50, 50, None, None, T0 + 90),
        ];
        s.wallets.insert(ALICE.into(), 90);
        s.wallets.insert(BOB.into(), 50);
        s.api.insert(
            ALICE.into(),
            ApiView {
                read_at: T0 + 10_000,
                balance: 90,
                tickets: vec![ticket_json(1, ALICE, 1, T0 + 12, "cancelled")],
                point_history: vec![
                    json!({"id": 3, "kind": "refund", "amount": 90, "balance_after": 90}),
                    json!({"id": 2, "kind": "payment", "amount": -100, "balance_after": 0}),
                    json!({"id": 1, "kind": "charge", "amount": 100, "balance_after": 100}),
                ],
                payment_history: vec![json!({"id": 1, "amount": 100, "ticket_ids": [1]})],
            },
        );
        (h, s)
    }

    fn named(h: &H, s: &State) -> BTreeSet<&'static str> {
        check(&h.0, s, &policy()).iter().map(|v| v.check).collect()
    }

    #[track_caller]
    fn caught(h: &H, s: &State, rule: &str) {
        let found = check(&h.0, s, &policy());
        assert!(
            found.iter().any(|v| v.check == rule),
            "{rule} missed the planted fault; found {found:#?}"
        );
    }

    #[test]
    fn a_clean_history_passes_every_check() {
        let (h, s) = clean();
        let found = check(&h.0, &s, &policy());
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn the_unknown_charge_may_also_not_have_happened() {
        let (h, mut s) = clean();
        s.ledger.pop();
        s.wallets.insert(BOB.into(), 0);
        assert!(named(&h, &s).is_empty(), "{:?}", check(&h.0, &s, &policy()));
    }

    #[test]
    fn a_lost_acknowledged_payment_is_caught() {
        let (h, mut s) = clean();
        s.payments.clear();
        caught(&h, &s, ACKNOWLEDGED_WRITES_PRESENT);
    }

    #[test]
    fn a_lost_acknowledged_charge_is_caught() {
        let (h, mut s) = clean();
        s.ledger.remove(0);
        caught(&h, &s, ACKNOWLEDGED_WRITES_PRESENT);
    }

    #[test]
    fn a_phantom_ticket_is_caught() {
        let (h, mut s) = clean();
        s.tickets.insert(
            3,
            TicketRow {
                id: 3,
                user: BOB.into(),
                showtime: 1,
                seat: 2,
                price: 100,
                status: "expired".into(),
                created_at: T0 + 100,
                held_until: T0 + 100 + TTL,
                ..TicketRow::default()
            },
        );
        caught(&h, &s, NOTHING_UNREQUESTED);
    }

    #[test]
    fn a_phantom_charge_is_caught_even_beside_an_unknown_one() {
        let (h, mut s) = clean();
        // Bob's one unknown charge explains one row of 50, not two.
        s.ledger.push(LedgerRow {
            id: 5,
            user: BOB.into(),
            kind: "charge".into(),
            amount: 50,
            balance_after: 100,
            created_at: T0 + 95,
            ..LedgerRow::default()
        });
        caught(&h, &s, NOTHING_UNREQUESTED);
    }

    #[test]
    fn two_overlapping_live_claims_on_a_seat_are_caught() {
        let (h, mut s) = clean();
        // Bob's hold stored as made while Alice's ticket was still paid.
        s.tickets.get_mut(&2).unwrap().created_at = T0 + 40;
        caught(&h, &s, ONE_CLAIM_PER_SEAT);
        // And from the answers alone: Bob told he held seat 1 while Alice's sale stood.
        let (mut h, s) = clean();
        h.0[5].outcome = Outcome::Fail {
            status: 409,
            code: "ticket_not_paid".into(),
        };
        caught(&h, &s, ONE_CLAIM_PER_SEAT);
    }

    #[test]
    fn a_hold_acknowledged_after_a_completed_sale_of_its_seat_is_caught() {
        let (mut h, s) = clean();
        // Bob's hold of seat 1 answered though sent before Alice's cancellation, after her sale.
        h.0[7].invoke = (T0 + 45) * 1000;
        h.0[5].invoke = (T0 + 80) * 1000;
        caught(&h, &s, NO_HOLD_AFTER_SALE);
    }

    #[test]
    fn a_hold_of_a_user_sent_after_their_acknowledged_payment_is_caught() {
        let (mut h, s) = clean();
        h.ok(
            ALICE,
            1,
            T0 + 45,
            Op::Hold {
                showtime: 1,
                seats: vec![2],
                many: false,
            },
            201,
            ticket_json(9, ALICE, 2, T0 + 46, "held"),
        );
        caught(&h, &s, PAYMENT_ENDS_THE_TURN);
        // With a token of an entry made after the payment, it is a new turn.
        let (mut h, mut s) = clean();
        h.ok(
            ALICE,
            3,
            T0 + 41,
            Op::Enter {
                user: Some(ALICE.into()),
            },
            201,
            json!({"user_id": ALICE, "status": "active", "token": token(3)}),
        );
        s.entries.insert(
            3,
            EntryRow {
                id: 3,
                user: ALICE.into(),
                status: "active".into(),
                created_at: T0 + 42,
            },
        );
        h.ok(
            ALICE,
            3,
            T0 + 47,
            Op::Hold {
                showtime: 1,
                seats: vec![2],
                many: false,
            },
            201,
            ticket_json(9, ALICE, 2, T0 + 48, "held"),
        );
        s.tickets.insert(
            9,
            TicketRow {
                id: 9,
                user: ALICE.into(),
                showtime: 1,
                seat: 2,
                price: 100,
                status: "expired".into(),
                created_at: T0 + 48,
                held_until: T0 + 48 + TTL,
                ..TicketRow::default()
            },
        );
        assert!(!named(&h, &s).contains(PAYMENT_ENDS_THE_TURN));
    }

    #[test]
    fn a_wallet_off_by_an_acknowledged_charge_is_caught() {
        let (h, mut s) = clean();
        s.wallets.insert(ALICE.into(), 190);
        caught(&h, &s, WALLET_MATCHES_HISTORY);
        // Beyond what the unknown charge could explain, too.
        let (h, mut s) = clean();
        s.wallets.insert(BOB.into(), 100);
        caught(&h, &s, WALLET_MATCHES_HISTORY);
    }

    #[test]
    fn a_key_that_replayed_a_different_answer_is_caught() {
        let (mut h, s) = clean();
        if let Outcome::Ok { body, .. } = &mut h.0[4].outcome {
            body["id"] = json!(2);
        }
        caught(&h, &s, IDEMPOTENT_REPLAY);
        // A repeat that ran again instead of replaying.
        let (mut h, s) = clean();
        h.0[4].outcome = Outcome::Fail {
            status: 409,
            code: "already_paid".into(),
        };
        caught(&h, &s, IDEMPOTENT_REPLAY);
    }

    #[test]
    fn a_500_is_caught() {
        let (mut h, s) = clean();
        h.push(
            BOB,
            2,
            T0 + 200,
            Op::Read {
                path: "/tickets".into(),
            },
            Outcome::Fail {
                status: 500,
                code: "internal".into(),
            },
        );
        caught(&h, &s, NO_5XX_BUT_503);
    }

    #[test]
    fn a_verify_violation_is_caught() {
        let (h, mut s) = clean();
        s.verify
            .push(("wallet_equals_ledger".into(), "wallet of x".into()));
        caught(&h, &s, VERIFY_CLEAN);
    }

    #[test]
    fn an_api_answer_that_disagrees_with_the_database_is_caught() {
        let (h, mut s) = clean();
        s.api.get_mut(ALICE).unwrap().point_history.remove(0);
        caught(&h, &s, API_AGREES_WITH_DB);
    }

    #[test]
    fn matching_finds_a_perfect_assignment_when_there_is_one() {
        // Greedy would give left 0 right 0 and strand left 1.
        let adj = vec![vec![0, 1], vec![0]];
        assert_eq!(matching(&adj, 2), vec![Some(1), Some(0)]);
    }
}
