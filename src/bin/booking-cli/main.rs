//! `booking-cli`: the operators' and scripts' tool over the `booking` library.
//!
//! Parse → call → format. Every rule lives in the library; this file holds the command line,
//! `format.rs` the human output. With `--json` each run prints exactly one JSON document on
//! stdout (the result, or `{"error": {"code", "message"}}`). Exit status: 0 success, 1 failure
//! (a domain error or a failed verify), 2 usage (unknown command or flag, a missing argument, a
//! value of the wrong shape such as a bad UUID, id or time).

mod format;

use booking::{Booking, CatalogFile, ConcertId, Config, NewShowtime, Pricing, ShowtimeId, UserId};
use chrono::{DateTime, FixedOffset};
use clap::{ArgGroup, CommandFactory, Parser, Subcommand, ValueEnum};
use format::points;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  booking-cli init
  booking-cli seed demo
  booking-cli concert add --title 'Neon Tide Live' --venue 'KSPO Dome'
  booking-cli showtime add --concert 1 --starts-at 2031-05-01T19:00:00+09:00 --seats 500 --price 80000
  booking-cli points charge --user 0b7e5a3c-5f7e-4d6a-9a38-2f4f1f6c9e21 --amount 50000
  booking-cli --json verify

Exit status: 0 success, 1 failure (a domain error or a failed verify), 2 usage error.";

const SEED_HELP: &str = "\
Examples:
  booking-cli seed demo
  booking-cli seed --file catalog.json

Catalog file (loaded in one transaction: all or nothing):
  {\"concerts\": [{\"title\": \"...\", \"venue\": \"...\", \"showtimes\": [
      {\"starts_at\": \"2031-05-01T19:00:00+09:00\", \"seats\": 50, \"price\": 80000}]}]}
  \"price\" may instead be a list of sections: [{\"from\": 1, \"to\": 10, \"price\": 150000}, ...]";

/// Operate a booking database: the catalog, points, the waiting room, and its health.
#[derive(Parser)]
#[command(name = "booking-cli", version, after_help = EXAMPLES, arg_required_else_help = true)]
struct Cli {
    /// The database file
    #[arg(
        long,
        global = true,
        env = "BOOKING_DB",
        default_value = "./booking.db",
        value_name = "PATH",
        display_order = 100
    )]
    db: PathBuf,
    /// Print exactly one JSON document on stdout (for scripts)
    #[arg(long, global = true, display_order = 101)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database, or migrate it to this build's schema
    #[command(after_help = "Example:\n  booking-cli --db ./booking.db init")]
    Init,
    /// Add and list concerts
    #[command(subcommand)]
    Concert(ConcertCmd),
    /// Add and list the showtimes (dates) of a concert
    #[command(subcommand)]
    Showtime(ShowtimeCmd),
    /// Show a showtime's seat map: available, held and sold seats with their prices
    #[command(after_help = "Example:\n  booking-cli seats --showtime 1")]
    Seats {
        /// The showtime's id
        #[arg(long, value_name = "ID", value_parser = ShowtimeId::parse)]
        showtime: ShowtimeId,
    },
    /// Load a catalog: `demo`, or a JSON file with --file (all or nothing)
    #[command(after_help = SEED_HELP, group(ArgGroup::new("catalog").required(true).args(["source", "file"])))]
    Seed {
        /// `demo`: three concerts with dates over the coming weeks and priced sections
        #[arg(value_enum)]
        source: Option<SeedSource>,
        /// A catalog file (JSON)
        #[arg(long, value_name = "F")]
        file: Option<PathBuf>,
    },
    /// Charge points to a wallet, or show its balance
    #[command(subcommand)]
    Points(PointsCmd),
    /// The waiting room
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Expire lapsed holds and queue entries now (nothing depends on this having run)
    #[command(after_help = "Example:\n  booking-cli sweep")]
    Sweep,
    /// Check every invariant; list each violation and exit 1 if any is broken
    #[command(
        after_help = "Example:\n  booking-cli verify || echo 'the database needs attention'"
    )]
    Verify,
    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  booking-cli completions bash > ~/.local/share/bash-completion/completions/booking-cli"
    )]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum ConcertCmd {
    /// Add a concert
    #[command(
        after_help = "Example:\n  booking-cli concert add --title 'Aurora Strings' --venue 'Seoul Arts Center'"
    )]
    Add {
        /// Its title
        #[arg(long)]
        title: String,
        /// Where it is played
        #[arg(long, default_value = "")]
        venue: String,
    },
    /// List every concert
    #[command(after_help = "Example:\n  booking-cli concert list")]
    List,
}

