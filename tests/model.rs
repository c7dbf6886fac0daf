//! Model-based tests of the library: random operation sequences run against a fresh `Booking`
//! (the fixture) and against a small in-memory model of the contract (`tests/model/contract.rs`),
//! with the clock as an input. Every answer is compared — the value's fields that matter, or the
//! error's code (and, for errors that name a seat, a ticket, a balance, a time or a queue state,
//! what they name). At the end of a sequence every user's tickets, ledger, payments and balance,
//! every seat map, the report and the queue counts are compared, and `verify` must be clean. A
//! failing sequence is shrunk by proptest to a minimal one, printed with the seed that found it.
//! Both write paths (`Backend::Direct`, `Backend::GroupCommit`).
//!
//! Each case draws a policy (max active 1–4, tickets per user 1–4, extensions 0–2, a cancel fee
//! of 0/10/33/100 %, a cancel cutoff of 1/20/24 h) and up to 80 operations among: enter (new or
//! existing user), poll, hold one or several seats (sometimes a seat of another showtime, an
//! unknown one, a duplicate or none), release, extend, charge (with or without an
//! Idempotency-Key, sometimes an invalid amount, sometimes by the operator), pay one or several
//! tickets (with or without a key), cancel (the user's, with or without a key; the operator's,
//! with or without the fee), call a showtime off (rarely), sweep, look (every read compared), and
//! make a purchase in one go (enter again, charge, hold, pay: each step compared), and
//! move the clock (by seconds, by exactly a quarter of the idle timeout, the hold TTL, the idle
//! timeout or the active TTL, by 1 ms, sometimes by hours; or straight to one of the instants
//! ahead at which some answer changes — a hold lapsing, a session ending, a waiting entry
//! dropping out or its keep-alive falling due, a showtime starting, the cancel cutoff, a sale
//! opening, a token or an Idempotency-Key expiring — or 1 ms before or after it). Users act with their latest
//! token or an older one. The catalog: two showtimes of the fixture (a day and two days ahead,
//! seats priced 1,000–10,000) and one whose sale opens 15 minutes in (three days ahead).
//!
//! What the model leaves out, and why:
//! - The waiting room is modelled exactly (places, the admission frontier, positions, the
//!   estimate, keep-alives written once per quarter of the idle timeout, lazy admission in enter
//!   and poll, skipping idle entries, sweep), except what §7 adds: no prequeue or scheduled
//!   opening, no pause, no `admit_per_minute` (0: no limit) and no `max_waiting` (kept at its
//!   default, never reached). `tests/waiting_room.rs` covers those.
//! - `sweep`'s counts are not compared: they count rows tidied, and how many lapsed rows earlier
//!   writes already tidied on the side is the library's business. What a sweep changes that
//!   anyone can see (admission, forgotten keys) is compared.
//! - Messages of `invalid_request`, `invalid_amount` and `unauthorized` are not compared (prose);
//!   their codes are.
//! - One concert, one process, one thread: races are `tests/races.rs`'s and
//!   `tests/lifecycle_races.rs`'s business; the model checks what each answer is, not who wins.
//! - Idempotency-Key retention is the default 24 h; keys past it are forgotten at a sweep.
//!
//! A failure prints the minimal case as JSON too: `BOOKING_MODEL_REPLAY='<json>'` runs just that
//! case, and a regular test keeps it with [`replay`].
//!
//! Cases per backend: `BOOKING_MODEL_CASES` (default 128; about 10 s for both backends in a debug
//! build on two cores). A long run by hand:
//! `BOOKING_MODEL_CASES=20000 cargo test --release --test model`. `BOOKING_MODEL_SEED=N` replays
//! the cases of one seed (each failure prints its seed).
#[path = "model/contract.rs"]
mod contract;
mod fixture;

use booking::*;
use contract::*;
use fixture::*;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{
    Config as Runner, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use rstest_reuse::apply;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The most points one charge may bring, and one wallet may hold: small, so that the limits are
/// reached.
const MAX_CHARGE: i64 = 30_000;
const MAX_BALANCE: i64 = 60_000;
/// The most operations in one case.
const MAX_OPS: usize = 80;

/// The policy of one case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Knobs {
    pub max_active: u32,
    pub max_tickets: u32,
    pub max_extensions: u32,
    pub fee_percent: u32,
    pub cutoff_hours: u64,
    /// Kinds of operations left out of this case (bit `Op::kind`): "swarm" testing, so that
    /// some cases dwell on a few kinds of operations and reach deeper states.
    pub left_out: u32,
}

