//! The order lifecycle (docs/API.md §6): several seats in one hold, release, extend, several
//! tickets in one payment, cancel with refund, the per-user limit over live holds and paid
//! tickets, sale opening, calling a showtime off, the report — each rule on both write paths.
mod fixture;

use booking::*;
use fixture::*;
use rstest_reuse::apply;
use std::time::Duration;

fn seats(f: &Fixture, idx: &[usize]) -> Vec<SeatId> {
    idx.iter().map(|i| f.seats[*i]).collect()
}

fn status_of(f: &Fixture, showtime: ShowtimeId, seat: SeatId) -> SeatStatus {
    f.seats_of(showtime)
        .into_iter()
        .find(|s| s.id == seat)
        .unwrap()
        .status
}

/// Sessions that outlast the test's clock jumps, and the default lifecycle policy.
fn long_sessions(c: Config) -> Config {
    c.with_active_ttl(Duration::from_secs(30 * 86_400))
}

#[apply(backends)]
fn several_seats_are_held_together_or_not_at_all(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let b = f.active_user();
    let held =
        f.b.hold_seats(&a, f.showtime, &seats(&f, &[3, 1, 2]))
            .unwrap();
    assert_eq!(
        held.iter().map(|t| t.seat_id).collect::<Vec<_>>(),
        seats(&f, &[3, 1, 2]),
        "tickets come back in the order asked"
    );
    assert!(held.iter().all(|t| t.status == TicketStatus::Held));
    assert!(held.windows(2).all(|w| w[0].held_until == w[1].held_until));
    // b asks for two free seats and one of a's: nothing is held, and the error names a's seat.
    let e =
        f.b.hold_seats(&b, f.showtime, &seats(&f, &[5, 2, 6]))
            .unwrap_err();
    assert_eq!(e.code(), "seat_unavailable");
    assert!(e.to_string().contains(&f.seats[2].to_string()), "{e}");
    for i in [5, 6] {
        assert_eq!(status_of(&f, f.showtime, f.seats[i]), SeatStatus::Available);
    }
    assert!(f.b.tickets(&b).unwrap().is_empty());
    // The first unavailable seat in the order asked is the one named.
    let e =
        f.b.hold_seats(&b, f.showtime, &seats(&f, &[5, 3, 1]))
            .unwrap_err();
    assert!(e.to_string().contains(&f.seats[3].to_string()), "{e}");
}

#[apply(backends)]
fn a_seat_list_must_be_non_empty_distinct_and_of_the_showtime(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    assert_eq!(code(f.b.hold_seats(&a, f.showtime, &[])), "invalid_request");
    assert_eq!(
        code(f.b.hold_seats(&a, f.showtime, &seats(&f, &[1, 2, 1]))),
        "invalid_request"
    );
    let other = f.seats_of(f.other_showtime)[0].id;
    assert_eq!(
        code(f.b.hold_seats(&a, f.showtime, &[f.seats[1], other])),
        "not_found"
    );
    assert!(f.b.tickets(&a).unwrap().is_empty());
}

