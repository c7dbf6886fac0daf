//! Library benchmark: throughput and p50/p99 latency of enter, poll, hold, charge and pay,
//! with one and several threads, direct commits and group commit, next to a raw SQLite
//! baseline of the same shape of transaction (BEGIN IMMEDIATE; insert one ticket row; update
//! one seat; COMMIT) with the same pragmas. Every figure is also given as a ratio to that
//! baseline (same durability, same thread count), so machine noise cancels.
//!
//! `cargo bench --features bench --bench library [-- --durability full,normal --threads 1,8
//! --secs 2 --max-ops 100000 baseline enter poll hold charge pay]` — naming cases runs only
//! those; without `baseline` among them there are no ratios (handy under a profiler).

mod common;

use booking::{
    BatchStats, Booking, Config, Durability, EntryStatus, Identity, Points, TicketId, MAX_SEATS,
};
use common::stats::{num, Table};
use common::{admitted, config, fast, ok, open, prepare, run, showtime, sync, Args, Outcome};
use common::{TempDb, OUTCOME_COLUMNS, PRICE};
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Write operations measured in both commit modes.
const WRITES: [&str; 4] = ["enter", "hold", "charge", "pay"];

/// Waiting users polled in the poll case.
const POLLED: u64 = 1_000;

/// Users charged in turn in the charge case.
const WALLETS: u64 = 10_000;

fn main() {
    let args = Args::parse(&[1, 8], 2.0, 100_000);
    println!("{}\n", common::machine());
    let head = ["op", "sync", "commit", "threads"];
    let mut results = Table::new(&[&head[..], &OUTCOME_COLUMNS, &["× raw"]].concat());
    let mut header = vec!["op", "sync", "threads", "batches", "ops/batch"];
    header.extend(BATCH_SIZES);
    let mut batches = Table::new(&header);
    let mut first_errors = Vec::new();
    let mut hold_rates = HashMap::new();
    for &d in &args.durabilities {
        for &threads in &args.threads {
            // Named cases without `baseline` skip it (for profiling one case): no ratios then.
            let base = args.wants("baseline").then(|| baseline(d, threads, &args));
            let base_rate = base.as_ref().map_or(f64::NAN, Outcome::rate);
            let mut report = |op: &str, commit: &str, out: &Outcome| {
                eprintln!(
                    "  {op} {} {commit} ×{threads}: {:.0}/s",
                    sync(d),
                    out.rate()
                );
                let head = [op, &sync(d), commit, &threads.to_string()].map(String::from);
                let ratio = num(out.rate() / base_rate);
                results.row([&head[..], &out.cells(), &[ratio]].concat());
                if let Some(e) = &out.first_error {
                    first_errors.push(format!("{op} {commit} ×{threads}: {e}"));
                }
            };
            if let Some(base) = &base {
                report("raw SQLite", "raw", base);
            }
            for op in ["enter", "poll", "hold", "charge", "pay"] {
                if !args.wants(op) {
                    continue;
                }
                let modes: &[bool] = if WRITES.contains(&op) {
                    &[false, true]
                } else {
                    &[false]
                };
                for &gc in modes {
                    let key = (sync(d), threads, gc);
                    let case = Case {
                        durability: d,
                        group_commit: gc,
                        threads,
                        args: &args,
                    };
                    let (out, stats) = match op {
                        "enter" => case.enter(),
                        "poll" => case.poll(),
                        "hold" => case.hold(),
                        "charge" => case.charge(),
                        _ => case.pay(hold_rates.get(&key).copied()),
                    };
                    if op == "hold" {
                        hold_rates.insert(key, out.rate());
                    }
                    report(op, if gc { "group" } else { "direct" }, &out);
                    if let Some(s) = stats.filter(|_| gc) {
                        batches.row(batch_row(op, d, threads, &s));
                    }
                }
            }
        }
    }
    println!("{results}");
    if !batches.is_empty() {
        println!("Group-commit batch sizes (batches per size bucket):\n\n{batches}");
    }
    for e in first_errors {
        println!("first error of {e}");
    }
}

