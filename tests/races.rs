//! Races with real threads: many hands on one seat, one wallet, one ticket — count the winners.
mod fixture;

use booking::*;
use chrono::{DateTime, Utc};
use fixture::*;
use rstest_reuse::apply;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

/// Runs `n` threads that start together; returns their results in thread order.
fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, f) = (barrier.clone(), f.clone());
            thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("thread panicked"))
        .collect()
}

fn codes<T>(results: &[booking::Result<T>]) -> Vec<&'static str> {
    results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.code()))
        .collect()
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

#[apply(backends)]
fn sixty_four_threads_holding_one_seat_make_exactly_one_holder(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = Arc::new(fixture(backend));
    let users: Vec<Active> = (0..64).map(|_| f.active_user()).collect();
    let g = f.clone();
    let results = race(64, move |i| g.b.hold(&users[i], g.showtime, g.seats[0]));
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        codes(&results).iter().all(|c| *c == "seat_unavailable"),
        "{:?}",
        codes(&results)
    );
    f.assert_verified();
}

#[apply(backends)]
fn a_thousand_concurrent_charges_of_one_wallet_add_up_exactly(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = Arc::new(fixture(backend));
    let u = f.user();
    let g = f.clone();
    let results = race(50, move |i| {
        (0..20)
            .map(|j| {
                g.b.charge(&u, pts((i * 20 + j + 1) as i64), None)
                    .map(|b| b.balance)
            })
            .collect::<Vec<_>>()
    });
    let all: Vec<_> = results.into_iter().flatten().collect();
    assert_eq!(all.len(), 1000);
    assert!(all.iter().all(|r| r.is_ok()));
    let expected: i64 = (1..=1000).sum();
    assert_eq!(f.b.balance(&u).unwrap().balance, pts(expected));
    let history = f.b.point_history(&u).unwrap();
    assert_eq!(history.len(), 1000);
    assert_eq!(history[0].balance_after, pts(expected));
    f.assert_verified();
}

#[apply(backends)]
fn thirty_two_threads_paying_one_ticket_make_one_payment_and_one_debit(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = Arc::new(fixture(backend));
    let u = f.active_user();
    f.b.charge(&u, pts(1_000_000), None).unwrap();
    let t = f.b.hold(&u, f.showtime, f.seats[6]).unwrap();
    let g = f.clone();
    let results = race(32, move |_| g.b.pay(&u, t.id, None));
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(codes(&results).iter().all(|c| *c == "already_paid"));
    assert_eq!(f.b.payment_history(&u).unwrap().len(), 1);
    assert_eq!(f.b.balance(&u).unwrap().balance, pts(1_000_000 - 7_000));
    f.assert_verified();
}

#[apply(backends)]
fn concurrent_replays_of_one_idempotency_key_apply_once(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = Arc::new(fixture(backend));
    let u = f.active_user();
    f.b.charge(&u, pts(50_000), None).unwrap();
    let t = f.b.hold(&u, f.showtime, f.seats[0]).unwrap();
    let g = f.clone();
    let results = race(16, move |i| {
        if i % 2 == 0 {
            g.b.charge(&u, pts(777), Some(&key("same-charge")))
                .map(|_| ())
        } else {
            g.b.pay(&u, t.id, Some(&key("same-pay"))).map(|_| ())
        }
    });
    assert!(results.iter().all(|r| r.is_ok()), "{:?}", codes(&results));
    assert_eq!(f.b.payment_history(&u).unwrap().len(), 1);
    assert_eq!(f.b.balance(&u).unwrap().balance, pts(50_000 + 777 - 1_000));
    f.assert_verified();
}

#[apply(backends)]
fn payment_at_the_end_of_a_hold_never_coexists_with_a_new_hold(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = Arc::new(fixture(backend));
    for round in 0..40 {
        // A seat of its own and two new users per round (each round moves the clock to the end
        // of a hold, five minutes on).
        let show = f
            .op()
            .add_showtime(
                f.concert,
                &NewShowtime {
                    sale_opens_at: None,
                    starts_at: (f.clock.now() + chrono::Duration::days(1)).fixed_offset(),
                    seats: 1,
                    price: Pricing::Flat(pts(1_000)),
                },
                |_| {},
            )
            .unwrap();
        let seat = f.seats_of(show)[0].id;
        let a = f.active_user();
        let b = f.active_user();
        f.b.charge(&a, pts(100_000), None).unwrap();
        let t = f.b.hold(&a, show, seat).unwrap();
        // Half the rounds race at the very last millisecond of the hold, half exactly at its end
        // (both well within b's active session).
        let at = if round % 2 == 0 {
            t.held_until - chrono::Duration::milliseconds(1)
        } else {
            t.held_until
        };
        f.clock.set(at);
        let g = f.clone();
        let results = race(2, move |i| {
            if i == 0 {
                g.b.pay(&a, t.id, None).map(|_| ())
            } else {
                g.b.hold(&b, show, seat).map(|_| ())
            }
        });
        let (paid, held) = (results[0].is_ok(), results[1].is_ok());
        assert!(
            paid != held,
            "round {round}: paid={paid} held={held}: exactly one must win"
        );
        assert_eq!(
            paid,
            round % 2 == 0,
            "round {round}: the hold's end decides, not the race"
        );
        f.assert_verified();
    }
}

