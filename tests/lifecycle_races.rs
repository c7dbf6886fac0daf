//! Races of the order lifecycle, with real threads on both write paths: overlapping multi-seat
//! holds, release against payment, cancel against a new hold of the freed seat, many cancels of
//! one ticket, and a showtime called off while holds and payments pour in. Each counts winners.
mod fixture;

use booking::*;
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
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn long(c: Config) -> Config {
    c.with_active_ttl(Duration::from_secs(30 * 86_400))
        .with_max_tickets_per_user(10)
        .with_max_active(10_000)
}

#[apply(backends)]
fn overlapping_seat_sets_go_to_one_user_whole_never_mixed(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = Arc::new(fixture_with(backend, long));
    for round in 0..40 {
        // Each round on a fresh showtime: a wants seats 1-4, b wants 3-6 (sharing 3 and 4).
        let st = f
            .op()
            .add_showtime(
                f.concert,
                &NewShowtime {
                    starts_at: (f.starts_at + chrono::Duration::hours(round + 1)).fixed_offset(),
                    seats: 6,
                    price: Pricing::Flat(pts(100)),
                    sale_opens_at: None,
                },
                |_| {},
            )
            .unwrap();
        let s: Vec<SeatId> = f.seats_of(st).iter().map(|s| s.id).collect();
        let users = [f.active_user(), f.active_user()];
        let wants = [s[0..4].to_vec(), s[2..6].to_vec()];
        let g = f.clone();
        let results = race(2, move |i| g.b.hold_seats(&users[i], st, &wants[i]));
        let winners: Vec<usize> = (0..2).filter(|i| results[*i].is_ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let loser = 1 - winners[0];
        assert_eq!(
            results[loser].as_ref().unwrap_err().code(),
            "seat_unavailable"
        );
        assert_eq!(
            f.b.tickets(&users[loser]).unwrap().len(),
            0,
            "the loser holds nothing"
        );
        assert_eq!(results[winners[0]].as_ref().unwrap().len(), 4);
        let held = f
            .seats_of(st)
            .iter()
            .filter(|s| s.status == SeatStatus::Held)
            .count();
        assert_eq!(held, 4, "round {round}: exactly the winner's four seats");
    }
}

#[apply(backends)]
fn release_racing_payment_of_the_same_ticket_has_one_winner(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = Arc::new(fixture_with(backend, long));
    let mut outcomes = [0usize; 2];
    for round in 0..60 {
        let a = f.active_user();
        let seat = f.seats[round % 10];
        // The seat may carry a released or paid ticket of an earlier round: free it first.
        if f.seats_of(f.showtime)[round % 10].status != SeatStatus::Available {
            continue;
        }
        let t = f.b.hold(&a, f.showtime, seat).unwrap();
        f.b.charge(&a, t.price, None).unwrap();
        let g = f.clone();
        let results = race(2, move |i| match i {
            0 => g.b.release(&a, t.id).map(|_| "released"),
            _ => g.b.pay(&a, t.id, None).map(|_| "paid"),
        });
        let won: Vec<&&str> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        let lost = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        match *won[0] {
            "released" => {
                outcomes[0] += 1;
                assert_eq!(lost.code(), "ticket_not_held");
                assert_eq!(f.b.balance(&a).unwrap().balance, t.price, "no debit");
            }
            _ => {
                outcomes[1] += 1;
                assert_eq!(lost.code(), "ticket_not_held");
                assert_eq!(f.b.balance(&a).unwrap().balance, Points::ZERO);
                // Give the seat back for later rounds.
                f.op().cancel_ticket(t.id, true).unwrap();
            }
        }
    }
    assert!(outcomes.iter().sum::<usize>() >= 50, "{outcomes:?}");
}

#[apply(backends)]
fn a_cancel_racing_a_new_hold_of_the_freed_seat_never_makes_two_claims(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = Arc::new(fixture_with(backend, long));
    let mut rehelds = 0;
    for round in 0..60 {
        let seat = f.seats[round % 10];
        let a = f.active_user();
        let b = f.active_user();
        let t = match f.b.hold(&a, f.showtime, seat) {
            Ok(t) => t,
            Err(_) => continue, // still b's from an earlier round
        };
        f.b.charge(&a, t.price, None).unwrap();
        f.b.pay(&a, t.id, None).unwrap();
        let g = f.clone();
        let results = race(5, move |i| match i {
            0 => g.op().cancel_ticket(t.id, true).map(|_| 0),
            _ => g.b.hold(&b, g.showtime, seat).map(|_| 1),
        });
        assert!(results[0].is_ok(), "round {round}: {results:?}");
        let holds = results[1..].iter().filter(|r| r.is_ok()).count();
        assert!(holds <= 1, "round {round}: {results:?}");
        rehelds += holds;
        let live =
            f.b.tickets(&b)
                .unwrap()
                .iter()
                .filter(|t| t.status == TicketStatus::Held)
                .count();
        assert_eq!(live, holds);
        f.assert_verified();
        // Free the seat again for the next rounds.
        for t in f.b.tickets(&b).unwrap() {
            if t.status == TicketStatus::Held {
                f.b.release(&b, t.id).unwrap();
            }
        }
    }
    assert!(
        rehelds > 0,
        "some new holds won the seat right after the cancel"
    );
}

#[apply(backends)]
fn thirty_two_threads_cancelling_one_ticket_make_one_refund(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = Arc::new(fixture_with(backend, long));
    let a = f.active_user();
    let t = f.b.hold(&a, f.showtime, f.seats[9]).unwrap();
    f.b.charge(&a, pts(10_000), None).unwrap();
    f.b.pay(&a, t.id, None).unwrap();
    let g = f.clone();
    let results = race(32, move |i| {
        if i % 2 == 0 {
            g.b.cancel(&a, t.id, None)
        } else {
            g.op().cancel_ticket(t.id, false)
        }
    });
    let ok: Vec<&Cancellation> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| e.code() == "ticket_not_paid"));
    assert_eq!(f.b.balance(&a).unwrap().balance, pts(9_000));
    let refunds =
        f.b.point_history(&a)
            .unwrap()
            .into_iter()
            .filter(|l| l.kind == LedgerKind::Refund)
            .count();
    assert_eq!(refunds, 1);
}