#[apply(backends)]
fn the_limit_counts_live_holds_and_paid_tickets_of_the_whole_request(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    assert_eq!(
        code(f.b.hold_seats(&a, f.showtime, &seats(&f, &[0, 1, 2, 3, 4]))),
        "hold_limit_reached"
    );
    let held = f.b.hold_seats(&a, f.showtime, &seats(&f, &[0, 1])).unwrap();
    assert_eq!(
        code(f.b.hold_seats(&a, f.showtime, &seats(&f, &[2, 3, 4]))),
        "hold_limit_reached"
    );
    // Paying keeps both counted; leaving the queue and coming back buys no fifth seat.
    f.b.charge(&a, pts(10_000), None).unwrap();
    f.b.pay_tickets(&a, &[held[0].id, held[1].id], None)
        .unwrap();
    let again = f.b.enter_queue(Some(a.user_id())).unwrap();
    let a = f.b.authorize_active(&again.token).unwrap();
    f.b.hold_seats(&a, f.showtime, &seats(&f, &[2, 3])).unwrap();
    assert_eq!(
        code(f.b.hold(&a, f.showtime, f.seats[4])),
        "hold_limit_reached"
    );
    // Released and lapsed holds do not count.
    let t = f.b.tickets(&a).unwrap();
    let live: Vec<&Ticket> = t
        .iter()
        .filter(|t| t.status == TicketStatus::Held)
        .collect();
    f.b.release(&a, live[0].id).unwrap();
    f.b.hold(&a, f.showtime, f.seats[4]).unwrap();
    f.advance(Duration::from_secs(300));
    f.b.hold_seats(&a, f.showtime, &seats(&f, &[5, 6])).unwrap();
    // Another showtime has its own limit.
    let other = f.seats_of(f.other_showtime);
    let ids: Vec<SeatId> = other.iter().take(4).map(|s| s.id).collect();
    f.b.hold_seats(&a, f.other_showtime, &ids).unwrap();
}

#[apply(backends)]
fn a_released_hold_frees_its_seat_at_once(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let b = f.active_user();
    let t = f.b.hold(&a, f.showtime, f.seats[0]).unwrap();
    assert_eq!(code(f.b.release(&b, t.id)), "not_found", "another user's");
    let r = f.b.release(&a, t.id).unwrap();
    assert_eq!((r.id, r.status), (t.id, TicketStatus::Released));
    assert_eq!(status_of(&f, f.showtime, f.seats[0]), SeatStatus::Available);
    f.b.hold(&b, f.showtime, f.seats[0]).unwrap();
    assert_eq!(code(f.b.release(&a, t.id)), "ticket_not_held");
    assert_eq!(f.b.tickets(&a).unwrap()[0].status, TicketStatus::Released);
    // Lapsed and paid tickets are not held either.
    let lapsed = f.b.hold(&a, f.showtime, f.seats[1]).unwrap();
    let paid = f.b.hold(&a, f.showtime, f.seats[2]).unwrap();
    f.b.charge(&a, paid.price, None).unwrap();
    f.b.pay(&a, paid.id, None).unwrap();
    assert_eq!(code(f.b.release(&a, paid.id)), "ticket_not_held");
    f.advance(Duration::from_secs(300));
    assert_eq!(code(f.b.release(&a, lapsed.id)), "ticket_not_held");
    let missing = TicketId::new(9_999).unwrap();
    assert_eq!(code(f.b.release(&a, missing)), "not_found");
}

#[apply(backends)]
fn a_hold_is_extended_from_now_as_often_as_allowed(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture_with(backend, |c| long_sessions(c).with_max_hold_extensions(2));
    let a = f.active_user();
    let b = f.active_user();
    let t = f.b.hold(&a, f.showtime, f.seats[0]).unwrap();
    assert_eq!(code(f.b.extend(&b, t.id)), "not_found");
    f.advance(Duration::from_secs(200));
    let e = f.b.extend(&a, t.id).unwrap();
    assert_eq!(e.held_until, f.clock.now() + chrono::Duration::minutes(5));
    assert_eq!(e.status, TicketStatus::Held);
    // The seat's claim moved with it: at the old end it is still held.
    f.advance(Duration::from_secs(150));
    assert_eq!(status_of(&f, f.showtime, f.seats[0]), SeatStatus::Held);
    assert_eq!(
        code(f.b.hold(&b, f.showtime, f.seats[0])),
        "seat_unavailable"
    );
    f.b.extend(&a, t.id).unwrap();
    assert_eq!(code(f.b.extend(&a, t.id)), "extension_limit");
    f.advance(Duration::from_secs(300));
    assert_eq!(code(f.b.extend(&a, t.id)), "hold_expired");
    let r = f.b.hold(&a, f.showtime, f.seats[1]).unwrap();
    f.b.release(&a, r.id).unwrap();
    assert_eq!(code(f.b.extend(&a, r.id)), "ticket_not_held");
}