#[apply(backends)]
fn two_handles_on_one_file_racing_one_seat_make_one_winner(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture_with(backend, |c| c.with_durability(Durability::Full));
    let other = Arc::new(
        Booking::open_with_clock(
            f.location(),
            test_config(backend),
            Arc::new(f.clock.clone()),
        )
        .unwrap(),
    );
    let f = Arc::new(f);
    for seat in 0..5 {
        // Fresh users per seat: a user may hold only 4 seats of a showtime. The proofs name an
        // entry of the shared file, so either handle checks them.
        let users: Vec<Active> = (0..16).map(|_| f.active_user()).collect();
        let (g, o, us) = (f.clone(), other.clone(), users);
        let results = race(16, move |i| {
            let handle = if i % 2 == 0 { &g.b } else { &*o };
            handle.hold(&us[i], g.showtime, g.seats[seat])
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "seat {seat}"
        );
        let errors: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| format!("{}: {e}", e.code()))
            .collect();
        assert!(
            errors.iter().all(|e| e.starts_with("seat_unavailable")),
            "{errors:?}"
        );
    }
    f.assert_verified();
}

#[apply(backends)]
fn many_threads_entering_at_once_each_get_one_entry_and_admission_respects_max_active(
    #[case] backend: Backend,
) {
    if backend.skipped() {
        return;
    }
    let f = Arc::new(fixture_with(backend, |c| c.with_max_active(10)));
    let g = f.clone();
    let results = race(40, move |_| g.b.enter_queue(None).unwrap());
    let active = results
        .iter()
        .filter(|e| e.status.status == EntryStatus::Active)
        .count();
    assert_eq!(active, 10);
    let mut positions: Vec<i64> = results
        .iter()
        .filter(|e| e.status.status == EntryStatus::Waiting)
        .map(|e| e.status.position)
        .collect();
    positions.sort();
    assert_eq!(positions, (1..=30).collect::<Vec<_>>());
    // The same user entering from many threads at once still has one entry.
    let u = UserId::new_random();
    let g = f.clone();
    let again = race(16, move |_| g.b.enter_queue(Some(u)).unwrap());
    assert_eq!(again.iter().filter(|e| e.created).count(), 1);
    let entries: std::collections::HashSet<_> = again
        .iter()
        .map(|e| f.b.authorize(&e.token).unwrap().entry_id())
        .collect();
    assert_eq!(entries.len(), 1);
}

/// A clock that moves one millisecond forward each time it is read. Every write reads the time
/// once, while it holds the write lock (direct: after `BEGIN IMMEDIATE`; group commit: per
/// operation, in order, by the thread leading the batch), so the times writes store are all
/// distinct and increase in commit order. (`advance` then `now` is not one atomic step, but
/// writers read it one at a time, and concurrent readers only push it further forward.)
struct Ticking(ManualClock);

impl Clock for Ticking {
    fn now(&self) -> DateTime<Utc> {
        self.0.advance(Duration::from_millis(1));
        self.0.now()
    }
}

const ROUNDS: usize = 60;
/// Threads per round: one pays, the others hold.
const HANDS: usize = 8;

