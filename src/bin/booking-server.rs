//! `booking-server`: parse the flags, open the database, bind, serve (`docs/API.md` §5).
#![forbid(unsafe_code)]

use anyhow::{bail, Context};
use booking::{http, parse_duration, Booking, Config, Durability, GroupCommit, Location};
use clap::Parser;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// The booking HTTP server: waiting room, seat holds, points and payments over one SQLite file
/// or a PostgreSQL database.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The database: a SQLite file, or a postgres:// URL (created if missing).
    #[arg(
        long,
        env = "BOOKING_DB",
        default_value = "./booking.db",
        value_name = "PATH|URL"
    )]
    db: Location,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// How long a held seat stays reserved (300, 300s, 5m, 1h).
    #[arg(long, value_parser = parse_duration)]
    hold_ttl: Option<Duration>,
    /// Users admitted at once.
    #[arg(long)]
    max_active: Option<u32>,
    /// Newly admitted users per minute (0: no limit).
    #[arg(long)]
    admit_per_minute: Option<u32>,
    /// How long an admitted user stays active.
    #[arg(long, value_parser = parse_duration)]
    active_ttl: Option<Duration>,
    /// A waiting user who does not poll for this long drops out.
    #[arg(long, value_parser = parse_duration)]
    idle_timeout: Option<Duration>,
    /// Tickets one user may have per showtime: live holds and paid ones together.
    #[arg(long, alias = "max-holds-per-user")]
    max_tickets_per_user: Option<u32>,
    /// How many times one hold may be extended.
    #[arg(long)]
    max_hold_extensions: Option<u32>,
    /// The fee kept when a user cancels a paid ticket, in percent of its price (0-100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100))]
    cancel_fee_percent: Option<u32>,
    /// Users may cancel a paid ticket until this long before the show (300, 5m, 24h, ...).
    #[arg(long, value_parser = parse_duration)]
    cancel_cutoff: Option<Duration>,
    /// The most entries in line (waiting and prequeue); past it `POST /token` is 503 queue_full.
    #[arg(long, value_name = "N")]
    max_waiting: Option<u64>,
    /// New queue entries per minute per client address (0: no limit; carrier NAT puts many
    /// real users behind one address, so choose with care). Past it: 429 rate_limited.
    #[arg(long, value_name = "N", default_value_t = 0)]
    enter_rate_per_ip: u32,
    /// Take the client's address from the last X-Forwarded-For entry (only behind a proxy you
    /// trust to set it).
    #[arg(long)]
    trust_forwarded_for: bool,
    /// Worker threads answering requests.
    #[arg(long, default_value_t = http::Options::default().threads)]
    threads: usize,
    /// A file holding the JWT secret (used when BOOKING_JWT_SECRET is not set). Without either,
    /// a random secret is generated once and kept in the database.
    #[arg(long)]
    jwt_secret_file: Option<PathBuf>,
    /// Run each request write in its own transaction instead of sharing one commit (and one
    /// fsync) among the writes that arrive together.
    #[arg(long)]
    no_group_commit: bool,
    /// Commit durability: `full` (an acknowledged write survives power loss) or `normal` (it
    /// survives a crash of the process; the last commits may be lost on power loss).
    #[arg(long, default_value = "full", value_name = "full|normal")]
    durability: Durability,
    /// Seed a demo catalog if the database has no concerts, and print a quick start.
    #[arg(long)]
    demo: bool,
    /// Log one line per request to stderr, with this filter (default "info"; RUST_LOG also works).
    #[arg(long, num_args = 0..=1, default_missing_value = "info", value_name = "FILTER")]
    log: Option<String>,
}

fn main() {
    if let Err(e) = try_main() {
        eprintln!("booking-server: error: {e:#}");
        std::process::exit(1);
    }
}

