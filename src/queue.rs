//! The waiting room: entries, admission, positions.
//!
//! An entry's id is its sequence number. `queue_state.frontier` is the highest id that was
//! admitted or skipped, so a waiting entry's position is `id - frontier` — O(1), an upper bound
//! when people ahead have left. Admission runs lazily inside queue calls, in order, and only
//! takes the write lock when something is due.

use crate::auth::Identity;
use crate::clock::from_millis;
use crate::config::Config;
use crate::db::sql::{params, stored_enum, Row, Tx};
use crate::db::Now;
use crate::error::{Error, QueueState, Result};
use crate::ids::{EntryId, UserId};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The state of a queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EntryStatus {
    /// In line.
    Waiting,
    /// Admitted: may browse, hold and pay.
    Active,
    /// Over: paid, timed out, or dropped out.
    Expired,
}

stored_enum!(EntryStatus, "queue entry status", {
    EntryStatus::Waiting => "waiting",
    EntryStatus::Active => "active",
    EntryStatus::Expired => "expired",
});

/// Where a user stands in the waiting room (the contract's QueueStatus).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStatus {
    /// The entry's user.
    pub user_id: UserId,
    /// waiting, active or expired.
    pub status: EntryStatus,
    /// 1 for the first waiting user; 0 when active or expired. Never grows while waiting.
    pub position: i64,
    /// An estimate of the wait (an upper bound: each `max_active` users ahead take at most the
    /// active TTL); `None` unless waiting.
    pub estimated_wait_seconds: Option<i64>,
    /// Active: when the session ends. Waiting: when the entry drops out if not polled.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The answer to entering the queue.
#[derive(Debug, Clone, Serialize)]
pub struct Entered {
    /// The entry's status.
    #[serde(flatten)]
    pub status: QueueStatus,
    /// A signed token pointing at the entry.
    pub token: String,
    /// True if a new entry was made; false if the user's live entry was returned.
    #[serde(skip)]
    pub created: bool,
}

/// How many entries are in each state now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    /// Waiting and not idle past the timeout.
    pub waiting: i64,
    /// Active now.
    pub active: i64,
    /// Everything else.
    pub expired: i64,
}

/// A queue entry as stored.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: EntryId,
    pub user_id: UserId,
    status: EntryStatus,
    last_seen_at: i64,
    active_until: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    frontier: i64,
    window_start: i64,
    window_admitted: i64,
}

fn entry(r: &dyn Row) -> Result<Entry> {
    Ok(Entry {
        id: r.get(0)?,
        user_id: r.get(1)?,
        status: r.get(2)?,
        last_seen_at: r.get(3)?,
        active_until: r.get(4)?,
    })
}

fn load(c: &dyn Tx, id: EntryId) -> Result<Option<Entry>> {
    c.row(
        "SELECT id, user_id, status, last_seen_at, active_until FROM queue_entries WHERE id = ?1",
        params![id],
        entry,
    )
}

fn live_entry_of(c: &dyn Tx, user: UserId) -> Result<Option<Entry>> {
    c.row(
        "SELECT id, user_id, status, last_seen_at, active_until FROM queue_entries
         WHERE user_id = ?1 AND status IN ('waiting', 'active')",
        params![user],
        entry,
    )
}

fn state(c: &dyn Tx) -> Result<State> {
    c.row(
        "SELECT frontier, window_start, window_admitted FROM queue_state WHERE id = 1",
        params![],
        |r| {
            Ok(State {
                frontier: r.get(0)?,
                window_start: r.get(1)?,
                window_admitted: r.get(2)?,
            })
        },
    )?
    .ok_or_else(|| Error::internal("queue_state has no row"))
}

/// The one rule for what an entry is at `now`.
fn effective(e: &Entry, now: Now, cfg: &Config) -> EntryStatus {
    match e.status {
        EntryStatus::Active if e.active_until.is_some_and(|t| t > now.ms) => EntryStatus::Active,
        EntryStatus::Waiting if e.last_seen_at > now.minus(cfg.idle_timeout) => {
            EntryStatus::Waiting
        }
        _ => EntryStatus::Expired,
    }
}

