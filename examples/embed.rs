//! Embedding `booking` in a few lines: the whole journey of one user through the library.
//!
//! Run with `cargo run --example embed` (it works in a temporary database).

use booking::{catalog, Booking, Config, Guard, SystemClock};
use std::sync::Arc;

fn main() -> booking::Result<()> {
    // A real program opens a file: `Booking::open("booking.db", Config::default())?`.
    let b = Booking::open_temporary(Config::default(), Arc::new(SystemClock))?;
    b.seed(&catalog::demo_catalog(b.now()), &mut |_| {})?;

    let entered = b.enter_queue(None)?; // a new user joins the waiting room
    println!(
        "queue: {:?}, position {}",
        entered.status.status, entered.status.position
    );
    let me = b.authorize(&entered.token, Guard::Active)?; // room to spare: admitted at once

    let concert = &b.list_concerts()?[0];
    let date = &b.list_showtimes(concert.id)?[0];
    let seat = b
        .list_seats(concert.id, date.id)?
        .into_iter()
        .find(|s| s.status == booking::SeatStatus::Available)
        .expect("a free seat");
    let ticket = b.hold(me.user_id, date.id, seat.id)?;
    println!(
        "held seat {} of {:?} at {} until {}",
        ticket.seat_number, concert.title, date.starts_at, ticket.held_until
    );

    b.charge(me.user_id, ticket.price, Some("first-charge"))?;
    let payment = b.pay(me.user_id, ticket.id, None)?;
    println!(
        "paid {} points; balance now {}",
        payment.amount,
        b.balance(me.user_id)?.balance
    );
    println!("queue after paying: {:?}", b.queue_status(&me)?.status);
    assert!(b.verify()?.ok);
    Ok(())
}
