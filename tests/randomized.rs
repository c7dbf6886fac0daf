//! Thousands of random operation sequences from several threads against one database, with the
//! clock jumping around; afterwards every invariant must hold and the books must balance.
mod fixture;

use booking::*;
use fixture::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rstest_reuse::apply;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const THREADS: usize = 4;
const OPS_PER_THREAD: usize = 900;
const USERS: usize = 24;

#[derive(Default)]
struct Tally {
    unkeyed_charges: i64,
    keyed_charges: HashMap<(UserId, String), i64>,
    payments: HashSet<PaymentId>,
    paid_amount: i64,
    /// Refund per cancelled ticket (a replayed cancel counts once).
    refunds: HashMap<TicketId, i64>,
    releases: usize,
    extensions: usize,
    ops: usize,
    holds: usize,
}

#[apply(backends)]
fn random_concurrent_journeys_keep_every_invariant(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = Arc::new(fixture_with(backend, |c| {
        c.with_max_active(8)
            .with_max_tickets_per_user(3)
            .with_cancel_cutoff(Duration::from_secs(3600))
    }));
    let users: Vec<UserId> = (0..USERS).map(|_| UserId::new_random()).collect();
    let tokens: Arc<Mutex<HashMap<UserId, String>>> = Arc::default();
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let seats: Vec<(ShowtimeId, SeatId)> = [f.showtime, f.other_showtime]
        .iter()
        .flat_map(|s| f.seats_of(*s).into_iter().map(move |seat| (*s, seat.id)))
        .collect();

    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (f, users, tokens, tally, seats) = (
                f.clone(),
                users.clone(),
                tokens.clone(),
                tally.clone(),
                seats.clone(),
            );
            thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(0xB00C + t as u64);
                let mut local = Tally::default();
                for _ in 0..OPS_PER_THREAD {
                    let u = users[rng.random_range(0..USERS)];
                    local.ops += 1;
                    let token = tokens.lock().unwrap().get(&u).cloned();
                    match rng.random_range(0..100) {
                        0..=14 => {
                            let e = f.b.enter_queue(Some(u)).unwrap();
                            tokens.lock().unwrap().insert(u, e.token);
                        }
                        15..=29 => {
                            if let Some(token) = token {
                                let p = f.b.authorize(&token).unwrap();
                                let s = f.b.queue_status(&p).unwrap();
                                assert!(s.status != EntryStatus::Waiting || s.position >= 1);
                            }
                        }
                        30..=54 => {
                            let Some(token) = token else { continue };
                            match f.b.authorize_active(&token) {
                                Ok(p) => {
                                    let (show, seat) = seats[rng.random_range(0..seats.len())];
                                    // One seat, or two or three of the same showtime at once.
                                    let mut want = vec![seat];
                                    for _ in 0..rng.random_range(0..3) {
                                        let (s2, seat2) = seats[rng.random_range(0..seats.len())];
                                        if s2 == show && !want.contains(&seat2) {
                                            want.push(seat2);
                                        }
                                    }
                                    match f.b.hold_seats(&p, show, &want) {
                                        Ok(held) => {
                                            assert_eq!(held.len(), want.len());
                                            assert!(held
                                                .iter()
                                                .all(|t| t.status == TicketStatus::Held));
                                            local.holds += held.len();
                                            // Right away, sometimes: extend one, release one.
                                            if rng.random_bool(0.3) {
                                                match f.b.extend(&p, held[0].id) {
                                                    Ok(_) => local.extensions += 1,
                                                    // Another thread's clock jump ended
                                                    // the session or lapsed the hold; or
                                                    // another thread, working for the same
                                                    // user, paid, released or extended it.
                                                    Err(e) => assert!(
                                                        [
                                                            "queue_not_active",
                                                            "hold_expired",
                                                            "ticket_not_held",
                                                            "extension_limit"
                                                        ]
                                                        .contains(&e.code()),
                                                        "extend: {e}"
                                                    ),
                                                }
                                            }
                                            if rng.random_bool(0.2) {
                                                let last = held[held.len() - 1].id;
                                                match f.b.release(&p, last) {
                                                    Ok(_) => local.releases += 1,
                                                    // another thread's clock jump lapsed it,
                                                    // or another thread of this user's paid
                                                    // or released it
                                                    Err(e) => assert!(
                                                        ["ticket_not_held"].contains(&e.code()),
                                                        "release: {e}"
                                                    ),
                                                }
                                            }
                                        }
                                        // `queue_not_active`: the entry was active when the
                                        // proof was made, and another thread's clock jump or
                                        // this user's payment ended the turn since (the hold
                                        // checks again in its own transaction).
                                        Err(e) => assert!(
                                            [
                                                "seat_unavailable",
                                                "hold_limit_reached",
                                                "queue_not_active"
                                            ]
                                            .contains(&e.code()),
                                            "hold: {e}"
                                        ),
                                    }
                                }
                                Err(e) => assert_eq!(e.code(), "queue_not_active"),
                            }
                        }
                        55..=69 => {
                            let amount = match rng.random_range(0..10) {
                                0 => -5,
                                1 => 20_000_000,
                                _ => rng.random_range(1..20_000),
                            };
                            // A user charges their own wallet once they have a token; before
                            // that, an operator tops it up (the same rules either way).
                            let who = token.map(|t| f.b.authorize(&t).unwrap());
                            let charge = |key: Option<&IdempotencyKey>| match &who {
                                Some(who) => f.b.charge(who, pts(amount), key),
                                None => f.op().charge(u, pts(amount), key),
                            };
                            if rng.random_bool(0.5) {
                                let key = format!("k{}", rng.random_range(0..6));
                                match charge(Some(&IdempotencyKey::parse(&key).unwrap())) {
                                    Ok(_) => {
                                        let prev =
                                            local.keyed_charges.insert((u, key.clone()), amount);
                                        assert!(prev.is_none() || prev == Some(amount));
                                    }
                                    Err(e) => assert!(
                                        [
                                            "invalid_amount",
                                            "idempotency_key_reused",
                                            "balance_limit"
                                        ]
                                        .contains(&e.code()),
                                        "charge: {e}"
                                    ),
                                }
                            } else {
                                match charge(None) {
                                    Ok(_) => local.unkeyed_charges += amount,
                                    Err(e) => assert!(
                                        ["invalid_amount", "balance_limit"].contains(&e.code()),
                                        "{e}"
                                    ),
                                }
                            }
                        }
                        70..=84 => {
                            // A user without a token has never entered, so has no tickets.
                            let Some(token) = token else { continue };
                            let who = f.b.authorize(&token).unwrap();
                            let tickets = f.b.tickets(&who).unwrap();
                            if tickets.is_empty() {
                                continue;
                            }
                            // One ticket, or every live hold of the user at once.
                            let pick: Vec<&Ticket> = if rng.random_bool(0.5) {
                                vec![&tickets[rng.random_range(0..tickets.len())]]
                            } else {
                                tickets
                                    .iter()
                                    .filter(|t| t.status == TicketStatus::Held)
                                    .collect()
                            };
                            if pick.is_empty() {
                                continue;
                            }
                            let ids: Vec<TicketId> = pick.iter().map(|t| t.id).collect();
                            let key = rng.random_bool(0.3).then(|| {
                                IdempotencyKey::parse(&format!("pay-{}", ids[0])).unwrap()
                            });
                            match f.b.pay_tickets(&who, &ids, key.as_ref()) {
                                Ok(p) => {
                                    let sum: i64 = pick.iter().map(|t| t.price.get()).sum();
                                    assert_eq!(p.amount.get(), sum);
                                    if local.payments.insert(p.id) {
                                        local.paid_amount += p.amount.get();
                                    }
                                }
                                Err(e) => assert!(
                                    [
                                        "insufficient_points",
                                        "hold_expired",
                                        "already_paid",
                                        "ticket_not_held",
                                        // the same key first used for another set of tickets
                                        "idempotency_key_reused"
                                    ]
                                    .contains(&e.code()),
                                    "pay: {e}"
                                ),
                            }
                        }
                        85..=89 => f
                            .clock
                            .advance(Duration::from_millis(rng.random_range(0..20_000))),
                        90..=93 => {
                            // Release or extend one of the user's tickets.
                            let Some(token) = token else { continue };
                            let who = f.b.authorize(&token).unwrap();
                            // Mostly a live hold of theirs (the interesting case), sometimes
                            // any ticket (to hit ticket_not_held and hold_expired).
                            let tickets = f.b.tickets(&who).unwrap();
                            let held: Vec<&Ticket> = tickets
                                .iter()
                                .filter(|t| t.status == TicketStatus::Held)
                                .collect();
                            let t = if !held.is_empty() && rng.random_bool(0.8) {
                                held[rng.random_range(0..held.len())]
                            } else if !tickets.is_empty() {
                                &tickets[rng.random_range(0..tickets.len())]
                            } else {
                                continue;
                            };
                            if rng.random_bool(0.5) {
                                match f.b.release(&who, t.id) {
                                    Ok(r) => {
                                        assert_eq!(r.status, TicketStatus::Released);
                                        local.releases += 1;
                                    }
                                    Err(e) => {
                                        assert_eq!(e.code(), "ticket_not_held", "release: {e}")
                                    }
                                }
                            } else {
                                let Ok(active) = f.b.authorize_active(&token) else {
                                    continue;
                                };
                                match f.b.extend(&active, t.id) {
                                    Ok(_) => local.extensions += 1,
                                    Err(e) => assert!(
                                        [
                                            "ticket_not_held",
                                            "hold_expired",
                                            "extension_limit",
                                            "queue_not_active"
                                        ]
                                        .contains(&e.code()),
                                        "extend: {e}"
                                    ),
                                }
                            }
                        }
                        94..=97 => {
                            // Cancel a paid ticket: the user (keyed or not), or an operator.
                            let Some(token) = token else { continue };
                            let who = f.b.authorize(&token).unwrap();
                            let tickets = f.b.tickets(&who).unwrap();
                            let Some(t) = tickets.iter().find(|t| t.status == TicketStatus::Paid)
                            else {
                                continue;
                            };
                            let done = match rng.random_range(0..3) {
                                0 => f.op().cancel_ticket(t.id, rng.random_bool(0.5)),
                                1 => {
                                    let key =
                                        IdempotencyKey::parse(&format!("cancel-{}", t.id)).unwrap();
                                    f.b.cancel(&who, t.id, Some(&key))
                                }
                                _ => f.b.cancel(&who, t.id, None),
                            };
                            match done {
                                Ok(c) => {
                                    assert_eq!(c.refund.get() + c.fee.get(), t.price.get());
                                    let prev = local.refunds.insert(t.id, c.refund.get());
                                    assert!(prev.is_none() || prev == Some(c.refund.get()));
                                }
                                Err(e) => assert!(
                                    ["ticket_not_paid", "cancel_closed"].contains(&e.code()),
                                    "cancel: {e}"
                                ),
                            }
                        }
                        98 => f
                            .clock
                            .advance(Duration::from_secs(rng.random_range(200..400))),
                        _ => {
                            f.op().sweep().unwrap();
                        }
                    }
                }
                let mut all = tally.lock().unwrap();
                all.ops += local.ops;
                all.holds += local.holds;
                all.unkeyed_charges += local.unkeyed_charges;
                for (k, v) in local.keyed_charges {
                    let prev = all.keyed_charges.insert(k, v);
                    assert!(prev.is_none() || prev == Some(v), "one key, one amount");
                }
                // A payment replayed by another thread has the same id: count it once.
                for p in local.payments {
                    all.payments.insert(p);
                }
                all.paid_amount += local.paid_amount;
                all.releases += local.releases;
                all.extensions += local.extensions;
                for (t, r) in local.refunds {
                    let prev = all.refunds.insert(t, r);
                    assert!(prev.is_none() || prev == Some(r), "one refund per ticket");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a worker panicked");
    }

    let tally = tally.lock().unwrap();
    assert_eq!(tally.ops, THREADS * OPS_PER_THREAD);
    assert!(tally.holds > 0, "the run exercised holds");
    f.assert_verified();
    let charged: i64 = tally.unkeyed_charges + tally.keyed_charges.values().sum::<i64>();
    let balances: i64 = users
        .iter()
        .map(|u| f.op().balance(*u).unwrap().balance.get())
        .sum();
    // Each user's own view of their payments (a fresh token each: entering again is harmless
    // here, the run is over).
    let payments: Vec<Payment> = users
        .iter()
        .flat_map(|u| {
            let e = f.b.enter_queue(Some(*u)).unwrap();
            f.b.payment_history(&f.b.authorize(&e.token).unwrap())
                .unwrap()
        })
        .collect();
    let paid: i64 = payments.iter().map(|p| p.amount.get()).sum();
    assert_eq!(
        payments.len(),
        tally.payments.len(),
        "every successful payment, and only those"
    );
    let refunded: i64 = tally.refunds.values().sum();
    assert_eq!(
        balances,
        charged - paid + refunded,
        "no point lost or invented: charges − payments + refunds = the balances"
    );
    assert_eq!(
        payments.iter().map(|p| p.refunded.get()).sum::<i64>(),
        refunded,
        "payment history shows what was refunded"
    );
    let sold = [f.showtime, f.other_showtime]
        .iter()
        .flat_map(|s| f.seats_of(*s))
        .filter(|s| s.status == SeatStatus::Sold)
        .count();
    let paid_tickets: usize = payments.iter().map(|p| p.ticket_ids.len()).sum();
    assert_eq!(
        sold + tally.refunds.len(),
        paid_tickets,
        "one sold seat per ticket paid and not cancelled"
    );
    assert!(!payments.is_empty(), "the run exercised payments");
    eprintln!(
        "{backend:?}: {} releases, {} extensions, {} cancels",
        tally.releases,
        tally.extensions,
        tally.refunds.len()
    );
    assert!(
        tally.releases > 0 && tally.extensions > 0 && !tally.refunds.is_empty(),
        "the run exercised releases ({}), extensions ({}) and cancels ({})",
        tally.releases,
        tally.extensions,
        tally.refunds.len()
    );
    f.clock.advance(Duration::from_secs(3600));
    f.op().sweep().unwrap();
    f.assert_verified();
}
