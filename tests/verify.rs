//! `verify` catches each broken invariant when a test tampers with the database behind the
//! library's back, and names what is broken.
#[path = "fixture/mod.rs"]
mod fixture;
#[allow(dead_code)]
const GROUP_COMMIT: bool = false;

use booking::*;
use fixture::*;

/// A fixture with one paid ticket (seat 1) and one live hold (seat 2) of the same user.
fn sold() -> (Fixture, UserId, Ticket, Ticket) {
    let f = fixture();
    let (u, _) = f.active_user();
    f.b.charge(u, 50_000, None).unwrap();
    let paid = f.b.hold(u, f.showtime, f.seats[0]).unwrap();
    f.b.pay(u, paid.id, None).unwrap();
    let (v, _) = f.active_user();
    let held = f.b.hold(v, f.showtime, f.seats[1]).unwrap();
    f.assert_verified();
    (f, u, paid, held)
}

fn broken(f: &Fixture) -> Vec<(&'static str, String)> {
    let r = f.b.verify().unwrap();
    assert!(!r.ok);
    r.violations
        .into_iter()
        .map(|v| (v.invariant, v.detail))
        .collect()
}

fn has(v: &[(&'static str, String)], invariant: &str, detail: &str) -> bool {
    v.iter().any(|(i, d)| *i == invariant && d.contains(detail))
}

#[test]
fn a_balance_that_disagrees_with_its_ledger() {
    let (f, u, _, _) = sold();
    f.raw()
        .execute(
            "UPDATE wallets SET balance = balance + 1 WHERE user_id = ?1",
            [u.to_string()],
        )
        .unwrap();
    let v = broken(&f);
    assert!(has(&v, "wallet_equals_ledger", &u.to_string()), "{v:?}");
}

#[test]
fn a_wallet_past_the_maximum_balance() {
    let (f, u, _, _) = sold();
    let strict = Booking::open(
        f.b.path(),
        Config {
            max_balance: 100,
            ..test_config()
        },
    )
    .unwrap();
    let v: Vec<_> = strict
        .verify()
        .unwrap()
        .violations
        .into_iter()
        .map(|v| (v.invariant, v.detail))
        .collect();
    assert!(has(&v, "balance_within_limits", &u.to_string()), "{v:?}");
}

#[test]
fn a_paid_ticket_whose_seat_is_not_sold() {
    let (f, _, paid, _) = sold();
    f.raw()
        .execute("UPDATE seats SET sold = 0 WHERE id = ?1", [paid.seat_id.0])
        .unwrap();
    let v = broken(&f);
    assert!(
        has(
            &v,
            "paid_ticket_has_sold_seat",
            &format!("ticket {}", paid.id)
        ),
        "{v:?}"
    );
}

#[test]
fn a_sold_seat_without_its_paid_ticket() {
    let (f, _, paid, _) = sold();
    f.raw()
        .execute(
            "UPDATE tickets SET status = 'expired', paid_at = NULL WHERE id = ?1",
            [paid.id.0],
        )
        .unwrap();
    let v = broken(&f);
    assert!(
        has(
            &v,
            "sold_seat_has_one_paid_ticket_and_payment",
            &format!("seat {}", paid.seat_id)
        ),
        "{v:?}"
    );
    assert!(
        has(&v, "payment_matches_ticket", &format!("ticket {}", paid.id)),
        "{v:?}"
    );
}

#[test]
fn a_payment_for_the_wrong_amount() {
    let (f, _, paid, _) = sold();
    f.raw()
        .execute(
            "UPDATE payments SET amount = amount - 1 WHERE ticket_id = ?1",
            [paid.id.0],
        )
        .unwrap();
    let v = broken(&f);
    assert!(
        has(&v, "payment_matches_ticket", &format!("ticket {}", paid.id)),
        "{v:?}"
    );
    assert!(has(&v, "payment_has_ledger_row", "payment"), "{v:?}");
}

#[test]
fn a_paid_ticket_without_a_payment() {
    let (f, _, paid, _) = sold();
    let raw = f.raw();
    raw.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    raw.execute("DELETE FROM payments WHERE ticket_id = ?1", [paid.id.0])
        .unwrap();
    let v = broken(&f);
    assert!(
        has(
            &v,
            "paid_ticket_has_payment",
            &format!("ticket {}", paid.id)
        ),
        "{v:?}"
    );
    assert!(has(&v, "foreign_keys", "point_ledger"), "{v:?}");
}

#[test]
fn two_live_tickets_on_one_seat() {
    let (f, _, _, held) = sold();
    let raw = f.raw();
    raw.execute_batch("DROP INDEX tickets_one_live_per_seat")
        .unwrap();
    raw.execute(
        "INSERT INTO tickets (user_id, showtime_id, seat_id, price, status, created_at, held_until)
         SELECT user_id, showtime_id, seat_id, price, status, created_at, held_until FROM tickets WHERE id = ?1",
        [held.id.0],
    )
    .unwrap();
    let v = broken(&f);
    assert!(
        has(
            &v,
            "one_live_ticket_per_seat",
            &format!("seat {}", held.seat_id)
        ),
        "{v:?}"
    );
}

#[test]
fn a_showtime_whose_sold_count_is_off() {
    let (f, _, _, _) = sold();
    f.raw()
        .execute(
            "UPDATE showtimes SET sold_seats = 0 WHERE id = ?1",
            [f.showtime.0],
        )
        .unwrap();
    let v = broken(&f);
    assert!(
        has(
            &v,
            "showtime_sold_count",
            &format!("showtime {}", f.showtime)
        ),
        "{v:?}"
    );
}

#[test]
fn the_ledger_refuses_to_be_rewritten() {
    let (f, u, _, _) = sold();
    let raw = f.raw();
    let update = raw.execute(
        "UPDATE point_ledger SET amount = 1 WHERE user_id = ?1",
        [u.to_string()],
    );
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = raw.execute(
        "DELETE FROM point_ledger WHERE user_id = ?1",
        [u.to_string()],
    );
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    let negative = raw.execute(
        "UPDATE wallets SET balance = -1 WHERE user_id = ?1",
        [u.to_string()],
    );
    assert!(negative.is_err(), "CHECK (balance >= 0)");
    f.assert_verified();
}
