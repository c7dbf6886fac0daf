//! Points and payments: limits, the ledger, all-or-nothing payment, idempotency keys.
#[path = "fixture/mod.rs"]
mod fixture;
/// Request writes run one transaction each here; `tests/batched.rs` runs this file again through
/// the group-commit writer.
#[allow(dead_code)]
const GROUP_COMMIT: bool = false;

use booking::*;
use fixture::*;
use std::time::Duration;

#[test]
fn charges_add_up_in_the_wallet_and_the_ledger() {
    let f = fixture();
    let u = UserId::new_random();
    assert_eq!(f.b.balance(u).unwrap().balance, 0);
    assert_eq!(f.b.charge(u, 5_000, None).unwrap().balance, 5_000);
    f.advance(Duration::from_secs(1));
    assert_eq!(f.b.charge(u, 2_500, None).unwrap().balance, 7_500);
    let h = f.b.point_history(u).unwrap();
    assert_eq!(
        h.iter()
            .map(|t| (t.kind, t.amount, t.balance_after))
            .collect::<Vec<_>>(),
        vec![
            (LedgerKind::Charge, 2_500, 7_500),
            (LedgerKind::Charge, 5_000, 5_000)
        ]
    );
    assert!(h[0].created_at > h[1].created_at);
    assert!(f.b.point_history(UserId::new_random()).unwrap().is_empty());
}

#[test]
fn charges_outside_the_limits_change_nothing() {
    let f = fixture();
    let u = UserId::new_random();
    for bad in [0, -1, 10_000_001, i64::MIN, i64::MAX] {
        assert_eq!(code(f.b.charge(u, bad, None)), "invalid_amount", "{bad}");
    }
    for _ in 0..100 {
        f.b.charge(u, 10_000_000, None).unwrap();
    }
    assert_eq!(f.b.balance(u).unwrap().balance, 1_000_000_000);
    assert_eq!(code(f.b.charge(u, 1, None)), "balance_limit");
    assert_eq!(f.b.point_history(u).unwrap().len(), 100);
    f.assert_verified();
}

#[test]
fn paying_spends_points_sells_the_seat_and_ends_the_turn_all_at_once() {
    let f = fixture_with(test_config().with_max_active(1));
    let (a, pa) = f.active_user();
    let w = f.b.enter_queue(None).unwrap();
    let pw = f.b.authorize(&w.token, Guard::Identity).unwrap();
    let t = f.b.hold(a, f.showtime, f.seats[2]).unwrap();
    f.b.charge(a, 10_000, None).unwrap();
    f.advance(Duration::from_secs(10));
    let p = f.b.pay(a, t.id, None).unwrap();
    assert_eq!(
        (p.user_id, p.ticket_id, p.amount, p.paid_at),
        (a, t.id, 3_000, f.clock.now())
    );
    assert_eq!(f.b.balance(a).unwrap().balance, 7_000);
    let h = f.b.point_history(a).unwrap();
    assert_eq!(
        (h[0].kind, h[0].amount, h[0].balance_after),
        (LedgerKind::Payment, -3_000, 7_000)
    );
    assert_eq!(f.b.payment_history(a).unwrap(), vec![p]);
    assert_eq!(f.b.tickets(a).unwrap()[0].status, TicketStatus::Paid);
    assert_eq!(
        f.b.list_seats(f.concert, f.showtime).unwrap()[2].status,
        SeatStatus::Sold
    );
    assert_eq!(f.b.queue_status(&pa).unwrap().status, EntryStatus::Expired);
    assert_eq!(f.b.queue_status(&pw).unwrap().status, EntryStatus::Active);
    f.assert_verified();
}

#[test]
fn a_failed_payment_changes_nothing() {
    let f = fixture();
    let (a, pa) = f.active_user();
    let t = f.b.hold(a, f.showtime, f.seats[9]).unwrap();
    f.b.charge(a, 9_999, None).unwrap();
    let e = f.b.pay(a, t.id, None).unwrap_err();
    assert_eq!(e.code(), "insufficient_points");
    assert_eq!(f.b.balance(a).unwrap().balance, 9_999);
    assert_eq!(f.b.point_history(a).unwrap().len(), 1);
    assert!(f.b.payment_history(a).unwrap().is_empty());
    assert_eq!(f.b.tickets(a).unwrap()[0].status, TicketStatus::Held);
    assert_eq!(f.b.queue_status(&pa).unwrap().status, EntryStatus::Active);
    f.b.charge(a, 1, None).unwrap();
    f.b.pay(a, t.id, None).unwrap();
    assert_eq!(f.b.balance(a).unwrap().balance, 0);
}

