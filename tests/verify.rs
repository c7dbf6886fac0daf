//! `verify` catches each broken invariant when a test tampers with the database behind the
//! library's back, and names what is broken; and the fixture's own end-of-test `verify` really
//! fails a test that leaves a broken database.
mod fixture;

use booking::*;
use fixture::*;
use rstest_reuse::apply;

/// A fixture with one paid ticket (seat 1) of one user and one live hold (seat 2) of another.
fn sold(backend: Backend) -> (Fixture, Identity, Ticket, Ticket) {
    let f = fixture(backend);
    let u = f.active_user();
    f.b.charge(&u, pts(50_000), None).unwrap();
    let paid = f.b.hold(&u, f.showtime, f.seats[0]).unwrap();
    f.b.pay(&u, paid.id, None).unwrap();
    let v = f.active_user();
    let held = f.b.hold(&v, f.showtime, f.seats[1]).unwrap();
    f.assert_verified();
    (f, *u, paid, held)
}

fn broken(f: &Fixture) -> Vec<(&'static str, String)> {
    let r = f.op().verify().unwrap();
    assert!(!r.ok);
    r.violations
        .into_iter()
        .map(|v| (v.invariant, v.detail))
        .collect()
}

fn has(v: &[(&'static str, String)], invariant: &str, detail: &str) -> bool {
    v.iter().any(|(i, d)| *i == invariant && d.contains(detail))
}

#[apply(backends)]
fn a_balance_that_disagrees_with_its_ledger(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, u, _, _) = sold(backend);
    f.tamper()
        .execute(
            "UPDATE wallets SET balance = balance + 1 WHERE user_id = ?1",
            &[&u.user_id().to_string()],
        )
        .unwrap();
    let v = broken(&f);
    assert!(
        has(&v, "wallet_equals_ledger", &u.user_id().to_string()),
        "{v:?}"
    );
}

#[apply(backends)]
fn ledger_rows_without_a_wallet(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, u, _, _) = sold(backend);
    f.tamper()
        .execute(
            "DELETE FROM wallets WHERE user_id = ?1",
            &[&u.user_id().to_string()],
        )
        .unwrap();
    let v = broken(&f);
    assert!(
        has(&v, "ledger_has_wallet", &u.user_id().to_string()),
        "{v:?}"
    );
}

/// Nothing is tampered with: a handle with a stricter policy reads the same file and finds the
/// wallet past its maximum. (The fixture's own handle still finds the database valid.)
#[apply(backends)]
fn a_wallet_past_the_maximum_balance(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, u, _, _) = sold(backend);
    let strict = Booking::open(
        f.location(),
        Config {
            max_balance: pts(100),
            ..test_config(backend)
        },
    )
    .unwrap();
    let v: Vec<_> = strict
        .operator()
        .verify()
        .unwrap()
        .violations
        .into_iter()
        .map(|v| (v.invariant, v.detail))
        .collect();
    assert!(
        has(&v, "balance_within_limits", &u.user_id().to_string()),
        "{v:?}"
    );
}

#[apply(backends)]
fn a_paid_ticket_whose_seat_is_not_sold(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, paid, _) = sold(backend);
    f.tamper()
        .execute(
            "UPDATE seats SET sold = 0 WHERE id = ?1",
            &[&paid.seat_id.get()],
        )
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

/// Frees `held`'s seat behind the library's back, the ticket left `held`.
fn seat_forgets_its_hold(f: &Fixture, held: &Ticket) {
    f.tamper()
        .execute(
            "UPDATE seats SET ticket_id = NULL, held_until = NULL WHERE id = ?1",
            &[&held.seat_id.get()],
        )
        .unwrap();
}

#[apply(backends)]
fn a_live_hold_its_seat_does_not_carry(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, _, held) = sold(backend);
    seat_forgets_its_hold(&f, &held);
    let v = broken(&f);
    assert!(
        has(
            &v,
            "live_hold_is_the_seats_claim",
            &format!("ticket {}", held.id)
        ),
        "{v:?}"
    );
}

/// A lapsed hold that its seat no longer carries would be missed by a sweep (which finds the
/// holds to expire through the seats) and stay `held` for ever.
#[apply(backends)]
fn a_lapsed_hold_its_seat_does_not_carry(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, _, held) = sold(backend);
    f.advance(std::time::Duration::from_secs(3600));
    seat_forgets_its_hold(&f, &held);
    let v = broken(&f);
    assert!(
        has(
            &v,
            "held_ticket_is_its_seats_claim",
            &format!("ticket {}", held.id)
        ),
        "{v:?}"
    );
}

