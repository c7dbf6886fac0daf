use booking::*;
use std::sync::Arc;
use std::time::Duration;
#[test]
fn journey() {
    let clock = ManualClock::fixed();
    let b = Booking::open_temporary(Config::default(), Arc::new(clock.clone())).unwrap();
    let rep = b.seed(&catalog::demo_catalog(clock.now()), &mut |_| {}).unwrap();
    assert_eq!(rep.concerts, 3);
    let e = b.enter_queue(None).unwrap();
    assert!(e.created);
    let who = b.authorize(&e.token, Guard::Active).unwrap();
    let c = &b.list_concerts().unwrap()[0];
    let s = &b.list_showtimes(c.id).unwrap()[0];
    let seats = b.list_seats(c.id, s.id).unwrap();
    assert_eq!(seats.len(), 50);
    let t = b.hold(who.user_id, s.id, seats[0].id).unwrap();
    assert_eq!(b.hold(who.user_id, s.id, seats[0].id).unwrap_err().code(), "seat_unavailable");
    b.charge(who.user_id, 1_000_000, Some("k1")).unwrap();
    let bal = b.charge(who.user_id, 1_000_000, Some("k1")).unwrap();
    assert_eq!(bal.balance, 1_000_000);
    let p = b.pay(who.user_id, t.id, None).unwrap();
    assert_eq!(p.amount, t.price);
    assert_eq!(b.queue_status(&who).unwrap().status, EntryStatus::Expired);
    clock.advance(Duration::from_secs(600));
    let r = b.verify().unwrap();
    assert!(r.ok, "{:?}", r.violations);
    println!("{}", serde_json::to_string(&b.tickets(who.user_id).unwrap()).unwrap());
}