#[apply(backends)]
fn extending_needs_an_active_entry_checked_in_its_own_transaction(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let t = f.b.hold(&a, f.showtime, f.seats[0]).unwrap();
    let u = f.b.hold(&a, f.showtime, f.seats[1]).unwrap();
    f.b.charge(&a, u.price, None).unwrap();
    f.b.pay(&a, u.id, None).unwrap(); // ends the turn
    assert_eq!(code(f.b.extend(&a, t.id)), "queue_not_active");
    assert_eq!(f.b.tickets(&a).unwrap()[1].held_until, t.held_until);
}

#[apply(backends)]
fn one_payment_for_several_tickets_debits_their_sum_once(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture_with(backend, |c| c.with_max_active(1));
    let a = f.active_user();
    let waiting = f.user();
    let held =
        f.b.hold_seats(&a, f.showtime, &seats(&f, &[4, 1, 2]))
            .unwrap();
    let sum: i64 = held.iter().map(|t| t.price.get()).sum();
    assert_eq!(sum, 5000 + 2000 + 3000);
    f.b.charge(&a, pts(sum - 1), None).unwrap();
    let ids: Vec<TicketId> = held.iter().map(|t| t.id).collect();
    assert_eq!(code(f.b.pay_tickets(&a, &ids, None)), "insufficient_points");
    assert!(f
        .b
        .tickets(&a)
        .unwrap()
        .iter()
        .all(|t| t.status == TicketStatus::Held));
    f.b.charge(&a, pts(1), None).unwrap();
    let p = f.b.pay_tickets(&a, &ids, None).unwrap();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(p.ticket_ids, sorted);
    assert_eq!(p.ticket_id, sorted[0]);
    assert_eq!((p.amount, p.refunded), (pts(sum), Points::ZERO));
    assert_eq!(f.b.balance(&a).unwrap().balance, Points::ZERO);
    let ledger = f.b.point_history(&a).unwrap();
    assert_eq!(ledger.len(), 3, "two charges and one payment row");
    assert_eq!(
        (ledger[0].kind, ledger[0].amount),
        (LedgerKind::Payment, pts(-sum))
    );
    assert!(f
        .b
        .tickets(&a)
        .unwrap()
        .iter()
        .all(|t| t.status == TicketStatus::Paid));
    for s in seats(&f, &[4, 1, 2]) {
        assert_eq!(status_of(&f, f.showtime, s), SeatStatus::Sold);
    }
    assert_eq!(f.b.payment_history(&a).unwrap(), vec![p]);
    // The turn ended once, and the next user got in.
    assert_eq!(f.b.queue_status(&a).unwrap().status, EntryStatus::Expired);
    assert_eq!(
        f.b.queue_status(&waiting).unwrap().status,
        EntryStatus::Active
    );
}