/// A waiting entry's keep-alive is written at most once per quarter of the idle timeout, so
/// most polls change nothing and take no write lock.
fn touch_due(e: &Entry, now: Now, cfg: &Config) -> bool {
    effective(e, now, cfg) == EntryStatus::Waiting
        && now.ms - e.last_seen_at >= crate::clock::millis_of(cfg.idle_timeout) / 4
}

/// Slots open now: `max_active` minus the users active now. The count is a range of the
/// partial index `queue_active_until`, which holds no more live rows than admission let in
/// (at most `max_active`).
fn free_slots(c: &dyn Tx, now: Now, cfg: &Config) -> Result<i64> {
    let active: i64 = c.value(
        "SELECT COUNT(*) FROM queue_entries WHERE status = 'active' AND active_until > ?1",
        params![now.ms],
    )?;
    Ok(i64::from(cfg.max_active) - active)
}

/// How many more users the admit-per-minute window allows now (and the window it implies).
fn allowance(st: &State, now: Now, cfg: &Config) -> (i64, i64, i64) {
    if cfg.admit_per_minute == 0 {
        return (i64::MAX, st.window_start, st.window_admitted);
    }
    let (start, admitted) = if now.ms - st.window_start >= 60_000 {
        (now.ms, 0)
    } else {
        (st.window_start, st.window_admitted)
    };
    (i64::from(cfg.admit_per_minute) - admitted, start, admitted)
}

