//! The catalog: concerts, bookable dates with live counts, seat maps, and all-or-nothing seeding.
#[path = "fixture/mod.rs"]
mod fixture;
/// Request writes run one transaction each here; `tests/batched.rs` runs this file again through
/// the group-commit writer.
#[allow(dead_code)]
const GROUP_COMMIT: bool = false;

use booking::*;
use chrono::Duration as Days;
use fixture::*;

#[test]
fn concerts_showtimes_and_seats_are_listed_in_order() {
    let f = fixture();
    let concerts = f.b.list_concerts().unwrap();
    assert_eq!(concerts.len(), 1);
    assert_eq!(
        (concerts[0].title.as_str(), concerts[0].venue.as_str()),
        ("Test Concert", "Test Hall")
    );
    let shows = f.b.list_showtimes(f.concert).unwrap();
    assert_eq!(
        shows.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![f.showtime, f.other_showtime]
    );
    assert_eq!((shows[0].total_seats, shows[0].available_seats), (10, 10));
    assert_eq!(shows[0].starts_at, f.starts_at);
    let seats = f.b.list_seats(f.concert, f.showtime).unwrap();
    assert_eq!(
        seats.iter().map(|s| s.number).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(seats[2].price, 3000);
    assert!(seats.iter().all(|s| s.status == SeatStatus::Available));
}

#[test]
fn unknown_or_mismatched_ids_are_not_found() {
    let f = fixture();
    let other = f.b.add_concert("Other", "").unwrap();
    assert_eq!(code(f.b.list_showtimes(ConcertId(999))), "not_found");
    assert_eq!(
        code(f.b.list_seats(ConcertId(999), f.showtime)),
        "not_found"
    );
    assert_eq!(
        code(f.b.list_seats(f.concert, ShowtimeId(999))),
        "not_found"
    );
    assert_eq!(code(f.b.list_seats(other, f.showtime)), "not_found");
    assert!(f.b.list_showtimes(other).unwrap().is_empty());
}

#[test]
fn seat_status_and_available_counts_follow_holds_sales_and_time() {
    let f = fixture();
    let (u, _) = f.active_user();
    let held = f.b.hold(u, f.showtime, f.seats[0]).unwrap();
    let sold = f.b.hold(u, f.showtime, f.seats[1]).unwrap();
    f.b.charge(u, 10_000, None).unwrap();
    f.b.pay(u, sold.id, None).unwrap();
    let seats = f.b.list_seats(f.concert, f.showtime).unwrap();
    assert_eq!(seats[0].status, SeatStatus::Held);
    assert_eq!(seats[1].status, SeatStatus::Sold);
    assert_eq!(f.b.list_showtimes(f.concert).unwrap()[0].available_seats, 8);
    // At held_until exactly, the hold is over: no job needs to run.
    f.clock.set(held.held_until);
    let seats = f.b.list_seats(f.concert, f.showtime).unwrap();
    assert_eq!(seats[0].status, SeatStatus::Available);
    assert_eq!(seats[1].status, SeatStatus::Sold);
    assert_eq!(f.b.list_showtimes(f.concert).unwrap()[0].available_seats, 9);
}

#[test]
fn only_future_showtimes_are_bookable_dates() {
    let f = fixture();
    f.clock.set(f.starts_at);
    let shows = f.b.list_showtimes(f.concert).unwrap();
    assert_eq!(
        shows.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![f.other_showtime]
    );
    assert_eq!(f.b.list_all_showtimes(f.concert).unwrap().len(), 2);
}

#[test]
fn adding_showtimes_validates_every_field() {
    let f = fixture();
    let at = (f.clock.now() + Days::days(3)).fixed_offset();
    let new = |seats, price| NewShowtime {
        starts_at: at,
        seats,
        price,
    };
    assert_eq!(
        code(f.b.add_showtime(f.concert, &new(0, Pricing::Flat(10)))),
        "invalid_request"
    );
    assert_eq!(
        code(f.b.add_showtime(f.concert, &new(10, Pricing::Flat(0)))),
        "invalid_amount"
    );
    assert_eq!(
        code(f.b.add_showtime(f.concert, &new(10, Pricing::Flat(-5)))),
        "invalid_amount"
    );
    assert_eq!(
        code(f.b.add_showtime(ConcertId(77), &new(10, Pricing::Flat(10)))),
        "not_found"
    );
    let past = NewShowtime {
        starts_at: (f.clock.now() - Days::hours(1)).fixed_offset(),
        seats: 5,
        price: Pricing::Flat(1),
    };
    assert_eq!(code(f.b.add_showtime(f.concert, &past)), "invalid_request");
    assert_eq!(code(f.b.add_concert("   ", "x")), "invalid_request");
    assert_eq!(
        code(f.b.add_concert(&"t".repeat(201), "x")),
        "invalid_request"
    );
    assert_eq!(
        f.b.list_all_showtimes(f.concert).unwrap().len(),
        2,
        "nothing was added"
    );
}

#[test]
fn a_large_showtime_is_added_in_one_go_with_progress() {
    let f = fixture();
    let mut reported = 0;
    let s = NewShowtime {
        starts_at: (f.clock.now() + Days::days(9)).fixed_offset(),
        seats: 50_000,
        price: Pricing::Flat(50_000),
    };
    let id =
        f.b.add_showtime_with_progress(f.concert, &s, &mut |n| reported += n)
            .unwrap();
    assert_eq!(reported, 50_000);
    let seats = f.b.showtime_seats(id).unwrap();
    assert_eq!(seats.len(), 50_000);
    assert_eq!(seats.last().unwrap().number, 50_000);
}

#[test]
fn seeding_is_all_or_nothing() {
    let f = fixture();
    let mut cat = catalog::demo_catalog(f.clock.now());
    let good = f.b.seed(&cat, &mut |_| {}).unwrap();
    assert_eq!((good.concerts, good.showtimes), (3, 7));
    assert_eq!(good.seats, 350);
    let before = f.b.list_concerts().unwrap().len();
    // Break the last showtime of the last concert: nothing of the file may load.
    cat.concerts
        .last_mut()
        .unwrap()
        .showtimes
        .last_mut()
        .unwrap()
        .seats = 0;
    let e = f.b.seed(&cat, &mut |_| {}).unwrap_err();
    assert_eq!(e.code(), "invalid_request");
    assert!(e.to_string().contains("concert #3 showtime #2"), "{e}");
    assert_eq!(f.b.list_concerts().unwrap().len(), before);
    f.assert_verified();
}

#[test]
fn the_demo_catalog_is_seeded_only_into_an_empty_database() {
    let f = fixture();
    assert!(f.b.seed_demo_if_empty().unwrap().is_none());
    let empty =
        Booking::open_temporary(test_config(), std::sync::Arc::new(f.clock.clone())).unwrap();
    let r = empty.seed_demo_if_empty().unwrap().unwrap();
    assert_eq!(r.concerts, 3);
    assert!(empty.seed_demo_if_empty().unwrap().is_none());
    let c = &empty.list_concerts().unwrap()[0];
    let seats = empty
        .list_seats(c.id, empty.list_showtimes(c.id).unwrap()[0].id)
        .unwrap();
    assert!(
        seats.iter().any(|s| s.price != seats[0].price),
        "priced sections"
    );
}
