//! Scale benchmark: the cost of entering the queue and of polling it (a poll that changes
//! nothing) with 1k, 100k and 1M users waiting — it must stay flat, since a position is
//! `entry id − frontier`, never a count — and listing and holding seats of a 50,000-seat
//! showtime.
//!
//! Queues are built directly with SQL in one transaction (100 active users, then N waiting,
//! frontier at the last active one), which is what N enters followed by admission would leave.
//!
//! `[BOOKING_BENCH_SIZES=1000,100000,1000000] cargo bench --features bench --bench scale
//! [-- --durability full,normal --threads 1,8 --secs 1 --max-ops 20000 queue seats]`

mod common;

use booking::{Booking, Config, EntryStatus, Identity, UserId};
use common::stats::{num, Table};
use common::{admitted, config, fast, ok, open, prepare, run, showtime, sync, Args, Outcome};
use common::{TempDb, OUTCOME_COLUMNS};
use rusqlite::{params, Connection};
use std::sync::Mutex;

/// Waiting users polled, spread evenly along the queue.
const POLLED: u64 = 1_000;

/// Seats of the big showtime.
const BIG_SHOWTIME: u32 = 50_000;

fn main() {
    let args = Args::parse(&[1, 8], 1.0, 20_000);
    let sizes = sizes();
    println!("{}\n", common::machine());
    if args.wants("queue") {
        println!("{}", queue(&args, &sizes));
    }
    if args.wants("seats") {
        println!("{}", seats(&args));
    }
}

