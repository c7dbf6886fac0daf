//! The waiting room: entries, admission, positions and tokens.
//!
//! An entry's id is its sequence number. `queue_state.frontier` is the highest id that was
//! admitted or skipped, so a waiting entry's position is `id - frontier` — O(1), an upper bound
//! when people ahead have left. Admission runs lazily inside queue calls, in order, and only
//! takes the write lock when something is due.

use crate::clock::from_millis;
use crate::config::Config;
use crate::db::{ms, Now, OptionalRow};
use crate::error::{Error, QueueState, Result};
use crate::ids::{EntryId, UserId};
use crate::token::{Claims, Principal};
use crate::Booking;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;

/// The state of a queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryStatus {
    /// In line.
    Waiting,
    /// Admitted: may browse, hold and pay.
    Active,
    /// Over: paid, timed out, or dropped out.
    Expired,
}

impl EntryStatus {
    /// The lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            EntryStatus::Waiting => "waiting",
            EntryStatus::Active => "active",
            EntryStatus::Expired => "expired",
        }
    }
}

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

/// The two guards of the HTTP contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// A valid token (any queue state).
    Identity,
    /// A valid token whose entry is active now.
    Active,
}

#[derive(Debug, Clone)]
struct EntryRow {
    id: i64,
    user_id: UserId,
    status: String,
    last_seen_at: i64,
    active_until: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct StateRow {
    frontier: i64,
    window_start: i64,
    window_admitted: i64,
}

const ENTRY_COLS: &str = "id, user_id, status, last_seen_at, active_until";

fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EntryRow> {
    Ok(EntryRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        status: r.get(2)?,
        last_seen_at: r.get(3)?,
        active_until: r.get(4)?,
    })
}

fn load_entry(c: &Connection, id: EntryId) -> Result<Option<EntryRow>> {
    c.prepare_cached(&format!(
        "SELECT {ENTRY_COLS} FROM queue_entries WHERE id = ?1"
    ))?
    .query_row([id.0], entry_row)
    .optional_row()
}

fn live_entry_of(c: &Connection, user: UserId) -> Result<Option<EntryRow>> {
    c.prepare_cached(&format!(
        "SELECT {ENTRY_COLS} FROM queue_entries WHERE user_id = ?1 AND status IN ('waiting', 'active')"
    ))?
    .query_row([user], entry_row)
    .optional_row()
}

fn state(c: &Connection) -> Result<StateRow> {
    Ok(c.prepare_cached(
        "SELECT frontier, window_start, window_admitted FROM queue_state WHERE id = 1",
    )?
    .query_row([], |r| {
        Ok(StateRow {
            frontier: r.get(0)?,
            window_start: r.get(1)?,
            window_admitted: r.get(2)?,
        })
    })?)
}

/// The one rule for what an entry is at `now`.
fn effective(e: &EntryRow, now: Now, cfg: &Config) -> EntryStatus {
    match e.status.as_str() {
        "active" if e.active_until.is_some_and(|t| t > now.ms) => EntryStatus::Active,
        "waiting" if e.last_seen_at + ms(cfg.idle_timeout) > now.ms => EntryStatus::Waiting,
        _ => EntryStatus::Expired,
    }
}

/// A waiting entry's keep-alive is written at most once per quarter of the idle timeout, so
/// most polls change nothing and take no write lock.
fn touch_due(e: &EntryRow, now: Now, cfg: &Config) -> bool {
    effective(e, now, cfg) == EntryStatus::Waiting
        && now.ms - e.last_seen_at >= ms(cfg.idle_timeout) / 4
}

/// Slots open now: `max_active` minus the users active now. The count is a range of the
/// partial index `queue_active_until`, which holds no more live rows than admission let in
/// (at most `max_active`). (A `LIMIT` in a subquery here made SQLite re-prepare the statement
/// on every call — polls went from 6.5 to 16 µs.)
fn free_slots(c: &Connection, now: Now, cfg: &Config) -> Result<i64> {
    let active: i64 = c
        .prepare_cached(
            "SELECT COUNT(*) FROM queue_entries WHERE status = 'active' AND active_until > ?1",
        )?
        .query_row([now.ms], |r| r.get(0))?;
    Ok(i64::from(cfg.max_active) - active)
}