/// Which of a user's tokens an operation uses.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum Tok {
    Latest,
    /// One of the user's tokens (counted from the first), possibly for an entry that is over.
    Older(usize),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum ShowRef {
    /// 0: the fixture's showtime, 1: its other showtime, 2: the one whose sale opens later.
    Show(usize),
    Unknown,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum SeatRef {
    /// The seat of this index (number − 1) of the showtime held.
    Of(usize),
    /// A seat of another showtime.
    OtherShow(usize),
    Unknown,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum TRef {
    /// One of the user's own tickets (if any; else anyone's).
    Own(usize),
    /// One of the user's live holds (if any; else one of their tickets).
    Held(usize),
    /// One of the user's paid tickets (if any; else one of their tickets).
    Paid(usize),
    /// Anyone's ticket.
    Any(usize),
    /// (Alone in a payment's list) every live hold of the user's, else one of their tickets.
    AllHeld,
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    Enter,
    Reenter {
        u: usize,
    },
    Poll {
        u: usize,
        tok: Tok,
    },
    Hold {
        u: usize,
        tok: Tok,
        show: ShowRef,
        seats: Vec<SeatRef>,
    },
    Release {
        u: usize,
        tok: Tok,
        t: TRef,
    },
    Extend {
        u: usize,
        tok: Tok,
        t: TRef,
    },
    Charge {
        u: usize,
        tok: Tok,
        amount: i64,
        key: Option<u8>,
        by_operator: bool,
    },
    Pay {
        u: usize,
        tok: Tok,
        tickets: Vec<TRef>,
        key: Option<u8>,
    },
    Cancel {
        u: usize,
        tok: Tok,
        t: TRef,
        key: Option<u8>,
    },
    OperatorCancel {
        t: TRef,
        no_fee: bool,
    },
    CancelShowtime {
        show: ShowRef,
    },
    Sweep,
    Advance {
        ms: i64,
    },
    /// To one of the instants ahead at which some answer changes (`Model::boundaries`: of the
    /// kind `Boundary::ALL[kind]`, the `pick`-th), or 1 ms before or after it.
    Jump {
        kind: usize,
        pick: usize,
        offset: i64,
    },
    Look {
        u: usize,
    },
    /// A purchase in one go: enter again, charge 30,000, hold, pay every live hold (each step
    /// compared as the operation it is).
    Buy {
        u: usize,
        show: ShowRef,
        seats: Vec<SeatRef>,
    },
}

impl Op {
    const KINDS: usize = 16;

    /// Its kind (for `Knobs::left_out`); entering a new user is never left out.
    fn kind(&self) -> Option<usize> {
        Some(match self {
            Op::Enter => return None,
            Op::Reenter { .. } => 1,
            Op::Poll { .. } => 2,
            Op::Hold { .. } => 3,
            Op::Release { .. } => 4,
            Op::Extend { .. } => 5,
            Op::Charge { .. } => 6,
            Op::Pay { .. } => 7,
            Op::Cancel { .. } => 8,
            Op::OperatorCancel { .. } => 9,
            Op::CancelShowtime { .. } => 10,
            Op::Sweep => 11,
            Op::Advance { .. } => 12,
            Op::Jump { .. } => 13,
            Op::Look { .. } => 14,
            Op::Buy { .. } => 15,
        })
    }
}

// ---- generators ------------------------------------------------------------------------------------

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        1..=4u32,
        1..=4u32,
        0..=2u32,
        prop::sample::select(vec![10u32, 0, 33, 100]),
        prop::sample::select(vec![20u64, 1, 24]),
        prop::collection::vec(prop::bool::weighted(0.2), Op::KINDS),
    )
        .prop_map(
            |(max_active, max_tickets, max_extensions, fee_percent, cutoff_hours, out)| Knobs {
                max_active,
                max_tickets,
                max_extensions,
                fee_percent,
                cutoff_hours,
                left_out: out
                    .iter()
                    .enumerate()
                    .map(|(i, b)| u32::from(*b) << i)
                    .sum(),
            },
        )
}

fn tok() -> BoxedStrategy<Tok> {
    prop_oneof![8 => Just(Tok::Latest), 1 => (0..4usize).prop_map(Tok::Older)].boxed()
}

/// A ticket for an operation that wants a ticket in state `wanted` (a live hold, or a paid one).
fn tref(wanted: fn(usize) -> TRef) -> BoxedStrategy<TRef> {
    prop_oneof![
        12 => (0..4usize).prop_map(wanted),
        4 => (0..8usize).prop_map(TRef::Own),
        2 => (0..24usize).prop_map(TRef::Any),
        1 => Just(TRef::Unknown),
    ]
    .boxed()
}

fn show() -> BoxedStrategy<ShowRef> {
    prop_oneof![
        8 => Just(ShowRef::Show(0)),
        3 => Just(ShowRef::Show(1)),
        3 => Just(ShowRef::Show(2)),
        1 => Just(ShowRef::Unknown),
    ]
    .boxed()
}

fn seat() -> BoxedStrategy<SeatRef> {
    prop_oneof![
        30 => (0..5usize).prop_map(SeatRef::Of),
        4 => (0..10usize).prop_map(SeatRef::Of),
        1 => (0..10usize).prop_map(SeatRef::OtherShow),
        1 => Just(SeatRef::Unknown),
    ]
    .boxed()
}

fn key() -> BoxedStrategy<Option<u8>> {
    prop_oneof![3 => Just(None), 2 => (0..3u8).prop_map(Some)].boxed()
}

fn user() -> BoxedStrategy<usize> {
    (0..8usize).boxed()
}

