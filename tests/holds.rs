//! Holds: one live claim per seat, the hold limit, lapsing on time, closed showtimes, and the
//! active guard checked inside the hold's own transaction.
mod fixture;

use booking::*;
use fixture::*;
use rstest_reuse::apply;
use std::time::Duration;

#[apply(backends)]
fn a_held_seat_is_the_holders_alone_until_it_lapses(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let b = f.active_user();
    let t = f.b.hold(&a, f.showtime, f.seats[4]).unwrap();
    assert_eq!(t.status, TicketStatus::Held);
    assert_eq!(
        (t.user_id, t.concert_id, t.showtime_id, t.seat_id),
        (a.user_id(), f.concert, f.showtime, f.seats[4])
    );
    assert_eq!((t.seat_number, t.price), (5, pts(5000)));
    assert_eq!(t.held_until, f.clock.now() + chrono::Duration::minutes(5));
    assert_eq!(
        code(f.b.hold(&b, f.showtime, f.seats[4])),
        "seat_unavailable"
    );
    assert_eq!(
        code(f.b.hold(&a, f.showtime, f.seats[4])),
        "seat_unavailable"
    );
    f.advance(Duration::from_secs(299));
    assert_eq!(
        code(f.b.hold(&b, f.showtime, f.seats[4])),
        "seat_unavailable"
    );
    f.advance(Duration::from_secs(1));
    let t2 = f.b.hold(&b, f.showtime, f.seats[4]).unwrap();
    assert_eq!(t2.user_id, b.user_id());
    assert_eq!(f.b.tickets(&a).unwrap()[0].status, TicketStatus::Expired);
}

#[apply(backends)]
fn holds_per_user_per_showtime_are_limited(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    for i in 0..4 {
        f.b.hold(&a, f.showtime, f.seats[i]).unwrap();
    }
    assert_eq!(
        code(f.b.hold(&a, f.showtime, f.seats[4])),
        "hold_limit_reached"
    );
    // Another showtime has its own limit.
    let other = f.seats_of(f.other_showtime);
    f.b.hold(&a, f.other_showtime, other[0].id).unwrap();
    // Lapsed holds no longer count.
    f.advance(Duration::from_secs(300));
    f.b.hold(&a, f.showtime, f.seats[5]).unwrap();
}

#[apply(backends)]
fn sold_seats_stay_sold(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let b = f.active_user();
    let t = f.b.hold(&a, f.showtime, f.seats[0]).unwrap();
    f.b.charge(&a, t.price, None).unwrap();
    f.b.pay(&a, t.id, None).unwrap();
    f.advance(Duration::from_secs(301)); // past the hold's end: sold is for good
    assert_eq!(
        code(f.b.hold(&b, f.showtime, f.seats[0])),
        "seat_unavailable"
    );
    assert_eq!(f.b.tickets(&a).unwrap()[0].status, TicketStatus::Paid);
}

#[apply(backends)]
fn unknown_seats_and_showtimes_are_not_found_and_started_ones_are_closed(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    // Sessions outlast the wait until the show starts.
    let f = fixture_with(backend, |c| {
        c.with_active_ttl(Duration::from_secs(7 * 86_400))
    });
    let a = f.active_user();
    let nowhere = ShowtimeId::new(999).unwrap();
    assert_eq!(code(f.b.hold(&a, nowhere, f.seats[0])), "not_found");
    let no_seat = SeatId::new(99_999).unwrap();
    assert_eq!(code(f.b.hold(&a, f.showtime, no_seat)), "not_found");
    // A seat of another showtime.
    let other = f.seats_of(f.other_showtime);
    assert_eq!(code(f.b.hold(&a, f.showtime, other[0].id)), "not_found");
    f.clock.set(f.starts_at);
    assert_eq!(
        code(f.b.hold(&a, f.showtime, f.seats[0])),
        "showtime_closed"
    );
    assert!(f.b.tickets(&a).unwrap().is_empty());
}

#[apply(backends)]
fn tickets_are_listed_newest_first_with_their_status_now(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let b = f.active_user();
    let t1 = f.b.hold(&a, f.showtime, f.seats[0]).unwrap();
    f.advance(Duration::from_secs(200));
    let t2 = f.b.hold(&a, f.showtime, f.seats[1]).unwrap();
    f.b.hold(&b, f.showtime, f.seats[2]).unwrap();
    f.advance(Duration::from_secs(100));
    let mine = f.b.tickets(&a).unwrap();
    assert_eq!(
        mine.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![t2.id, t1.id]
    );
    assert_eq!(mine[0].status, TicketStatus::Held);
    assert_eq!(mine[1].status, TicketStatus::Expired);
    assert!(f.b.tickets(&f.user()).unwrap().is_empty());
}

#[apply(backends)]
fn sweep_frees_lapsed_holds_and_changes_no_answer(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    f.b.hold(&a, f.showtime, f.seats[0]).unwrap();
    f.b.hold(&a, f.showtime, f.seats[1]).unwrap();
    f.advance(Duration::from_secs(301));
    let before = f.seats_of(f.showtime);
    assert_eq!(f.op().sweep().unwrap().expired_holds, 2);
    assert_eq!(f.seats_of(f.showtime), before);
    assert_eq!(f.op().sweep().unwrap().expired_holds, 0);
}

#[apply(backends)]
fn a_hold_checks_the_active_guard_inside_its_own_transaction(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let t = f.b.hold(&a, f.showtime, f.seats[0]).unwrap();
    f.b.charge(&a, t.price, None).unwrap();
    // The proof was made while the entry was active; the payment ends the turn since.
    f.b.pay(&a, t.id, None).unwrap();
    assert_eq!(
        code(f.b.hold(&a, f.showtime, f.seats[1])),
        "queue_not_active"
    );
    // A session that lapses after the proof was made is seen the same way.
    let b = f.active_user();
    f.advance(f.b.config().active_ttl);
    assert_eq!(
        code(f.b.hold(&b, f.showtime, f.seats[2])),
        "queue_not_active"
    );
    assert_eq!(f.seats_of(f.showtime)[1].status, SeatStatus::Available);
    assert_eq!(f.seats_of(f.showtime)[2].status, SeatStatus::Available);
}