/// The raw SQLite baseline: one connection shared by the threads under a mutex (as the library
/// shares its write connection), each operation one immediate transaction that inserts a held
/// ticket and points its seat at it.
fn baseline(d: Durability, threads: usize, args: &Args) -> Outcome {
    let db = TempDb::new();
    let (showtime, seats) = {
        let b = open(&db.path, fast(&config(d, false)));
        let (_, st, seats) = showtime(&b, seat_count(args));
        (st, seats)
    };
    let conn = Connection::open(&db.path).expect("open raw connection");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn.pragma_update(None, "synchronous", sync(d)).unwrap();
    conn.pragma_update(None, "mmap_size", 256i64 << 20).unwrap();
    conn.set_prepared_statement_cache_capacity(64);
    let conn = Mutex::new(conn);
    let users: Vec<String> = (0..seats.len() / 4 + 1)
        .map(|_| booking::UserId::new_random().to_string())
        .collect();
    run(threads, args.limit(), seats.len() as u64, |i| {
        let now = chrono::Utc::now().timestamp_millis();
        let until = now + 300_000;
        let mut c = conn.lock().unwrap();
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        let seat = seats[i as usize].get();
        tx.prepare_cached(
            "INSERT INTO tickets (user_id, showtime_id, seat_id, price, status, created_at, held_until)
             VALUES (?1, ?2, ?3, ?4, 'held', ?5, ?6)",
        )
        .and_then(|mut s| s.execute(params![users[i as usize / 4], showtime.get(), seat, PRICE.get(), now, until]))
        .map_err(|e| e.to_string())?;
        let ticket = tx.last_insert_rowid();
        tx.prepare_cached("UPDATE seats SET ticket_id = ?2, held_until = ?3 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![seat, ticket, until]))
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
    })
}

/// Seats to create for a hold-like case: one per operation it may run.
fn seat_count(args: &Args) -> u32 {
    args.max_ops.clamp(1, u64::from(MAX_SEATS)) as u32
}

/// The size classes of the batch table (as [`BatchStats::by_size`] names them).
const BATCH_SIZES: [&str; 8] = [
    "1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128+",
];

/// One measured case: a durability, a commit mode and a thread count, on a fresh database.
struct Case<'a> {
    durability: Durability,
    group_commit: bool,
    threads: usize,
    args: &'a Args,
}

type Measured = (Outcome, Option<BatchCounts>);