fn head(c: &dyn Tx) -> Result<Option<(i64, i64)>> {
    c.row(
        "SELECT id, last_seen_at FROM queue_entries WHERE status = 'waiting' ORDER BY id LIMIT 1",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Read-only: would [`admit`] change anything now?
fn admission_due(c: &dyn Tx, st: &State, now: Now, cfg: &Config) -> Result<bool> {
    let Some((_, last_seen)) = head(c)? else {
        return Ok(false);
    };
    if last_seen <= now.minus(cfg.idle_timeout) {
        return Ok(true); // a dead entry at the head: skipping it tightens everyone's position
    }
    Ok(allowance(st, now, cfg).0 > 0 && free_slots(c, now, cfg)? > 0)
}

/// The most dead entries one call skips, so no single request pays for a mass exodus.
const MAX_SKIPS_PER_CALL: usize = 10_000;

/// Admits waiting users in order while there is room, skipping (expiring) entries that went
/// idle. Returns how many were admitted. Must run inside a write transaction.
fn admit(c: &dyn Tx, now: Now, cfg: &Config) -> Result<i64> {
    let st = state(c)?;
    let (allow, window_start, window_admitted) = allowance(&st, now, cfg);
    let free = free_slots(c, now, cfg)?;
    let mut budget = free.min(allow).max(0);
    let idle_before = now.minus(cfg.idle_timeout);
    let active_until = now.plus(cfg.active_ttl);
    let mut frontier = st.frontier;
    let mut admitted = 0;
    let mut skipped = 0;
    'outer: loop {
        let batch: Vec<(i64, i64)> = c.rows(
            "SELECT id, last_seen_at FROM queue_entries
             WHERE status = 'waiting' AND id > ?1 ORDER BY id LIMIT 64",
            params![frontier],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if batch.is_empty() {
            break;
        }
        for (id, last_seen) in batch {
            if last_seen <= idle_before {
                if skipped >= MAX_SKIPS_PER_CALL {
                    break 'outer;
                }
                expire_entry(c, id)?;
                skipped += 1;
            } else if budget > 0 {
                c.execute(
                    "UPDATE queue_entries SET status = 'active', activated_at = ?2, active_until = ?3
                     WHERE id = ?1",
                    params![id, now.ms, active_until],
                )?;
                budget -= 1;
                admitted += 1;
            } else {
                break 'outer;
            }
            frontier = id;
        }
    }
    if frontier != st.frontier || admitted > 0 || window_start != st.window_start {
        c.execute(
            "UPDATE queue_state SET frontier = ?1, window_start = ?2, window_admitted = ?3
             WHERE id = 1",
            params![frontier, window_start, window_admitted + admitted],
        )?;
    }
    Ok(admitted)
}

fn status_of(c: &dyn Tx, e: &Entry, st: &State, now: Now, cfg: &Config) -> Result<QueueStatus> {
    let status = effective(e, now, cfg);
    let (position, wait, expires) = match status {
        EntryStatus::Waiting => {
            let position = (e.id.get() - st.frontier).max(1);
            let free = free_slots(c, now, cfg)?;
            (
                position,
                Some(estimate_wait(position, free, cfg)),
                Some(
                    e.last_seen_at
                        .saturating_add(crate::clock::millis_of(cfg.idle_timeout)),
                ),
            )
        }
        EntryStatus::Active => (0, None, e.active_until),
        EntryStatus::Expired => (0, None, None),
    };
    Ok(QueueStatus {
        user_id: e.user_id,
        status,
        position,
        estimated_wait_seconds: wait,
        expires_at: expires.map(from_millis),
    })
}

/// An upper estimate of the wait for `position` with `free` slots open now: beyond the free
/// slots, every `max_active` users ahead take at most one active TTL, and the admit-per-minute
/// limit admits at most that many a minute.
fn estimate_wait(position: i64, free: i64, cfg: &Config) -> i64 {
    let needing_a_slot = position - free.max(0);
    let by_slots = if needing_a_slot <= 0 {
        0
    } else if cfg.max_active == 0 {
        i64::MAX
    } else {
        let rounds = (needing_a_slot + i64::from(cfg.max_active) - 1) / i64::from(cfg.max_active);
        rounds.saturating_mul(cfg.active_ttl.as_secs() as i64)
    };
    let by_rate = if cfg.admit_per_minute == 0 {
        0
    } else {
        let minutes =
            (position + i64::from(cfg.admit_per_minute) - 1) / i64::from(cfg.admit_per_minute);
        minutes.saturating_mul(60)
    };
    by_slots.max(by_rate)
}

/// Marks one entry expired.
fn expire_entry(c: &dyn Tx, id: i64) -> Result<()> {
    c.execute(
        "UPDATE queue_entries SET status = 'expired' WHERE id = ?1",
        params![id],
    )?;
    Ok(())
}

/// Records that a waiting entry was seen now (its keep-alive).
fn touch(c: &dyn Tx, id: EntryId, now: Now) -> Result<()> {
    c.execute(
        "UPDATE queue_entries SET last_seen_at = ?2 WHERE id = ?1",
        params![id, now.ms],
    )?;
    Ok(())
}

/// Enters the waiting room (see [`crate::Booking::enter_queue`]). Returns the entry, its status,
/// and whether it was made now.
pub(crate) fn enter(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    user: UserId,
) -> Result<(Entry, QueueStatus, bool)> {
    let existing = match live_entry_of(c, user)? {
        Some(e) if effective(&e, now, cfg) != EntryStatus::Expired => Some(e),
        Some(e) => {
            expire_entry(c, e.id.get())?;
            None
        }
        None => None,
    };
    let (id, created) = match existing {
        Some(e) => {
            if effective(&e, now, cfg) == EntryStatus::Waiting {
                touch(c, e.id, now)?;
            }
            (e.id, false)
        }
        None => {
            let id = c.insert(
                "INSERT INTO queue_entries (user_id, status, created_at, last_seen_at)
                 VALUES (?1, 'waiting', ?2, ?2) RETURNING id",
                params![user, now.ms],
            )?;
            (EntryId::new(id)?, true)
        }
    };
    admit(c, now, cfg)?;
    let row = load(c, id)?.ok_or_else(|| Error::internal("queue entry vanished"))?;
    let status = status_of(c, &row, &state(c)?, now, cfg)?;
    Ok((row, status, created))
}

/// A poll, read-only: the status, or `None` when the poll has something to write (a keep-alive
/// due, or users to admit) and must run [`poll`] in a write instead.
pub(crate) fn poll_read(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    who: &Identity,
) -> Result<Option<QueueStatus>> {
    let row = own_entry(c, who)?;
    let st = state(c)?;
    if touch_due(&row, now, cfg) || admission_due(c, &st, now, cfg)? {
        Ok(None)
    } else {
        status_of(c, &row, &st, now, cfg).map(Some)
    }
}

/// A poll that writes: the keep-alive if due, admission, then the status.
pub(crate) fn poll(c: &dyn Tx, now: Now, cfg: &Config, who: &Identity) -> Result<QueueStatus> {
    let row = own_entry(c, who)?;
    if touch_due(&row, now, cfg) {
        touch(c, row.id, now)?;
    }
    admit(c, now, cfg)?;
    let row = own_entry(c, who)?;
    status_of(c, &row, &state(c)?, now, cfg)
}

/// The *active* guard: `who`'s entry is active at `now`, else `queue_not_active`. Inside a write
/// transaction it is the check that counts: a payment that ended the turn a moment ago is seen.
pub(crate) fn require_active(c: &dyn Tx, now: Now, cfg: &Config, who: &Identity) -> Result<()> {
    match effective(&own_entry(c, who)?, now, cfg) {
        EntryStatus::Active => Ok(()),
        EntryStatus::Waiting => Err(Error::QueueNotActive(QueueState::Waiting)),
        EntryStatus::Expired => Err(Error::QueueNotActive(QueueState::Expired)),
    }
}

/// The token's entry; a token whose entry is gone (or is someone else's) is not valid here.
fn own_entry(c: &dyn Tx, who: &Identity) -> Result<Entry> {
    match load(c, who.entry_id())? {
        Some(e) if e.user_id == who.user_id() => Ok(e),
        _ => Err(Error::Unauthorized(
            "the token's queue entry does not exist in this database".into(),
        )),
    }
}

/// Ends every live entry of `user` (a payment ends the user's turn). Runs inside a write.
pub(crate) fn expire_user(c: &dyn Tx, user: UserId) -> Result<()> {
    c.execute(
        "UPDATE queue_entries SET status = 'expired'
         WHERE user_id = ?1 AND status IN ('waiting', 'active')",
        params![user],
    )?;
    Ok(())
}

/// Tidies entries that lapsed (idle waiting, active past its TTL), then admits; returns how
/// many entries were tidied.
pub(crate) fn sweep(c: &dyn Tx, now: Now, cfg: &Config) -> Result<usize> {
    let n = c.execute(
        "UPDATE queue_entries SET status = 'expired'
         WHERE (status = 'active' AND active_until <= ?1)
            OR (status = 'waiting' AND last_seen_at <= ?2)",
        params![now.ms, now.minus(cfg.idle_timeout)],
    )?;
    admit(c, now, cfg)?;
    Ok(n)
}

/// Waiting, active and expired counts (a full count: for operators, not per request).
pub(crate) fn counts(c: &dyn Tx, now: Now, cfg: &Config) -> Result<QueueCounts> {
    c.row(
        "SELECT
            COUNT(*) FILTER (WHERE status = 'waiting' AND last_seen_at > ?2),
            COUNT(*) FILTER (WHERE status = 'active' AND active_until > ?1),
            COUNT(*)
         FROM queue_entries",
        params![now.ms, now.minus(cfg.idle_timeout)],
        |r| {
            let (waiting, active, total): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok(QueueCounts {
                waiting,
                active,
                expired: total - waiting - active,
            })
        },
    )?
    .ok_or_else(|| Error::internal("no counts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_estimate_grows_with_position_and_respects_the_rate_limit() {
        let cfg = Config::default().with_max_active(10);
        assert_eq!(estimate_wait(1, 0, &cfg), 600);
        assert_eq!(estimate_wait(10, 0, &cfg), 600);
        assert_eq!(estimate_wait(11, 0, &cfg), 1200);
        assert_eq!(estimate_wait(11, 1, &cfg), 600);
        assert_eq!(estimate_wait(3, 5, &cfg), 0);
        let cfg = cfg.with_admit_per_minute(1);
        assert_eq!(estimate_wait(30, 5, &cfg), 1800);
    }
}