fn amount() -> BoxedStrategy<i64> {
    prop_oneof![
        8 => prop::sample::select(vec![1_000i64, 2_000, 5_000, 10_000, 20_000, MAX_CHARGE]),
        1 => prop::sample::select(vec![-5i64, 0, 1, MAX_CHARGE + 1, i64::MAX]),
    ]
    .boxed()
}

/// Clock steps: seconds, the policy's boundaries exactly, a millisecond, and now and then hours.
fn step() -> BoxedStrategy<i64> {
    const MIN: i64 = 60_000;
    prop_oneof![
        8 => (1..=60i64).prop_map(|s| s * 1000),
        1 => Just(1i64),
        4 => prop::sample::select(vec![75_000i64, 5 * MIN - 1, 5 * MIN, 10 * MIN, 15 * MIN]),
        1 => prop::sample::select(vec![60 * MIN, 4 * 60 * MIN]),
    ]
    .boxed()
}

fn seats() -> BoxedStrategy<Vec<SeatRef>> {
    prop_oneof![
        14 => prop::collection::vec(seat(), 1..=1),
        10 => prop::sample::subsequence(vec![0usize, 1, 2, 3, 4, 5], 2..=3)
            .prop_shuffle()
            .prop_map(|v| v.into_iter().map(SeatRef::Of).collect()),
        5 => prop::collection::vec(seat(), 2..=3),
        2 => prop::collection::vec(seat(), 4..=5),
        1 => Just(Vec::new()),
    ]
    .boxed()
}

fn op() -> impl Strategy<Value = Op> {
    let tickets = prop_oneof![
        12 => prop::collection::vec(tref(TRef::Held), 1..=1),
        6 => Just(vec![TRef::AllHeld]),
        3 => prop::collection::vec(tref(TRef::Held), 2..=3),
        1 => Just(Vec::new()),
    ];
    let arms: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (5, Just(Op::Enter).boxed()),
        (5, user().prop_map(|u| Op::Reenter { u }).boxed()),
        (
            7,
            (user(), tok())
                .prop_map(|(u, tok)| Op::Poll { u, tok })
                .boxed(),
        ),
        (
            18,
            (user(), tok(), show(), seats())
                .prop_map(|(u, tok, show, seats)| Op::Hold {
                    u,
                    tok,
                    show,
                    seats,
                })
                .boxed(),
        ),
        (
            4,
            (user(), tok(), tref(TRef::Held))
                .prop_map(|(u, tok, t)| Op::Release { u, tok, t })
                .boxed(),
        ),
        (
            4,
            (user(), tok(), tref(TRef::Held))
                .prop_map(|(u, tok, t)| Op::Extend { u, tok, t })
                .boxed(),
        ),
        (
            10,
            (user(), tok(), amount(), key(), prop::bool::weighted(0.1))
                .prop_map(|(u, tok, amount, key, by_operator)| Op::Charge {
                    u,
                    tok,
                    amount,
                    key,
                    by_operator,
                })
                .boxed(),
        ),
        (
            14,
            (user(), tok(), tickets, key())
                .prop_map(|(u, tok, tickets, key)| Op::Pay {
                    u,
                    tok,
                    tickets,
                    key,
                })
                .boxed(),
        ),
        (
            5,
            (user(), tok(), tref(TRef::Paid), key())
                .prop_map(|(u, tok, t, key)| Op::Cancel { u, tok, t, key })
                .boxed(),
        ),
        (
            2,
            (tref(TRef::Paid), any::<bool>())
                .prop_map(|(t, no_fee)| Op::OperatorCancel { t, no_fee })
                .boxed(),
        ),
        (
            1,
            show().prop_map(|show| Op::CancelShowtime { show }).boxed(),
        ),
        (2, Just(Op::Sweep).boxed()),
        (14, step().prop_map(|ms| Op::Advance { ms }).boxed()),
        (
            6,
            (
                0..Boundary::ALL.len(),
                0..4usize,
                prop::sample::select(vec![0i64, -1, 1]),
            )
                .prop_map(|(kind, pick, offset)| Op::Jump { kind, pick, offset })
                .boxed(),
        ),
        // Now and then past a showtime's start, the cancel cutoffs and the tokens' lifetime.
        (
            1,
            prop::sample::select(vec![20 * 3_600_000i64, 25 * 3_600_000])
                .prop_map(|ms| Op::Advance { ms })
                .boxed(),
        ),
        (3, user().prop_map(|u| Op::Look { u }).boxed()),
        (
            5,
            (user(), show(), seats())
                .prop_map(|(u, show, seats)| Op::Buy { u, show, seats })
                .boxed(),
        ),
    ];
    Union::new_weighted(arms)
}

fn case() -> impl Strategy<Value = (Knobs, Vec<Op>)> {
    (knobs(), prop::collection::vec(op(), 1..=MAX_OPS))
}

// ---- the library's answers, in the model's shapes -------------------------------------------------------

fn qv(s: &QueueStatus) -> QView {
    QView {
        status: s.status,
        position: s.position,
        wait: s.estimated_wait_seconds,
        expires_at: s.expires_at.map(ms),
        opens_at: s.opens_at.map(ms),
        paused: s.paused,
    }
}