#[apply(backends)]
fn a_sold_seat_without_its_paid_ticket(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, paid, _) = sold(backend);
    f.tamper()
        .execute(
            "UPDATE tickets SET status = 'expired', paid_at = NULL WHERE id = ?1",
            &[&paid.id.get()],
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

#[apply(backends)]
fn a_payment_for_the_wrong_amount(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, paid, _) = sold(backend);
    f.tamper()
        .execute(
            "UPDATE payments SET amount = amount - 1 WHERE ticket_id = ?1",
            &[&paid.id.get()],
        )
        .unwrap();
    let v = broken(&f);
    assert!(
        has(&v, "payment_matches_ticket", &format!("ticket {}", paid.id)),
        "{v:?}"
    );
    assert!(has(&v, "payment_has_ledger_row", "payment"), "{v:?}");
}

#[apply(backends)]
fn a_paid_ticket_without_a_payment(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, paid, _) = sold(backend);
    let raw = f.tamper();
    raw.foreign_keys_off();
    raw.execute(
        "DELETE FROM payments WHERE ticket_id = ?1",
        &[&paid.id.get()],
    )
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

#[apply(backends)]
fn two_live_tickets_on_one_seat(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, _, held) = sold(backend);
    let raw = f.tamper();
    raw.batch("DROP INDEX tickets_one_live_per_seat").unwrap();
    raw.execute(
        "INSERT INTO tickets (user_id, showtime_id, seat_id, price, status, created_at, held_until)
         SELECT user_id, showtime_id, seat_id, price, status, created_at, held_until FROM tickets WHERE id = ?1",
        &[&held.id.get()],
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

#[apply(backends)]
fn a_showtime_whose_sold_count_is_off(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, _, _) = sold(backend);
    f.tamper()
        .execute(
            "UPDATE seat_versions SET sold = 0 WHERE showtime_id = ?1",
            &[&f.showtime.get()],
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

/// [`sold`], then the paid ticket (seat 1, 1,000 points) cancelled by an operator with the fee:
/// 900 refunded, 100 kept.
fn cancelled(backend: Backend) -> (Fixture, Identity, Ticket) {
    let (f, u, paid, _) = sold(backend);
    let c = f.op().cancel_ticket(paid.id, false).unwrap();
    assert_eq!((c.refund, c.fee), (pts(900), pts(100)));
    f.assert_verified();
    (f, u, paid)
}

#[apply(backends)]
fn a_cancelled_ticket_whose_refund_row_disagrees(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, t) = cancelled(backend);
    f.tamper()
        .execute(
            "UPDATE tickets SET refund = refund - 1, fee = fee + 1 WHERE id = ?1",
            &[&t.id.get()],
        )
        .unwrap();
    let v = broken(&f);
    assert!(
        has(
            &v,
            "cancelled_ticket_is_refunded",
            &format!("ticket {}", t.id)
        ),
        "{v:?}"
    );
}

#[apply(backends)]
fn a_refund_row_for_a_ticket_that_was_not_cancelled(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, u, _, _) = sold(backend);
    let other = f.active_user();
    let t = f.b.hold(&other, f.showtime, f.seats[4]).unwrap();
    f.b.charge(&other, t.price, None).unwrap();
    f.b.pay(&other, t.id, None).unwrap();
    let raw = f.tamper();
    raw.execute(
        "INSERT INTO point_ledger (user_id, kind, amount, balance_after, ticket_id, created_at)
         VALUES (?1, 'refund', 5, 5, ?2, 0)",
        &[&u.user_id().to_string(), &t.id.get()],
    )
    .unwrap();
    let v = broken(&f);
    assert!(
        has(
            &v,
            "refund_is_of_a_cancelled_ticket",
            &format!("names ticket {}", t.id)
        ),
        "{v:?}"
    );
}

#[apply(backends)]
fn a_cancelled_ticket_that_still_claims_its_seat(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, t) = cancelled(backend);
    let raw = f.tamper();
    raw.execute(
        "UPDATE seats SET sold = 1, ticket_id = ?2 WHERE id = ?1",
        &[&t.seat_id.get(), &t.id.get()],
    )
    .unwrap();
    raw.execute(
        "UPDATE seat_versions SET sold = sold + 1 WHERE showtime_id = ?1 AND slot = ?2 % 32",
        &[&t.showtime_id.get(), &t.seat_id.get()],
    )
    .unwrap();
    let v = broken(&f);
    assert!(
        has(
            &v,
            "ended_ticket_claims_no_seat",
            &format!("cancelled ticket {}", t.id)
        ),
        "{v:?}"
    );
    assert!(
        has(&v, "sold_seat_has_one_paid_ticket_and_payment", "0 paid"),
        "{v:?}"
    );
}

#[apply(backends)]
fn a_released_ticket_that_still_holds_its_seat(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, _, held) = sold(backend);
    let raw = f.tamper();
    raw.execute(
        "UPDATE tickets SET status = 'released', ended_at = 1 WHERE id = ?1",
        &[&held.id.get()],
    )
    .unwrap();
    let v = broken(&f);
    assert!(
        has(
            &v,
            "ended_ticket_claims_no_seat",
            &format!("released ticket {}", held.id)
        ),
        "{v:?}"
    );
}

