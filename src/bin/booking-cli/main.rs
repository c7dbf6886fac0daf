//! `booking-cli`: the operators' and scripts' tool over the `booking` library.
//!
//! Parse → call → format. Every rule lives in the library; `args.rs` declares the command line,
//! this file runs it, `format.rs` writes for people. With `--json` each run prints exactly one
//! JSON document on stdout (the result, or `{"error": {"code", "message"}}`). Exit status: 0
//! success, 1 failure (a domain error or a failed verify), 2 usage (an unknown command or flag, a
//! missing argument, a value of the wrong shape such as a bad UUID, id or time).
#![forbid(unsafe_code)]

mod args;
mod format;

use args::{Cli, Command, ConcertCmd, PointsCmd, QueueCmd, ShowtimeCmd, TicketCmd};
use booking::{Booking, CatalogFile, Config, NewShowtime, Pricing};
use clap::{CommandFactory, Parser};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

/// An error the binary raises itself: its code, a hint, and whether the command's own output
/// (a failed verify's report) is already printed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct CliError {
    code: &'static str,
    message: String,
    hint: Option<&'static str>,
    reported: bool,
}

fn cli_error(code: &'static str, message: String, hint: Option<&'static str>) -> anyhow::Error {
    let reported = false;
    anyhow::Error::new(CliError {
        code,
        message,
        hint,
        reported,
    })
}

/// Where output goes: JSON or human text on stdout; progress on stderr while a person watches.
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

    /// With `--json`, the one error document on stdout.
    fn error_doc(&self, code: &str, message: &str) {
        if self.json {
            let _ = self.print(
                &json!({ "error": { "code": code, "message": message } }),
                |_| String::new(),
            );
        }
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

/// Runs `work` under a progress bar (or spinner), cleared when it ends.
fn with_progress<T>(bar: ProgressBar, work: impl FnOnce(&mut dyn FnMut(u64)) -> T) -> T {
    let out = work(&mut |n| bar.inc(n));
    bar.finish_and_clear();
    out
}

/// Opens the database; commands that only read refuse to create a missing file.
fn open(cli: &Cli, create: bool) -> anyhow::Result<Booking> {
    if !create && !cli.db.exists()? {
        let hint = "create it with `booking-cli --db PATH|URL init`, or point --db / BOOKING_DB at an existing database";
        return Err(cli_error(
            "not_found",
            format!("no database at {}", cli.db),
            Some(hint),
        ));
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
        let message = format!("catalog file {shown} is not a valid catalog: {e}");
        cli_error(
            "invalid_json",
            message,
            Some("`booking-cli seed --help` shows the catalog file format"),
        )
    })
}

