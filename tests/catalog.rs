//! The catalog: concerts, bookable dates with live counts, seat maps, and all-or-nothing seeding.
mod fixture;

use booking::*;
use chrono::Duration as Days;
use fixture::*;
use rstest_reuse::apply;
use std::sync::Arc;

#[apply(backends)]
fn concerts_showtimes_and_seats_are_listed_in_order(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let concerts = f.b.concerts(&a).unwrap();
    assert_eq!(concerts.len(), 1);
    assert_eq!(
        (concerts[0].title.as_str(), concerts[0].venue.as_str()),
        ("Test Concert", "Test Hall")
    );
    let shows = f.b.showtimes(&a, f.concert).unwrap();
    assert_eq!(
        shows.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![f.showtime, f.other_showtime]
    );
    assert_eq!((shows[0].total_seats, shows[0].available_seats), (10, 10));
    assert_eq!(shows[0].starts_at, f.starts_at);
    let seats = f.b.seats(&a, f.concert, f.showtime).unwrap();
    assert_eq!(
        seats.iter().map(|s| s.number).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(seats[2].price, pts(3000));
    assert!(seats.iter().all(|s| s.status == SeatStatus::Available));
    // The operator's views agree.
    assert_eq!(f.op().concerts().unwrap(), concerts);
    assert_eq!(f.op().showtimes(f.concert).unwrap(), shows);
    assert_eq!(f.seats_of(f.showtime), seats);
}

#[apply(backends)]
fn unknown_or_mismatched_ids_are_not_found(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let a = f.active_user();
    let other = f.op().add_concert("Other", "").unwrap();
    let no_concert = ConcertId::new(999).unwrap();
    let no_showtime = ShowtimeId::new(999).unwrap();
    assert_eq!(code(f.b.showtimes(&a, no_concert)), "not_found");
    assert_eq!(code(f.b.seats(&a, no_concert, f.showtime)), "not_found");
    assert_eq!(code(f.b.seats(&a, f.concert, no_showtime)), "not_found");
    assert_eq!(code(f.b.seats(&a, other, f.showtime)), "not_found");
    assert!(f.b.showtimes(&a, other).unwrap().is_empty());
    assert_eq!(code(f.op().seats(no_showtime)), "not_found");
}

#[apply(backends)]
fn seat_status_and_available_counts_follow_holds_sales_and_time(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let u = f.active_user();
    let viewer = f.active_user();
    let held = f.b.hold(&u, f.showtime, f.seats[0]).unwrap();
    let sold = f.b.hold(&u, f.showtime, f.seats[1]).unwrap();
    f.b.charge(&u, pts(10_000), None).unwrap();
    f.b.pay(&u, sold.id, None).unwrap();
    let seats = f.b.seats(&viewer, f.concert, f.showtime).unwrap();
    assert_eq!(seats[0].status, SeatStatus::Held);
    assert_eq!(seats[1].status, SeatStatus::Sold);
    assert_eq!(
        f.b.showtimes(&viewer, f.concert).unwrap()[0].available_seats,
        8
    );
    // At held_until exactly, the hold is over: no job needs to run.
    f.clock.set(held.held_until);
    let seats = f.b.seats(&viewer, f.concert, f.showtime).unwrap();
    assert_eq!(seats[0].status, SeatStatus::Available);
    assert_eq!(seats[1].status, SeatStatus::Sold);
    assert_eq!(
        f.b.showtimes(&viewer, f.concert).unwrap()[0].available_seats,
        9
    );
}

#[apply(backends)]
fn only_future_showtimes_are_bookable_dates(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    f.clock.set(f.starts_at);
    let a = f.active_user();
    let shows = f.b.showtimes(&a, f.concert).unwrap();
    assert_eq!(
        shows.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![f.other_showtime]
    );
    assert_eq!(f.op().showtimes(f.concert).unwrap().len(), 2);
}

#[apply(backends)]
fn adding_showtimes_validates_every_field(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let op = f.op();
    let at = (f.clock.now() + Days::days(3)).fixed_offset();
    let new = |seats, price| NewShowtime {
        sale_opens_at: None,
        starts_at: at,
        seats,
        price,
    };
    let flat = |n| Pricing::Flat(pts(n));
    assert_eq!(
        code(op.add_showtime(f.concert, &new(0, flat(10)), |_| {})),
        "invalid_request"
    );
    assert_eq!(
        code(op.add_showtime(f.concert, &new(10, flat(0)), |_| {})),
        "invalid_amount"
    );
    assert_eq!(
        code(op.add_showtime(f.concert, &new(10, flat(-5)), |_| {})),
        "invalid_amount"
    );
    let nowhere = ConcertId::new(77).unwrap();
    assert_eq!(
        code(op.add_showtime(nowhere, &new(10, flat(10)), |_| {})),
        "not_found"
    );
    let past = NewShowtime {
        sale_opens_at: None,
        starts_at: (f.clock.now() - Days::hours(1)).fixed_offset(),
        seats: 5,
        price: flat(1),
    };
    assert_eq!(
        code(op.add_showtime(f.concert, &past, |_| {})),
        "invalid_request"
    );
    assert_eq!(code(op.add_concert("   ", "x")), "invalid_request");
    assert_eq!(
        code(op.add_concert(&"t".repeat(201), "x")),
        "invalid_request"
    );
    assert_eq!(
        op.showtimes(f.concert).unwrap().len(),
        2,
        "nothing was added"
    );
    assert_eq!(op.concerts().unwrap().len(), 1, "nothing was added");
}

#[apply(backends)]
fn a_large_showtime_is_added_in_one_go_with_progress(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let mut reported = 0;
    let s = NewShowtime {
        sale_opens_at: None,
        starts_at: (f.clock.now() + Days::days(9)).fixed_offset(),
        seats: 50_000,
        price: Pricing::Flat(pts(50_000)),
    };
    let id = f
        .op()
        .add_showtime(f.concert, &s, |n| reported += n)
        .unwrap();
    assert_eq!(reported, 50_000);
    let seats = f.seats_of(id);
    assert_eq!(seats.len(), 50_000);
    assert_eq!(seats.last().unwrap().number, 50_000);
}

#[apply(backends)]
fn seeding_is_all_or_nothing(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let mut cat = demo_catalog(f.clock.now());
    let good = f.op().seed(&cat, |_| {}).unwrap();
    assert_eq!((good.concerts, good.showtimes), (3, 7));
    assert_eq!(good.seats, 350);
    let before = f.op().concerts().unwrap().len();
    // Break the last showtime of the last concert: nothing of the file may load.
    cat.concerts
        .last_mut()
        .unwrap()
        .showtimes
        .last_mut()
        .unwrap()
        .seats = 0;
    let e = f.op().seed(&cat, |_| {}).unwrap_err();
    assert_eq!(e.code(), "invalid_request");
    assert!(e.to_string().contains("concert #3 showtime #2"), "{e}");
    assert_eq!(f.op().concerts().unwrap().len(), before);
    f.assert_verified();
}

#[apply(backends)]
fn the_demo_catalog_is_seeded_only_into_an_empty_database(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    assert!(f.op().seed_demo_if_empty().unwrap().is_none());
    let empty = fresh(backend, test_config(backend), Arc::new(f.clock.clone()));
    let op = empty.operator();
    let r = op.seed_demo_if_empty().unwrap().unwrap();
    assert_eq!(r.concerts, 3);
    assert!(op.seed_demo_if_empty().unwrap().is_none());
    let c = &op.concerts().unwrap()[0];
    let seats = op.seats(op.showtimes(c.id).unwrap()[0].id).unwrap();
    assert!(
        seats.iter().any(|s| s.price != seats[0].price),
        "priced sections"
    );
    let r = op.verify().unwrap();
    assert!(r.ok, "{:#?}", r.violations);
}
