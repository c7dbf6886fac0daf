//! Policy knobs (`docs/API.md` §2) with the contract's defaults, and how the database is run
//! (durability, group commit, pool sizes).

use crate::money::Points;
use std::fmt;
use std::time::Duration;

/// How hard a commit is made durable before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// SQLite `synchronous=FULL`, PostgreSQL `synchronous_commit=on`: an acknowledged commit
    /// survives power loss (the default).
    Full,
    /// SQLite `synchronous=NORMAL`: in WAL mode, a commit survives a process crash but the last
    /// commits may be lost on power loss. PostgreSQL `synchronous_commit=off`: a crash of the
    /// database server may lose the last commits (never corrupt).
    Normal,
}

impl Durability {
    /// The value of SQLite's `synchronous` pragma for it: `FULL` or `NORMAL`.
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// `full` or `normal`, as the flags take it.
impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Durability::Full => "full",
            Durability::Normal => "normal",
        })
    }
}

/// `full` or `normal` (any case), as the server's `--durability` flag and the benchmarks take it.
impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            _ => Err(format!("invalid durability {s:?} (full or normal)")),
        }
    }
}

/// Group commit: request writes that arrive together share one transaction (each in its own
/// savepoint) and one commit, so one fsync serves them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommit {
    /// Most operations in one commit.
    pub max_batch: usize,
    /// Most operations waiting for the writer; beyond it callers wait (back-pressure).
    pub queue_capacity: usize,
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit {
            max_batch: 256,
            queue_capacity: 4096,
        }
    }
}

/// Configuration of a [`crate::Booking`] handle. Build with `Config::default()` and the
/// `with_*` methods, or set the public fields. Its `Debug` never shows the JWT secret.
#[derive(Clone)]
pub struct Config {
    /// How long a held seat stays reserved for its holder.
    pub hold_ttl: Duration,
    /// Users admitted (active) at once.
    pub max_active: u32,
    /// Newly admitted users per minute, on top of `max_active`; 0 means no limit.
    pub admit_per_minute: u32,
    /// How long an admitted user stays active, from admission.
    pub active_ttl: Duration,
    /// A waiting entry not polled for this long drops out.
    pub idle_timeout: Duration,
    /// Tickets one user may have per showtime: live holds and paid tickets together (released,
    /// lapsed and cancelled ones do not count).
    pub max_tickets_per_user: u32,
    /// How many times one hold may be extended.
    pub max_hold_extensions: u32,
    /// The fee kept when a user cancels a paid ticket, in percent of its price (0..=100,
    /// rounded down).
    pub cancel_fee_percent: u32,
    /// Users may cancel a paid ticket until this long before the show.
    pub cancel_cutoff: Duration,
    /// The most entries in line (waiting, and in the prequeue); past it, entering is
    /// `queue_full`.
    pub max_waiting: u64,
    /// Largest single charge.
    pub max_charge: Points,
    /// A wallet never exceeds this.
    pub max_balance: Points,
    /// After this the JWT itself is rejected.
    pub jwt_lifetime: Duration,
    /// The JWT signing secret; `None` uses the secret stored in the database (created once).
    pub jwt_secret: Option<Vec<u8>>,
    /// How long a write waits for another process's write lock (SQLite) or for a row lock
    /// (PostgreSQL: `lock_timeout`) before failing with `busy`.
    pub busy_timeout: Duration,
    /// Commit durability.
    pub durability: Durability,
    /// Pooled read connections (SQLite). On PostgreSQL one pool serves reads and writes and
    /// holds this many connections plus 4.
    pub read_connections: u32,
    /// How long Idempotency-Key records are kept (at least 24 h by contract).
    pub idempotency_retention: Duration,
    /// Group commit for request writes (enter, poll, hold, charge, pay): `None` runs each in its
    /// own transaction; `Some` shares one commit among whatever requests are waiting. SQLite
    /// only: on PostgreSQL concurrent commits share their WAL flushes already.
    pub group_commit: Option<GroupCommit>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hold_ttl: Duration::from_secs(5 * 60),
            max_active: 100,
            admit_per_minute: 0,
            active_ttl: Duration::from_secs(10 * 60),
            idle_timeout: Duration::from_secs(5 * 60),
            max_tickets_per_user: 4,
            max_hold_extensions: 1,
            cancel_fee_percent: 10,
            cancel_cutoff: Duration::from_secs(24 * 3600),
            max_waiting: 2_000_000,
            max_charge: Points::new(10_000_000),
            max_balance: Points::new(1_000_000_000),
            jwt_lifetime: Duration::from_secs(24 * 3600),
            jwt_secret: None,
            busy_timeout: Duration::from_secs(5),
            durability: Durability::Full,
            read_connections: 8,
            idempotency_retention: Duration::from_secs(24 * 3600),
            group_commit: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config {
            hold_ttl,
            max_active,
            admit_per_minute,
            active_ttl,
            idle_timeout,
            max_tickets_per_user,
            max_hold_extensions,
            cancel_fee_percent,
            cancel_cutoff,
            max_waiting,
            max_charge,
            max_balance,
            jwt_lifetime,
            jwt_secret,
            busy_timeout,
            durability,
            read_connections,
            idempotency_retention,
            group_commit,
        } = self;
        f.debug_struct("Config")
            .field("hold_ttl", hold_ttl)
            .field("max_active", max_active)
            .field("admit_per_minute", admit_per_minute)
            .field("active_ttl", active_ttl)
            .field("idle_timeout", idle_timeout)
            .field("max_tickets_per_user", max_tickets_per_user)
            .field("max_hold_extensions", max_hold_extensions)
            .field("cancel_fee_percent", cancel_fee_percent)
            .field("cancel_cutoff", cancel_cutoff)
            .field("max_waiting", max_waiting)
            .field("max_charge", max_charge)
            .field("max_balance", max_balance)
            .field("jwt_lifetime", jwt_lifetime)
            .field("jwt_secret", &jwt_secret.as_ref().map(|_| "<redacted>"))
            .field("busy_timeout", busy_timeout)
            .field("durability", durability)
            .field("read_connections", read_connections)
            .field("idempotency_retention", idempotency_retention)
            .field("group_commit", group_commit)
            .finish()
    }
}

