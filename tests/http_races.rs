//! Races over HTTP with real threads: one seat, one ticket, one wallet; and, on two server
//! processes, a payment against the same user's holds.

mod support;

use rstest_reuse::apply;

use booking::{Booking, Config, NewShowtime, Points, Pricing, TicketStatus};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use support::{engines, Backend, Client, Proc, Resp, TestDb, TestServer, User};

/// Runs `f(i)` on `n` threads released together; returns their results in order.
fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("racer"))
        .collect()
}

#[apply(engines)]
fn many_clients_holding_one_seat_make_one_winner(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    for seat in [1, 2, 3] {
        let users: Arc<Vec<User>> = Arc::new((0..16).map(|_| srv.enter()).collect());
        let u = users.clone();
        let results = race(16, move |i| {
            let r = u[i].hold(1, seat);
            let code = if r.status == 201 {
                String::new()
            } else {
                r.code()
            };
            (r.status, code)
        });
        let winners = results.iter().filter(|(s, _)| *s == 201).count();
        assert_eq!(winners, 1, "seat {seat}: {results:?}");
        assert!(results
            .iter()
            .all(|(s, c)| *s == 201 || (*s == 409 && c == "seat_unavailable")));
        let held: usize = users
            .iter()
            .map(|u| u.get("/tickets").json().as_array().unwrap().len())
            .sum();
        assert_eq!(held, 1);
    }
    assert!(srv.booking.operator().verify().unwrap().ok);
}

#[apply(engines)]
fn concurrent_payments_of_one_ticket_pay_once(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    for round in 0..3 {
        let u = srv.enter();
        let t = u.hold(1, 10 + round).json()["id"].as_i64().unwrap();
        u.charge(5_000_000).expect(200, "");
        let racer = u.clone();
        let results = race(8, move |_| {
            let r = racer.pay(t);
            let code = if r.status == 201 {
                String::new()
            } else {
                r.code()
            };
            (r.status, code)
        });
        assert_eq!(
            results.iter().filter(|(s, _)| *s == 201).count(),
            1,
            "{results:?}"
        );
        assert!(results
            .iter()
            .all(|(s, c)| *s == 201 || (*s == 409 && c == "already_paid")));
        let price = u.get("/tickets").json()[0]["price"].as_i64().unwrap();
        assert_eq!(u.get("/points").json()["balance"], 5_000_000 - price);
        assert_eq!(
            u.get("/payment_history").json().as_array().unwrap().len(),
            1
        );
    }
    assert!(srv.booking.operator().verify().unwrap().ok);
}

#[apply(engines)]
fn concurrent_charges_add_up_exactly(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let u = srv.enter();
    let racer = u.clone();
    let statuses = race(8, move |i| {
        (0..10)
            .map(|j| racer.charge(((i * 10 + j) as i64) + 1).status)
            .collect::<Vec<_>>()
    });
    assert!(statuses.iter().flatten().all(|s| *s == 200), "{statuses:?}");
    let expected: i64 = (1..=80).sum();
    assert_eq!(u.get("/points").json()["balance"], expected);
    let ledger = u.get("/point_history").json();
    let ledger = ledger.as_array().unwrap();
    assert_eq!(ledger.len(), 80);
    assert_eq!(ledger[0]["balance_after"], expected);

    // The same key from many threads at once: charged once, the same answer for all.
    let racer = u.clone();
    let answers = race(8, move |_| {
        let r = racer.with_key("POST", "/points", "same-key", json!({"amount": 1000}));
        (r.status, r.json())
    });
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 200);
    assert_eq!(u.get("/points").json()["balance"], expected + 1000);
}

/// What one request of the race saw: when it left, when its answer came, the answer.
#[derive(Debug, Clone)]
struct Sent {
    at: Instant,
    answered: Instant,
    status: u16,
    code: String,
    id: Option<i64>,
}

fn sent(at: Instant, r: &Resp) -> Sent {
    let answered = Instant::now();
    let (code, id) = if r.status < 300 {
        (String::new(), r.json()["id"].as_i64())
    } else {
        (r.code(), None)
    };
    Sent {
        at,
        answered,
        status: r.status,
        code,
        id,
    }
}