fn tv(t: &booking::Ticket) -> TView {
    TView {
        id: t.id,
        user: t.user_id,
        concert: t.concert_id,
        showtime: t.showtime_id,
        seat: t.seat_id,
        seat_number: t.seat_number,
        price: t.price.get(),
        status: t.status,
        held_until: ms(t.held_until),
    }
}

fn pv(p: &booking::Payment) -> PView {
    PView {
        id: p.id,
        user: p.user_id,
        ticket_id: p.ticket_id,
        ticket_ids: p.ticket_ids.clone(),
        amount: p.amount.get(),
        refunded: p.refunded.get(),
        paid_at: ms(p.paid_at),
    }
}

fn answer<T>(r: booking::Result<T>, f: impl FnOnce(T) -> Out) -> Answer {
    r.map(f).map_err(|e| err_key(&e))
}

// ---- one case ----------------------------------------------------------------------------------------

/// A case in progress: the library (in its fixture), the model, and every user's tokens.
struct Run {
    f: Fixture,
    m: Model,
    /// Per user (model index): the tokens handed out, oldest first.
    tokens: Vec<Vec<(String, Token)>>,
    /// The catalog's showtimes, in `ShowRef` order.
    shows: Vec<ShowtimeId>,
}

fn unknown_ticket() -> TicketId {
    TicketId::new(999_999).unwrap()
}

impl Run {
    fn new(backend: Backend, k: &Knobs) -> Run {
        let f = fixture_with(backend, |c| {
            let mut c = c
                .with_max_active(k.max_active)
                .with_max_tickets_per_user(k.max_tickets)
                .with_max_hold_extensions(k.max_extensions)
                .with_cancel_fee_percent(k.fee_percent)
                .with_cancel_cutoff(Duration::from_secs(k.cutoff_hours * 3600));
            c.max_charge = Points::new(MAX_CHARGE);
            c.max_balance = Points::new(MAX_BALANCE);
            c
        });
        let t0 = f.clock.now();
        let late = f
            .op()
            .add_showtime(
                f.concert,
                &NewShowtime {
                    starts_at: (f.starts_at + chrono::Duration::days(2)).fixed_offset(),
                    seats: 10,
                    price: Pricing::Flat(Points::new(2_500)),
                    sale_opens_at: Some((t0 + chrono::Duration::minutes(15)).fixed_offset()),
                },
                |_| {},
            )
            .expect("add the late showtime");
        let ids = vec![f.showtime, f.other_showtime, late];
        let listed = f.op().showtimes(f.concert).expect("showtimes");
        let shows = ids
            .iter()
            .map(|id| {
                let s = listed.iter().find(|s| s.id == *id).expect("listed");
                Show {
                    id: *id,
                    concert: f.concert,
                    starts_at: ms(s.starts_at),
                    sale_opens_at: s.sale_opens_at.map(ms),
                    cancelled: false,
                    seats: f
                        .seats_of(*id)
                        .iter()
                        .map(|seat| SeatRow {
                            id: seat.id,
                            number: seat.number,
                            price: seat.price.get(),
                        })
                        .collect(),
                }
            })
            .collect();
        let cfg = f.b.config();
        let millis = |d: Duration| d.as_millis() as i64;
        let policy = Policy {
            hold_ttl: millis(cfg.hold_ttl),
            active_ttl: millis(cfg.active_ttl),
            idle_timeout: millis(cfg.idle_timeout),
            max_active: i64::from(cfg.max_active),
            max_tickets: cfg.max_tickets_per_user,
            max_extensions: cfg.max_hold_extensions,
            fee_percent: cfg.cancel_fee_percent,
            cancel_cutoff: millis(cfg.cancel_cutoff),
            max_charge: cfg.max_charge.get(),
            max_balance: cfg.max_balance.get(),
            jwt_lifetime_secs: cfg.jwt_lifetime.as_secs() as i64,
            key_retention: millis(cfg.idempotency_retention),
        };
        Run {
            m: Model::new(ms(t0), policy, shows),
            f,
            tokens: Vec::new(),
            shows: ids,
        }
    }

    fn user(&self, u: usize) -> Option<usize> {
        (!self.m.users.is_empty()).then(|| u % self.m.users.len())
    }

    /// The user an operation on a ticket in `wanted` state acts as: one of the users who have
    /// such a ticket now (so that these operations mostly reach their rules), else any.
    fn user_with(&self, u: usize, t: TRef) -> Option<usize> {
        let wanted = match t {
            TRef::Held(_) | TRef::AllHeld => TicketStatus::Held,
            TRef::Paid(_) => TicketStatus::Paid,
            _ => return self.user(u),
        };
        let having: Vec<usize> = (0..self.m.users.len())
            .filter(|u| !self.m.tickets_of(*u, Some(wanted)).is_empty())
            .collect();
        if let Some(u) = self.user(u).filter(|u| having.contains(u)) {
            return Some(u);
        }
        if having.is_empty() {
            self.user(u)
        } else {
            Some(having[u % having.len()])
        }
    }

