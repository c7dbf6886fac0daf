//! The command line of `booking-cli`: commands, flags, help text with an example for each.
//! Declarations only; `main.rs` runs them.

use booking::{ConcertId, IdempotencyKey, Location, Points, ShowtimeId, TicketId, UserId};
use chrono::{DateTime, FixedOffset};
use clap::{ArgGroup, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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
pub struct Cli {
    /// The database: a SQLite file, or a postgres:// URL
    #[arg(
        long,
        global = true,
        env = "BOOKING_DB",
        default_value = "./booking.db",
        value_name = "PATH|URL",
        display_order = 100
    )]
    pub db: Location,
    /// Print exactly one JSON document on stdout (for scripts)
    #[arg(long, global = true, display_order = 101)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create the database, or migrate it to this build's schema
    #[command(
        after_help = "Examples:\n  booking-cli --db ./booking.db init\n  booking-cli --db postgres://booking@localhost/booking init"
    )]
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
    /// Cancel a paid ticket with a refund (an operator's cancel)
    #[command(subcommand)]
    Ticket(TicketCmd),
    /// Per showtime: seats by status, revenue, refunds and fees
    #[command(after_help = "Examples:
  booking-cli report
  booking-cli --json report --showtime 3")]
    Report {
        /// Only this showtime
        #[arg(long, value_name = "ID", value_parser = ShowtimeId::parse)]
        showtime: Option<ShowtimeId>,
    },
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
pub enum ConcertCmd {
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
pub enum ShowtimeCmd {
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
        price: Points,
        /// When its sale opens, RFC 3339 (before it, holds get sale_not_open); default: at once
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        sale_opens_at: Option<DateTime<FixedOffset>>,
    },
    /// Call a showtime off: refund every paid ticket in full, release every hold, sell no more
    #[command(after_help = "Example:
  booking-cli showtime cancel --showtime 3")]
    Cancel {
        /// The showtime's id
        #[arg(long, value_name = "ID", value_parser = ShowtimeId::parse)]
        showtime: ShowtimeId,
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
pub enum PointsCmd {
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
        amount: Points,
        /// Makes a retry safe: a repeat with the same key changes nothing
        #[arg(long, value_name = "KEY", value_parser = IdempotencyKey::parse)]
        idempotency_key: Option<IdempotencyKey>,
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
pub enum TicketCmd {
    /// Cancel a paid ticket before its show, refunding its price less the fee
    #[command(after_help = "Examples:
  booking-cli ticket cancel --ticket 42
  booking-cli ticket cancel --ticket 42 --no-fee")]
    Cancel {
        /// The ticket's id
        #[arg(long, value_name = "ID", value_parser = TicketId::parse)]
        ticket: TicketId,
        /// Refund the whole price (keep no fee)
        #[arg(long)]
        no_fee: bool,
    },
}

#[derive(Subcommand)]
pub enum QueueCmd {
    /// How many entries are waiting, active, expired and in the prequeue
    #[command(after_help = "Example:\n  booking-cli queue status")]
    Status,
    /// The waiting room's settings in force, and where each comes from
    #[command(after_help = "Example:\n  booking-cli --json queue show")]
    Show,
    /// Change admission for every server on the database (applied at their next queue call)
    #[command(
        after_help = "Examples:\n  booking-cli queue set --max-active 5000\n  booking-cli queue set --admit-per-minute 600\n  booking-cli queue set --max-active flags   # back to each server's own flag",
        group(ArgGroup::new("setting").required(true).multiple(true).args(["max_active", "admit_per_minute"]))
    )]
    Set {
        /// Users admitted at once, or `flags` for each server's own --max-active
        #[arg(long, value_name = "N|flags", value_parser = parse_setting)]
        max_active: Option<Setting>,
        /// Newly admitted users per minute (0: no limit), or `flags`
        #[arg(long, value_name = "N|flags", value_parser = parse_setting)]
        admit_per_minute: Option<Setting>,
    },
    /// Admit no one until `queue resume` (waiting users keep their places)
    #[command(after_help = "Example:\n  booking-cli queue pause")]
    Pause,
    /// Admit again after `queue pause`
    #[command(after_help = "Example:\n  booking-cli queue resume")]
    Resume,
    /// Schedule the opening: until then arrivals get a prequeue entry, and at the opening they
    /// are placed in line in a random order, ahead of everyone who enters later
    #[command(
        after_help = "Examples:\n  booking-cli queue open-at 2031-05-01T10:00:00+09:00\n  booking-cli queue open-at now\n  booking-cli queue open-at none   # no scheduled opening"
    )]
    OpenAt {
        /// RFC 3339 time, `now`, or `none`
        #[arg(value_name = "TIME|now|none", value_parser = parse_opening)]
        when: Opening,
    },
}

/// A live setting: a value, or back to each server's flags.
#[derive(Clone, Copy, Debug)]
pub enum Setting {
    /// This value, for every server.
    Value(u32),
    /// Each server's own flag.
    Flags,
}

fn parse_setting(s: &str) -> Result<Setting, String> {
    match s.trim() {
        "flags" => Ok(Setting::Flags),
        n => n
            .parse()
            .map(Setting::Value)
            .map_err(|e| format!("{e}; expected a whole number or `flags`")),
    }
}

/// When the waiting room opens.
#[derive(Clone, Copy, Debug)]
pub enum Opening {
    /// At this time.
    At(DateTime<FixedOffset>),
    /// Now.
    Now,
    /// No scheduled opening.
    None,
}

fn parse_opening(s: &str) -> Result<Opening, String> {
    match s.trim() {
        "now" => Ok(Opening::Now),
        "none" => Ok(Opening::None),
        t => parse_time(t).map(Opening::At),
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SeedSource {
    /// The demo catalog
    Demo,
}

pub fn parse_time(s: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map_err(|e| format!("{e}; expected RFC 3339, e.g. 2031-05-01T19:00:00+09:00"))
}
