//! The real `booking-server` binary: two processes on one file, kill -9 in the middle of
//! payments, signals, secrets, TTL flags, and clients that send nothing.

mod support;

use rstest_reuse::apply;

use booking::{Booking, Config};
use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use support::{engines, temp_db, Backend, Client, Proc, TestDb};

#[apply(engines)]
fn two_processes_on_one_file_share_tokens_and_race_fairly(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let db = TestDb::new(backend);
    let a = Proc::spawn(db.arg(), &["--demo", "--max-active", "1000"]);
    let b = Proc::spawn(db.arg(), &["--max-active", "1000", "--no-group-commit"]);
    // A token from one process is accepted by the other (one secret, kept in the database).
    let u = a.enter();
    let on_b = b.client().with_token(&u.token);
    on_b.get("/token").expect(200, "");
    on_b.get("/concerts").expect(200, "");
    assert_eq!(on_b.get("/concerts").json().as_array().unwrap().len(), 3);

    // Many users on both processes race for one seat: one winner.
    let users: Vec<Client> = (0..12)
        .map(|i| {
            let u = if i % 2 == 0 { a.enter() } else { b.enter() };
            // Each sends its hold to the other process than the one it entered on.
            let addr = if i % 2 == 0 { b.addr } else { a.addr };
            Client::new(addr).with_token(&u.token)
        })
        .collect();
    for seat in [11, 12] {
        let barrier = Arc::new(Barrier::new(users.len()));
        let handles: Vec<_> = users
            .iter()
            .cloned()
            .map(|c| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    c.post_json("/tickets", json!({"showtime_id": 1, "seat_id": seat}))
                        .status
                })
            })
            .collect();
        let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 201 || *s == 409),
            "{statuses:?}"
        );
    }
}