    fn token(&self, u: usize, tok: Tok) -> (String, Token) {
        let list = &self.tokens[u];
        match tok {
            Tok::Latest => list.last(),
            Tok::Older(i) => list.get(i % list.len()),
        }
        .cloned()
        .expect("every user has a token")
    }

    fn ticket(&self, u: Option<usize>, t: TRef) -> TicketId {
        let pick = |v: Vec<TicketId>, i: usize| (!v.is_empty()).then(|| v[i % v.len()]);
        let own = |i: usize| {
            u.and_then(|u| pick(self.m.tickets_of(u, None), i))
                .or_else(|| pick(self.m.all_tickets(None), i))
        };
        let with = |i: usize, status: TicketStatus| match u {
            Some(u) => pick(self.m.tickets_of(u, Some(status)), i).or_else(|| own(i)),
            None => pick(self.m.all_tickets(Some(status)), i).or_else(|| own(i)),
        };
        match t {
            TRef::Own(i) => own(i),
            TRef::Held(i) => with(i, TicketStatus::Held),
            TRef::Paid(i) => with(i, TicketStatus::Paid),
            TRef::Any(i) => pick(self.m.all_tickets(None), i),
            TRef::AllHeld => with(0, TicketStatus::Held),
            TRef::Unknown => None,
        }
        .unwrap_or_else(unknown_ticket)
    }

    fn showtime(&self, s: ShowRef) -> ShowtimeId {
        match s {
            ShowRef::Show(i) => self.shows[i % self.shows.len()],
            ShowRef::Unknown => ShowtimeId::new(999).unwrap(),
        }
    }

    fn seat(&self, show: ShowRef, s: SeatRef) -> SeatId {
        let of = |i: usize| &self.m.shows[i % self.m.shows.len()].seats;
        match (show, s) {
            (ShowRef::Show(i), SeatRef::Of(n)) => of(i)[n % 10].id,
            (ShowRef::Show(i), SeatRef::OtherShow(n)) => of(i + 1)[n % 10].id,
            (ShowRef::Unknown, SeatRef::Of(n) | SeatRef::OtherShow(n)) => of(0)[n % 10].id,
            (_, SeatRef::Unknown) => SeatId::new(999_999).unwrap(),
        }
    }

    fn key(k: Option<u8>) -> Option<IdempotencyKey> {
        k.map(|k| IdempotencyKey::parse(&format!("key-{k}")).unwrap())
    }