impl Case<'_> {
    fn config(&self) -> Config {
        config(self.durability, self.group_commit)
    }

    /// Opens the measured handle on `db` and times `op` on it.
    fn measure<F>(&self, db: &TempDb, n: u64, op: F) -> Measured
    where
        F: Fn(&Booking, u64) -> Result<(), String> + Sync,
    {
        let b = open(&db.path, self.config());
        let out = run(self.threads, self.args.limit(), n, |i| op(&b, i));
        (out, b.batch_stats().map(BatchCounts::of))
    }

    /// New users entering the queue (admitted while there is room, then waiting).
    fn enter(&self) -> Measured {
        let db = TempDb::new();
        self.measure(&db, self.args.max_ops, |b, _| ok(b.enter_queue(None)))
    }

    /// Waiting users polling when nothing is due: the queue is full (100 active) and each
    /// poller was seen just now, so no poll should take the write lock — checked by running
    /// with group commit on and counting the writer's operations.
    fn poll(&self) -> Measured {
        let db = TempDb::new();
        let cfg = self.config();
        let waiting = Mutex::new(Vec::new());
        {
            let prep = open(&db.path, fast(&cfg));
            prepare(u64::from(cfg.max_active), |_| ok(prep.enter_queue(None)));
            prepare(POLLED, |_| {
                let e = prep.enter_queue(None).map_err(|e| e.to_string())?;
                let who = prep.authorize(&e.token).map_err(|e| e.to_string())?;
                waiting.lock().unwrap().push(who);
                Ok(())
            });
        }
        let waiting: Vec<Identity> = waiting.into_inner().unwrap();
        let b = open(&db.path, cfg.with_group_commit(Some(Default::default())));
        let out = run(self.threads, self.args.limit(), self.args.max_ops, |i| {
            let s = b.queue_status(&waiting[i as usize % waiting.len()]);
            match s.map_err(|e| e.to_string())?.status {
                EntryStatus::Waiting => Ok(()),
                other => Err(format!("a waiting user polled as {other:?}")),
            }
        });
        let writes = BatchCounts::of(b.batch_stats().expect("group commit on")).operations;
        if writes > 0 {
            eprintln!("warning: {writes} polls took the write path");
        }
        (out, None)
    }

    /// Holds of distinct free seats, four per user (the per-showtime limit).
    fn hold(&self) -> Measured {
        let db = TempDb::new();
        let (showtime, seats) = {
            let prep = open(&db.path, fast(&self.config()));
            let (_, st, seats) = showtime(&prep, seat_count(self.args));
            (st, seats)
        };
        let users = admitted(&db.path, seats.len() as u64 / 4 + 1);
        self.measure(&db, seats.len() as u64, |b, i| {
            ok(b.hold(&users[i as usize / 4], showtime, seats[i as usize]))
        })
    }

    /// Charges spread over many wallets, without idempotency keys.
    fn charge(&self) -> Measured {
        let db = TempDb::new();
        let users = admitted(&db.path, WALLETS);
        self.measure(&db, self.args.max_ops, |b, i| {
            ok(b.charge(&users[(i % WALLETS) as usize], PRICE, None))
        })
    }

    /// Payments of prepared holds (four per user, wallets charged for all four). The number of
    /// holds prepared follows the hold rate measured for the same setting, so the preparation
    /// stays short; pay costs more than hold, so it cannot run out.
    fn pay(&self, hold_rate: Option<f64>) -> Measured {
        let db = TempDb::new();
        let n = hold_rate
            .map(|r| (r * self.args.secs * 1.5) as u64 + 1_000)
            .unwrap_or(u64::MAX)
            .min(u64::from(seat_count(self.args)));
        let users = admitted(&db.path, n / 4 + 1);
        let tickets: Vec<AtomicI64> = (0..n).map(|_| AtomicI64::new(0)).collect();
        {
            let prep = open(&db.path, fast(&self.config()));
            let (_, st, seats) = showtime(&prep, n as u32);
            prepare(n, |i| {
                let t = prep.hold(&users[i as usize / 4], st, seats[i as usize]);
                tickets[i as usize]
                    .store(t.map_err(|e| e.to_string())?.id.get(), Ordering::Relaxed);
                Ok(())
            });
            prepare(users.len() as u64, |u| {
                ok(prep.charge(&users[u as usize], Points::new(4 * PRICE.get()), None))
            });
        }
        self.measure(&db, n, |b, i| {
            let ticket = TicketId::new(tickets[i as usize].load(Ordering::Relaxed));
            ok(ticket.and_then(|t| b.pay(&users[i as usize / 4], t, None)))
        })
    }
}

/// A snapshot of the group-commit writer's batch sizes.
struct BatchCounts {
    batches: u64,
    operations: u64,
    by_size: Vec<u64>,
}

impl BatchCounts {
    fn of(s: BatchStats) -> BatchCounts {
        BatchCounts {
            batches: s.batches,
            operations: s.operations,
            by_size: s.by_size.iter().map(|(_, n)| *n).collect(),
        }
    }
}

fn batch_row(op: &str, d: Durability, threads: usize, s: &BatchCounts) -> Vec<String> {
    let mut row = vec![
        op.to_string(),
        sync(d),
        threads.to_string(),
        s.batches.to_string(),
        num(s.operations as f64 / s.batches.max(1) as f64),
    ];
    row.extend(s.by_size.iter().map(|c| c.to_string()));
    row
}