#[apply(backends)]
fn a_payment_of_several_tickets_is_all_or_nothing(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture_with(backend, long_sessions);
    let a = f.active_user();
    let b = f.active_user();
    f.b.charge(&a, pts(100_000), None).unwrap();
    let held =
        f.b.hold_seats(&a, f.showtime, &seats(&f, &[0, 1, 2]))
            .unwrap();
    let theirs = f.b.hold(&b, f.showtime, f.seats[3]).unwrap();
    let ids = |extra: TicketId| vec![held[0].id, held[1].id, extra];
    assert_eq!(
        code(f.b.pay_tickets(&a, &ids(theirs.id), None)),
        "not_found"
    );
    assert_eq!(code(f.b.pay_tickets(&a, &[], None)), "invalid_request");
    assert_eq!(
        code(f.b.pay_tickets(&a, &[held[0].id, held[0].id], None)),
        "invalid_request"
    );
    f.b.release(&a, held[2].id).unwrap();
    assert_eq!(
        code(f.b.pay_tickets(&a, &ids(held[2].id), None)),
        "ticket_not_held"
    );
    assert_eq!(f.b.balance(&a).unwrap().balance, pts(100_000));
    assert!(f.b.payment_history(&a).unwrap().is_empty());
    let p =
        f.b.pay_tickets(&a, &[held[0].id, held[1].id], None)
            .unwrap();
    assert_eq!(code(f.b.pay(&a, held[0].id, None)), "already_paid");
    let again = f.b.enter_queue(Some(a.user_id())).unwrap();
    let a2 = f.b.authorize_active(&again.token).unwrap();
    let late = f.b.hold(&a2, f.showtime, f.seats[5]).unwrap();
    f.advance(Duration::from_secs(300));
    assert_eq!(code(f.b.pay(&a2, late.id, None)), "hold_expired");
    assert_eq!(f.b.payment_history(&a2).unwrap(), vec![p]);
}

#[apply(backends)]
fn a_keyed_payment_of_several_tickets_replays(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let held = f.b.hold_seats(&a, f.showtime, &seats(&f, &[0, 1])).unwrap();
    f.b.charge(&a, pts(3_000), None).unwrap();
    let key = IdempotencyKey::parse("pay-both").unwrap();
    let ids = [held[1].id, held[0].id];
    let p = f.b.pay_tickets(&a, &ids, Some(&key)).unwrap();
    // The same tickets in another order are the same request.
    let same =
        f.b.pay_tickets(&a, &[held[0].id, held[1].id], Some(&key))
            .unwrap();
    assert_eq!(same, p);
    assert_eq!(
        code(f.b.pay(&a, held[0].id, Some(&key))),
        "idempotency_key_reused"
    );
    assert_eq!(f.b.point_history(&a).unwrap().len(), 2);
}

#[apply(backends)]
fn cancelling_refunds_the_price_less_the_fee_and_frees_the_seat(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let t = f.b.hold(&a, f.showtime, f.seats[8]).unwrap(); // 9,000 points
    assert_eq!(code(f.b.cancel(&a, t.id, None)), "ticket_not_paid");
    f.b.charge(&a, pts(10_000), None).unwrap();
    let p = f.b.pay(&a, t.id, None).unwrap();
    let c = f.b.cancel(&a, t.id, None).unwrap();
    assert_eq!(c.ticket.status, TicketStatus::Cancelled);
    assert_eq!((c.fee, c.refund), (pts(900), pts(8_100)));
    assert_eq!(c.balance, pts(1_000 + 8_100));
    assert_eq!(f.b.balance(&a).unwrap().balance, c.balance);
    let ledger = f.b.point_history(&a).unwrap();
    assert_eq!(
        (ledger[0].kind, ledger[0].amount, ledger[0].balance_after),
        (LedgerKind::Refund, pts(8_100), pts(9_100))
    );
    assert_eq!(status_of(&f, f.showtime, f.seats[8]), SeatStatus::Available);
    let history = f.b.payment_history(&a).unwrap();
    assert_eq!((history[0].id, history[0].refunded), (p.id, pts(8_100)));
    assert_eq!(code(f.b.cancel(&a, t.id, None)), "ticket_not_paid");
    // The seat sells again; the cancelled ticket no longer counts for its user's limit.
    let b = f.active_user();
    f.b.hold(&b, f.showtime, f.seats[8]).unwrap();
}