    /// Runs one operation on both sides; returns the pairs of answers to compare.
    fn step(&mut self, op: &Op) -> Vec<(&'static str, Answer, Answer)> {
        let b = &self.f.b;
        let mut out = Vec::new();
        match op {
            Op::Enter => {
                let r = b.enter_queue(None);
                let id = r.as_ref().map(|e| e.status.user_id).unwrap_or_else(|_| {
                    UserId::parse("00000000-0000-4000-8000-000000000000").unwrap()
                });
                let (model, u, token) = self.m.enter(Err(id));
                self.tokens.push(Vec::new());
                let lib = self.entered(u, token, r);
                out.push(("enter", lib, model));
            }
            Op::Reenter { u } => {
                let Some(u) = self.user(*u) else { return out };
                let r = b.enter_queue(Some(self.m.users[u].id));
                let (model, _, token) = self.m.enter(Ok(u));
                let lib = self.entered(u, token, r);
                out.push(("enter again", lib, model));
            }
            Op::Poll { u, tok } => {
                let Some(u) = self.user(*u) else { return out };
                let (token, t) = self.token(u, *tok);
                let lib = answer(
                    b.authorize(&token).and_then(|who| b.queue_status(&who)),
                    |s| Out::Queue(qv(&s)),
                );
                out.push(("poll", lib, self.m.poll(&t)));
            }
            Op::Hold {
                u,
                tok,
                show,
                seats,
            } => {
                let Some(u) = self.user(*u) else { return out };
                let (token, t) = self.token(u, *tok);
                let showtime = self.showtime(*show);
                let seat_ids: Vec<SeatId> = seats.iter().map(|s| self.seat(*show, *s)).collect();
                let r = b.authorize_active(&token).and_then(|who| {
                    if seat_ids.len() == 1 {
                        b.hold(&who, showtime, seat_ids[0]).map(|t| vec![t])
                    } else {
                        b.hold_seats(&who, showtime, &seat_ids)
                    }
                });
                let new_ids = r.as_ref().ok().map(|v| v.iter().map(|t| t.id).collect());
                let lib = answer(r, |v| Out::Tickets(v.iter().map(tv).collect()));
                let model = self.m.hold(u, &t, showtime, &seat_ids, new_ids);
                out.push(("hold", lib, model));
            }
            Op::Release { u, tok, t } => {
                let Some(u) = self.user_with(*u, *t) else {
                    return out;
                };
                let (token, tk) = self.token(u, *tok);
                let id = self.ticket(Some(u), *t);
                let lib = answer(
                    b.authorize(&token).and_then(|who| b.release(&who, id)),
                    |t| Out::Ticket(tv(&t)),
                );
                out.push(("release", lib, self.m.release(u, &tk, id)));
            }
            Op::Extend { u, tok, t } => {
                let Some(u) = self.user_with(*u, *t) else {
                    return out;
                };
                let (token, tk) = self.token(u, *tok);
                let id = self.ticket(Some(u), *t);
                let lib = answer(
                    b.authorize_active(&token)
                        .and_then(|who| b.extend(&who, id)),
                    |t| Out::Ticket(tv(&t)),
                );
                out.push(("extend", lib, self.m.extend(u, &tk, id)));
            }
            Op::Charge {
                u,
                tok,
                amount,
                key,
                by_operator,
            } => {
                let Some(u) = self.user(*u) else { return out };
                let (token, tk) = self.token(u, *tok);
                let k = Self::key(*key);
                let points = Points::new(*amount);
                let r = if *by_operator {
                    b.operator().charge(self.m.users[u].id, points, k.as_ref())
                } else {
                    b.authorize(&token)
                        .and_then(|who| b.charge(&who, points, k.as_ref()))
                };
                let lib = answer(r, |x| Out::Balance {
                    user: x.user_id,
                    balance: x.balance.get(),
                });
                let model = self.m.charge(
                    u,
                    (!by_operator).then_some(&tk),
                    *amount,
                    k.as_ref().map(|k| k.as_str()),
                );
                out.push(("charge", lib, model));
            }
            Op::Pay {
                u,
                tok,
                tickets,
                key,
            } => {
                let first = tickets.first().copied().unwrap_or(TRef::Unknown);
                let Some(u) = self.user_with(*u, first) else {
                    return out;
                };
                let (token, tk) = self.token(u, *tok);
                let held = self.m.tickets_of(u, Some(TicketStatus::Held));
                let ids: Vec<TicketId> = match tickets.as_slice() {
                    [TRef::AllHeld] if !held.is_empty() => held,
                    _ => tickets.iter().map(|t| self.ticket(Some(u), *t)).collect(),
                };
                let k = Self::key(*key);
                let r = b.authorize(&token).and_then(|who| {
                    if ids.len() == 1 {
                        b.pay(&who, ids[0], k.as_ref())
                    } else {
                        b.pay_tickets(&who, &ids, k.as_ref())
                    }
                });
                let new_id = r.as_ref().ok().map(|p| p.id);
                let lib = answer(r, |p| Out::Payment(pv(&p)));
                let model = self
                    .m
                    .pay(u, &tk, &ids, k.as_ref().map(|k| k.as_str()), new_id);
                out.push(("pay", lib, model));
            }
            Op::Cancel { u, tok, t, key } => {
                let Some(u) = self.user_with(*u, *t) else {
                    return out;
                };
                let (token, tk) = self.token(u, *tok);
                let id = self.ticket(Some(u), *t);
                let k = Self::key(*key);
                let lib = answer(
                    b.authorize(&token)
                        .and_then(|who| b.cancel(&who, id, k.as_ref())),
                    cancelled,
                );
                let model =
                    self.m
                        .cancel(By::User(u), Some(&tk), id, k.as_ref().map(|k| k.as_str()));
                out.push(("cancel", lib, model));
            }
            Op::OperatorCancel { t, no_fee } => {
                let id = self.ticket(None, *t);
                let lib = answer(b.operator().cancel_ticket(id, *no_fee), cancelled);
                let model = self
                    .m
                    .cancel(By::Operator { no_fee: *no_fee }, None, id, None);
                out.push(("operator cancel", lib, model));
            }
            Op::CancelShowtime { show } => {
                let id = self.showtime(*show);
                let lib = answer(b.operator().cancel_showtime(id), |x| {
                    Out::ShowtimeCancelled {
                        cancelled: x.cancelled,
                        refunded: x.refunded.get(),
                        released: x.released,
                    }
                });
                out.push(("cancel showtime", lib, self.m.cancel_showtime(id)));
            }
            Op::Sweep => {
                let lib = answer(b.operator().sweep(), |_| Out::Done);
                out.push(("sweep", lib, self.m.sweep()));
            }
            Op::Advance { ms } => {
                self.f.clock.advance(Duration::from_millis(*ms as u64));
                self.m.advance_clock(*ms);
            }
            Op::Jump { kind, pick, offset } => {
                let at = self.m.boundaries(*kind);
                if !at.is_empty() {
                    let by = (at[pick % at.len()] + offset - self.m.now).max(0);
                    self.f.clock.advance(Duration::from_millis(by as u64));
                    self.m.advance_clock(by);
                }
            }
            Op::Buy { .. } => unreachable!("a purchase is its steps"),
            Op::Look { u } => {
                if let Some(u) = self.user(*u) {
                    let (token, tk) = self.token(u, Tok::Latest);
                    let who = b.authorize(&token);
                    let m = &self.m;
                    let with = |f: &dyn Fn(&Identity) -> Answer| match &who {
                        Ok(w) => f(w),
                        Err(e) => Err(err_key(e)),
                    };
                    out.push((
                        "tickets",
                        with(&|w| {
                            answer(b.tickets(w), |v| Out::Tickets(v.iter().map(tv).collect()))
                        }),
                        m.tickets(u, &tk),
                    ));
                    out.push((
                        "balance",
                        with(&|w| {
                            answer(b.balance(w), |x| Out::Balance {
                                user: x.user_id,
                                balance: x.balance.get(),
                            })
                        }),
                        m.balance(u, Some(&tk)),
                    ));
                    out.push((
                        "point history",
                        with(&|w| {
                            answer(b.point_history(w), |v| {
                                Out::Ledger(
                                    v.iter()
                                        .map(|l| LView {
                                            kind: l.kind,
                                            amount: l.amount.get(),
                                            balance_after: l.balance_after.get(),
                                            at: ms(l.created_at),
                                        })
                                        .collect(),
                                )
                            })
                        }),
                        m.point_history(u, &tk),
                    ));
                    out.push((
                        "payment history",
                        with(&|w| {
                            answer(b.payment_history(w), |v| {
                                Out::Payments(v.iter().map(pv).collect())
                            })
                        }),
                        m.payment_history(u, &tk),
                    ));
                    out.push((
                        "showtimes",
                        answer(
                            b.authorize_active(&token)
                                .and_then(|w| b.showtimes(&w, self.f.concert)),
                            |v| {
                                Out::Showtimes(
                                    v.iter()
                                        .map(|s| {
                                            (
                                                s.id,
                                                s.total_seats,
                                                s.available_seats,
                                                s.sale_opens_at.map(ms),
                                            )
                                        })
                                        .collect(),
                                )
                            },
                        ),
                        m.showtimes(&tk),
                    ));
                    out.push((
                        "operator balance",
                        answer(b.operator().balance(self.m.users[u].id), |x| Out::Balance {
                            user: x.user_id,
                            balance: x.balance.get(),
                        }),
                        m.balance(u, None),
                    ));
                }
                out.extend(self.look_everything());
            }
        }
        out
    }