#[test]
fn lapsed_paid_and_foreign_tickets_cannot_be_paid() {
    let f = fixture();
    let (a, _) = f.active_user();
    let (b, _) = f.active_user();
    f.b.charge(a, 100_000, None).unwrap();
    f.b.charge(b, 100_000, None).unwrap();
    let t = f.b.hold(a, f.showtime, f.seats[0]).unwrap();
    assert_eq!(
        code(f.b.pay(b, t.id, None)),
        "not_found",
        "another user's ticket"
    );
    assert_eq!(code(f.b.pay(a, TicketId(4242), None)), "not_found");
    f.b.pay(a, t.id, None).unwrap();
    assert_eq!(code(f.b.pay(a, t.id, None)), "already_paid");
    let t2 = f.b.hold(a, f.showtime, f.seats[1]).unwrap();
    f.advance(Duration::from_secs(300));
    assert_eq!(code(f.b.pay(a, t2.id, None)), "hold_expired");
    assert_eq!(f.b.balance(a).unwrap().balance, 99_000);
    f.assert_verified();
}

#[test]
fn payment_is_on_time_until_the_last_millisecond_of_the_hold() {
    let f = fixture();
    let (a, _) = f.active_user();
    f.b.charge(a, 100_000, None).unwrap();
    let t1 = f.b.hold(a, f.showtime, f.seats[0]).unwrap();
    let t2 = f.b.hold(a, f.showtime, f.seats[1]).unwrap();
    f.clock
        .set(t1.held_until - chrono::Duration::milliseconds(1));
    f.b.pay(a, t1.id, None).unwrap();
    f.clock.set(t2.held_until);
    assert_eq!(code(f.b.pay(a, t2.id, None)), "hold_expired");
}

mod idempotency_keys {
    use super::*;

    #[test]
    fn a_repeated_charge_replays_the_first_answer_and_changes_nothing() {
        let f = fixture();
        let u = UserId::new_random();
        let first = f.b.charge(u, 1_000, Some("charge-1")).unwrap();
        f.b.charge(u, 500, None).unwrap();
        let again = f.b.charge(u, 1_000, Some("charge-1")).unwrap();
        assert_eq!(again, first);
        assert_eq!(f.b.balance(u).unwrap().balance, 1_500);
        assert_eq!(f.b.point_history(u).unwrap().len(), 2);
    }

    #[test]
    fn the_same_key_for_another_request_is_rejected() {
        let f = fixture();
        let (u, _) = f.active_user();
        f.b.charge(u, 1_000, Some("k")).unwrap();
        assert_eq!(
            code(f.b.charge(u, 2_000, Some("k"))),
            "idempotency_key_reused"
        );
        let t = f.b.hold(u, f.showtime, f.seats[0]).unwrap();
        assert_eq!(code(f.b.pay(u, t.id, Some("k"))), "idempotency_key_reused");
        assert_eq!(f.b.balance(u).unwrap().balance, 1_000);
        // Keys belong to their user.
        let other = UserId::new_random();
        assert_eq!(f.b.charge(other, 2_000, Some("k")).unwrap().balance, 2_000);
    }

    #[test]
    fn a_repeated_payment_replays_the_first_answer() {
        let f = fixture();
        let (u, _) = f.active_user();
        f.b.charge(u, 10_000, None).unwrap();
        let t = f.b.hold(u, f.showtime, f.seats[0]).unwrap();
        let first = f.b.pay(u, t.id, Some("pay-1")).unwrap();
        f.advance(Duration::from_secs(3600));
        let again = f.b.pay(u, t.id, Some("pay-1")).unwrap();
        assert_eq!(again, first);
        assert_eq!(f.b.payment_history(u).unwrap().len(), 1);
        assert_eq!(f.b.balance(u).unwrap().balance, 9_000);
        assert_eq!(code(f.b.pay(u, t.id, Some("pay-2"))), "already_paid");
    }

    #[test]
    fn a_failed_request_does_not_consume_its_key() {
        let f = fixture();
        let (u, _) = f.active_user();
        let t = f.b.hold(u, f.showtime, f.seats[0]).unwrap();
        assert_eq!(code(f.b.pay(u, t.id, Some("p"))), "insufficient_points");
        f.b.charge(u, 1_000, None).unwrap();
        f.b.pay(u, t.id, Some("p")).unwrap();
        assert_eq!(f.b.pay(u, t.id, Some("p")).unwrap().ticket_id, t.id);
    }