/// Queue sizes from `BOOKING_BENCH_SIZES`; 1k, 100k and 1M by default.
fn sizes() -> Vec<u64> {
    std::env::var("BOOKING_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 100_000, 1_000_000])
}

/// Measurement rounds; each figure is the median round, and rounds go over all sizes in turn
/// so that a noisy moment on a shared machine hits every size alike.
const ROUNDS: usize = 3;

fn queue(args: &Args, sizes: &[u64]) -> Table {
    let mut table = Table::new(
        &[
            &["waiting", "op", "sync", "threads"][..],
            &OUTCOME_COLUMNS,
            &["µs/op", "× cost at first size"],
        ]
        .concat(),
    );
    let queues: Vec<(u64, TempDb, Vec<Identity>)> = sizes
        .iter()
        .map(|&n| {
            let db = TempDb::new();
            let t0 = std::time::Instant::now();
            build_queue(&db, n);
            let polled = tokens_of_sampled(&db, n);
            eprintln!("queue of {n} built in {:.1?}", t0.elapsed());
            (n, db, polled)
        })
        .collect();
    for &d in &args.durabilities {
        let handles: Vec<Booking> = queues
            .iter()
            .map(|(_, db, _)| open(&db.path, config(d, false)))
            .collect();
        for &threads in &args.threads {
            for op in ["poll", "enter"] {
                let mut rounds: Vec<Vec<Outcome>> = queues.iter().map(|_| Vec::new()).collect();
                for _ in 0..ROUNDS {
                    for (k, ((n, db, polled), b)) in queues.iter().zip(&handles).enumerate() {
                        let out = run(threads, args.limit(), args.max_ops, |i| match op {
                            "poll" => poll(b, &polled[i as usize % polled.len()]),
                            _ => ok(b.enter_queue(None)),
                        });
                        if op == "enter" {
                            trim_queue(db, *n); // back to exactly n waiting
                        }
                        rounds[k].push(out);
                    }
                }
                let medians: Vec<Outcome> = rounds.into_iter().map(median).collect();
                // Cost per operation as machine time (1 / throughput): with more threads than
                // cores, a single call's latency mostly measures waiting for a core.
                let cost = |o: &Outcome| 1e6 / o.rate();
                for ((n, _, _), out) in queues.iter().zip(&medians) {
                    let head = [&n.to_string(), op, &sync(d), &threads.to_string()];
                    let tail = [num(cost(out)), num(cost(out) / cost(&medians[0]))];
                    table.row([&head.map(String::from)[..], &out.cells(), &tail].concat());
                    eprintln!("  {n} {op} {d:?} ×{threads}: {:.1} µs/op", cost(out));
                }
            }
        }
    }
    table
}

/// The round with the median throughput.
fn median(mut rounds: Vec<Outcome>) -> Outcome {
    rounds.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    rounds.swap_remove(rounds.len() / 2)
}

/// Removes the entries a measurement of `enter` added, so every round and size sees its queue
/// of exactly `n` waiting users (and puts the kept counts back).
fn trim_queue(db: &TempDb, n: u64) {
    let c = Connection::open(&db.path).expect("open");
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let last = u64::from(Config::default().max_active) + n;
    c.execute("DELETE FROM queue_entries WHERE id > ?1", [last as i64])
        .expect("trim the queue");
    c.execute(
        "UPDATE queue_state SET next_seq = ?1,
                active_count = (SELECT COUNT(*) FROM queue_entries WHERE status = 'active')
         WHERE id = 1",
        [last as i64],
    )
    .expect("put the kept counts back");
}

/// Fills the queue of a fresh database: 100 active users (a full room at the default
/// `max_active`), then `n` waiting, all seen just now; the frontier is the last active entry.
fn build_queue(db: &TempDb, n: u64) {
    drop(open(&db.path, Config::default())); // creates the schema and the JWT secret
    let mut c = Connection::open(&db.path).expect("open");
    c.pragma_update(None, "synchronous", "OFF").unwrap();
    c.pragma_update(None, "cache_size", -262_144).unwrap(); // 256 MiB while building
    let cfg = Config::default();
    let now = chrono::Utc::now().timestamp_millis();
    let until = now + cfg.active_ttl.as_millis() as i64;
    let tx = c.transaction().unwrap();
    {
        // Places in line are the entry ids here (`seq = id`), as entering would hand them out.
        let mut active = tx
            .prepare(
                "INSERT INTO queue_entries
                 (user_id, status, created_at, last_seen_at, activated_at, active_until, seq)
                 VALUES (?1, 'active', ?2, ?2, ?2, ?3, (SELECT COALESCE(MAX(id), 0) + 1 FROM queue_entries))",
            )
            .unwrap();
        for _ in 0..cfg.max_active {
            active
                .execute(params![UserId::new_random().to_string(), now, until])
                .unwrap();
        }
        let mut waiting = tx
            .prepare(
                "INSERT INTO queue_entries (user_id, status, created_at, last_seen_at, seq)
                 VALUES (?1, 'waiting', ?2, ?2, (SELECT COALESCE(MAX(id), 0) + 1 FROM queue_entries))",
            )
            .unwrap();
        for _ in 0..n {
            waiting
                .execute(params![UserId::new_random().to_string(), now])
                .unwrap();
        }
        // The kept counts, as admission would have left them.
        tx.execute(
            "UPDATE queue_state SET frontier = ?1, active_count = ?1, admitted_total = ?1,
                    next_seq = (SELECT MAX(seq) FROM queue_entries) WHERE id = 1",
            [cfg.max_active],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
}

/// Tokens of [`POLLED`] waiting users spread evenly along a queue of `n`, got the way a client
/// gets one again: entering with its user id returns its live entry and a fresh token.
fn tokens_of_sampled(db: &TempDb, n: u64) -> Vec<Identity> {
    let users: Vec<UserId> = {
        let c = Connection::open(&db.path).expect("open");
        let first = u64::from(Config::default().max_active) + 1;
        (0..POLLED.min(n))
            .map(|k| {
                let id = first + k * n / POLLED.min(n);
                let user: String = c
                    .query_row(
                        "SELECT user_id FROM queue_entries WHERE id = ?1",
                        [id as i64],
                        |r| r.get(0),
                    )
                    .expect("a sampled entry");
                UserId::parse(&user).expect("a stored user id")
            })
            .collect()
    };
    let prep = open(&db.path, fast(&Config::default()));
    let out = Mutex::new(Vec::new());
    prepare(users.len() as u64, |i| {
        let e = prep
            .enter_queue(Some(users[i as usize]))
            .map_err(|e| e.to_string())?;
        if e.created || e.status.status != EntryStatus::Waiting {
            return Err(format!("sampled user not found waiting: {:?}", e.status));
        }
        let who = prep.authorize(&e.token).map_err(|e| e.to_string())?;
        out.lock().unwrap().push(who);
        Ok(())
    });
    out.into_inner().unwrap()
}

fn poll(b: &Booking, who: &Identity) -> Result<(), String> {
    match b.queue_status(who).map_err(|e| e.to_string())?.status {
        EntryStatus::Waiting => Ok(()),
        other => Err(format!("a waiting user polled as {other:?}")),
    }
}

/// Listing every seat of a 50,000-seat showtime (and of a 50-seat one, for scale), and holding
/// distinct seats spread over the big one.
fn seats(args: &Args) -> Table {
    let mut table =
        Table::new(&[&["seats", "op", "sync", "threads"][..], &OUTCOME_COLUMNS].concat());
    for &d in &args.durabilities {
        let db = TempDb::new();
        let (big, small) = {
            let prep = open(&db.path, fast(&Config::default()));
            (showtime(&prep, BIG_SHOWTIME), showtime(&prep, 50))
        };
        let b = open(&db.path, config(d, false));
        let mut row = |seats: u32, op: &str, threads: usize, out: Outcome| {
            let head = [&seats.to_string(), op, &sync(d), &threads.to_string()];
            table.row([&head.map(String::from)[..], &out.cells()].concat());
        };
        for &threads in &args.threads {
            for (n, (_, showtime, _)) in [(BIG_SHOWTIME, &big), (50, &small)] {
                let out = run(threads, args.limit(), args.max_ops, |_| {
                    let seats = b.operator().seats(*showtime).map_err(|e| e.to_string())?;
                    (seats.len() == n as usize)
                        .then_some(())
                        .ok_or_else(|| format!("listed {} seats", seats.len()))
                });
                row(n, "list", threads, out);
            }
        }
        row(BIG_SHOWTIME, "hold", 1, hold_spread(&b, &big, args));
    }
    table
}

/// Holds of distinct seats spread over the whole showtime (a stride prime to its size), four
/// per user.
fn hold_spread(
    b: &Booking,
    (_, showtime, seats): &(
        booking::ConcertId,
        booking::ShowtimeId,
        Vec<booking::SeatId>,
    ),
    args: &Args,
) -> Outcome {
    let n = seats.len() as u64;
    let users = admitted(b.location().file().unwrap(), args.max_ops.min(n) / 4 + 1);
    run(1, args.limit(), args.max_ops.min(n), |i| {
        let seat = seats[((i * 7_919) % n) as usize];
        ok(b.hold(&users[i as usize / 4], *showtime, seat))
    })
}