    /// What operators see: every seat map, the report, the queue counts.
    fn look_everything(&self) -> Vec<(&'static str, Answer, Answer)> {
        let op = self.f.b.operator();
        let mut out = Vec::new();
        for (i, id) in self.shows.iter().enumerate() {
            out.push((
                "seats",
                answer(op.seats(*id), |v| {
                    Out::Seats(
                        v.iter()
                            .map(|s| (s.id, s.number, s.price.get(), s.status))
                            .collect(),
                    )
                }),
                self.m.seats(i),
            ));
        }
        out.push((
            "report",
            answer(op.report(None), |v| {
                Out::Reports(
                    v.iter()
                        .map(|r| RView {
                            showtime: r.showtime_id,
                            cancelled: r.cancelled,
                            total: r.total,
                            available: r.available,
                            held: r.held,
                            sold: r.sold,
                            revenue: r.revenue.get(),
                            refunded: r.refunded.get(),
                            fees: r.fees.get(),
                        })
                        .collect(),
                )
            }),
            self.m.report(),
        ));
        out.push((
            "queue counts",
            answer(op.queue_counts(), |c| Out::Counts {
                waiting: c.waiting,
                active: c.active,
                expired: c.expired,
                prequeue: c.prequeue,
            }),
            self.m.counts(),
        ));
        out
    }

    /// The library's answer to entering; keeps the token it handed out.
    fn entered(&mut self, u: usize, token: Token, r: booking::Result<Entered>) -> Answer {
        match r {
            Ok(e) => {
                self.tokens[u].push((e.token.clone(), token));
                Ok(Out::Entered {
                    user: e.status.user_id,
                    created: e.created,
                    q: qv(&e.status),
                })
            }
            Err(e) => Err(err_key(&e)),
        }
    }

    fn check(&mut self, i: usize, op: &Op) -> Result<(), TestCaseError> {
        if let Op::Buy { u, show, seats } = op {
            if self.m.users.is_empty() {
                self.check(i, &Op::Enter)?;
            }
            let u = self.user(*u).expect("a user");
            let tok = Tok::Latest;
            for step in [
                Op::Reenter { u },
                Op::Charge {
                    u,
                    tok,
                    amount: MAX_CHARGE,
                    key: None,
                    by_operator: false,
                },
                Op::Hold {
                    u,
                    tok,
                    show: *show,
                    seats: seats.clone(),
                },
                Op::Pay {
                    u,
                    tok,
                    tickets: vec![TRef::AllHeld],
                    key: None,
                },
            ] {
                self.check(i, &step)?;
            }
            return Ok(());
        }
        let now = self.m.now;
        for (what, lib, model) in self.step(op) {
            tally(what, &lib);
            if lib != model {
                return Err(TestCaseError::fail(format!(
                    "operation #{i} {op:?} ({what}) at {}:\n  library: {lib:?}\n  model:   {model:?}",
                    time(now)
                )));
            }
        }
        Ok(())
    }