#[derive(Subcommand)]
enum ShowtimeCmd {
    /// Add a showtime with N seats numbered 1..N, in one transaction
    #[command(
        after_help = "Example:\n  booking-cli showtime add --concert 1 --starts-at 2031-05-01T19:00:00+09:00 --seats 50000 --price 99000"
    )]
    Add {
        /// The concert's id
        #[arg(long, value_name = "ID", value_parser = ConcertId::parse)]
        concert: ConcertId,
        /// When it starts, RFC 3339 (e.g. 2031-05-01T19:00:00+09:00); must be in the future
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        starts_at: DateTime<FixedOffset>,
        /// How many seats
        #[arg(long, value_name = "N")]
        seats: u32,
        /// The price of each seat, in points
        #[arg(long, value_name = "P", allow_negative_numbers = true)]
        price: i64,
    },
    /// List every showtime of a concert, past ones included
    #[command(after_help = "Example:\n  booking-cli showtime list --concert 1")]
    List {
        /// The concert's id
        #[arg(long, value_name = "ID", value_parser = ConcertId::parse)]
        concert: ConcertId,
    },
}

#[derive(Subcommand)]
enum PointsCmd {
    /// Add points to a user's wallet
    #[command(
        after_help = "Example:\n  booking-cli points charge --user 0b7e5a3c-5f7e-4d6a-9a38-2f4f1f6c9e21 --amount 50000"
    )]
    Charge {
        /// The user's UUID
        #[arg(long, value_name = "UUID", value_parser = UserId::parse)]
        user: UserId,
        /// Points to add
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        amount: i64,
        /// Makes a retry safe: a repeat with the same key changes nothing
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Show a user's balance
    #[command(
        after_help = "Example:\n  booking-cli points show --user 0b7e5a3c-5f7e-4d6a-9a38-2f4f1f6c9e21"
    )]
    Show {
        /// The user's UUID
        #[arg(long, value_name = "UUID", value_parser = UserId::parse)]
        user: UserId,
    },
}

#[derive(Subcommand)]
enum QueueCmd {
    /// How many entries are waiting, active and expired
    #[command(after_help = "Example:\n  booking-cli queue status")]
    Status,
}

#[derive(Clone, Copy, ValueEnum)]
enum SeedSource {
    /// The demo catalog
    Demo,
}

fn parse_time(s: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map_err(|e| format!("{e}; expected RFC 3339, e.g. 2031-05-01T19:00:00+09:00"))
}

/// An error the binary itself raises, with its code, an optional hint, and whether its output
/// (the verify report) was already printed.
#[derive(Debug)]
struct CliError {
    code: &'static str,
    message: String,
    hint: Option<String>,
    reported: bool,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

fn cli_error(code: &'static str, message: String, hint: Option<String>) -> anyhow::Error {
    let reported = false;
    CliError {
        code,
        message,
        hint,
        reported,
    }
    .into()
}

/// Where output goes: JSON or human text on stdout, progress on stderr when a person watches.
struct Out {
    json: bool,
}

impl Out {
    fn print<T: Serialize>(&self, v: &T, human: impl FnOnce(&T) -> String) -> anyhow::Result<()> {
        let text = if self.json {
            serde_json::to_string_pretty(v)?
        } else {
            human(v)
        };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}")?;
        Ok(stdout.flush()?)
    }

    fn interactive(&self) -> bool {
        !self.json && std::io::stdout().is_terminal()
    }

