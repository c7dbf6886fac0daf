//! Holds: one live claim per seat, the hold limit, lapsing on time, closed showtimes.
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
fn a_held_seat_is_the_holders_alone_until_it_lapses() {
    let f = fixture();
    let (a, _) = f.active_user();
    let (b, _) = f.active_user();
    let t = f.b.hold(a, f.showtime, f.seats[4]).unwrap();
    assert_eq!(t.status, TicketStatus::Held);
    assert_eq!(
        (t.user_id, t.concert_id, t.showtime_id, t.seat_id),
        (a, f.concert, f.showtime, f.seats[4])
    );
    assert_eq!((t.seat_number, t.price), (5, 5000));
    assert_eq!(t.held_until, f.clock.now() + chrono::Duration::minutes(5));
    assert_eq!(
        code(f.b.hold(b, f.showtime, f.seats[4])),
        "seat_unavailable"
    );
    assert_eq!(
        code(f.b.hold(a, f.showtime, f.seats[4])),
        "seat_unavailable"
    );
    f.advance(Duration::from_secs(299));
    assert_eq!(
        code(f.b.hold(b, f.showtime, f.seats[4])),
        "seat_unavailable"
    );
    f.advance(Duration::from_secs(1));
    let t2 = f.b.hold(b, f.showtime, f.seats[4]).unwrap();
    assert_eq!(t2.user_id, b);
    assert_eq!(f.b.tickets(a).unwrap()[0].status, TicketStatus::Expired);
    f.assert_verified();
}

#[test]
fn holds_per_user_per_showtime_are_limited() {
    let f = fixture();
    let (a, _) = f.active_user();
    for i in 0..4 {
        f.b.hold(a, f.showtime, f.seats[i]).unwrap();
    }
    assert_eq!(
        code(f.b.hold(a, f.showtime, f.seats[4])),
        "hold_limit_reached"
    );
    // Another showtime has its own limit.
    let other = f.b.list_seats(f.concert, f.other_showtime).unwrap();
    f.b.hold(a, f.other_showtime, other[0].id).unwrap();
    // Paid tickets are no longer holds; lapsed holds neither.
    let first =
        f.b.tickets(a)
            .unwrap()
            .into_iter()
            .find(|t| t.seat_id == f.seats[0])
            .unwrap();
    f.b.charge(a, first.price, None).unwrap();
    f.b.pay(a, first.id, None).unwrap();
    f.b.hold(a, f.showtime, f.seats[4]).unwrap();
    assert_eq!(
        code(f.b.hold(a, f.showtime, f.seats[5])),
        "hold_limit_reached"
    );
    f.advance(Duration::from_secs(300));
    f.b.hold(a, f.showtime, f.seats[5]).unwrap();
}

#[test]
fn sold_seats_stay_sold() {
    let f = fixture();
    let (a, _) = f.active_user();
    let (b, _) = f.active_user();
    let t = f.b.hold(a, f.showtime, f.seats[0]).unwrap();
    f.b.charge(a, t.price, None).unwrap();
    f.b.pay(a, t.id, None).unwrap();
    f.advance(Duration::from_secs(3600));
    assert_eq!(
        code(f.b.hold(b, f.showtime, f.seats[0])),
        "seat_unavailable"
    );
    assert_eq!(f.b.tickets(a).unwrap()[0].status, TicketStatus::Paid);
}

#[test]
fn unknown_seats_and_showtimes_are_not_found_and_started_ones_are_closed() {
    let f = fixture();
    let (a, _) = f.active_user();
    assert_eq!(code(f.b.hold(a, ShowtimeId(999), f.seats[0])), "not_found");
    assert_eq!(code(f.b.hold(a, f.showtime, SeatId(99_999))), "not_found");
    // A seat of another showtime.
    let other = f.b.list_seats(f.concert, f.other_showtime).unwrap();
    assert_eq!(code(f.b.hold(a, f.showtime, other[0].id)), "not_found");
    f.clock.set(f.starts_at);
    assert_eq!(code(f.b.hold(a, f.showtime, f.seats[0])), "showtime_closed");
    assert!(f.b.tickets(a).unwrap().is_empty());
}

#[test]
fn tickets_are_listed_newest_first_with_their_status_now() {
    let f = fixture();
    let (a, _) = f.active_user();
    let (b, _) = f.active_user();
    let t1 = f.b.hold(a, f.showtime, f.seats[0]).unwrap();
    f.advance(Duration::from_secs(200));
    let t2 = f.b.hold(a, f.showtime, f.seats[1]).unwrap();
    f.b.hold(b, f.showtime, f.seats[2]).unwrap();
    f.advance(Duration::from_secs(100));
    let mine = f.b.tickets(a).unwrap();
    assert_eq!(
        mine.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![t2.id, t1.id]
    );
    assert_eq!(mine[0].status, TicketStatus::Held);
    assert_eq!(mine[1].status, TicketStatus::Expired);
    assert!(f.b.tickets(UserId::new_random()).unwrap().is_empty());
}

#[test]
fn sweep_frees_lapsed_holds_and_changes_no_answer() {
    let f = fixture();
    let (a, _) = f.active_user();
    f.b.hold(a, f.showtime, f.seats[0]).unwrap();
    f.b.hold(a, f.showtime, f.seats[1]).unwrap();
    f.advance(Duration::from_secs(301));
    let before = f.b.list_seats(f.concert, f.showtime).unwrap();
    assert_eq!(f.b.sweep().unwrap().expired_holds, 2);
    assert_eq!(f.b.list_seats(f.concert, f.showtime).unwrap(), before);
    assert_eq!(f.b.sweep().unwrap().expired_holds, 0);
    f.assert_verified();
}