    /// The end of a case: every user's view (entering again first where the token lapsed), the
    /// operator's, and `verify`.
    fn finish(&mut self, n: usize) -> Result<(), TestCaseError> {
        for u in 0..self.m.users.len() {
            let valid = self.tokens[u]
                .last()
                .is_some_and(|(_, t)| self.m.token_valid(t));
            if !valid {
                self.check(n, &Op::Reenter { u })?;
            }
            self.check(n, &Op::Look { u })?;
        }
        self.check(n, &Op::Look { u: usize::MAX }).or_else(|e| {
            if self.m.users.is_empty() {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        let report = self
            .f
            .op()
            .verify()
            .map_err(|e| TestCaseError::fail(format!("verify failed to run: {e}")))?;
        if !report.ok {
            return Err(TestCaseError::fail(format!(
                "verify: {:#?}",
                report.violations
            )));
        }
        Ok(())
    }
}

fn cancelled(c: Cancellation) -> Out {
    Out::Cancelled {
        ticket: tv(&c.ticket),
        refund: c.refund.get(),
        fee: c.fee.get(),
        balance: c.balance.get(),
    }
}

/// Runs one case on `backend`: every answer and the final state compared.
fn run_case(backend: Backend, k: &Knobs, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut run = Run::new(backend, k);
    for (i, op) in ops.iter().enumerate() {
        if op.kind().is_some_and(|kind| k.left_out & (1 << kind) != 0) {
            continue;
        }
        run.check(i, op)?;
    }
    run.finish(ops.len())
}

/// With `BOOKING_MODEL_STATS=1`: how often each operation succeeded and failed with each code
/// (to see that the generators reach what they should).
static TALLY: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn tally(what: &str, a: &Answer) {
    if std::env::var_os("BOOKING_MODEL_STATS").is_none() {
        return;
    }
    let outcome = match a {
        Ok(Out::Entered { created, q, .. }) => format!("ok created={created} {:?}", q.status),
        Ok(Out::Queue(q)) => format!("ok {:?}", q.status),
        Ok(Out::Tickets(v)) if what == "hold" => format!("ok {} seats", v.len()),
        Ok(Out::Payment(p)) => format!("ok {} tickets", p.ticket_ids.len()),
        Ok(Out::Cancelled { fee, refund, .. }) => {
            format!("ok fee>0={} refund>0={}", *fee > 0, *refund > 0)
        }
        Ok(Out::ShowtimeCancelled { cancelled, .. }) => {
            format!("ok cancelled>0={}", *cancelled > 0)
        }
        Ok(_) => "ok".into(),
        Err(e) => e.split(':').next().unwrap_or(e).to_string(),
    };
    *TALLY
        .lock()
        .unwrap()
        .entry(format!("{what:>16}  {outcome}"))
        .or_default() += 1;
}

fn print_tally() {
    let t = TALLY.lock().unwrap();
    for (k, n) in t.iter() {
        eprintln!("{n:>8}  {k}");
    }
}

fn cases() -> u32 {
    std::env::var("BOOKING_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

fn seed() -> u64 {
    std::env::var("BOOKING_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random)
}

/// Runs one case given as JSON (`[knobs, ops]`, as a failure prints it) on `backend`.
pub fn replay(backend: Backend, case: &str) -> Result<(), TestCaseError> {
    let (k, ops): (Knobs, Vec<Op>) = serde_json::from_str(case).expect("a case as JSON");
    run_case(backend, &k, &ops)
}

#[apply(backends)]
fn random_sequences_answer_as_the_model_says(#[case] backend: Backend) {
    if let Ok(case) = std::env::var("BOOKING_MODEL_REPLAY") {
        if let Err(e) = replay(backend, &case) {
            panic!("{backend:?}: {e}");
        }
        return;
    }
    let seed = seed();
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Runner {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 10_000,
        ..Runner::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let started = std::time::Instant::now();
    match runner.run(&case(), |(k, ops)| run_case(backend, &k, &ops)) {
        Ok(()) => {
            eprintln!(
                "{backend:?}: {} cases (seed {seed}) in {:.1?}",
                cases(),
                started.elapsed()
            );
            if std::env::var_os("BOOKING_MODEL_STATS").is_some() {
                print_tally();
            }
        }
        Err(TestError::Fail(why, (k, ops))) => panic!(
            "{backend:?}: the library and the model disagree (BOOKING_MODEL_SEED={seed}).\n\
             {why}\nminimal case:\n{k:?}\n{ops:#?}\nas JSON (for `replay`, or \
             BOOKING_MODEL_REPLAY='...'):\n{}",
            serde_json::to_string(&(&k, &ops)).unwrap()
        ),
        Err(e) => panic!("{backend:?} (seed {seed}): {e}"),
    }
}

/// The minimal case of a deliberate bug (the user's cancel cutoff made exclusive), kept to show
/// the form of a regression test: a purchase, then a cancel at the very cutoff (inclusive).
#[apply(backends)]
fn a_cancel_at_the_cutoff_itself_is_allowed(#[case] backend: Backend) {
    replay(
        backend,
        r#"[{"max_active":1,"max_tickets":1,"max_extensions":0,"fee_percent":10,"cutoff_hours":24,"left_out":0},
            [{"Buy":{"u":0,"show":{"Show":0},"seats":[{"Of":0}]}},
             {"Cancel":{"u":0,"tok":"Latest","t":{"Paid":0},"key":null}}]]"#,
    )
    .unwrap();
}