#[apply(backends)]
fn the_fee_rounds_down_and_a_keyed_cancel_replays(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture_with(backend, |c| c.with_cancel_fee_percent(15));
    let a = f.active_user();
    let t = f.b.hold(&a, f.showtime, f.seats[6]).unwrap(); // 7,000: fee 1,050
    let u = f.b.hold(&a, f.showtime, f.seats[0]).unwrap(); // 1,000: fee 150
    f.b.charge(&a, pts(8_000), None).unwrap();
    f.b.pay_tickets(&a, &[t.id, u.id], None).unwrap();
    let key = IdempotencyKey::parse("cancel-7").unwrap();
    let c = f.b.cancel(&a, t.id, Some(&key)).unwrap();
    assert_eq!((c.fee, c.refund), (pts(1_050), pts(5_950)));
    let again = f.b.cancel(&a, t.id, Some(&key)).unwrap();
    assert_eq!(again, c, "the first answer, replayed");
    assert_eq!(f.b.point_history(&a).unwrap().len(), 3);
    assert_eq!(
        code(f.b.cancel(&a, u.id, Some(&key))),
        "idempotency_key_reused"
    );
    let odd = Config::default().with_cancel_fee_percent(10);
    assert_eq!(odd.cancel_fee_percent, 10);
    assert_eq!(pts(999).percent(10), Some(pts(99)));
    let p = f.b.payment_history(&a).unwrap();
    assert_eq!(p[0].refunded, pts(5_950));
}

#[apply(backends)]
fn users_cancel_until_the_cutoff_and_operators_until_the_show(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture_with(backend, long_sessions);
    let a = f.active_user();
    let b = f.active_user();
    let ta = f.b.hold(&a, f.showtime, f.seats[0]).unwrap();
    let tb = f.b.hold(&b, f.showtime, f.seats[1]).unwrap();
    f.b.charge(&a, pts(1_000), None).unwrap();
    f.b.charge(&b, pts(2_000), None).unwrap();
    f.b.pay(&a, ta.id, None).unwrap();
    f.b.pay(&b, tb.id, None).unwrap();
    assert_eq!(code(f.b.cancel(&b, ta.id, None)), "not_found");
    // The show starts a day after the fixture's clock: cancel closes 24 h before, exactly.
    f.clock.set(f.starts_at - chrono::Duration::hours(24));
    f.advance(Duration::from_millis(1));
    assert_eq!(code(f.b.cancel(&a, ta.id, None)), "cancel_closed");
    // An operator can, with the fee or without.
    let c = f.op().cancel_ticket(ta.id, false).unwrap();
    assert_eq!((c.refund, c.fee), (pts(900), pts(100)));
    let c = f.op().cancel_ticket(tb.id, true).unwrap();
    assert_eq!(
        (c.refund, c.fee, c.balance),
        (pts(2_000), Points::ZERO, pts(2_000))
    );
    assert_eq!(code(f.op().cancel_ticket(tb.id, true)), "ticket_not_paid");
    // Not once the show has started.
    let c2 = f.active_user();
    let t = f.b.hold(&c2, f.showtime, f.seats[2]).unwrap();
    f.b.charge(&c2, t.price, None).unwrap();
    f.b.pay(&c2, t.id, None).unwrap();
    f.clock.set(f.starts_at);
    assert_eq!(code(f.op().cancel_ticket(t.id, true)), "cancel_closed");
}

