//! `booking-load`: HTTP load for `booking-server`, on this machine only.
//!
//! - `booking-load journey --url http://127.0.0.1:8080 --users 64 --duration 15s --db PATH`:
//!   virtual users run the whole journey; prints throughput, p50/p99 per step and errors, then
//!   runs `verify` on the server's database and checks that the seats sold during the run
//!   equal the 201 payments. Exit 1 on any error, failed check or broken invariant.
//! - `booking-load prepare --db PATH [--out DIR]`: seeds a journey catalog and, with `--out`,
//!   writes request data for `wrk` (see `scripts/bench-http.sh`).
//! - `booking-load verify --db PATH`: runs `verify` and counts sold seats and payments (after a
//!   `wrk` run). Exit 1 on any broken invariant.
#![forbid(unsafe_code)]

#[cfg(test)]
mod fake;
mod journey;
mod prepare;
#[path = "../../../benches/common/stats.rs"]
#[allow(dead_code)] // shared with the benchmarks, which use all of it
mod stats;
mod target;

use anyhow::{bail, Context};
use booking::{parse_duration, Booking, Config, SeatStatus};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(version, about = "HTTP load for booking-server (loopback only)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the booking journey with N virtual users, then verify the database.
    Journey(JourneyArgs),
    /// Seed a journey catalog and (with --out) write request data for wrk.
    Prepare {
        /// The database the server will use (created if missing); prepare before starting it.
        #[arg(long)]
        db: PathBuf,
        /// Where to write the wrk data files (none without it).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        plan: prepare::Plan,
    },
    /// Fill a database's waiting room: ACTIVE admitted users and WAITING users in line, and
    /// write sampled tokens of each for `wrk` (see `scripts/bench-queue.sh`).
    PrepareQueue {
        /// The database (created if missing).
        #[arg(long)]
        db: PathBuf,
        /// Where to write `active.txt` and `waiting.txt`.
        #[arg(long)]
        out: PathBuf,
        /// Admitted users.
        #[arg(long, default_value_t = 100)]
        active: u64,
        /// Users in line behind them.
        #[arg(long, default_value_t = 0)]
        waiting: u64,
        /// Users in the prequeue of an opening a year ahead (`booking-cli queue open-at now`
        /// opens it).
        #[arg(long, default_value_t = 0)]
        prequeue: u64,
    },
    /// Sell out a new showtime of SEATS seats (four per buyer) and print its id (to time
    /// `booking-cli showtime cancel` on it).
    PrepareSoldOut {
        /// The database (created if missing).
        #[arg(long)]
        db: PathBuf,
        /// Seats of the showtime.
        #[arg(long, default_value_t = 50_000)]
        seats: u32,
    },
    /// Check every invariant of a database and count its sold seats and payments.
    Verify {
        /// The database (the server may be running on it).
        #[arg(long)]
        db: PathBuf,
    },
}

#[derive(clap::Args)]
struct JourneyArgs {
    /// The server's base URL; loopback addresses only.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Virtual users (each a thread with its own keep-alive connection), 1..=1024.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    users: u16,
    /// How long journeys keep starting (at most 10 minutes).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    duration: Duration,
    /// The server's database: afterwards, run verify and count the seats sold.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Pause between polls of a waiting user.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    poll_interval: Duration,
    /// Most journeys in all.
    #[arg(long, default_value_t = 1_000_000)]
    max_journeys: u64,
    /// A request slower than this counts as an error.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
}

fn main() {
    match try_main() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("booking-load: error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn try_main() -> anyhow::Result<bool> {
    match Cli::parse().cmd {
        Cmd::Prepare { db, out, plan } => {
            prepare::prepare(&db, out.as_deref(), &plan)?;
            Ok(true)
        }
        Cmd::PrepareQueue {
            db,
            out,
            active,
            waiting,
            prequeue,
        } => {
            prepare::prepare_queue(&db, &out, active, waiting, prequeue)?;
            Ok(true)
        }
        Cmd::PrepareSoldOut { db, seats } => {
            prepare::prepare_sold_out(&db, seats)?;
            Ok(true)
        }
        Cmd::Journey(args) => run_journey(args),
        Cmd::Verify { db } => {
            let b = open_for_checks(&db)?;
            let ok = verified(&b)?;
            let payments = b.operator().stats()?.payments;
            println!("sold seats: {}, payments: {payments}", sold_seats(&b)?);
            Ok(ok)
        }
    }
}

fn run_journey(args: JourneyArgs) -> anyhow::Result<bool> {
    if args.duration > Duration::from_secs(600) {
        bail!("--duration is at most 10 minutes");
    }
    // The loopback check, on the URL, before any client is built.
    let target = target::Target::parse(&args.url)?;
    let db = args.db.as_ref().map(open_for_checks).transpose()?;
    let sold_before = db.as_ref().map(sold_seats).transpose()?;
    let opts = journey::Options {
        users: usize::from(args.users),
        duration: args.duration,
        poll_interval: args.poll_interval,
        max_journeys: args.max_journeys,
        timeout: args.timeout,
    };
    println!(
        "journey: {} users for {:?} against {} ...",
        opts.users, opts.duration, args.url
    );
    let report = journey::run(&target, &opts);
    println!("\n{}", report.table());
    let worst_p99 = report
        .steps
        .iter()
        .filter(|s| s.lat.count() > 0)
        .map(|s| s.lat.quantile_us(0.99) / 1000.0)
        .fold(0.0, f64::max);
    println!(
        "journeys {} in {:.1?}: {} paid ({:.0}/s), {} found no seat; errors {}; worst step p99 {:.1} ms (target < 50 ms)",
        report.journeys,
        report.elapsed,
        report.paid,
        report.paid as f64 / report.elapsed.as_secs_f64(),
        report.no_seat,
        report.error_count(),
        worst_p99
    );
    for e in &report.errors {
        println!("  error: {e}");
    }
    let mut ok = report.error_count() == 0;
    if let (Some(b), Some(before)) = (&db, sold_before) {
        let clean = verified(b)?;
        let sold = sold_seats(b)? - before;
        println!(
            "seats sold during the run: {sold}; payments answered 201: {}",
            report.paid
        );
        ok &= clean && sold == report.paid;
    }
    println!("result: {}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}

/// Opens the server's database alongside it, for checks only (a fixed secret, so opening
/// writes nothing; no token is issued here).
fn open_for_checks(path: &PathBuf) -> anyhow::Result<Booking> {
    let cfg = Config::default().with_jwt_secret(b"booking-load checks only".to_vec());
    Booking::open(path, cfg).with_context(|| format!("cannot open {}", path.display()))
}

/// Runs `verify` and prints its verdict and violations; true when clean.
fn verified(b: &Booking) -> anyhow::Result<bool> {
    let verify = b.operator().verify()?;
    println!("verify: {}", if verify.ok { "ok" } else { "VIOLATIONS" });
    for v in &verify.violations {
        println!("  violation {}: {}", v.invariant, v.detail);
    }
    Ok(verify.ok)
}

/// Seats sold across the whole catalog.
fn sold_seats(b: &Booking) -> anyhow::Result<u64> {
    let mut sold = 0;
    let op = b.operator();
    for c in op.concerts()? {
        for st in op.showtimes(c.id)? {
            let seats = op.seats(st.id)?;
            sold += seats
                .iter()
                .filter(|s| s.status == SeatStatus::Sold)
                .count() as u64;
        }
    }
    Ok(sold)
}