/// The race: one user pays (which ends their turn) while, from other threads, the same
/// user holds other seats with the `Active` proof made before. Holds that commit before the
/// payment are fine; a hold that commits after it would be a hold by a user whose turn is over.
#[apply(backends)]
fn holds_racing_the_payment_that_ends_the_turn_never_commit_after_it(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let clock = ManualClock::fixed();
    let b = fresh(
        backend,
        // The paid ticket plus one hold per other hand: the hold limit is never the answer.
        test_config(backend).with_max_tickets_per_user(HANDS as u32),
        Arc::new(Ticking(clock.clone())),
    );
    let f = Arc::new(populate(b, backend, clock));
    let raw = f.raw();
    // When the transaction that wrote a row committed, as a number that follows commit order.
    // SQLite: the row's own time (its one writer reads the ticking clock once per write, under
    // the write lock). PostgreSQL: many transactions run at once and each read the clock at
    // its start, so the commit timestamp the server keeps (`track_commit_timestamp`, on in the
    // test cluster), in microseconds.
    let stamp = |table: &str, id: i64| -> i64 {
        let sql = match (backend.is_postgres(), table) {
            (true, _) => format!(
                "SELECT CAST(EXTRACT(EPOCH FROM pg_xact_commit_timestamp(xmin)) * 1000000 AS BIGINT)
                 FROM {table} WHERE id = ?1"
            ),
            (false, "payments") => "SELECT paid_at FROM payments WHERE id = ?1".into(),
            (false, _) => format!("SELECT created_at FROM {table} WHERE id = ?1"),
        };
        raw.int(&sql, &[&id])
    };
    let (mut won, mut lost) = (0, 0);
    let mut last = None;
    for round in 0..ROUNDS {
        // A showtime of its own per round, so every hand has a free seat.
        let show = f
            .op()
            .add_showtime(
                f.concert,
                &NewShowtime {
                    sale_opens_at: None,
                    starts_at: (f.starts_at + chrono::Duration::hours(round as i64)).fixed_offset(),
                    seats: HANDS as u32,
                    price: Pricing::Flat(pts(1_000)),
                },
                |_| {},
            )
            .unwrap();
        let seats: Vec<SeatId> = f.seats_of(show).iter().map(|s| s.id).collect();
        let user = f.active_user();
        let t = f.b.hold(&user, show, seats[0]).unwrap();
        f.b.charge(&user, t.price, None).unwrap();

        let g = f.clone();
        let hands = seats.clone();
        let results = race(HANDS, move |i| {
            if i == 0 {
                g.b.pay(&user, t.id, None)
                    .map(|p| (p.id.get(), p.ticket_id))
            } else {
                g.b.hold(&user, show, hands[i]).map(|h| (h.id.get(), h.id))
            }
        });

        let payment = match &results[0] {
            Ok((id, ticket)) => {
                assert_eq!(*ticket, t.id);
                *id
            }
            Err(e) => panic!("round {round}: the payment failed: {e}"),
        };
        let paid_at = stamp("payments", payment);
        let mut held = Vec::new();
        for (i, r) in results.iter().enumerate().skip(1) {
            match r {
                Ok((id, _)) => held.push((i, *id)),
                Err(e) if e.code() == "queue_not_active" => {}
                Err(e) => panic!("round {round}: hand {i}: unexpected {}: {e}", e.code()),
            }
        }
        // No hold committed after the payment that ended the turn.
        for &(i, id) in &held {
            let created = stamp("tickets", id);
            assert!(
                created < paid_at,
                "round {round}: hand {i}'s hold (ticket {id}, written at {created}) committed \
                 after the payment (written at {paid_at})"
            );
        }
        // SQLite's stamps do follow commit order: ticket ids (assigned by the single writer)
        // and write times sort the user's tickets the same way. (PostgreSQL draws ids as rows
        // are written, not as they commit: there is nothing to compare its stamps with.)
        if !backend.is_postgres() {
            let mut mine: Vec<(i64, i64)> = std::iter::once(t.id.get())
                .chain(held.iter().map(|&(_, id)| id))
                .map(|id| (id, stamp("tickets", id)))
                .collect();
            mine.sort();
            assert!(
                mine.windows(2).all(|w| w[0].1 < w[1].1),
                "round {round}: write times out of commit order: {mine:?}"
            );
        }
        // Seats: the paid one sold, won holds held, lost holds left the seat free.
        let now = f.seats_of(show);
        assert_eq!(now[0].status, SeatStatus::Sold, "round {round}");
        for (i, seat) in now.iter().enumerate().skip(1) {
            let expected = if held.iter().any(|&(h, _)| h == i) {
                SeatStatus::Held
            } else {
                SeatStatus::Available
            };
            assert_eq!(seat.status, expected, "round {round}: seat of hand {i}");
        }
        assert_eq!(f.b.tickets(&user).unwrap().len(), 1 + held.len());
        assert_eq!(
            f.b.queue_status(&user).unwrap().status,
            EntryStatus::Expired
        );
        // The proof from before the payment is refused from now on.
        assert_eq!(code(f.b.hold(&user, show, seats[1])), "queue_not_active");
        won += held.len();
        lost += HANDS - 1 - held.len();
        last = Some((user, paid_at));
    }
    // The check can fail: a hold that does commit after a payment (the same user, entered
    // again) is written later than it.
    let (user, paid_at) = last.unwrap();
    let again = f.b.enter_queue(Some(user.user_id())).unwrap();
    let again = f.b.authorize_active(&again.token).unwrap();
    let late = f.b.hold(&again, f.showtime, f.seats[0]).unwrap();
    let created = stamp("tickets", late.id.get());
    assert!(created > paid_at, "{created} > {paid_at}");
    eprintln!("{backend:?}: {won} holds before the payment, {lost} refused after it");
    assert_eq!(won + lost, ROUNDS * (HANDS - 1));
    assert!(
        won > 0 && lost > 0,
        "the holds raced the payment: some won, some lost"
    );
    f.assert_verified();
}
