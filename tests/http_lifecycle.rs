//! The order lifecycle over HTTP (docs/API.md §6): several seats in one hold, release, extend,
//! several tickets in one payment, cancel with refund, sale opening — every new route and code,
//! with the guards, the user checks and the JSON shapes.
mod support;

use rstest_reuse::apply;

use booking::Clock;
use serde_json::{json, Value};
use std::time::Duration;
use support::{engines, first_showtime, Backend, TestServer, User};

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

fn seat_status(u: &User, concert: i64, showtime: i64, seat: i64) -> String {
    let seats = u.get(&format!("/concerts/{concert}:{showtime}")).json();
    seats
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == seat)
        .unwrap()["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[apply(engines)]
fn several_seats_are_held_in_one_request_all_or_none(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let a = srv.enter();
    let b = srv.enter();
    let (concert, show, seats) = first_showtime(&a);
    let seat = |i: usize| seats[i]["id"].as_i64().unwrap();
    let r = a.post(
        "/tickets",
        json!({"showtime_id": show, "seat_ids": [seat(2), seat(0), seat(1)]}),
    );
    r.expect(201, "");
    let held = r.json();
    assert_eq!(held.as_array().unwrap().len(), 3);
    assert_eq!(
        held.as_array()
            .unwrap()
            .iter()
            .map(|t| t["seat_id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![seat(2), seat(0), seat(1)]
    );
    assert!(held
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["status"] == "held"));
    // b wants two free seats and one of a's: nothing is held, the taken seat is named.
    let r = b.post(
        "/tickets",
        json!({"showtime_id": show, "seat_ids": [seat(5), seat(1), seat(6)]}),
    );
    r.expect(409, "seat_unavailable");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&seat(1).to_string()));
    assert_eq!(seat_status(&b, concert, show, seat(5)), "available");
    assert!(b.get("/tickets").json().as_array().unwrap().is_empty());
    // Bad lists and forms.
    for body in [
        json!({"showtime_id": show, "seat_ids": []}),
        json!({"showtime_id": show, "seat_ids": [seat(5), seat(5)]}),
        json!({"showtime_id": show, "seat_ids": [seat(5), 0]}),
        json!({"showtime_id": show, "seat_ids": "5"}),
        json!({"showtime_id": show, "seat_id": seat(5), "seat_ids": [seat(6)]}),
        json!({"showtime_id": show}),
    ] {
        b.post("/tickets", body.clone())
            .expect(400, "invalid_request");
    }
    // The limit applies to the whole request (a holds 3 of 4).
    a.post(
        "/tickets",
        json!({"showtime_id": show, "seat_ids": [seat(7), seat(8)]}),
    )
    .expect(409, "hold_limit_reached");
    b.post(
        "/tickets",
        json!({"showtime_id": show, "seat_ids": [seat(10), seat(11), seat(12), seat(13), seat(14)]}),
    )
    .expect(409, "hold_limit_reached");
}

#[apply(engines)]
fn a_hold_is_released_and_its_seat_is_available_at_once(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let a = srv.enter();
    let b = srv.enter();
    let (concert, show, seats) = first_showtime(&a);
    let seat = seats[3]["id"].as_i64().unwrap();
    let t = a.hold(show, seat).json();
    let path = format!("/tickets/{}", t["id"]);
    b.http
        .send("DELETE", &path, &[], b"")
        .expect(404, "not_found");
    let r = a.http.send("DELETE", &path, &[], b"");
    r.expect(200, "");
    assert_eq!(r.json()["status"], "released");
    assert_eq!(r.json()["id"], t["id"]);
    assert_eq!(seat_status(&b, concert, show, seat), "available");
    b.hold(show, seat).expect(201, "");
    a.http
        .send("DELETE", &path, &[], b"")
        .expect(409, "ticket_not_held");
    a.http
        .send("DELETE", "/tickets/x", &[], b"")
        .expect(400, "invalid_request");
    a.http
        .send("DELETE", "/tickets/999999", &[], b"")
        .expect(404, "not_found");
    a.get(&path).expect(405, "method_not_allowed");
    srv.client()
        .send("DELETE", &path, &[], b"")
        .expect(401, "unauthorized");
    // Another user's id in the query is forbidden.
    a.http
        .send("DELETE", &format!("{path}?user_id={}", b.id), &[], b"")
        .expect(403, "forbidden");
}

#[apply(engines)]
fn a_hold_is_extended_once_from_now(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let a = srv.enter();
    let (_, show, seats) = first_showtime(&a);
    let t = a.hold(show, seats[0]["id"].as_i64().unwrap()).json();
    srv.clock.advance(Duration::from_secs(120));
    let path = format!("/tickets/{}/extend", t["id"]);
    let r = a.post(&path, json!({}));
    r.expect(200, "");
    let before = chrono::DateTime::parse_from_rfc3339(t["held_until"].as_str().unwrap()).unwrap();
    let after =
        chrono::DateTime::parse_from_rfc3339(r.json()["held_until"].as_str().unwrap()).unwrap();
    assert_eq!((after - before).num_seconds(), 120, "now + hold TTL");
    a.post(&path, json!({})).expect(409, "extension_limit");
    srv.clock.advance(Duration::from_secs(301));
    a.post(&path, json!({})).expect(409, "hold_expired");
    let other = srv.enter();
    other.post(&path, json!({})).expect(404, "not_found");
    a.post("/tickets/0/extend", json!({}))
        .expect(400, "invalid_request");
}