    /// A bar over `len` seats, or a spinner without one; hidden unless a person watches.
    fn progress(&self, len: Option<u64>, msg: &'static str) -> ProgressBar {
        if !self.interactive() {
            return ProgressBar::hidden();
        }
        let (bar, template) = match len {
            Some(n) => (
                ProgressBar::new(n),
                "{msg} [{bar:40}] {human_pos}/{human_len} seats {eta}",
            ),
            None => (ProgressBar::new_spinner(), "{spinner} {msg} {elapsed}"),
        };
        let style =
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = bar
            .with_style(style.progress_chars("=> "))
            .with_message(msg);
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        bar
    }
}

/// Opens the database; commands that only read refuse to create a missing file.
fn open(cli: &Cli, create: bool) -> anyhow::Result<Booking> {
    if !create && !cli.db.exists() {
        let msg = format!("no database at {}", cli.db.display());
        let hint = "create it with `booking-cli --db PATH init`, or point --db / BOOKING_DB at an existing database";
        return Err(cli_error("not_found", msg, Some(hint.into())));
    }
    Ok(Booking::open(&cli.db, Config::default())?)
}

fn read_catalog(path: &Path) -> anyhow::Result<CatalogFile> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        cli_error(
            "invalid_request",
            format!("cannot read catalog file {shown}: {e}"),
            None,
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        let hint = "`booking-cli seed --help` shows the catalog file format";
        cli_error(
            "invalid_json",
            format!("catalog file {shown} is not a valid catalog: {e}"),
            Some(hint.into()),
        )
    })
}

/// Runs `work` under a progress bar (or spinner) that is cleared when it ends.
fn with_progress<T>(bar: ProgressBar, work: impl FnOnce(&mut dyn FnMut(u64)) -> T) -> T {
    let out = work(&mut |n| bar.inc(n));
    bar.finish_and_clear();
    out
}

fn try_main(cli: &Cli) -> anyhow::Result<()> {
    let out = Out { json: cli.json };
    match &cli.command {
        Command::Init => {
            open(cli, true)?;
            let v = booking::SCHEMA_VERSION;
            out.print(&json!({ "schema_version": v }), |_| {
                format!(
                    "database {} is ready (schema version {v})",
                    cli.db.display()
                )
            })
        }
        Command::Concert(ConcertCmd::Add { title, venue }) => {
            let id = open(cli, true)?.add_concert(title, venue)?;
            out.print(&json!({ "id": id }), |_| {
                format!("added concert {id}: {title}")
            })
        }
        Command::Concert(ConcertCmd::List) => {
            out.print(&open(cli, false)?.list_concerts()?, |l| format::concerts(l))
        }
        Command::Showtime(ShowtimeCmd::Add {
            concert,
            starts_at,
            seats,
            price,
        }) => {
            let b = open(cli, true)?;
            let new = NewShowtime {
                starts_at: *starts_at,
                seats: *seats,
                price: Pricing::Flat(*price),
            };
            let bar = out.progress(Some(u64::from(*seats)), "adding seats");
            let id = with_progress(bar, |p| b.add_showtime_with_progress(*concert, &new, p))?;
            out.print(&json!({ "id": id }), |_| {
                let (n, p, at) = (points(i64::from(*seats)), points(*price), starts_at.to_rfc3339());
                format!("added showtime {id} of concert {concert}: {n} seats at {p} points, starting {at}")
            })
        }
        Command::Showtime(ShowtimeCmd::List { concert }) => out
            .print(&open(cli, false)?.list_all_showtimes(*concert)?, |l| {
                format::showtimes(l)
            }),
        Command::Seats { showtime } => {
            let color = out.interactive() && std::env::var_os("NO_COLOR").is_none();
            let seats = open(cli, false)?.showtime_seats(*showtime)?;
            out.print(&seats, |s| format::seat_map(*showtime, s, color))
        }
        Command::Seed { file, .. } => {
            let b = open(cli, true)?;
            let cat = match file {
                Some(path) => read_catalog(path)?,
                None => booking::catalog::demo_catalog(b.now()),
            };
            let bar = out.progress(Some(cat.total_seats()), "loading seats");
            let r = with_progress(bar, |p| b.seed(&cat, p))?;
            out.print(&r, |r| {
                format!(
                    "loaded {} concerts, {} showtimes, {} seats",
                    r.concerts,
                    r.showtimes,
                    points(r.seats as i64)
                )
            })
        }
        Command::Points(PointsCmd::Charge {
            user,
            amount,
            idempotency_key,
        }) => {
            let balance = open(cli, true)?.charge(*user, *amount, idempotency_key.as_deref())?;
            out.print(&balance, |b| {
                format!(
                    "charged {} points to {user}; balance {}",
                    points(*amount),
                    points(b.balance)
                )
            })
        }
        Command::Points(PointsCmd::Show { user }) => out
            .print(&open(cli, false)?.balance(*user)?, |b| {
                format!("{user}: {} points", points(b.balance))
            }),
        Command::Queue(QueueCmd::Status) => {
            out.print(&open(cli, false)?.queue_counts()?, format::queue_counts)
        }
        Command::Sweep => {
            let b = open(cli, true)?;
            let report = with_progress(out.progress(None, "sweeping"), |_| b.sweep())?;
            out.print(&report, format::sweep)
        }
        Command::Verify => {
            let b = open(cli, false)?;
            let report = with_progress(out.progress(None, "checking invariants"), |_| b.verify())?;
            out.print(&report, format::verify)?;
            if report.ok {
                return Ok(());
            }
            let message = format!("verify found {} violation(s)", report.violations.len());
            Err(CliError {
                code: "verify_failed",
                message,
                hint: None,
                reported: true,
            }
            .into())
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "booking-cli", &mut script);
            let script = String::from_utf8_lossy(&script).trim_end().to_string();
            out.print(
                &json!({ "shell": shell.to_string(), "script": script }),
                |_| script.clone(),
            )
        }
    }
}