impl Config {
    /// Sets the hold TTL.
    pub fn with_hold_ttl(mut self, d: Duration) -> Self {
        self.hold_ttl = d;
        self
    }
    /// Sets how many users may be active at once.
    pub fn with_max_active(mut self, n: u32) -> Self {
        self.max_active = n;
        self
    }
    /// Sets the admission rate limit (per minute; 0 = none).
    pub fn with_admit_per_minute(mut self, n: u32) -> Self {
        self.admit_per_minute = n;
        self
    }
    /// Sets how long an admitted user stays active.
    pub fn with_active_ttl(mut self, d: Duration) -> Self {
        self.active_ttl = d;
        self
    }
    /// Sets how long an unpolled waiting entry survives.
    pub fn with_idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }
    /// Sets the most tickets (live holds and paid) per user per showtime.
    pub fn with_max_tickets_per_user(mut self, n: u32) -> Self {
        self.max_tickets_per_user = n;
        self
    }
    /// Sets how many times one hold may be extended.
    pub fn with_max_hold_extensions(mut self, n: u32) -> Self {
        self.max_hold_extensions = n;
        self
    }
    /// Sets the cancellation fee, in percent of the price (at most 100).
    pub fn with_cancel_fee_percent(mut self, percent: u32) -> Self {
        self.cancel_fee_percent = percent.min(100);
        self
    }
    /// Sets how long before the show users may still cancel.
    pub fn with_cancel_cutoff(mut self, d: Duration) -> Self {
        self.cancel_cutoff = d;
        self
    }
    /// Sets the most entries in line.
    pub fn with_max_waiting(mut self, n: u64) -> Self {
        self.max_waiting = n;
        self
    }
    /// Sets the JWT signing secret.
    pub fn with_jwt_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.jwt_secret = Some(secret.into());
        self
    }
    /// Sets commit durability.
    pub fn with_durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }
    /// Turns group commit on (`Some`) or off (`None`).
    pub fn with_group_commit(mut self, g: Option<GroupCommit>) -> Self {
        self.group_commit = g;
        self
    }
    /// Sets the busy timeout.
    pub fn with_busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = d;
        self
    }
}

/// Parses a duration as the binaries accept it: `300` (seconds), `300s`, `5m`, `1h`, `1h 30m`
/// (anything `humantime` reads).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| format!("invalid duration {s:?}: {e}"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?}: {e} (try 300, 300s, 5m or 1h)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_the_contract_forms() {
        assert_eq!(parse_duration("300").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn debug_never_shows_the_jwt_secret() {
        let cfg = Config::default().with_jwt_secret("hunter2-hunter2");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
