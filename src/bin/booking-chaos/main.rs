//! `booking-chaos`: long-running checks of a live `booking-server`, on this machine only.
//!
//! - `booking-chaos soak --url http://127.0.0.1:8080 --pid PID --rate 20 --minutes 30`: the
//!   booking journey started at a steady rate (open loop: a journey starts on schedule whether
//!   or not earlier ones are done), and every minute one row: journeys and requests of that
//!   minute, errors, p50/p99/max latency, and the server's resident memory, open descriptors
//!   and threads (from `/proc/PID`). With `--db`, `verify` runs on the database at the end.
//!   Exit 1 on any error or broken invariant. `scripts/soak.sh` builds, starts a server and
//!   runs this.
//!
//! The history-checked chaos test (several servers, a nemesis, a checker) is `tests/chaos.rs`.
#![forbid(unsafe_code)]

mod soak;
#[path = "../../../benches/common/stats.rs"]
#[allow(dead_code)] // shared with the benchmarks, which use all of it
mod stats;
#[path = "../booking-load/target.rs"]
mod target;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "Long-running checks of booking-server (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The journey at a steady rate for a long time, with the server's figures every minute.
    Soak(soak::Args),
}

fn main() {
    let result = match Cli::parse().cmd {
        Cmd::Soak(args) => soak::run(args),
    };
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("booking-chaos: error: {e:#}");
            std::process::exit(1);
        }
    }
}