    #[test]
    fn malformed_keys_are_invalid_requests() {
        let f = fixture();
        let u = UserId::new_random();
        for bad in ["", "with space", &"x".repeat(256), "tab\there", "ünïcode"] {
            assert_eq!(
                code(f.b.charge(u, 1, Some(bad))),
                "invalid_request",
                "{bad:?}"
            );
        }
        assert_eq!(f.b.balance(u).unwrap().balance, 0);
    }

    #[test]
    fn keys_are_kept_a_day_then_swept() {
        let f = fixture();
        let u = UserId::new_random();
        f.b.charge(u, 1_000, Some("old")).unwrap();
        f.advance(Duration::from_secs(23 * 3600));
        assert_eq!(f.b.sweep().unwrap().removed_idempotency_keys, 0);
        assert_eq!(f.b.charge(u, 1_000, Some("old")).unwrap().balance, 1_000);
        f.advance(Duration::from_secs(3600 + 1));
        assert_eq!(f.b.sweep().unwrap().removed_idempotency_keys, 1);
        assert_eq!(f.b.charge(u, 1_000, Some("old")).unwrap().balance, 2_000);
    }
}

#[test]
fn every_error_code_has_its_contract_status() {
    // The HTTP layer maps codes to statuses through Error::status(); the table lives in one place.
    let cases: Vec<(Error, &str, u16)> = vec![
        (Error::InvalidJson("x".into()), "invalid_json", 400),
        (Error::InvalidRequest("x".into()), "invalid_request", 400),
        (Error::InvalidAmount("x".into()), "invalid_amount", 400),
        (Error::Unauthorized("x".into()), "unauthorized", 401),
        (
            Error::InsufficientPoints {
                balance: 1,
                price: 2,
            },
            "insufficient_points",
            402,
        ),
        (
            Error::QueueNotActive(error::QueueState::Waiting),
            "queue_not_active",
            403,
        ),
        (Error::Forbidden("x".into()), "forbidden", 403),
        (Error::NotFound("x"), "not_found", 404),
        (Error::MethodNotAllowed, "method_not_allowed", 405),
        (Error::SeatUnavailable(1), "seat_unavailable", 409),
        (Error::HoldLimitReached(4), "hold_limit_reached", 409),
        (Error::HoldExpired(1), "hold_expired", 409),
        (Error::AlreadyPaid(1), "already_paid", 409),
        (Error::ShowtimeClosed(1), "showtime_closed", 409),
        (
            Error::BalanceLimit { balance: 1, max: 2 },
            "balance_limit",
            409,
        ),
        (Error::IdempotencyConflict, "idempotency_conflict", 409),
        (Error::PayloadTooLarge(65536), "payload_too_large", 413),
        (Error::IdempotencyKeyReused, "idempotency_key_reused", 422),
        (Error::Busy, "busy", 503),
        (Error::internal("boom"), "internal", 500),
    ];
    for (e, c, s) in cases {
        assert_eq!((e.code(), e.status()), (c, s));
        assert!(!e.public_message().is_empty());
    }
}

#[test]
fn payment_history_lists_the_users_own_payments_newest_first() {
    let f = fixture();
    let (a, b) = (UserId::new_random(), UserId::new_random());
    f.b.charge(a, 100_000, None).unwrap();
    f.b.charge(b, 100_000, None).unwrap();
    let mut paid = Vec::new();
    for (user, seat) in [(a, 0), (b, 1), (a, 2)] {
        let t = f.b.hold(user, f.showtime, f.seats[seat]).unwrap();
        f.advance(Duration::from_secs(1));
        paid.push((user, f.b.pay(user, t.id, None).unwrap()));
        f.b.charge(user, 1, None).unwrap(); // ledger rows that are not payments in between
    }
    let mine = |u| {
        let mut v: Vec<Payment> = paid
            .iter()
            .filter(|(p, _)| *p == u)
            .map(|(_, p)| p.clone())
            .collect();
        v.reverse();
        v
    };
    assert_eq!(f.b.payment_history(a).unwrap(), mine(a));
    assert_eq!(f.b.payment_history(b).unwrap(), mine(b));
    assert_eq!(f.b.payment_history(a).unwrap().len(), 2);
    assert!(f
        .b
        .payment_history(UserId::new_random())
        .unwrap()
        .is_empty());
    f.assert_verified();
}
