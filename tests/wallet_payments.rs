//! Points and payments: limits, the ledger, all-or-nothing payment, idempotency keys.
mod fixture;

use booking::*;
use fixture::*;
use rstest_reuse::apply;
use std::time::Duration;

/// `user` enters the waiting room (again, when a payment ended their turn) and is admitted: a
/// proof to hold with. A live entry is handed back as it is.
fn turn(f: &Fixture, user: UserId) -> Active {
    let e = f.b.enter_queue(Some(user)).unwrap();
    f.b.authorize_active(&e.token).expect("admitted")
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

#[apply(backends)]
fn charges_add_up_in_the_wallet_and_the_ledger(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let u = f.user();
    assert_eq!(f.b.balance(&u).unwrap().balance, pts(0));
    assert_eq!(
        f.b.charge(&u, pts(5_000), None).unwrap().balance,
        pts(5_000)
    );
    f.advance(Duration::from_secs(1));
    assert_eq!(
        f.b.charge(&u, pts(2_500), None).unwrap().balance,
        pts(7_500)
    );
    let h = f.b.point_history(&u).unwrap();
    assert_eq!(
        h.iter()
            .map(|t| (t.kind, t.amount, t.balance_after))
            .collect::<Vec<_>>(),
        vec![
            (LedgerKind::Charge, pts(2_500), pts(7_500)),
            (LedgerKind::Charge, pts(5_000), pts(5_000))
        ]
    );
    assert!(h[0].created_at > h[1].created_at);
    assert!(f.b.point_history(&f.user()).unwrap().is_empty());
    // The operator sees the same wallet.
    assert_eq!(f.op().balance(u.user_id()).unwrap().balance, pts(7_500));
}

#[apply(backends)]
fn charges_outside_the_limits_change_nothing(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let u = f.user();
    for bad in [0, -1, 10_000_001, i64::MIN, i64::MAX] {
        assert_eq!(
            code(f.b.charge(&u, pts(bad), None)),
            "invalid_amount",
            "{bad}"
        );
    }
    for _ in 0..100 {
        f.b.charge(&u, pts(10_000_000), None).unwrap();
    }
    assert_eq!(f.b.balance(&u).unwrap().balance, pts(1_000_000_000));
    assert_eq!(code(f.b.charge(&u, pts(1), None)), "balance_limit");
    assert_eq!(f.b.point_history(&u).unwrap().len(), 100);
    f.assert_verified();
}

#[apply(backends)]
fn an_operators_top_up_follows_the_same_rules(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    // Any user, entered or not.
    let u = UserId::new_random();
    let op = f.op();
    assert_eq!(code(op.charge(u, pts(0), None)), "invalid_amount");
    assert_eq!(code(op.charge(u, pts(10_000_001), None)), "invalid_amount");
    let first = op.charge(u, pts(3_000), Some(&key("top-up"))).unwrap();
    assert_eq!((first.user_id, first.balance), (u, pts(3_000)));
    assert_eq!(
        op.charge(u, pts(3_000), Some(&key("top-up"))).unwrap(),
        first
    );
    assert_eq!(
        code(op.charge(u, pts(4_000), Some(&key("top-up")))),
        "idempotency_key_reused"
    );
    assert_eq!(op.balance(u).unwrap().balance, pts(3_000));
    // The user spends it once they are in.
    let a = turn(&f, u);
    assert_eq!(f.b.balance(&a).unwrap().balance, pts(3_000));
    let t = f.b.hold(&a, f.showtime, f.seats[2]).unwrap();
    f.b.pay(&a, t.id, None).unwrap();
    assert_eq!(op.balance(u).unwrap().balance, pts(0));
}

#[apply(backends)]
fn paying_spends_points_sells_the_seat_and_ends_the_turn_all_at_once(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture_with(backend, |c| c.with_max_active(1));
    let a = f.active_user();
    let w = f.user();
    assert_eq!(f.b.queue_status(&w).unwrap().status, EntryStatus::Waiting);
    let t = f.b.hold(&a, f.showtime, f.seats[2]).unwrap();
    f.b.charge(&a, pts(10_000), None).unwrap();
    f.advance(Duration::from_secs(10));
    let p = f.b.pay(&a, t.id, None).unwrap();
    assert_eq!(
        (p.user_id, p.ticket_id, p.amount, p.paid_at),
        (a.user_id(), t.id, pts(3_000), f.clock.now())
    );
    assert_eq!(f.b.balance(&a).unwrap().balance, pts(7_000));
    let h = f.b.point_history(&a).unwrap();
    assert_eq!(
        (h[0].kind, h[0].amount, h[0].balance_after),
        (LedgerKind::Payment, pts(-3_000), pts(7_000))
    );
    assert_eq!(f.b.payment_history(&a).unwrap(), vec![p]);
    assert_eq!(f.b.tickets(&a).unwrap()[0].status, TicketStatus::Paid);
    assert_eq!(f.seats_of(f.showtime)[2].status, SeatStatus::Sold);
    assert_eq!(f.b.queue_status(&a).unwrap().status, EntryStatus::Expired);
    assert_eq!(f.b.queue_status(&w).unwrap().status, EntryStatus::Active);
    f.assert_verified();
}

#[apply(backends)]
fn a_failed_payment_changes_nothing(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let t = f.b.hold(&a, f.showtime, f.seats[9]).unwrap();
    f.b.charge(&a, pts(9_999), None).unwrap();
    let e = f.b.pay(&a, t.id, None).unwrap_err();
    assert_eq!(e.code(), "insufficient_points");
    assert_eq!(f.b.balance(&a).unwrap().balance, pts(9_999));
    assert_eq!(f.b.point_history(&a).unwrap().len(), 1);
    assert!(f.b.payment_history(&a).unwrap().is_empty());
    assert_eq!(f.b.tickets(&a).unwrap()[0].status, TicketStatus::Held);
    assert_eq!(f.b.queue_status(&a).unwrap().status, EntryStatus::Active);
    f.b.charge(&a, pts(1), None).unwrap();
    f.b.pay(&a, t.id, None).unwrap();
    assert_eq!(f.b.balance(&a).unwrap().balance, pts(0));
}

#[apply(backends)]
fn lapsed_paid_and_foreign_tickets_cannot_be_paid(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let b = f.active_user();
    f.b.charge(&a, pts(100_000), None).unwrap();
    f.b.charge(&b, pts(100_000), None).unwrap();
    let t = f.b.hold(&a, f.showtime, f.seats[0]).unwrap();
    assert_eq!(
        code(f.b.pay(&b, t.id, None)),
        "not_found",
        "another user's ticket"
    );
    let nowhere = TicketId::new(4242).unwrap();
    assert_eq!(code(f.b.pay(&a, nowhere, None)), "not_found");
    f.b.pay(&a, t.id, None).unwrap();
    assert_eq!(code(f.b.pay(&a, t.id, None)), "already_paid");
    // The payment ended a's turn: a enters again to hold another seat.
    let a = turn(&f, a.user_id());
    let t2 = f.b.hold(&a, f.showtime, f.seats[1]).unwrap();
    f.advance(Duration::from_secs(300));
    assert_eq!(code(f.b.pay(&a, t2.id, None)), "hold_expired");
    assert_eq!(f.b.balance(&a).unwrap().balance, pts(99_000));
    f.assert_verified();
}

#[apply(backends)]
fn payment_is_on_time_until_the_last_millisecond_of_the_hold(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    f.b.charge(&a, pts(100_000), None).unwrap();
    let t1 = f.b.hold(&a, f.showtime, f.seats[0]).unwrap();
    let t2 = f.b.hold(&a, f.showtime, f.seats[1]).unwrap();
    f.clock
        .set(t1.held_until - chrono::Duration::milliseconds(1));
    f.b.pay(&a, t1.id, None).unwrap();
    f.clock.set(t2.held_until);
    assert_eq!(code(f.b.pay(&a, t2.id, None)), "hold_expired");
}

mod idempotency_keys {
    use super::*;

    #[apply(backends)]
    fn a_repeated_charge_replays_the_first_answer_and_changes_nothing(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        let f = fixture(backend);
        let u = f.user();
        let first = f.b.charge(&u, pts(1_000), Some(&key("charge-1"))).unwrap();
        f.b.charge(&u, pts(500), None).unwrap();
        let again = f.b.charge(&u, pts(1_000), Some(&key("charge-1"))).unwrap();
        assert_eq!(again, first);
        assert_eq!(f.b.balance(&u).unwrap().balance, pts(1_500));
        assert_eq!(f.b.point_history(&u).unwrap().len(), 2);
    }

    #[apply(backends)]
    fn the_same_key_for_another_request_is_rejected(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        let f = fixture(backend);
        let u = f.active_user();
        let k = key("k");
        f.b.charge(&u, pts(1_000), Some(&k)).unwrap();
        assert_eq!(
            code(f.b.charge(&u, pts(2_000), Some(&k))),
            "idempotency_key_reused"
        );
        let t = f.b.hold(&u, f.showtime, f.seats[0]).unwrap();
        assert_eq!(code(f.b.pay(&u, t.id, Some(&k))), "idempotency_key_reused");
        assert_eq!(f.b.balance(&u).unwrap().balance, pts(1_000));
        // Keys belong to their user.
        let other = f.user();
        assert_eq!(
            f.b.charge(&other, pts(2_000), Some(&k)).unwrap().balance,
            pts(2_000)
        );
    }

    #[apply(backends)]
    fn a_repeated_payment_replays_the_first_answer(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        let f = fixture(backend);
        let u = f.active_user();
        f.b.charge(&u, pts(10_000), None).unwrap();
        let t = f.b.hold(&u, f.showtime, f.seats[0]).unwrap();
        let first = f.b.pay(&u, t.id, Some(&key("pay-1"))).unwrap();
        f.advance(Duration::from_secs(3600));
        let again = f.b.pay(&u, t.id, Some(&key("pay-1"))).unwrap();
        assert_eq!(again, first);
        assert_eq!(f.b.payment_history(&u).unwrap().len(), 1);
        assert_eq!(f.b.balance(&u).unwrap().balance, pts(9_000));
        assert_eq!(code(f.b.pay(&u, t.id, Some(&key("pay-2")))), "already_paid");
    }

    #[apply(backends)]
    fn a_failed_request_does_not_consume_its_key(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        let f = fixture(backend);
        let u = f.active_user();
        let p = key("p");
        let t = f.b.hold(&u, f.showtime, f.seats[0]).unwrap();
        assert_eq!(code(f.b.pay(&u, t.id, Some(&p))), "insufficient_points");
        f.b.charge(&u, pts(1_000), None).unwrap();
        f.b.pay(&u, t.id, Some(&p)).unwrap();
        assert_eq!(f.b.pay(&u, t.id, Some(&p)).unwrap().ticket_id, t.id);
    }

    /// A malformed key never reaches an operation: it is refused when parsed, and only a parsed
    /// key can be passed.
    #[apply(backends)]
    fn malformed_keys_are_invalid_requests(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        for bad in ["", "with space", &"x".repeat(256), "tab\there", "ünïcode"] {
            assert_eq!(
                code(IdempotencyKey::parse(bad)),
                "invalid_request",
                "{bad:?}"
            );
        }
        // The longest key allowed is stored and replayed.
        let f = fixture(backend);
        let u = f.user();
        let longest = key(&"x".repeat(IdempotencyKey::MAX_LEN));
        f.b.charge(&u, pts(1), Some(&longest)).unwrap();
        assert_eq!(
            f.b.charge(&u, pts(1), Some(&longest)).unwrap().balance,
            pts(1)
        );
    }

    #[apply(backends)]
    fn keys_are_kept_a_day_then_swept(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        let f = fixture(backend);
        let u = f.user();
        let old = key("old");
        f.b.charge(&u, pts(1_000), Some(&old)).unwrap();
        f.advance(Duration::from_secs(23 * 3600));
        assert_eq!(f.op().sweep().unwrap().removed_idempotency_keys, 0);
        assert_eq!(
            f.b.charge(&u, pts(1_000), Some(&old)).unwrap().balance,
            pts(1_000)
        );
        f.advance(Duration::from_secs(3600 + 1));
        assert_eq!(f.op().sweep().unwrap().removed_idempotency_keys, 1);
        assert_eq!(
            f.b.charge(&u, pts(1_000), Some(&old)).unwrap().balance,
            pts(2_000)
        );
    }
}

/// Each library error carries its contract code and a message a client may see. (Which HTTP
/// status a code gets is the HTTP layer's table, `Failure::status`.)
#[test]
fn every_library_error_has_its_contract_code() {
    let cases: Vec<(Error, &str)> = vec![
        (Error::InvalidRequest("x".into()), "invalid_request"),
        (Error::InvalidAmount("x".into()), "invalid_amount"),
        (Error::Unauthorized("x".into()), "unauthorized"),
        (
            Error::InsufficientPoints {
                balance: pts(1),
                price: pts(2),
            },
            "insufficient_points",
        ),
        (
            Error::QueueNotActive(QueueState::Waiting),
            "queue_not_active",
        ),
        (Error::NotFound(Entity::Ticket), "not_found"),
        (
            Error::SeatUnavailable(SeatId::new(1).unwrap()),
            "seat_unavailable",
        ),
        (Error::HoldLimitReached(4), "hold_limit_reached"),
        (
            Error::HoldExpired(TicketId::new(1).unwrap()),
            "hold_expired",
        ),
        (
            Error::AlreadyPaid(TicketId::new(1).unwrap()),
            "already_paid",
        ),
        (
            Error::ShowtimeClosed(ShowtimeId::new(1).unwrap(), Closed::Started),
            "showtime_closed",
        ),
        (
            Error::ShowtimeClosed(ShowtimeId::new(1).unwrap(), Closed::CalledOff),
            "showtime_closed",
        ),
        (
            Error::SaleNotOpen {
                showtime: ShowtimeId::new(1).unwrap(),
                opens_at: chrono::Utc::now(),
            },
            "sale_not_open",
        ),
        (
            Error::TicketNotHeld(TicketId::new(1).unwrap()),
            "ticket_not_held",
        ),
        (
            Error::ExtensionLimit {
                ticket: TicketId::new(1).unwrap(),
                max: 1,
            },
            "extension_limit",
        ),
        (
            Error::TicketNotPaid(TicketId::new(1).unwrap()),
            "ticket_not_paid",
        ),
        (
            Error::CancelClosed {
                ticket: TicketId::new(1).unwrap(),
                closed_at: chrono::Utc::now(),
            },
            "cancel_closed",
        ),
        (
            Error::BalanceLimit {
                balance: pts(1),
                max: pts(2),
            },
            "balance_limit",
        ),
        (Error::IdempotencyConflict, "idempotency_conflict"),
        (Error::IdempotencyKeyReused, "idempotency_key_reused"),
        (Error::Busy, "busy"),
        (Error::internal("boom"), "internal"),
    ];
    for (e, c) in cases {
        assert_eq!(e.code(), c);
        assert!(!e.public_message().is_empty(), "{c}");
    }
}

#[apply(backends)]
fn payment_history_lists_the_users_own_payments_newest_first(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let (a, b) = (f.user(), f.user());
    f.b.charge(&a, pts(100_000), None).unwrap();
    f.b.charge(&b, pts(100_000), None).unwrap();
    let mut paid = Vec::new();
    for (user, seat) in [(a, 0), (b, 1), (a, 2)] {
        // Each payment ends its payer's turn: enter (again) to hold.
        let who = turn(&f, user.user_id());
        let t = f.b.hold(&who, f.showtime, f.seats[seat]).unwrap();
        f.advance(Duration::from_secs(1));
        paid.push((user.user_id(), f.b.pay(&who, t.id, None).unwrap()));
        f.b.charge(&who, pts(1), None).unwrap(); // ledger rows that are not payments in between
    }
    let mine = |u: &Identity| {
        let mut v: Vec<Payment> = paid
            .iter()
            .filter(|(p, _)| *p == u.user_id())
            .map(|(_, p)| p.clone())
            .collect();
        v.reverse();
        v
    };
    assert_eq!(f.b.payment_history(&a).unwrap(), mine(&a));
    assert_eq!(f.b.payment_history(&b).unwrap(), mine(&b));
    assert_eq!(f.b.payment_history(&a).unwrap().len(), 2);
    assert!(f.b.payment_history(&f.user()).unwrap().is_empty());
    f.assert_verified();
}