fn try_main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log.as_deref());
    let cfg = config(&args)?;
    let booking = Booking::open(&args.db, cfg)
        .with_context(|| format!("cannot open the database {}", args.db))?;
    let seeded = if args.demo {
        booking.operator().seed_demo_if_empty()?
    } else {
        None
    };
    let listener = std::net::TcpListener::bind(&args.addr)
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;

    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, shutdown.clone())?;
        signal_hook::flag::register(signal, shutdown.clone())?;
    }

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "booking-server listening on http://{addr} (database {})",
        args.db
    )?;
    if args.demo {
        if let Some(r) = seeded {
            writeln!(
                out,
                "demo catalog seeded: {} concerts, {} showtimes, {} seats",
                r.concerts, r.showtimes, r.seats
            )?;
        }
        writeln!(out, "{}", quick_start(&addr.to_string()))?;
    }
    out.flush()?;
    drop(out);

    let options = http::Options {
        enter_rate_per_ip: args.enter_rate_per_ip,
        trust_forwarded_for: args.trust_forwarded_for,
        ..http::Options::default().with_threads(args.threads)
    };
    http::serve_with(listener, Arc::new(booking), shutdown, options)?;
    Ok(())
}

fn config(args: &Args) -> anyhow::Result<Config> {
    let d = Config::default();
    let mut cfg = Config {
        hold_ttl: args.hold_ttl.unwrap_or(d.hold_ttl),
        max_active: args.max_active.unwrap_or(d.max_active),
        admit_per_minute: args.admit_per_minute.unwrap_or(d.admit_per_minute),
        active_ttl: args.active_ttl.unwrap_or(d.active_ttl),
        idle_timeout: args.idle_timeout.unwrap_or(d.idle_timeout),
        max_tickets_per_user: args.max_tickets_per_user.unwrap_or(d.max_tickets_per_user),
        max_hold_extensions: args.max_hold_extensions.unwrap_or(d.max_hold_extensions),
        cancel_fee_percent: args.cancel_fee_percent.unwrap_or(d.cancel_fee_percent),
        cancel_cutoff: args.cancel_cutoff.unwrap_or(d.cancel_cutoff),
        max_waiting: args.max_waiting.unwrap_or(d.max_waiting),
        group_commit: (!args.no_group_commit).then(GroupCommit::default),
        durability: args.durability,
        // One read connection per worker: a reading request never waits for a connection.
        read_connections: u32::try_from(args.threads).unwrap_or(u32::MAX),
        ..d
    };
    match (
        std::env::var_os("BOOKING_JWT_SECRET"),
        &args.jwt_secret_file,
    ) {
        (Some(s), _) if s.is_empty() => bail!("BOOKING_JWT_SECRET is set but empty"),
        (Some(s), _) => cfg = cfg.with_jwt_secret(s.into_encoded_bytes()),
        (None, Some(f)) => {
            let text = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
            let secret = text.trim_ascii();
            if secret.is_empty() {
                bail!("the JWT secret file {} is empty", f.display());
            }
            cfg = cfg.with_jwt_secret(secret);
        }
        (None, None) => {} // the database's own secret, created once
    }
    Ok(cfg)
}

fn init_logging(flag: Option<&str>) {
    let filter = match (flag, std::env::var("RUST_LOG")) {
        (Some(f), _) => f.to_string(),
        (None, Ok(f)) if !f.is_empty() => f,
        _ => return,
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn quick_start(addr: &str) -> String {
    format!(
        r#"
demo page: open http://{addr}/ in a browser to join the queue, pick a seat and pay

or use the API (described at http://{addr}/openapi.json; needs curl and jq):
  B=http://{addr}
  TOKEN=$(curl -s -X POST $B/token | jq -r .token)
  curl -s -H "Authorization: Bearer $TOKEN" $B/concerts
  curl -s -H "Authorization: Bearer $TOKEN" $B/concerts/1
  curl -s -H "Authorization: Bearer $TOKEN" $B/concerts/1:1"#
    )
}