#[apply(backends)]
fn a_showtime_called_off_with_a_seat_still_held(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, paid, _) = sold(backend);
    f.op().cancel_showtime(f.showtime).unwrap();
    f.assert_verified();
    let raw = f.tamper();
    raw.execute(
        "UPDATE seats SET held_until = ?2 WHERE id = ?1",
        &[&paid.seat_id.get(), &i64::MAX],
    )
    .unwrap();
    let v = broken(&f);
    assert!(
        has(
            &v,
            "called_off_showtime_has_no_claims",
            &format!("seat {}", paid.seat_id)
        ),
        "{v:?}"
    );
}

/// Every rewrite is refused, so the database stays valid: the raw connection is not `tamper`,
/// and the end-of-test `verify` checks that nothing changed.
#[apply(backends)]
fn the_ledger_refuses_to_be_rewritten(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, u, _, _) = sold(backend);
    let user = u.user_id().to_string();
    let raw = f.raw();
    let update = raw.execute(
        "UPDATE point_ledger SET amount = 1 WHERE user_id = ?1",
        &[&user],
    );
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = raw.execute("DELETE FROM point_ledger WHERE user_id = ?1", &[&user]);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    let negative = raw.execute(
        "UPDATE wallets SET balance = -1 WHERE user_id = ?1",
        &[&user],
    );
    assert!(negative.is_err(), "CHECK (balance >= 0)");
    f.assert_verified();
}

mod the_fixtures_own_verify {
    use super::*;

    /// Runs `body` on a fixture with a sale and a hold, in a thread of its own, then drops the
    /// fixture there: the drop's panic message, if it panicked.
    fn drop_after(
        backend: Backend,
        body: impl FnOnce(&Fixture, UserId) + Send + 'static,
    ) -> Option<String> {
        let r = std::thread::spawn(move || {
            let (f, u, _, _) = sold(backend);
            body(&f, u.user_id());
            drop(f);
        })
        .join();
        match r {
            Ok(()) => None,
            Err(payload) => Some(
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic without a message".into()),
            ),
        }
    }

    fn break_wallet(raw: Raw, user: UserId) {
        raw.execute(
            "UPDATE wallets SET balance = balance + 1 WHERE user_id = ?1",
            &[&user.to_string()],
        )
        .unwrap();
    }

    #[apply(backends)]
    fn fails_a_test_that_leaves_a_broken_database(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        let user = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = user.clone();
        let msg = drop_after(backend, move |f, u| {
            *seen.lock().unwrap() = Some(u);
            // Not `tamper`: the fixture is not told.
            break_wallet(f.raw(), u);
        })
        .expect("dropping a fixture over a broken database panics");
        let u = user.lock().unwrap().expect("the body ran");
        assert!(msg.contains("verify rejects"), "{msg}");
        assert!(msg.contains("wallet_equals_ledger"), "{msg}");
        assert!(msg.contains(&u.to_string()), "{msg}");
    }

    #[apply(backends)]
    fn passes_a_test_that_leaves_a_valid_database(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        let msg = drop_after(backend, |f, u| {
            // Reading behind the library's back changes nothing.
            let n = f.raw().int(
                "SELECT COUNT(*) FROM point_ledger WHERE user_id = ?1",
                &[&u.to_string()],
            );
            assert_eq!(n, 2, "a charge and a payment");
        });
        assert_eq!(msg, None);
    }

    #[apply(backends)]
    fn is_off_once_the_test_says_it_tampers(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        let msg = drop_after(backend, |f, u| {
            break_wallet(f.tamper(), u);
            assert!(!f.op().verify().unwrap().ok, "the wallet is broken");
        });
        assert_eq!(msg, None);
    }
}

#[apply(backends)]
fn a_seat_stamped_past_its_slots_counter(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, _, held) = sold(backend);
    f.tamper()
        .execute(
            "UPDATE seats SET version = version + 1000 WHERE id = ?1",
            &[&held.seat_id.get()],
        )
        .unwrap();
    let v = broken(&f);
    assert!(
        has(
            &v,
            "seat_stamped_within_its_showtime_version",
            &format!("seat {} ", held.seat_id)
        ),
        "{v:?}"
    );
}

#[apply(backends)]
fn a_showtime_missing_a_version_slot(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let (f, _, _, _) = sold(backend);
    f.tamper()
        .execute(
            "DELETE FROM seat_versions WHERE showtime_id = ?1 AND slot = 7",
            &[&f.showtime.get()],
        )
        .unwrap();
    let v = broken(&f);
    assert!(
        has(
            &v,
            "showtime_has_its_version_slots",
            &format!("showtime {} has 31 ", f.showtime)
        ),
        "{v:?}"
    );
}