/// A one-line pointer to the fix, where the message alone does not give it.
fn hint(e: &booking::Error) -> Option<String> {
    let hint = match e {
        booking::Error::NotFound("concert") => {
            "`booking-cli concert list` shows the concerts and their ids"
        }
        booking::Error::NotFound("showtime") => {
            "`booking-cli showtime list --concert ID` shows a concert's showtimes"
        }
        booking::Error::Busy => "another process held the write lock past the busy timeout; retry",
        _ => return None,
    };
    Some(hint.into())
}

/// Prints a failure: the JSON error document on stdout (with `--json`, unless the command's
/// own output was printed already), `error: <message>` and any hint on stderr. Exit 1.
fn fail(json: bool, e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    {
        return ExitCode::SUCCESS; // the reader stopped reading (`| head`): not our failure
    }
    let (code, hint, reported) = match (
        e.downcast_ref::<booking::Error>(),
        e.downcast_ref::<CliError>(),
    ) {
        (Some(b), _) => (b.code(), hint(b), false),
        (None, Some(c)) => (c.code, c.hint.clone(), c.reported),
        (None, None) => ("internal", None, false),
    };
    if json && !reported {
        let doc = json!({ "error": { "code": code, "message": e.to_string() } });
        let _ = Out { json }.print(&doc, |_| String::new());
    }
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {e}");
    if let Some(h) = hint {
        let _ = writeln!(stderr, "hint: {h}");
    }
    ExitCode::FAILURE
}

/// A usage error: clap's message on stderr (and a JSON error document if `--json` was given).
fn usage(e: clap::Error) -> ExitCode {
    let status = e.exit_code();
    if status != 0 && std::env::args().any(|a| a == "--json") {
        let text = e.to_string();
        let lines: Vec<&str> = text
            .lines()
            .take_while(|l| !l.is_empty())
            .map(str::trim)
            .collect();
        let message = lines.join(" ");
        let doc = json!({ "error": { "code": "usage", "message": message.trim_start_matches("error: ") } });
        let _ = Out { json: true }.print(&doc, |_| String::new());
    }
    let _ = e.print();
    ExitCode::from(u8::try_from(status).unwrap_or(2))
}

fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => match try_main(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(cli.json, &e),
        },
        Err(e) => usage(e),
    }
}