#[apply(engines)]
fn a_payment_ends_the_turn_for_holds_racing_it_on_two_processes(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    // Two booking-server processes on one file: A with group commit, B without. Each round,
    // one user with a held, funded ticket pays it on A while holders send more holds with the
    // same token to A and B, each until one is refused. The payment ends the user's turn in
    // the waiting room, and a hold re-checks the turn inside its own write transaction: no
    // hold may commit after the payment.
    const ROUNDS: usize = 40;
    const HOLDERS: usize = 6;
    // A holder stops on its first refusal (the next hold it sends once the payment's answer
    // is in must be one); the deadline only bounds a broken run.
    const DEADLINE: Duration = Duration::from_secs(10);
    let db = TestDb::new(backend);
    let b = Booking::open(db.location(), Config::default()).unwrap();
    let showtime = {
        let op = b.operator();
        let concert = op.add_concert("Race", "Hall").unwrap();
        let new = NewShowtime {
            sale_opens_at: None,
            starts_at: (b.now() + chrono::Duration::days(30)).fixed_offset(),
            seats: 50_000,
            price: Pricing::Flat(Points::new(1_000)),
        };
        op.add_showtime(concert, &new, |_| {}).unwrap()
    };
    let seats: Arc<Vec<i64>> = Arc::new(
        b.operator()
            .seats(showtime)
            .unwrap()
            .iter()
            .map(|s| s.id.get())
            .collect(),
    );
    let next_seat = Arc::new(AtomicUsize::new(0));
    // Commits without fsync keep each write short, so neither process starves the other of
    // the write lock for long (the order of commits is what the test is about, not their
    // durability).
    let flags = [
        "--max-active",
        "100000",
        "--max-holds-per-user",
        "1000000",
        "--durability",
        "normal",
    ];
    let a = Proc::spawn(db.arg(), &flags);
    let b_flags: Vec<&str> = flags.iter().copied().chain(["--no-group-commit"]).collect();
    let b_proc = Proc::spawn(db.arg(), &b_flags);
    let st = showtime.get();
    let read = db.raw();

    let (mut committed, mut refused, mut refused_in_flight) = (0, 0, 0);
    let started = Instant::now();
    for round in 0..ROUNDS {
        let user = a.enter();
        let seat = seats[next_seat.fetch_add(1, Ordering::SeqCst)];
        let held = user.hold(st, seat);
        held.expect(201, "");
        let ticket = held.json()["id"].as_i64().unwrap();
        user.charge(1_000).expect(200, "");
        let on_a = user.http.clone();
        let on_b = Client::new(b_proc.addr).with_token(&user.token);
        // B takes A's token (one secret, in the database).
        on_b.get("/token").expect(200, "");

        let barrier = Arc::new(Barrier::new(HOLDERS + 1));
        let payer = {
            let (c, barrier) = (on_a.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let at = Instant::now();
                let r = c.post_json("/payments", json!({ "ticket_id": ticket }));
                sent(at, &r)
            })
        };
        let holders: Vec<_> = (0..HOLDERS)
            .map(|k| {
                let c = if k % 2 == 0 {
                    on_a.clone()
                } else {
                    on_b.clone()
                };
                let (barrier, seats, next_seat) =
                    (barrier.clone(), seats.clone(), next_seat.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut answers = Vec::new();
                    let deadline = Instant::now() + DEADLINE;
                    while Instant::now() < deadline {
                        let Some(&seat) = seats.get(next_seat.fetch_add(1, Ordering::SeqCst))
                        else {
                            break; // out of seats: only a broken run gets here
                        };
                        let at = Instant::now();
                        let r =
                            c.post_json("/tickets", json!({"showtime_id": st, "seat_id": seat}));
                        let s = sent(at, &r);
                        let go_on = s.status == 201;
                        answers.push(s);
                        if !go_on {
                            break;
                        }
                    }
                    answers
                })
            })
            .collect();
        let pay = payer.join().unwrap();
        let holds: Vec<Vec<Sent>> = holders.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(pay.status, 201, "round {round}: the payment: {pay:?}");

        for (k, answers) in holds.iter().enumerate() {
            // Each holder stopped on a refusal: once the payment is in, holds are refused.
            let last = answers.last().unwrap();
            assert_eq!(
                (last.status, last.code.as_str()),
                (403, "queue_not_active"),
                "round {round}, holder {k}: never refused in {} holds",
                answers.len()
            );
            for h in answers {
                assert!(
                    h.status == 201 || (h.status, h.code.as_str()) == (403, "queue_not_active"),
                    "round {round}: {h:?}"
                );
                // A hold sent after the payment's answer came back comes after it.
                if h.at > pay.answered {
                    assert_eq!(
                        h.status, 403,
                        "round {round}: a hold after the payment: {h:?}"
                    );
                }
                if h.status == 201 {
                    committed += 1;
                } else {
                    refused += 1;
                    if h.at < pay.answered {
                        refused_in_flight += 1;
                    }
                }
            }
        }

        // The database: exactly the holds answered 201 are the user's tickets besides the
        // paid one (a refused hold left nothing), and each committed before the payment.
        let who = b.authorize(&user.token).unwrap();
        let payments = b.payment_history(&who).unwrap();
        assert_eq!(payments.len(), 1);
        assert_eq!(payments[0].ticket_id.get(), ticket);
        let mut answered_201: Vec<i64> = holds.iter().flatten().filter_map(|h| h.id).collect();
        answered_201.sort_unstable();
        let mut stored: Vec<i64> = b
            .tickets(&who)
            .unwrap()
            .iter()
            .filter(|t| t.id.get() != ticket)
            .map(|t| {
                assert_eq!(t.status, TicketStatus::Held);
                t.id.get()
            })
            .collect();
        stored.sort_unstable();
        assert_eq!(answered_201, stored, "round {round}");
        // How to tell that a hold committed before the payment. Not by row ids: a ticket's id
        // and the payment's (or its ledger row's) come from separate tables' rowid sequences
        // (each max + 1 of its own table), so comparing them says nothing about which
        // transaction committed first; ticket ids only order holds among themselves. By
        // time: `created_at` of a ticket and `paid_at` of the payment are each the writer's
        // `now`, read from the same system clock (one kernel, two processes) once its
        // transaction holds SQLite's write lock (`BEGIN IMMEDIATE`, then the clock — for each
        // operation of a group-commit batch too). One transaction in all processes holds that
        // lock at a time, so a hold that committed after the payment read the clock after the
        // payment did: created_at >= paid_at; one that committed before: created_at <=
        // paid_at. So `created_at > paid_at` proves a hold came after the payment. The same
        // millisecond cannot be ordered and is let through: the check may miss a late hold
        // within one millisecond of the payment (one group-commit batch), never flags a
        // correct run (unless the wall clock steps back during the test), and over many
        // rounds a hold that skips the in-transaction check shows up.
        //
        // On PostgreSQL many transactions run at once and each reads the clock when it starts,
        // so those times say nothing of commit order; the server's own commit timestamps do
        // (`track_commit_timestamp`, on in the test cluster): in microseconds, strictly
        // ordered by the lock the hold and the payment both take (the user's queue entry).
        let stamp = |table: &str, column: &str, key: &str, id: i64| -> i64 {
            let sql = if backend.is_postgres() {
                format!(
                    "SELECT CAST(EXTRACT(EPOCH FROM pg_xact_commit_timestamp(xmin)) * 1000000
                                 AS BIGINT) FROM {table} WHERE {key} = ?1"
                )
            } else {
                format!("SELECT {column} FROM {table} WHERE {key} = ?1")
            };
            read.int(&sql, &[&id])
        };
        let paid_at = stamp("payments", "paid_at", "ticket_id", ticket);
        for id in &stored {
            let created_at = stamp("tickets", "created_at", "id", *id);
            assert!(
                created_at <= paid_at,
                "round {round}: ticket {id} held at {created_at}, after the payment at {paid_at}"
            );
        }
    }
    let report = b.operator().verify().unwrap();
    assert!(report.ok, "{:?}", report.violations);
    // The race was run: holds committed, and holds sent before the payment's answer came back
    // (racing it) were refused.
    assert!(
        committed > 0 && refused > 0,
        "{committed} committed, {refused} refused"
    );
    assert!(
        refused_in_flight > 0,
        "no hold racing a payment was refused ({committed} committed, {refused} refused)"
    );
    eprintln!(
        "{ROUNDS} rounds in {:?}: {committed} holds committed, {refused} refused ({refused_in_flight} of them sent before the payment's answer)",
        started.elapsed()
    );
}