#[apply(backends)]
fn calling_a_showtime_off_while_holds_and_payments_pour_in_refunds_every_payment(
    #[case] backend: Backend,
) {
    if backend.skipped() {
        return;
    }
    let f = Arc::new(fixture_with(backend, |c| {
        long(c).with_max_tickets_per_user(100)
    }));
    // A bigger showtime, and users each holding and paying as fast as they can.
    let st = f
        .op()
        .add_showtime(
            f.concert,
            &NewShowtime {
                starts_at: (f.starts_at + chrono::Duration::days(5)).fixed_offset(),
                seats: 400,
                price: Pricing::Flat(pts(100)),
                sale_opens_at: None,
            },
            |_| {},
        )
        .unwrap();
    let seats: Vec<SeatId> = f.seats_of(st).iter().map(|s| s.id).collect();
    let users: Vec<Active> = (0..8).map(|_| f.active_user()).collect();
    for u in &users {
        f.b.charge(u, pts(100_000), None).unwrap();
    }
    let g = f.clone();
    let paid_so_far = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let results = race(9, move |i| {
        use std::sync::atomic::Ordering::SeqCst;
        if i == 8 {
            // Called off in the middle of the sale: once some payments went through.
            while paid_so_far.load(SeqCst) < 40 {
                thread::sleep(Duration::from_millis(1));
            }
            return g
                .op()
                .cancel_showtime(st)
                .map(|c| (c.cancelled as usize, 0));
        }
        let mut me = users[i];
        let (mut paid, mut closed) = (0, 0);
        for k in 0..50 {
            let seat = seats[i * 50 + k];
            let t = match g.b.hold(&me, st, seat) {
                Ok(t) => t,
                Err(e) => {
                    assert_eq!(e.code(), "showtime_closed");
                    closed += 1;
                    continue;
                }
            };
            if g.b.pay(&me, t.id, None).is_ok() {
                paid += 1;
                paid_so_far.fetch_add(1, SeqCst);
                // A payment ends the turn: enter again to keep going.
                let e = g.b.enter_queue(Some(me.user_id())).unwrap();
                me = g.b.authorize_active(&e.token).unwrap();
            }
        }
        Ok((paid, closed))
    });
    let cancelled = results[8].as_ref().expect("the showtime was called off").0;
    let paid: usize = results[..8].iter().map(|r| r.as_ref().unwrap().0).sum();
    let refused: usize = results[..8].iter().map(|r| r.as_ref().unwrap().1).sum();
    assert_eq!(cancelled, paid, "every acknowledged payment was cancelled");
    assert!(
        paid > 0 && refused > 0,
        "the cancel came in the middle: {paid} paid, {refused} refused after"
    );
    // Afterwards: no seat of it held or sold; every payment for it refunded in full.
    assert!(f
        .seats_of(st)
        .iter()
        .all(|s| s.status == SeatStatus::Available));
    let c = f.raw();
    let (paid, cancelled_unrefunded) = match c.row(
        "SELECT COUNT(*) FILTER (WHERE status = 'paid'),
                COUNT(*) FILTER (WHERE status = 'cancelled' AND (fee <> 0 OR refund <> price))
         FROM tickets WHERE showtime_id = ?1",
        &[&st.get()],
    )[..]
    {
        [Some(a), Some(b)] => (a, b),
        ref other => panic!("{other:?}"),
    };
    assert_eq!((paid, cancelled_unrefunded), (0, 0));
    let (payments, refunds) = match c.row(
        "SELECT (SELECT CAST(COALESCE(SUM(price), 0) AS BIGINT) FROM tickets
                  WHERE showtime_id = ?1 AND payment_id IS NOT NULL),
                (SELECT CAST(COALESCE(SUM(l.amount), 0) AS BIGINT) FROM point_ledger l
                  JOIN tickets t ON t.id = l.ticket_id WHERE t.showtime_id = ?1)",
        &[&st.get()],
    )[..]
    {
        [Some(a), Some(b)] => (a, b),
        ref other => panic!("{other:?}"),
    };
    assert_eq!(
        payments, refunds,
        "every point paid for this showtime came back"
    );
    // Points are conserved: charges − payments + refunds = the sum of balances.
    let (ledger, balances) = match c.row(
        "SELECT (SELECT CAST(SUM(amount) AS BIGINT) FROM point_ledger),
                (SELECT CAST(SUM(balance) AS BIGINT) FROM wallets)",
        &[],
    )[..]
    {
        [a, b] => (a, b),
        ref other => panic!("{other:?}"),
    };
    assert_eq!(ledger, balances);
    // And no hold for it succeeds any more.
    let late = f.active_user();
    assert_eq!(
        code(f.b.hold(&late, st, f.seats_of(st)[0].id)),
        "showtime_closed"
    );
}