/// How many more users the admit-per-minute window allows now (and the window it implies).
fn allowance(st: &StateRow, now: Now, cfg: &Config) -> (i64, i64, i64) {
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

fn head(c: &Connection) -> Result<Option<(i64, i64)>> {
    c.prepare_cached(
        "SELECT id, last_seen_at FROM queue_entries WHERE status = 'waiting' ORDER BY id LIMIT 1",
    )?
    .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional_row()
}

/// Read-only: would [`admit`] change anything now?
fn admission_due(c: &Connection, st: &StateRow, now: Now, cfg: &Config) -> Result<bool> {
    let Some((_, last_seen)) = head(c)? else {
        return Ok(false);
    };
    if last_seen + ms(cfg.idle_timeout) <= now.ms {
        return Ok(true); // a dead entry at the head: skipping it tightens everyone's position
    }
    Ok(allowance(st, now, cfg).0 > 0 && free_slots(c, now, cfg)? > 0)
}

/// The most dead entries one call skips, so no single request pays for a mass exodus.
const MAX_SKIPS_PER_CALL: usize = 10_000;

/// Admits waiting users in order while there is room, skipping (expiring) entries that went
/// idle. Returns how many were admitted. Must run inside a write transaction.
fn admit(c: &Connection, now: Now, cfg: &Config) -> Result<i64> {
    let st = state(c)?;
    let (allow, window_start, window_admitted) = allowance(&st, now, cfg);
    let free = free_slots(c, now, cfg)?;
    let mut budget = free.min(allow).max(0);
    let idle = ms(cfg.idle_timeout);
    let mut frontier = st.frontier;
    let mut admitted = 0;
    let mut skipped = 0;
    let mut select = c.prepare_cached(
        "SELECT id, last_seen_at FROM queue_entries WHERE status = 'waiting' AND id > ?1 ORDER BY id LIMIT 64",
    )?;
    let mut activate = c.prepare_cached(
        "UPDATE queue_entries SET status = 'active', activated_at = ?2, active_until = ?3 WHERE id = ?1",
    )?;
    'outer: loop {
        let batch: Vec<(i64, i64)> = select
            .query_map([frontier], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if batch.is_empty() {
            break;
        }
        for (id, last_seen) in batch {
            if last_seen + idle <= now.ms {
                if skipped >= MAX_SKIPS_PER_CALL {
                    break 'outer;
                }
                expire_entry(c, id)?;
                skipped += 1;
            } else if budget > 0 {
                activate.execute(params![id, now.ms, now.ms + ms(cfg.active_ttl)])?;
                budget -= 1;
                admitted += 1;
            } else {
                break 'outer;
            }
            frontier = id;
        }
    }
    if frontier != st.frontier || admitted > 0 || window_start != st.window_start {
        c.prepare_cached(
            "UPDATE queue_state SET frontier = ?1, window_start = ?2, window_admitted = ?3 WHERE id = 1",
        )?
        .execute(params![frontier, window_start, window_admitted + admitted])?;
    }
    Ok(admitted)
}

fn status_of(
    c: &Connection,
    e: &EntryRow,
    st: &StateRow,
    now: Now,
    cfg: &Config,
) -> Result<QueueStatus> {
    let status = effective(e, now, cfg);
    let (position, wait, expires) = match status {
        EntryStatus::Waiting => {
            let position = (e.id - st.frontier).max(1);
            let free = free_slots(c, now, cfg)?;
            (
                position,
                Some(estimate_wait(position, free, cfg)),
                Some(e.last_seen_at + ms(cfg.idle_timeout)),
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
fn expire_entry(c: &Connection, id: i64) -> Result<()> {
    c.prepare_cached("UPDATE queue_entries SET status = 'expired' WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Records that a waiting entry was seen now (its keep-alive).
fn touch(c: &Connection, id: i64, now: Now) -> Result<()> {
    c.prepare_cached("UPDATE queue_entries SET last_seen_at = ?2 WHERE id = ?1")?
        .execute(params![id, now.ms])?;
    Ok(())
}

/// Ends every live entry of `user` (a payment ends the user's turn). Runs inside a write.
pub(crate) fn expire_user(c: &Connection, user: UserId) -> Result<()> {
    c.prepare_cached(
        "UPDATE queue_entries SET status = 'expired' WHERE user_id = ?1 AND status IN ('waiting', 'active')",
    )?
    .execute([user])?;
    Ok(())
}

/// Tidies entries that lapsed (idle waiting, active past its TTL); returns how many.
pub(crate) fn sweep(c: &Connection, now: Now, cfg: &Config) -> Result<usize> {
    let n = c.execute(
        "UPDATE queue_entries SET status = 'expired'
         WHERE (status = 'active' AND active_until <= ?1)
            OR (status = 'waiting' AND last_seen_at <= ?2)",
        params![now.ms, now.ms - ms(cfg.idle_timeout)],
    )?;
    admit(c, now, cfg)?;
    Ok(n)
}

/// Waiting, active and expired counts (a full count: for operators, not per request).
pub(crate) fn counts(c: &Connection, now: Now, cfg: &Config) -> Result<QueueCounts> {
    let (waiting, active, total): (i64, i64, i64) = c.query_row(
        "SELECT
            COUNT(*) FILTER (WHERE status = 'waiting' AND last_seen_at > ?2),
            COUNT(*) FILTER (WHERE status = 'active' AND active_until > ?1),
            COUNT(*)
         FROM queue_entries",
        params![now.ms, now.ms - ms(cfg.idle_timeout)],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(QueueCounts {
        waiting,
        active,
        expired: total - waiting - active,
    })
}

impl Booking {
    /// Enters the waiting room. With `None` a new user is created. A user who already has a live
    /// (waiting or active) entry gets that same entry back (`created: false`) with a fresh token;
    /// entering when there is room admits at once.
    pub fn enter_queue(&self, user: Option<UserId>) -> Result<Entered> {
        let user = user.unwrap_or_else(UserId::new_random);
        let cfg = self.cfg.clone();
        let (row, status, now, created) = self.db.write_op(move |c, now| {
            let cfg = &*cfg;
            let mut created = false;
            let existing = match live_entry_of(c, user)? {
                Some(e) if effective(&e, now, cfg) != EntryStatus::Expired => Some(e),
                Some(e) => {
                    expire_entry(c, e.id)?;
                    None
                }
                None => None,
            };
            let id = match existing {
                Some(e) => {
                    if effective(&e, now, cfg) == EntryStatus::Waiting {
                        touch(c, e.id, now)?;
                    }
                    e.id
                }
                None => {
                    created = true;
                    c.prepare_cached(
                        "INSERT INTO queue_entries (user_id, status, created_at, last_seen_at)
                         VALUES (?1, 'waiting', ?2, ?2)",
                    )?
                    .execute(params![user, now.ms])?;
                    c.last_insert_rowid()
                }
            };
            admit(c, now, cfg)?;
            let row = load_entry(c, EntryId(id))?
                .ok_or_else(|| Error::internal("queue entry vanished"))?;
            let status = status_of(c, &row, &state(c)?, now, cfg)?;
            Ok((row, status, now, created))
        })?;
        let iat = now.ms.div_euclid(1000);
        let token = self.signer.issue(&Claims {
            sub: user.to_string(),
            eid: row.id,
            seq: row.id,
            iat,
            exp: iat + self.cfg.jwt_lifetime.as_secs() as i64,
        })?;
        Ok(Entered {
            status,
            token,
            created,
        })
    }

    /// The status of the token's entry. Polling keeps a waiting entry alive and admits users
    /// when slots are free; a poll that changes nothing takes no write lock.
    pub fn queue_status(&self, who: &Principal) -> Result<QueueStatus> {
        let cfg = &self.cfg;
        let read = self.db.read_snapshot(|c, now| {
            let row = own_entry(c, who)?;
            let st = state(c)?;
            if touch_due(&row, now, cfg) || admission_due(c, &st, now, cfg)? {
                Ok(None)
            } else {
                Ok(Some(status_of(c, &row, &st, now, cfg)?))
            }
        })?;
        if let Some(status) = read {
            return Ok(status);
        }
        let (cfg, who) = (self.cfg.clone(), *who);
        self.db.write_op(move |c, now| {
            let cfg = &*cfg;
            let who = &who;
            let row = own_entry(c, who)?;
            if touch_due(&row, now, cfg) {
                touch(c, row.id, now)?;
            }
            admit(c, now, cfg)?;
            let row = own_entry(c, who)?;
            status_of(c, &row, &state(c)?, now, cfg)
        })
    }

    /// Verifies a token (signature, HS256, lifetime) and, for [`Guard::Active`], that its entry
    /// is active now.
    pub fn authorize(&self, token: &str, guard: Guard) -> Result<Principal> {
        let now = self.clock.now();
        let who = self.signer.verify(token, now.timestamp())?;
        if guard == Guard::Active {
            let cfg = &self.cfg;
            self.db.read(|c, now| {
                let row = own_entry(c, &who)?;
                match effective(&row, now, cfg) {
                    EntryStatus::Active => Ok(()),
                    EntryStatus::Waiting => Err(Error::QueueNotActive(QueueState::Waiting)),
                    EntryStatus::Expired => Err(Error::QueueNotActive(QueueState::Expired)),
                }
            })?;
        }
        Ok(who)
    }

    /// Waiting, active and expired counts.
    pub fn queue_counts(&self) -> Result<QueueCounts> {
        self.db.read(|c, now| counts(c, now, &self.cfg))
    }
}

/// The token's entry; a token whose entry is gone (or is someone else's) is not valid here.
fn own_entry(c: &Connection, who: &Principal) -> Result<EntryRow> {
    match load_entry(c, who.entry_id)? {
        Some(e) if e.user_id == who.user_id => Ok(e),
        _ => Err(Error::Unauthorized(
            "the token's queue entry does not exist in this database".into(),
        )),
    }
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