#[apply(backends)]
fn a_sale_opens_when_the_showtime_says(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture_with(backend, long_sessions);
    let opens = f.clock.now() + chrono::Duration::hours(1);
    let st = f
        .op()
        .add_showtime(
            f.concert,
            &NewShowtime {
                starts_at: (f.starts_at + chrono::Duration::days(2)).fixed_offset(),
                seats: 3,
                price: Pricing::Flat(pts(100)),
                sale_opens_at: Some(opens.fixed_offset()),
            },
            |_| {},
        )
        .unwrap();
    let a = f.active_user();
    let listed = f.b.showtimes(&a, f.concert).unwrap();
    let s = listed.iter().find(|s| s.id == st).unwrap();
    assert_eq!(s.sale_opens_at, Some(opens));
    assert!(listed
        .iter()
        .filter(|s| s.id != st)
        .all(|s| s.sale_opens_at.is_none()));
    let seat = f.seats_of(st)[0].id;
    assert_eq!(
        f.b.seats(&a, f.concert, st).unwrap().len(),
        3,
        "listed all the same"
    );
    let e = f.b.hold(&a, st, seat).unwrap_err();
    assert_eq!(e.code(), "sale_not_open");
    f.clock.set(opens - chrono::Duration::milliseconds(1));
    assert_eq!(code(f.b.hold(&a, st, seat)), "sale_not_open");
    f.clock.set(opens);
    f.b.hold(&a, st, seat).unwrap();
    // A sale cannot open after the show starts.
    let late = NewShowtime {
        starts_at: (f.starts_at + chrono::Duration::days(3)).fixed_offset(),
        seats: 1,
        price: Pricing::Flat(pts(1)),
        sale_opens_at: Some((f.starts_at + chrono::Duration::days(4)).fixed_offset()),
    };
    assert_eq!(
        code(f.op().add_showtime(f.concert, &late, |_| {})),
        "invalid_request"
    );
}

#[apply(backends)]
fn a_showtime_called_off_refunds_everyone_in_full(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture_with(backend, long_sessions);
    let a = f.active_user();
    let b = f.active_user();
    let c = f.active_user();
    let pa = f.b.hold_seats(&a, f.showtime, &seats(&f, &[0, 1])).unwrap();
    f.b.charge(&a, pts(3_000), None).unwrap();
    f.b.pay_tickets(&a, &[pa[0].id, pa[1].id], None).unwrap();
    let pb = f.b.hold(&b, f.showtime, f.seats[9]).unwrap();
    f.b.charge(&b, pts(20_000), None).unwrap();
    f.b.pay(&b, pb.id, None).unwrap();
    let hc = f.b.hold(&c, f.showtime, f.seats[4]).unwrap();
    let other =
        f.b.hold(&c, f.other_showtime, f.seats_of(f.other_showtime)[0].id)
            .unwrap();
    let done = f.op().cancel_showtime(f.showtime).unwrap();
    assert_eq!(
        (done.cancelled, done.refunded, done.released),
        (3, pts(1_000 + 2_000 + 10_000), 1)
    );
    assert_eq!(f.b.balance(&a).unwrap().balance, pts(3_000));
    assert_eq!(f.b.balance(&b).unwrap().balance, pts(20_000));
    assert!(f
        .seats_of(f.showtime)
        .iter()
        .all(|s| s.status == SeatStatus::Available));
    assert_eq!(f.b.tickets(&c).unwrap()[1].status, TicketStatus::Released);
    assert_eq!(f.b.tickets(&c).unwrap()[1].id, hc.id);
    assert_eq!(f.b.tickets(&c).unwrap()[0].id, other.id);
    assert_eq!(
        f.b.tickets(&c).unwrap()[0].status,
        TicketStatus::Held,
        "other showtimes untouched"
    );
    let e = f.b.hold(&c, f.showtime, f.seats[5]).unwrap_err();
    assert_eq!(e.code(), "showtime_closed");
    assert!(e.to_string().contains("called off"), "{e}");
    assert!(f
        .b
        .showtimes(&c, f.concert)
        .unwrap()
        .iter()
        .all(|s| s.id != f.showtime));
    assert!(f
        .op()
        .showtimes(f.concert)
        .unwrap()
        .iter()
        .any(|s| s.id == f.showtime));
    // Calling it off again finds nothing more to do.
    let again = f.op().cancel_showtime(f.showtime).unwrap();
    assert_eq!((again.cancelled, again.released), (0, 0));
    let missing = ShowtimeId::new(999).unwrap();
    assert_eq!(code(f.op().cancel_showtime(missing)), "not_found");
}