#[apply(engines)]
fn several_tickets_are_paid_at_once_and_cancelled_for_a_refund(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let a = srv.enter();
    let (concert, show, seats) = first_showtime(&a);
    let seat = |i: usize| seats[i]["id"].as_i64().unwrap();
    let held = a
        .post(
            "/tickets",
            json!({"showtime_id": show, "seat_ids": [seat(20), seat(21)]}),
        )
        .json();
    let sum: i64 = held
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["price"].as_i64().unwrap())
        .sum();
    a.charge(sum).expect(200, "");
    let mut t_ids = ids(&held);
    let p = a.with_key(
        "POST",
        "/payments",
        "pay-both",
        json!({ "ticket_ids": t_ids.clone() }),
    );
    p.expect(201, "");
    t_ids.sort();
    let pay = p.json();
    assert_eq!(pay["ticket_ids"], json!(t_ids));
    assert_eq!(pay["ticket_id"], t_ids[0]);
    assert_eq!(
        (pay["amount"].as_i64(), pay["refunded"].as_i64()),
        (Some(sum), Some(0))
    );
    // The same request under the same key replays; the turn ended once.
    let again = a.with_key(
        "POST",
        "/payments",
        "pay-both",
        json!({ "ticket_ids": t_ids.clone() }),
    );
    again.expect(201, "");
    assert_eq!(again.json(), pay);
    assert_eq!(a.status()["status"], "expired");
    a.post("/payments", json!({"ticket_ids": []}))
        .expect(400, "invalid_request");
    a.post("/payments", json!({"ticket_ids": [t_ids[0]]}))
        .expect(409, "already_paid");
    // Cancel one: the fee is kept, the rest comes back as a refund row.
    let cancel = format!("/tickets/{}/cancel", t_ids[0]);
    let r = a.with_key("POST", &cancel, "cancel-1", json!({}));
    r.expect(200, "");
    let c = r.json();
    let price = held
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == t_ids[0])
        .unwrap()["price"]
        .as_i64()
        .unwrap();
    assert_eq!(c["fee"].as_i64().unwrap(), price / 10);
    assert_eq!(c["refund"].as_i64().unwrap(), price - price / 10);
    assert_eq!(c["balance"], c["refund"]);
    assert_eq!(c["ticket"]["status"], "cancelled");
    assert_eq!(
        a.with_key("POST", &cancel, "cancel-1", json!({})).json(),
        c,
        "replayed"
    );
    a.post(&cancel, json!({})).expect(409, "ticket_not_paid");
    let history = a.get("/point_history").json();
    assert_eq!(history[0]["kind"], "refund");
    assert_eq!(history[0]["amount"], c["refund"]);
    let payments = a.get("/payment_history").json();
    assert_eq!(payments[0]["refunded"], c["refund"]);
    assert_eq!(payments.as_array().unwrap().len(), 1);
    // The seat is for sale again.
    let b = srv.enter();
    assert_eq!(
        seat_status(&b, concert, show, c["ticket"]["seat_id"].as_i64().unwrap()),
        "available"
    );
    // Cancels close a day before the show: 23 hours before it (with a fresh token), too late.
    let other = format!("/tickets/{}/cancel", t_ids[1]);
    let dates = b.get(&format!("/concerts/{concert}")).json();
    let starts = dates
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == show)
        .unwrap()["starts_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    srv.clock.set(starts - chrono::Duration::hours(23));
    let r = srv.client().post_json("/token", json!({ "user_id": a.id }));
    let token = r.json()["token"].as_str().unwrap().to_string();
    let a = srv.client().with_token(&token);
    a.post_json(&other, json!({})).expect(409, "cancel_closed");
}

#[apply(engines)]
fn a_showtime_whose_sale_has_not_opened_is_listed_but_not_held(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let op = srv.booking.operator();
    let concert = op.concerts().unwrap()[0].id;
    let opens = srv.clock.now() + chrono::Duration::hours(2);
    let st = op
        .add_showtime(
            concert,
            &booking::NewShowtime {
                starts_at: (srv.clock.now() + chrono::Duration::days(40)).fixed_offset(),
                seats: 4,
                price: booking::Pricing::Flat(booking::Points::new(10)),
                sale_opens_at: Some(opens.fixed_offset()),
            },
            |_| {},
        )
        .unwrap();
    let a = srv.enter();
    let list = a.get(&format!("/concerts/{concert}")).json();
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == st.get())
        .unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(listed["sale_opens_at"].as_str().unwrap()).unwrap(),
        opens
    );
    let seats = a.get(&format!("/concerts/{concert}:{st}")).json();
    assert_eq!(seats.as_array().unwrap().len(), 4);
    a.hold(st.get(), seats[0]["id"].as_i64().unwrap())
        .expect(409, "sale_not_open");
    // Called off: showtime_closed.
    op.cancel_showtime(st).unwrap();
    srv.clock.advance(Duration::from_secs(3 * 3600));
    let a = srv.enter();
    a.hold(st.get(), seats[0]["id"].as_i64().unwrap())
        .expect(409, "showtime_closed");
}