fn try_main(cli: &Cli) -> anyhow::Result<()> {
    let out = Out { json: cli.json };
    match &cli.command {
        Command::Init => {
            open(cli, true)?;
            let v = booking::SCHEMA_VERSION;
            out.print(&json!({ "schema_version": v }), |_| {
                format::initialized(&cli.db, v)
            })
        }
        Command::Concert(ConcertCmd::Add { title, venue }) => {
            let id = open(cli, true)?.operator().add_concert(title, venue)?;
            out.print(&json!({ "id": id }), |_| {
                format!("added concert {id}: {title}")
            })
        }
        Command::Concert(ConcertCmd::List) => out
            .print(&open(cli, false)?.operator().concerts()?, |l| {
                format::concerts(l)
            }),
        Command::Showtime(ShowtimeCmd::Add {
            concert,
            starts_at,
            seats,
            price,
            sale_opens_at,
        }) => {
            let b = open(cli, true)?;
            let new = NewShowtime {
                starts_at: *starts_at,
                seats: *seats,
                price: Pricing::Flat(*price),
                sale_opens_at: *sale_opens_at,
            };
            let bar = out.progress(Some(u64::from(*seats)), "adding seats");
            let id = with_progress(bar, |p| b.operator().add_showtime(*concert, &new, p))?;
            out.print(&json!({ "id": id }), |_| {
                format::showtime_added(id, *concert, &new)
            })
        }
        Command::Showtime(ShowtimeCmd::List { concert }) => out
            .print(&open(cli, false)?.operator().showtimes(*concert)?, |l| {
                format::showtimes(l)
            }),
        Command::Showtime(ShowtimeCmd::Cancel { showtime }) => {
            let done = open(cli, false)?.operator().cancel_showtime(*showtime)?;
            out.print(&done, |d| format::showtime_cancelled(*showtime, d))
        }
        Command::Ticket(TicketCmd::Cancel { ticket, no_fee }) => {
            let done = open(cli, false)?
                .operator()
                .cancel_ticket(*ticket, *no_fee)?;
            out.print(&done, format::ticket_cancelled)
        }
        Command::Report { showtime } => {
            let rows = open(cli, false)?.operator().report(*showtime)?;
            out.print(&rows, |r| format::report(r))
        }
        Command::Seats { showtime } => {
            let color = out.interactive() && std::env::var_os("NO_COLOR").is_none();
            let seats = open(cli, false)?.operator().seats(*showtime)?;
            out.print(&seats, |s| format::seat_map(*showtime, s, color))
        }
        Command::Seed { file, .. } => {
            let b = open(cli, true)?;
            let cat = match file {
                Some(path) => read_catalog(path)?,
                None => booking::demo_catalog(b.now()),
            };
            let bar = out.progress(Some(cat.total_seats()), "loading seats");
            out.print(
                &with_progress(bar, |p| b.operator().seed(&cat, p))?,
                format::seeded,
            )
        }
        Command::Points(PointsCmd::Charge {
            user,
            amount,
            idempotency_key,
        }) => {
            let balance =
                open(cli, true)?
                    .operator()
                    .charge(*user, *amount, idempotency_key.as_ref())?;
            out.print(&balance, |b| format::charged(*amount, b))
        }
        Command::Points(PointsCmd::Show { user }) => out.print(
            &open(cli, false)?.operator().balance(*user)?,
            format::balance,
        ),
        Command::Queue(QueueCmd::Status) => out.print(
            &open(cli, false)?.operator().queue_counts()?,
            format::queue_counts,
        ),
        Command::Queue(QueueCmd::Show) => out.print(
            &open(cli, false)?.operator().queue_settings()?,
            format::queue_settings,
        ),
        Command::Queue(cmd) => {
            let b = open(cli, false)?;
            let setting = |s: &Option<args::Setting>| {
                s.map(|s| match s {
                    args::Setting::Value(n) => Some(n),
                    args::Setting::Flags => None,
                })
            };
            let change = match cmd {
                QueueCmd::Set {
                    max_active,
                    admit_per_minute,
                } => booking::QueueChange {
                    max_active: setting(max_active),
                    admit_per_minute: setting(admit_per_minute),
                    ..Default::default()
                },
                QueueCmd::Pause | QueueCmd::Resume => booking::QueueChange {
                    paused: Some(matches!(cmd, QueueCmd::Pause)),
                    ..Default::default()
                },
                QueueCmd::OpenAt { when } => booking::QueueChange {
                    opens_at: Some(match when {
                        args::Opening::At(t) => Some(t.with_timezone(&chrono::Utc)),
                        args::Opening::Now => Some(b.now()),
                        args::Opening::None => None,
                    }),
                    ..Default::default()
                },
                QueueCmd::Status | QueueCmd::Show => unreachable!("handled above"),
            };
            out.print(&b.operator().change_queue(change)?, format::queue_settings)
        }
        Command::Sweep => {
            let b = open(cli, true)?;
            out.print(
                &with_progress(out.progress(None, "sweeping"), |_| b.operator().sweep())?,
                format::sweep,
            )
        }
        Command::Verify => {
            let b = open(cli, false)?;
            let report = with_progress(out.progress(None, "checking invariants"), |_| {
                b.operator().verify()
            })?;
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

/// A one-line pointer to the fix, where the library's message alone does not give it.
fn hint(e: &booking::Error) -> Option<&'static str> {
    match e {
        booking::Error::NotFound(booking::Entity::Concert) => {
            Some("`booking-cli concert list` shows the concerts and their ids")
        }
        booking::Error::NotFound(booking::Entity::Ticket) => {
            Some("a ticket's id is in the user's `GET /tickets`")
        }
        booking::Error::NotFound(booking::Entity::Showtime) => {
            Some("`booking-cli showtime list --concert ID` shows a concert's showtimes")
        }
        booking::Error::Busy => {
            Some("another process held the write lock past the busy timeout; retry")
        }
        _ => None,
    }
}

/// A failure: with `--json` the error document on stdout (unless the command's own output is
/// printed already), `error: <message>` and any hint on stderr; exit 1.
fn fail(out: &Out, e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    {
        return ExitCode::SUCCESS; // the reader stopped reading (`| head`): nothing went wrong here
    }
    let (code, hint, reported) = match (
        e.downcast_ref::<booking::Error>(),
        e.downcast_ref::<CliError>(),
    ) {
        (Some(b), _) => (b.code(), hint(b), false),
        (None, Some(c)) => (c.code, c.hint, c.reported),
        (None, None) => ("internal", None, false),
    };
    if !reported {
        out.error_doc(code, &e.to_string());
    }
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {e}");
    if let Some(h) = hint {
        let _ = writeln!(stderr, "hint: {h}");
    }
    ExitCode::FAILURE
}

/// A usage error (or `--help`): clap's text on stderr, and with `--json` an error document.
fn usage(e: clap::Error) -> ExitCode {
    let status = e.exit_code();
    if status != 0 {
        let text = e.to_string();
        let lines: Vec<&str> = text
            .lines()
            .take_while(|l| !l.is_empty())
            .map(str::trim)
            .collect();
        let json = std::env::args().any(|a| a == "--json");
        Out { json }.error_doc("usage", lines.join(" ").trim_start_matches("error: "));
    }
    let _ = e.print();
    ExitCode::from(u8::try_from(status).unwrap_or(2))
}

fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => match try_main(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&Out { json: cli.json }, &e),
        },
        Err(e) => usage(e),
    }
}
