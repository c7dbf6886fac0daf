//! Embedding `booking` in a few lines: the whole journey of one user through the library.
//!
//! Run with `cargo run --example embed` (it works in a temporary database).

use booking::{demo_catalog, Booking, Config, IdempotencyKey, SeatStatus, SystemClock};
use std::sync::Arc;

fn main() -> booking::Result<()> {
    // A real program opens a file: `Booking::open("booking.db", Config::default())?`.
    let b = Booking::open_temporary(Config::default(), Arc::new(SystemClock))?;
    b.operator().seed(&demo_catalog(b.now()), |_| {})?; // an operator loads the catalog

    let entered = b.enter_queue(None)?; // a new user joins the waiting room
    println!(
        "queue: {:?}, position {}",
        entered.status.status, entered.status.position
    );
    // Room to spare: admitted at once. The proof is what the user's operations take.
    let me = b.authorize_active(&entered.token)?;

    let concert = &b.concerts(&me)?[0];
    let date = &b.showtimes(&me, concert.id)?[0];
    let seat = b
        .seats(&me, concert.id, date.id)?
        .into_iter()
        .find(|s| s.status == SeatStatus::Available)
        .expect("a free seat");
    let ticket = b.hold(&me, date.id, seat.id)?;
    println!(
        "held seat {} of {:?} at {} until {}",
        ticket.seat_number, concert.title, date.starts_at, ticket.held_until
    );

    let key = IdempotencyKey::parse("first-charge")?; // a retry with the same key is safe
    b.charge(&me, ticket.price, Some(&key))?;
    let payment = b.pay(&me, ticket.id, None)?;
    println!(
        "paid {} points; balance now {}",
        payment.amount,
        b.balance(&me)?.balance
    );
    println!("queue after paying: {:?}", b.queue_status(&me)?.status);
    assert!(b.operator().verify()?.ok);
    Ok(())
}
