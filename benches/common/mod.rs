//! What the benchmarks share: command-line options, a multi-threaded timing loop, fresh
//! temporary databases and catalogs.

#![allow(dead_code)] // each benchmark uses its own part of this module

pub mod stats;

use booking::{
    Active, Booking, ConcertId, Config, Durability, GroupCommit, NewShowtime, Points, Pricing,
    SeatId, ShowtimeId,
};
use stats::Latencies;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// Options common to the benchmarks: `[--durability full,normal] [--threads 1,8] [--secs 2]
/// [--max-ops N] [CASE...]` (cases filter by name; `cargo bench` also passes `--bench`).
pub struct Args {
    /// Durability settings to measure.
    pub durabilities: Vec<Durability>,
    /// Thread counts to measure.
    pub threads: Vec<usize>,
    /// Longest time one case runs.
    pub secs: f64,
    /// Most operations one case runs.
    pub max_ops: u64,
    /// Case names to run (empty: all).
    pub only: Vec<String>,
}

impl Args {
    /// Parses the process's arguments, with these defaults.
    pub fn parse(threads: &[usize], secs: f64, max_ops: u64) -> Args {
        let mut a = Args {
            durabilities: vec![Durability::Full, Durability::Normal],
            threads: threads.to_vec(),
            secs,
            max_ops,
            only: Vec::new(),
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = |name: &str| it.next().unwrap_or_else(|| usage(name));
            match arg.as_str() {
                "--bench" => {}
                "--durability" => {
                    a.durabilities = list(&value("--durability"), |s| s.parse().ok());
                }
                "--threads" => a.threads = list(&value("--threads"), |s| s.parse().ok()),
                "--secs" => a.secs = value("--secs").parse().unwrap_or_else(|_| usage("--secs")),
                "--max-ops" => {
                    a.max_ops = value("--max-ops")
                        .parse()
                        .unwrap_or_else(|_| usage("--max-ops"))
                }
                s if s.starts_with('-') => usage(s),
                s => a.only.push(s.to_string()),
            }
        }
        a
    }

    /// Whether case `name` was asked for.
    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    /// The time limit of one case.
    pub fn limit(&self) -> Duration {
        Duration::from_secs_f64(self.secs)
    }
}

fn list<T>(s: &str, parse: impl Fn(&str) -> Option<T>) -> Vec<T> {
    s.split(',')
        .map(|x| parse(x.trim()).unwrap_or_else(|| usage(x)))
        .collect()
}

fn usage(bad: &str) -> ! {
    eprintln!(
        "bad argument {bad:?}\nusage: [--durability full,normal] [--threads 1,8] [--secs S] [--max-ops N] [CASE...]"
    );
    std::process::exit(2)
}

/// What one timed case did.
pub struct Outcome {
    /// Operations that succeeded.
    pub ops: u64,
    /// Operations that failed.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Wall time from the common start to the last thread's end.
    pub elapsed: Duration,
    /// Latency of every operation (failed ones included).
    pub lat: Latencies,
}

impl Outcome {
    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// The columns `ops`, `ops/s`, `p50 µs`, `p99 µs`, `errors` of a results table.
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.ops.to_string(),
            stats::num(self.rate()),
            stats::num(self.lat.quantile_us(0.50)),
            stats::num(self.lat.quantile_us(0.99)),
            self.errors.to_string(),
        ]
    }
}

/// The column titles matching [`Outcome::cells`].
pub const OUTCOME_COLUMNS: [&str; 5] = ["ops", "ops/s", "p50 µs", "p99 µs", "errors"];