#[apply(backends)]
fn the_report_counts_seats_and_money_per_showtime(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture_with(backend, |c| long_sessions(c).with_cancel_fee_percent(10));
    let a = f.active_user();
    let held =
        f.b.hold_seats(&a, f.showtime, &seats(&f, &[0, 1, 2]))
            .unwrap();
    f.b.charge(&a, pts(6_000), None).unwrap();
    f.b.pay_tickets(&a, &[held[0].id, held[1].id], None)
        .unwrap();
    f.b.cancel(&a, held[1].id, None).unwrap(); // 2,000: refund 1,800, fee 200
    let b = f.active_user();
    f.b.hold(&b, f.showtime, f.seats[7]).unwrap();
    let r = f.op().report(Some(f.showtime)).unwrap();
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(
        (r.total, r.available, r.held, r.sold),
        (10, 7, 2, 1),
        "a's third seat and b's seat are held: {r:?}"
    );
    assert_eq!(
        (r.revenue, r.refunded, r.fees),
        (pts(1_000 + 200), pts(1_800), pts(200))
    );
    let all = f.op().report(None).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].sold, 0);
    assert_eq!(
        code(f.op().report(Some(ShowtimeId::new(77).unwrap()))),
        "not_found"
    );
}

#[test]
fn a_database_of_the_first_schema_is_migrated_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // The schema as the first build left it, with a paid ticket and a charge in it.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(include_str!("../schema.sql")).unwrap();
        c.execute_batch(
            "PRAGMA user_version = 1;
             PRAGMA foreign_keys = OFF;
             INSERT INTO concerts (id, title, venue) VALUES (1, 'Old', 'Hall');
             INSERT INTO showtimes (id, concert_id, starts_at, total_seats, sold_seats)
               VALUES (1, 1, 4102444800000, 2, 1);
             INSERT INTO seats (id, showtime_id, number, price, sold, ticket_id)
               VALUES (1, 1, 1, 500, 1, 1), (2, 1, 2, 500, 0, NULL);
             INSERT INTO tickets (id, user_id, showtime_id, seat_id, price, status, created_at,
                                  held_until, paid_at)
               VALUES (1, '0b7e5a3c-5f7e-4d6a-9a38-2f4f1f6c9e21', 1, 1, 500, 'paid', 1, 2, 3);
             INSERT INTO payments (id, user_id, ticket_id, amount, paid_at)
               VALUES (1, '0b7e5a3c-5f7e-4d6a-9a38-2f4f1f6c9e21', 1, 500, 3);
             INSERT INTO wallets (user_id, balance) VALUES ('0b7e5a3c-5f7e-4d6a-9a38-2f4f1f6c9e21', 100);
             INSERT INTO point_ledger (user_id, kind, amount, balance_after, created_at)
               VALUES ('0b7e5a3c-5f7e-4d6a-9a38-2f4f1f6c9e21', 'charge', 600, 600, 1);
             INSERT INTO point_ledger (user_id, kind, amount, balance_after, payment_id, created_at)
               VALUES ('0b7e5a3c-5f7e-4d6a-9a38-2f4f1f6c9e21', 'payment', -500, 100, 1, 3);",
        )
        .unwrap();
    }
    let b = Booking::open(&path, Config::default()).unwrap();
    let r = b.operator().verify().unwrap();
    assert!(r.ok, "{:#?}", r.violations);
    let user = UserId::parse("0b7e5a3c-5f7e-4d6a-9a38-2f4f1f6c9e21").unwrap();
    assert_eq!(b.operator().balance(user).unwrap().balance, pts(100));
    let v: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v as usize, SCHEMA_VERSION);
    let report = b.operator().report(None).unwrap();
    assert_eq!((report[0].sold, report[0].revenue), (1, pts(500)));
    // The old paid ticket can be cancelled by an operator: its payment was linked.
    let c = b
        .operator()
        .cancel_ticket(TicketId::new(1).unwrap(), true)
        .unwrap();
    assert_eq!(c.balance, pts(600));
    assert!(b.operator().verify().unwrap().ok);
}