#[apply(engines)]
fn kill_9_while_paying_loses_no_acknowledged_payment(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let db = TestDb::new(backend);
    let mut server = Proc::spawn(db.arg(), &["--demo", "--max-active", "1000"]);
    let addr = server.addr;
    // What clients were told: payments, cancellations (ticket, refund) and releases, by token.
    let paid: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let cancelled: Arc<Mutex<Vec<(String, i64, i64)>>> = Arc::default();
    let released: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6i64)
        .map(|i| {
            let (paid, cancelled, released, count, stop) = (
                paid.clone(),
                cancelled.clone(),
                released.clone(),
                count.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                // Thread i works on showtime i+1 (seats i*50+1..), one user per three seats:
                // hold three at once, release one, extend one, pay for two at once, cancel one.
                for first in ((i * 50 + 1)..=(i * 50 + 48)).step_by(3) {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(r) = Client::new(addr).try_send("POST", "/token", &[], b"") else {
                        return;
                    };
                    let token = r.json()["token"].as_str().unwrap().to_string();
                    let c = Client::new(addr).with_token(&token);
                    let send = |method: &str, path: &str, key: Option<&str>, body: Value| {
                        let headers: Vec<(&str, &str)> =
                            key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
                        c.try_send(method, path, &headers, body.to_string().as_bytes())
                    };
                    let seats = json!([first, first + 1, first + 2]);
                    let Ok(t) = send(
                        "POST",
                        "/tickets",
                        None,
                        json!({"showtime_id": i + 1, "seat_ids": seats}),
                    ) else {
                        return;
                    };
                    assert_eq!(t.status, 201, "{}", t.text());
                    let ids: Vec<i64> = t
                        .json()
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t["id"].as_i64().unwrap())
                        .collect();
                    match send("DELETE", &format!("/tickets/{}", ids[2]), None, json!(null)) {
                        Ok(r) if r.status == 200 => {
                            released.lock().unwrap().push((token.clone(), ids[2]))
                        }
                        Ok(r) => panic!("release failed: {}", r.text()),
                        Err(_) => return,
                    }
                    match send(
                        "POST",
                        &format!("/tickets/{}/extend", ids[0]),
                        None,
                        json!({}),
                    ) {
                        Ok(r) => assert_eq!(r.status, 200, "{}", r.text()),
                        Err(_) => return,
                    }
                    if send("POST", "/points", None, json!({"amount": 1_000_000})).is_err() {
                        return;
                    }
                    let key = format!("pay-{}", ids[0]);
                    let body = json!({ "ticket_ids": [ids[0], ids[1]] });
                    match send("POST", "/payments", Some(&key), body) {
                        Ok(p) if p.status == 201 => {
                            paid.lock()
                                .unwrap()
                                .push((token.clone(), p.json()["id"].as_i64().unwrap()));
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(p) => panic!("payment failed: {}", p.text()),
                        Err(_) => return,
                    }
                    let key = format!("cancel-{}", ids[1]);
                    let cancel = format!("/tickets/{}/cancel", ids[1]);
                    match send("POST", &cancel, Some(&key), json!({})) {
                        Ok(r) if r.status == 200 => cancelled.lock().unwrap().push((
                            token.clone(),
                            ids[1],
                            r.json()["refund"].as_i64().unwrap(),
                        )),
                        Ok(r) => panic!("cancel failed: {}", r.text()),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count.load(Ordering::SeqCst) < 30 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("client thread");
    }
    let paid = paid.lock().unwrap().clone();
    assert!(
        paid.len() >= 30,
        "only {} payments before the kill",
        paid.len()
    );

    // Restart on the same database: everything acknowledged is there.
    let mut server = Proc::spawn(db.arg(), &["--max-active", "1000"]);
    for (token, payment) in &paid {
        let history = server.client().with_token(token).get("/payment_history");
        history.expect(200, "");
        let ids: Vec<i64> = history
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        assert!(ids.contains(payment), "payment {payment} lost");
    }
    let ticket_status = |token: &str, id: i64| {
        let list = server.client().with_token(token).get("/tickets").json();
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["status"].as_str().unwrap().to_string())
    };
    for (token, ticket, refund) in cancelled.lock().unwrap().iter() {
        assert_eq!(ticket_status(token, *ticket).as_deref(), Some("cancelled"));
        let ledger = server
            .client()
            .with_token(token)
            .get("/point_history")
            .json();
        assert!(
            ledger
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["kind"] == "refund" && l["amount"] == *refund),
            "refund of ticket {ticket} lost"
        );
    }
    for (token, ticket) in released.lock().unwrap().iter() {
        assert_eq!(ticket_status(token, *ticket).as_deref(), Some("released"));
    }
    assert!(server.terminate().success());
    let report = Booking::open(db.location(), Config::default())
        .unwrap()
        .operator()
        .verify()
        .unwrap();
    assert!(report.ok, "{:?}", report.violations);
}

#[test]
fn sigterm_and_sigint_stop_the_server_cleanly() {
    for signal in ["TERM", "INT"] {
        let (_dir, db) = temp_db();
        let mut server = Proc::spawn(&db, &["--demo"]);
        let u = server.enter();
        u.get("/concerts").expect(200, "");
        // An idle keep-alive connection does not hold the exit up.
        let _idle = TcpStream::connect(server.addr).unwrap();
        let started = Instant::now();
        let status = server.signal(signal);
        assert_eq!(status.code(), Some(0), "SIG{signal}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}

#[apply(engines)]
fn secrets_come_from_the_environment_a_file_or_the_database(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let db = TestDb::new(backend);
    let dir = tempfile::tempdir().unwrap();
    let from_db = Proc::spawn(db.arg(), &["--demo"]);
    let from_env = Proc::spawn_via(
        None,
        db.arg(),
        &[],
        &[("BOOKING_JWT_SECRET", "an-operator-secret")],
    );
    let file = dir.path().join("secret");
    std::fs::write(&file, "an-operator-secret\n").unwrap();
    let from_file = Proc::spawn(db.arg(), &["--jwt-secret-file", file.to_str().unwrap()]);

    let env_user = from_env.enter();
    from_file
        .client()
        .with_token(&env_user.token)
        .get("/token")
        .expect(200, "");
    from_db
        .client()
        .with_token(&env_user.token)
        .get("/token")
        .expect(401, "unauthorized");
    let db_user = from_db.enter();
    from_env
        .client()
        .with_token(&db_user.token)
        .get("/token")
        .expect(401, "unauthorized");

    // Another database has another random secret.
    let db2 = TestDb::new(backend);
    let other = Proc::spawn(db2.arg(), &[]);
    other
        .client()
        .with_token(&db_user.token)
        .get("/token")
        .expect(401, "unauthorized");

    // An empty secret is refused at start.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_booking-server"))
        .arg("--db")
        .arg(db.arg())
        .args(["--addr", "127.0.0.1:0"])
        .args(["--jwt-secret-file", empty.to_str().unwrap()])
        .env_remove("BOOKING_JWT_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
}

#[apply(engines)]
fn demo_seeds_once_and_prints_a_quick_start(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let db = TestDb::new(backend);
    let mut plain = Proc::spawn(db.arg(), &[]);
    let u = plain.enter();
    assert_eq!(u.get("/concerts").json(), json!([]));
    plain.terminate();
    let mut demo = Proc::spawn(db.arg(), &["--demo"]);
    let u = demo.enter();
    assert_eq!(u.get("/concerts").json().as_array().unwrap().len(), 3);
    let banner = demo.banner();
    assert!(banner.contains("demo catalog seeded"), "{banner}");
    assert!(banner.contains("curl"), "{banner}");
    let mut again = Proc::spawn(db.arg(), &["--demo"]);
    let u = again.enter();
    assert_eq!(u.get("/concerts").json().as_array().unwrap().len(), 3);
    assert!(!again.banner().contains("seeded"));
}

#[apply(engines)]
fn the_hold_ttl_flag_lets_holds_lapse(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let db = TestDb::new(backend);
    let server = Proc::spawn(db.arg(), &["--demo", "--hold-ttl", "1s"]);
    let a = server.enter();
    let b = server.enter();
    let t = a.hold(1, 3);
    t.expect(201, "");
    let id = t.json()["id"].as_i64().unwrap();
    b.hold(1, 3).expect(409, "seat_unavailable");
    a.charge(1_000_000).expect(200, "");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(b.get("/concerts/1:1").json()[2]["status"], "available");
    a.pay(id).expect(409, "hold_expired");
    b.hold(1, 3).expect(201, "");
    assert_eq!(a.get("/tickets").json()[0]["status"], "expired");
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        &["--hold-ttl", "soon"][..],
        &["--max-active", "-1"],
        &["--threads", "x"],
        &["--durability", "sometimes"],
        &["--no-such-flag"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_booking-server"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn idle_and_slow_clients_do_not_starve_others() {
    let (_dir, db) = temp_db();
    let server = Proc::spawn(&db, &["--demo", "--threads", "4"]);
    let addr = server.addr;
    let u = server.enter();
    // Hundreds of sockets that send nothing, some that stop halfway through their headers,
    // and some that promise a body and never send it.
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(TcpStream::connect(addr).unwrap());
    }
    for i in 0..50 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(format!("GET /concerts HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ").as_bytes())
            .unwrap();
        held.push(s);
    }
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(
            format!(
                "POST /points HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 5000\r\n\r\n{{\"amount\"",
                u.token
            )
            .as_bytes(),
        )
        .unwrap();
        held.push(s);
    }
    // Meanwhile another client keeps getting answers. A starved one would wait on the held
    // sockets for good (until the client's 30 s timeout); the bound leaves room for a debug
    // build on two busy cores (one request took over a second with two CPU hogs running).
    for i in 0..40 {
        let started = Instant::now();
        let r = match i % 4 {
            0 => u.get("/token"),
            1 => u.get("/concerts/1:1"),
            2 => u.charge(1),
            _ => server.client().get("/healthz"),
        };
        r.expect(200, "");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "request {i} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(u.get("/points").json()["balance"], 10);
    drop(held);
}

#[test]
fn accepting_goes_on_after_running_out_of_file_descriptors() {
    // tiny_http's accept loop used to end at the first EMFILE, or panic cloning an accepted
    // socket; the patched loop pauses and goes on (vendor/tiny_http/PATCHES.md, "The accept
    // loop survives accept errors").
    let (_dir, db) = temp_db();
    let server = Proc::spawn_via(
        Some("ulimit -n 64"),
        &db,
        &["--demo", "--threads", "2"],
        &[],
    );
    let addr = server.addr;
    let u = server.enter();
    // A keep-alive connection opened before the trouble.
    let mut before = support::Conn::open(addr);
    let auth = format!("Bearer {}", u.token);
    before
        .request("GET", "/token", &[("Authorization", &auth)], b"")
        .expect(200, "");
    // Exhaust the server's descriptors: accept() fails with EMFILE, or duplicating an accepted
    // socket does.
    let mut flood = Vec::new();
    for _ in 0..80 {
        if let Ok(s) = TcpStream::connect(addr) {
            flood.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let open = std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .unwrap()
        .count();
    assert!(
        open >= 60,
        "only {open} descriptors open: the limit was not reached"
    );
    drop(flood);
    // New connections are served again once descriptors are free...
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Client::new(addr).try_send("GET", "/healthz", &[], b"") {
            Ok(r) if r.status == 200 => break,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("the server stopped accepting: {other:?}"),
        }
    }
    // ... and so is the connection accepted before.
    before
        .request("GET", "/token", &[("Authorization", &auth)], b"")
        .expect(200, "");
}

#[test]
fn a_burst_of_new_connections_is_served_at_once() {
    // 200 clients connect at the same instant to a fresh server and each sends one request:
    // every one is answered promptly (tiny_http's connection pool used to leave some of a
    // burst unserved for seconds; see vendor/tiny_http/PATCHES.md).
    let (_dir, db) = temp_db();
    let server = Proc::spawn(&db, &[]);
    let addr = server.addr;
    let n = 200;
    let (start, done) = (Arc::new(Barrier::new(n)), Arc::new(Barrier::new(n)));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (start, done) = (start.clone(), done.clone());
            std::thread::spawn(move || {
                start.wait();
                let started = Instant::now();
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut buf = [0u8; 256];
                let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
                let answered = String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200");
                let took = started.elapsed();
                // Every connection stays open until all have their answer: a closing connection
                // would free a server thread for a stranded one and hide the fault.
                done.wait();
                (answered, took)
            })
        })
        .collect();
    let results: Vec<(bool, Duration)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let unanswered = results.iter().filter(|(ok, _)| !ok).count();
    let slowest = results.iter().map(|(_, d)| *d).max().unwrap();
    assert_eq!(unanswered, 0, "connections left without an answer");
    assert!(
        slowest < Duration::from_secs(3),
        "slowest answer took {slowest:?}"
    );
}

/// Runs `booking-cli --json` on `db`; returns its JSON answer (and insists on exit 0).
fn cli(db: &std::path::Path, args: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_booking-cli"))
        .arg("--db")
        .arg(db)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "booking-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_cli_and_a_running_server_share_one_database() {
    let (_dir, db) = temp_db();
    let server = Proc::spawn(&db, &["--demo"]);
    let u = server.enter();
    // Server-side writes on one thread while the CLI writes from another process.
    let web = {
        let u = u.clone();
        std::thread::spawn(move || {
            let mut tickets = Vec::new();
            for seat in 1..=3 {
                let t = u.hold(1, seat);
                t.expect(201, "");
                tickets.push(t.json()["id"].as_i64().unwrap());
                u.charge(100_000).expect(200, "");
            }
            u.pay(tickets[0]).expect(201, "");
        })
    };
    for i in 0..5 {
        cli(
            &db,
            &["points", "charge", "--user", &u.id, "--amount", "1000"],
        );
        cli(
            &db,
            &[
                "concert",
                "add",
                "--title",
                &format!("Added while serving #{i}"),
            ],
        );
    }
    web.join().unwrap();
    // The server sees the CLI's writes ...
    assert_eq!(
        u.get("/points").json()["balance"],
        300_000 + 5_000 - 150_000
    );
    // (the payment ended u's turn: a newcomer looks at the catalog)
    let newcomer = server.enter();
    assert_eq!(
        newcomer.get("/concerts").json().as_array().unwrap().len(),
        3 + 5
    );
    // ... the CLI sees the server's ...
    let seats = cli(&db, &["seats", "--showtime", "1"]);
    let status = |n: usize| seats[n - 1]["status"].as_str().unwrap().to_string();
    assert_eq!(
        (status(1), status(2), status(3), status(4)),
        (
            "sold".into(),
            "held".into(),
            "held".into(),
            "available".into()
        )
    );
    assert_eq!(
        cli(&db, &["points", "show", "--user", &u.id])["balance"],
        155_000
    );
    // ... and every invariant holds across both.
    assert_eq!(cli(&db, &["verify"])["ok"], true);
}