/// Runs `op(i)` on `threads` threads, for global indices `i` in `0..max_ops` (thread `t` takes
/// `t, t + threads, ...`), until the indices run out or `limit` has passed. Every `i` is given
/// to at most one call, so `i` can pick a distinct seat or user.
pub fn run<F>(threads: usize, limit: Duration, max_ops: u64, op: F) -> Outcome
where
    F: Fn(u64) -> Result<(), String> + Sync,
{
    let threads = threads.max(1);
    let start_line = Barrier::new(threads + 1);
    let ops = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let first_error = Mutex::new(None);
    let lat = Mutex::new(Latencies::default());
    let (start, end) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let (op, start_line) = (&op, &start_line);
                let (ops, errors, first_error, lat) = (&ops, &errors, &first_error, &lat);
                s.spawn(move || {
                    let mut mine = Latencies::default();
                    start_line.wait();
                    let deadline = Instant::now() + limit;
                    let mut i = t;
                    while i < max_ops {
                        let t0 = Instant::now();
                        if t0 >= deadline {
                            break;
                        }
                        let result = op(i);
                        mine.record(t0.elapsed());
                        match result {
                            Ok(()) => ops.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                first_error.lock().unwrap().get_or_insert(e);
                                errors.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                        i += threads as u64;
                    }
                    lat.lock().unwrap().merge(&mine);
                    Instant::now()
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        let end = handles
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .max()
            .unwrap_or(start);
        (start, end)
    });
    Outcome {
        ops: ops.into_inner(),
        errors: errors.into_inner(),
        first_error: first_error.into_inner().unwrap(),
        elapsed: end
            .saturating_duration_since(start)
            .max(Duration::from_micros(1)),
        lat: lat.into_inner().unwrap(),
    }
}

/// Untimed preparation: runs `op(i)` for every `i` in `0..n` on a few threads; panics on any
/// failure (a benchmark must not measure a half-prepared database).
pub fn prepare<F>(n: u64, op: F)
where
    F: Fn(u64) -> Result<(), String> + Sync,
{
    let out = run(8, Duration::from_secs(3600), n, op);
    if out.errors > 0 || out.ops != n {
        panic!(
            "preparation failed: {} of {n} done, first error: {:?}",
            out.ops, out.first_error
        );
    }
}

/// A fresh database file in its own temporary directory (removed on drop). The directory is
/// `$BOOKING_BENCH_DIR` if set (to put it on another disk), else the system's temp dir.
pub struct TempDb {
    _dir: tempfile::TempDir,
    /// The database file (not yet created).
    pub path: PathBuf,
}

impl TempDb {
    /// A new empty directory.
    pub fn new() -> TempDb {
        let base = std::env::var_os("BOOKING_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("booking-bench-")
            .tempdir_in(base)
            .expect("a temporary directory");
        let path = dir.path().join("bench.db");
        TempDb { _dir: dir, path }
    }
}

/// The `synchronous` setting a durability stands for, as the tables show it: FULL or NORMAL.
pub fn sync(d: Durability) -> String {
    d.to_string().to_uppercase()
}

/// The configuration measured: the contract's defaults with this durability and commit mode.
pub fn config(durability: Durability, group_commit: bool) -> Config {
    Config::default()
        .with_durability(durability)
        .with_group_commit(group_commit.then(GroupCommit::default))
}

/// The same policy, made fast for untimed preparation (NORMAL, group commit).
pub fn fast(cfg: &Config) -> Config {
    cfg.clone()
        .with_durability(Durability::Normal)
        .with_group_commit(Some(GroupCommit::default()))
}

/// Opens `path`, or stops the benchmark with the reason.
pub fn open(path: &std::path::Path, cfg: Config) -> Booking {
    Booking::open(path, cfg).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// Adds a concert with one showtime of `seats` seats (30 days ahead, 1,000 points each) and
/// returns the seat ids in seat-number order.
pub fn showtime(b: &Booking, seats: u32) -> (ConcertId, ShowtimeId, Vec<SeatId>) {
    let op = b.operator();
    let concert = op
        .add_concert("Benchmark", "Loopback Hall")
        .expect("add concert");
    let starts_at = (b.now() + chrono::Duration::days(30)).fixed_offset();
    let showtime = op
        .add_showtime(
            concert,
            &NewShowtime {
                sale_opens_at: None,
                starts_at,
                seats,
                price: Pricing::Flat(PRICE),
            },
            |_| {},
        )
        .expect("add showtime");
    let ids = op
        .seats(showtime)
        .expect("list seats")
        .into_iter()
        .map(|s| s.id)
        .collect();
    (concert, showtime, ids)
}

/// The price of every benchmark seat.
pub const PRICE: Points = Points::new(1_000);

/// `n` users entered and admitted on the database at `path` (through a preparation handle that
/// admits everyone and keeps them active for two hours), with their proofs.
pub fn admitted(path: &std::path::Path, n: u64) -> Vec<Active> {
    let prep = open(
        path,
        fast(&Config::default())
            .with_max_active(u32::MAX)
            .with_active_ttl(Duration::from_secs(7200)),
    );
    let out = std::sync::Mutex::new(Vec::with_capacity(n as usize));
    prepare(n, |_| {
        let e = prep.enter_queue(None).map_err(|e| e.to_string())?;
        let who = prep.authorize_active(&e.token).map_err(|e| e.to_string())?;
        out.lock().unwrap().push(who);
        Ok(())
    });
    out.into_inner().unwrap()
}

/// A `Result` as the timing loop wants it.
pub fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| e.to_string())
}

/// One line naming the machine: CPUs, their model, the SQLite version, where databases go.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let dir = std::env::var_os("BOOKING_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    format!(
        "machine: {cpus} CPUs ({model}); SQLite {}; databases under {}",
        rusqlite::version(),
        dir.display()
    )
}
