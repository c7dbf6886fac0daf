//! Seat maps over HTTP (docs/API.md §6.1): `ETag`, `If-None-Match` → `304` with no body,
//! `?since=VERSION` → only what changed; a 304 never hides a change, and a lapse seen by a
//! second server process moves the ETag.
mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{first_showtime, Proc, TestServer};

#[test]
fn an_unchanged_map_is_304_and_a_changed_one_is_not() {
    let srv = TestServer::start();
    let a = srv.enter();
    let b = srv.enter();
    let (concert, show, seats) = first_showtime(&a);
    let path = format!("/concerts/{concert}:{show}");
    let r = a.get(&path);
    r.expect(200, "");
    let tag = r.header("ETag").expect("ETag").to_string();
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    let again = a.http.send("GET", &path, &[("If-None-Match", &tag)], b"");
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("ETag"), Some(tag.as_str()));
    // Someone else holds a seat: the same tag no longer matches.
    b.hold(show, seats[4]["id"].as_i64().unwrap())
        .expect(201, "");
    let r = a.http.send("GET", &path, &[("If-None-Match", &tag)], b"");
    r.expect(200, "");
    let new_tag = r.header("ETag").unwrap().to_string();
    assert_ne!(new_tag, tag);
    assert_eq!(r.json()[4]["status"], "held");
    // The cached full map and a fresh one are the same bytes.
    let cached = a.get(&path);
    assert_eq!(cached.body, r.body);
    // A lapse moves it too, with no write.
    srv.clock.advance(Duration::from_secs(301));
    let r = a
        .http
        .send("GET", &path, &[("If-None-Match", &new_tag)], b"");
    r.expect(200, "");
    assert_eq!(r.json()[4]["status"], "available");
}

#[test]
fn since_answers_only_the_seats_that_changed() {
    let srv = TestServer::start();
    let a = srv.enter();
    let b = srv.enter();
    let (concert, show, seats) = first_showtime(&a);
    let path = format!("/concerts/{concert}:{show}");
    let tag = a
        .get(&path)
        .header("ETag")
        .unwrap()
        .trim_matches('"')
        .to_string();
    let none = a.get(&format!("{path}?since={tag}"));
    none.expect(200, "");
    assert_eq!(none.json()["seats"], json!([]));
    assert_eq!(none.json()["version"], tag);
    let seat = seats[7]["id"].as_i64().unwrap();
    b.hold(show, seat).expect(201, "");
    let d = a.get(&format!("{path}?since={tag}")).json();
    assert_eq!(d["seats"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            d["seats"][0]["id"].as_i64(),
            d["seats"][0]["status"].clone()
        ),
        (Some(seat), json!("held"))
    );
    assert_ne!(d["version"], tag);
    // Unknown or malformed versions get every seat.
    for bad in ["nonsense", "99999999.0", ""] {
        let all = a.get(&format!("{path}?since={bad}")).json();
        assert_eq!(all["seats"].as_array().unwrap().len(), seats.len(), "{bad}");
    }
    // The same guards as the map.
    let waiting = srv.client().get(&format!("{path}?since={tag}"));
    waiting.expect(401, "unauthorized");
    a.get(&format!("/concerts/{concert}:999999?since={tag}"))
        .expect(404, "not_found");
}

#[test]
fn a_lapse_is_seen_by_a_server_that_did_not_make_the_hold() {
    let (_dir, db) = support::temp_db();
    let a = Proc::spawn(&db, &["--demo", "--hold-ttl", "1s"]);
    let b = Proc::spawn(&db, &[]);
    let holder = a.enter();
    let viewer = b.enter();
    let (concert, show, seats) = first_showtime(&viewer);
    let path = format!("/concerts/{concert}:{show}");
    let seat = seats[0]["id"].as_i64().unwrap();
    holder.hold(show, seat).expect(201, "");
    let r = viewer.get(&path);
    assert_eq!(r.json()[0]["status"], "held");
    let tag = r.header("ETag").unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1_200));
    let r = viewer
        .http
        .send("GET", &path, &[("If-None-Match", &tag)], b"");
    r.expect(200, "");
    assert_eq!(r.json()[0]["status"], "available");
    let d: Value = viewer
        .get(&format!("{path}?since={}", tag.trim_matches('"')))
        .json();
    assert_eq!(d["seats"][0]["id"], seat);
}
