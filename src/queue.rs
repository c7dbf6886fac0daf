//! The waiting room: entries, the prequeue and its fair start, admission, positions, and the
//! live controls.
//!
//! Every entry in line has a place, `seq`. `queue_state.frontier` is the highest place that was
//! admitted or skipped, so a waiting entry's position is `seq - frontier`: O(1), an upper bound
//! when people ahead have left. Admission runs lazily inside queue calls, in order of place, and
//! only takes the write lock when something is due. What admission compares against is kept in
//! `queue_state` as it changes (`active_count`, `prequeue_count`, `next_seq`), never counted per
//! request; lapsed sessions are retired from the front of an index on their end (each once: an
//! amortized O(1)).
//!
//! **The fair start.** Before a scheduled opening (`opens_at`), an arriving user gets a
//! `prequeue` entry with a random draw (`shuffle_key`) and no place. At the opening the places
//! after the last one handed out are reserved for the whole prequeue, later arrivals go behind
//! them, and the prequeue is placed in the order of its draws — a uniformly random order —
//! a bounded chunk per write (so no request waits on one huge transaction). Admission never
//! passes a place that is not handed out yet.
//!
//! **Live controls.** `max_active`, `admit_per_minute` (overrides of the servers' flags),
//! `paused` and `opens_at` are columns of `queue_state`, read in the same transaction as every
//! decision: every process on the database applies a change at its next queue call.

use crate::auth::Identity;
use crate::clock::{from_millis, millis_of};
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
    /// Arrived before the scheduled opening: no place yet; one is drawn at the opening.
    Prequeue,
    /// In line.
    Waiting,
    /// Admitted: may browse, hold and pay.
    Active,
    /// Over: paid, timed out, or dropped out.
    Expired,
}

stored_enum!(EntryStatus, "queue entry status", {
    EntryStatus::Prequeue => "prequeue",
    EntryStatus::Waiting => "waiting",
    EntryStatus::Active => "active",
    EntryStatus::Expired => "expired",
});

/// Where a user stands in the waiting room (the contract's QueueStatus).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStatus {
    /// The entry's user.
    pub user_id: UserId,
    /// prequeue, waiting, active or expired.
    pub status: EntryStatus,
    /// 1 for the first waiting user; 0 when in the prequeue, active or expired. Never grows
    /// while waiting.
    pub position: i64,
    /// An estimate of the wait (an upper bound: each `max_active` users ahead take at most the
    /// active TTL); `None` unless waiting, or while admission is paused.
    pub estimated_wait_seconds: Option<i64>,
    /// Active: when the session ends. Waiting: when the entry drops out if not polled.
    pub expires_at: Option<DateTime<Utc>>,
    /// The scheduled opening of the waiting room, while it is ahead.
    pub opens_at: Option<DateTime<Utc>>,
    /// Whether an operator paused admission (waiting users keep their places).
    pub paused: bool,
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
    /// In the prequeue (waiting for the opening, or for their place to be drawn).
    pub prequeue: i64,
}

/// Where a setting in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Each server's own flags (or the library's `Config`).
    Flags,
    /// Set in the database (`booking-cli queue ...`), for every process on it.
    Database,
}

/// The waiting room's settings in force (`booking-cli queue show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueSettings {
    /// Users admitted at once.
    pub max_active: u32,
    /// Newly admitted users per minute (0: no limit).
    pub admit_per_minute: u32,
    /// Whether admission is paused.
    pub paused: bool,
    /// The scheduled opening, while it is ahead (or not yet carried out).
    pub opens_at: Option<DateTime<Utc>>,
    /// Where each setting comes from.
    pub source: SettingsSource,
    /// Prequeue entries still to be placed in line.
    pub prequeue: i64,
    /// Users ever admitted.
    pub admitted_total: i64,
}

/// Where each setting of [`QueueSettings`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SettingsSource {
    /// `max_active`.
    pub max_active: Source,
    /// `admit_per_minute`.
    pub admit_per_minute: Source,
    /// `paused` (always the database's).
    pub paused: Source,
    /// `opens_at` (always the database's).
    pub opens_at: Source,
}

/// A change of the live controls (`None`: leave as it is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueChange {
    /// Set (`Some(Some(n))`) or clear back to the flags (`Some(None)`) the max active users.
    pub max_active: Option<Option<u32>>,
    /// Set or clear the admissions per minute.
    pub admit_per_minute: Option<Option<u32>>,
    /// Pause or resume admission.
    pub paused: Option<bool>,
    /// Schedule the opening (`Some(Some(t))`) or drop the schedule (`Some(None)`).
    pub opens_at: Option<Option<DateTime<Utc>>>,
}

/// A queue entry as stored.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: EntryId,
    pub user_id: UserId,
    status: EntryStatus,
    /// Its place in line (`None` in the prequeue).
    pub seq: Option<i64>,
    last_seen_at: i64,
    active_until: Option<i64>,
}

/// `queue_state`, the one row.
#[derive(Debug, Clone, Copy)]
struct State {
    frontier: i64,
    window_start: i64,
    window_admitted: i64,
    next_seq: i64,
    active_count: i64,
    prequeue_count: i64,
    opens_at: Option<i64>,
    placing_base: Option<i64>,
    placing_done: i64,
    max_active: Option<u32>,
    admit_per_minute: Option<u32>,
    paused: bool,
    admitted_total: i64,
}

/// The admission policy in force: the database's overrides, else the config's.
#[derive(Debug, Clone, Copy)]
struct Policy {
    max_active: u32,
    admit_per_minute: u32,
    paused: bool,
}

impl State {
    fn policy(&self, cfg: &Config) -> Policy {
        Policy {
            max_active: self.max_active.unwrap_or(cfg.max_active),
            admit_per_minute: self.admit_per_minute.unwrap_or(cfg.admit_per_minute),
            paused: self.paused,
        }
    }

    /// The last place reserved: handed out, or kept for the prequeue being placed.
    fn reserved_until(&self) -> i64 {
        self.next_seq
    }

    /// The highest place admission may reach now: while the prequeue is being placed, the places
    /// not drawn yet are ahead of everyone behind them.
    fn admit_until(&self) -> i64 {
        match self.placing_base {
            Some(base) => base + self.placing_done,
            None => i64::MAX,
        }
    }

    /// Whether the scheduled opening is due but not carried out yet.
    fn opening_due(&self, now: Now) -> bool {
        self.opens_at.is_some_and(|t| t <= now.ms)
    }

    /// Places in line in use: from the frontier to the last place reserved, plus the prequeue
    /// (an upper bound of the waiting entries, as positions are).
    fn in_line(&self) -> i64 {
        let placing_rest = if self.placing_base.is_some() {
            0 // already reserved in next_seq
        } else {
            self.prequeue_count
        };
        (self.next_seq - self.frontier).max(0) + placing_rest
    }
}

fn entry(r: &dyn Row) -> Result<Entry> {
    Ok(Entry {
        id: r.get(0)?,
        user_id: r.get(1)?,
        status: r.get(2)?,
        seq: r.get(3)?,
        last_seen_at: r.get(4)?,
        active_until: r.get(5)?,
    })
}

fn load(c: &dyn Tx, id: EntryId) -> Result<Option<Entry>> {
    c.row(
        "SELECT id, user_id, status, seq, last_seen_at, active_until FROM queue_entries
         WHERE id = ?1",
        params![id],
        entry,
    )
}

/// [`load`] inside a write, the row locked until the transaction ends: on an engine with row
/// locks, a user's guarded writes and the payment that ends their turn serialize on it.
fn load_locked(c: &dyn Tx, id: EntryId) -> Result<Option<Entry>> {
    c.row_locked(
        "SELECT id, user_id, status, seq, last_seen_at, active_until FROM queue_entries
         WHERE id = ?1",
        params![id],
        entry,
    )
}

fn live_entry_of(c: &dyn Tx, user: UserId) -> Result<Option<Entry>> {
    c.row(
        "SELECT id, user_id, status, seq, last_seen_at, active_until FROM queue_entries
         WHERE user_id = ?1 AND status IN ('prequeue', 'waiting', 'active')",
        params![user],
        entry,
    )
}

fn state(c: &dyn Tx) -> Result<State> {
    let u32_of = |v: Option<i64>| v.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    c.row_locked(
        "SELECT frontier, window_start, window_admitted, next_seq, active_count, prequeue_count,
                opens_at, placing_base, placing_done, max_active, admit_per_minute, paused,
                admitted_total
         FROM queue_state WHERE id = 1",
        params![],
        |r| {
            Ok(State {
                frontier: r.get(0)?,
                window_start: r.get(1)?,
                window_admitted: r.get(2)?,
                next_seq: r.get(3)?,
                active_count: r.get(4)?,
                prequeue_count: r.get(5)?,
                opens_at: r.get(6)?,
                placing_base: r.get(7)?,
                placing_done: r.get(8)?,
                max_active: u32_of(r.get(9)?),
                admit_per_minute: u32_of(r.get(10)?),
                paused: r.get(11)?,
                admitted_total: r.get(12)?,
            })
        },
    )?
    .ok_or_else(|| Error::internal("queue_state has no row"))
}

fn save(c: &dyn Tx, st: &State) -> Result<()> {
    c.execute(
        "UPDATE queue_state SET frontier = ?1, window_start = ?2, window_admitted = ?3,
                next_seq = ?4, active_count = ?5, prequeue_count = ?6, opens_at = ?7,
                placing_base = ?8, placing_done = ?9, admitted_total = ?10
         WHERE id = 1",
        params![
            st.frontier,
            st.window_start,
            st.window_admitted,
            st.next_seq,
            st.active_count,
            st.prequeue_count,
            st.opens_at,
            st.placing_base,
            st.placing_done,
            st.admitted_total
        ],
    )?;
    Ok(())
}

/// The one rule for what an entry is at `now`.
fn effective(e: &Entry, now: Now, cfg: &Config) -> EntryStatus {
    match e.status {
        EntryStatus::Prequeue => EntryStatus::Prequeue,
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
        && now.ms - e.last_seen_at >= millis_of(cfg.idle_timeout) / 4
}

/// How many more users the admit-per-minute window allows now (and the window it implies).
fn allowance(st: &State, p: &Policy, now: Now) -> (i64, i64, i64) {
    if p.admit_per_minute == 0 {
        return (i64::MAX, st.window_start, st.window_admitted);
    }
    let (start, admitted) = if now.ms - st.window_start >= 60_000 {
        (now.ms, 0)
    } else {
        (st.window_start, st.window_admitted)
    };
    (i64::from(p.admit_per_minute) - admitted, start, admitted)
}

/// The first waiting entry (its place and when it was last seen).
fn head(c: &dyn Tx) -> Result<Option<(i64, i64)>> {
    c.row(
        "SELECT seq, last_seen_at FROM queue_entries WHERE status = 'waiting' ORDER BY seq LIMIT 1",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Whether some active session has lapsed and is not retired yet (one index probe).
fn lapsed_sessions(c: &dyn Tx, now: Now) -> Result<bool> {
    Ok(c.row(
        "SELECT 1 FROM queue_entries WHERE status = 'active' AND active_until <= ?1 LIMIT 1",
        params![now.ms],
        |_| Ok(()),
    )?
    .is_some())
}

/// Read-only: would [`advance`] change anything now that matters to this poll?
fn admission_due(c: &dyn Tx, st: &State, now: Now, cfg: &Config) -> Result<bool> {
    if st.opening_due(now) {
        return Ok(true);
    }
    let Some((seq, last_seen)) = head(c)? else {
        return Ok(false);
    };
    if st.policy(cfg).paused || seq > st.admit_until() {
        return Ok(false);
    }
    if last_seen <= now.minus(cfg.idle_timeout) {
        return Ok(true); // a dead entry at the head: skipping it tightens everyone's position
    }
    let p = st.policy(cfg);
    if allowance(st, &p, now).0 <= 0 {
        return Ok(false);
    }
    Ok(i64::from(p.max_active) > st.active_count || lapsed_sessions(c, now)?)
}

/// The most dead entries one call skips, so no single request pays for a mass exodus.
const MAX_SKIPS_PER_CALL: usize = 10_000;
/// The most lapsed sessions one call retires.
const MAX_RETIRED_PER_CALL: i64 = 1_000;
/// The most prequeue entries the placing step (a server's background thread, a sweep) places
/// in one transaction.
pub(crate) const PLACE_CHUNK: i64 = 2_000;
/// The most prequeue entries a request's write places on the side: small, because with group
/// commit a few hundred requests share one transaction.
const PLACE_ON_THE_SIDE: i64 = 64;

/// Carries out a due opening: the places after the last one handed out are reserved for the
/// whole prequeue, in one step; everyone who arrives later goes behind them.
fn open_if_due(st: &mut State, now: Now) {
    if !st.opening_due(now) {
        return;
    }
    st.opens_at = None;
    if st.prequeue_count > 0 && st.placing_base.is_none() {
        st.placing_base = Some(st.next_seq);
        st.placing_done = 0;
        st.next_seq += st.prequeue_count;
    }
}

/// Places up to `chunk` prequeue entries, in the order of their random draws, at the next places
/// reserved for them. Returns how many.
fn place(c: &dyn Tx, st: &mut State, now: Now, chunk: i64) -> Result<i64> {
    let Some(base) = st.placing_base else {
        return Ok(0);
    };
    let ids: Vec<i64> = c.rows(
        "SELECT id FROM queue_entries WHERE status = 'prequeue'
         ORDER BY shuffle_key, id LIMIT ?1",
        params![chunk],
        |r| r.get(0),
    )?;
    for id in &ids {
        st.placing_done += 1;
        // Placed now: a full idle timeout from now to start polling.
        c.execute(
            "UPDATE queue_entries
             SET status = 'waiting', seq = ?2, shuffle_key = NULL,
                 last_seen_at = CASE WHEN last_seen_at > ?3 THEN last_seen_at ELSE ?3 END
             WHERE id = ?1",
            params![*id, base + st.placing_done, now.ms],
        )?;
    }
    let n = ids.len() as i64;
    st.prequeue_count -= n;
    if st.prequeue_count <= 0 || n < chunk {
        st.prequeue_count = 0;
        st.placing_base = None;
        st.placing_done = 0;
    }
    Ok(n)
}

/// Ends sessions that lapsed (from the front of `queue_active_until`, a bounded number).
fn retire_lapsed(c: &dyn Tx, st: &mut State, now: Now) -> Result<i64> {
    let n = c.execute(
        "UPDATE queue_entries SET status = 'expired'
         WHERE id IN (SELECT id FROM queue_entries
                      WHERE status = 'active' AND active_until <= ?1
                      ORDER BY active_until LIMIT ?2)",
        params![now.ms, MAX_RETIRED_PER_CALL],
    )? as i64;
    st.active_count = (st.active_count - n).max(0);
    Ok(n)
}

/// Moves the waiting room forward: carries out a due opening, places a chunk of the prequeue,
/// retires lapsed sessions, and admits waiting users in order of place while there is room
/// (skipping entries that went idle). Must run inside a write transaction. Returns how many
/// users it admitted.
fn advance(c: &dyn Tx, st: &mut State, now: Now, cfg: &Config) -> Result<i64> {
    open_if_due(st, now);
    place(c, st, now, PLACE_ON_THE_SIDE)?;
    retire_lapsed(c, st, now)?;
    let p = st.policy(cfg);
    if p.paused {
        return Ok(0);
    }
    let (allow, window_start, window_admitted) = allowance(st, &p, now);
    let free = i64::from(p.max_active) - st.active_count;
    let mut budget = free.min(allow).max(0);
    let idle_before = now.minus(cfg.idle_timeout);
    let active_until = now.plus(cfg.active_ttl);
    let until = st.admit_until();
    let mut admitted = 0;
    let mut skipped = 0;
    'outer: while st.frontier < until {
        let batch: Vec<(EntryId, i64, i64)> = c.rows(
            "SELECT id, seq, last_seen_at FROM queue_entries
             WHERE status = 'waiting' AND seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT 64",
            params![st.frontier, until],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        if batch.is_empty() {
            break;
        }
        for (id, seq, last_seen) in batch {
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
            st.frontier = seq;
        }
    }
    st.active_count += admitted;
    st.admitted_total += admitted;
    st.window_start = window_start;
    st.window_admitted = window_admitted + admitted;
    Ok(admitted)
}

fn status_of(e: &Entry, st: &State, now: Now, cfg: &Config) -> QueueStatus {
    let p = st.policy(cfg);
    let mut status = effective(e, now, cfg);
    let (position, expires) = match (status, e.seq) {
        (EntryStatus::Waiting, Some(seq)) => (
            (seq - st.frontier).max(1),
            Some(e.last_seen_at.saturating_add(millis_of(cfg.idle_timeout))),
        ),
        // Opened, but this entry's place is not drawn yet: in line, behind at most the places
        // reserved for the prequeue.
        (EntryStatus::Prequeue, _) if st.opens_at.is_none() || st.opening_due(now) => {
            status = EntryStatus::Waiting;
            let last = if st.placing_base.is_some() {
                st.reserved_until()
            } else {
                st.next_seq + st.prequeue_count
            };
            ((last - st.frontier).max(1), None)
        }
        (EntryStatus::Active, _) => (0, e.active_until),
        _ => (0, None),
    };
    let wait = (status == EntryStatus::Waiting && !p.paused).then(|| {
        let free = i64::from(p.max_active) - st.active_count;
        estimate_wait(position, free, &p, cfg)
    });
    QueueStatus {
        user_id: e.user_id,
        status,
        position,
        estimated_wait_seconds: wait,
        expires_at: expires.map(from_millis),
        opens_at: st.opens_at.filter(|t| *t > now.ms).map(from_millis),
        paused: p.paused,
    }
}

/// An upper estimate of the wait for `position` with `free` slots open now: beyond the free
/// slots, every `max_active` users ahead take at most one active TTL, and the admit-per-minute
/// limit admits at most that many a minute.
fn estimate_wait(position: i64, free: i64, p: &Policy, cfg: &Config) -> i64 {
    let needing_a_slot = position - free.max(0);
    let by_slots = if needing_a_slot <= 0 {
        0
    } else if p.max_active == 0 {
        i64::MAX
    } else {
        let rounds = (needing_a_slot + i64::from(p.max_active) - 1) / i64::from(p.max_active);
        rounds.saturating_mul(cfg.active_ttl.as_secs() as i64)
    };
    let by_rate = if p.admit_per_minute == 0 {
        0
    } else {
        let minutes =
            (position + i64::from(p.admit_per_minute) - 1) / i64::from(p.admit_per_minute);
        minutes.saturating_mul(60)
    };
    by_slots.max(by_rate)
}

/// Marks one entry expired.
fn expire_entry(c: &dyn Tx, id: EntryId) -> Result<()> {
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

/// Ends a live entry that is over (its state is stored as still live), keeping the counts.
fn end(c: &dyn Tx, st: &mut State, e: &Entry) -> Result<()> {
    expire_entry(c, e.id)?;
    match e.status {
        EntryStatus::Active => st.active_count = (st.active_count - 1).max(0),
        EntryStatus::Prequeue => st.prequeue_count = (st.prequeue_count - 1).max(0),
        _ => {}
    }
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
    let mut st = state(c)?;
    // A due opening first: whoever arrives now goes behind the prequeue.
    open_if_due(&mut st, now);
    let existing = match live_entry_of(c, user)? {
        Some(e) if effective(&e, now, cfg) != EntryStatus::Expired => Some(e),
        Some(e) => {
            end(c, &mut st, &e)?;
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
            if st.in_line() >= i64::try_from(cfg.max_waiting).unwrap_or(i64::MAX) {
                return Err(Error::QueueFull(cfg.max_waiting));
            }
            let id = if st.opens_at.is_some_and(|t| t > now.ms) {
                st.prequeue_count += 1;
                c.insert(
                    "INSERT INTO queue_entries (user_id, status, shuffle_key, created_at, last_seen_at)
                     VALUES (?1, 'prequeue', ?2, ?3, ?3) RETURNING id",
                    params![user, rand::random::<i64>(), now.ms],
                )?
            } else {
                st.next_seq += 1;
                c.insert(
                    "INSERT INTO queue_entries (user_id, status, seq, created_at, last_seen_at)
                     VALUES (?1, 'waiting', ?2, ?3, ?3) RETURNING id",
                    params![user, st.next_seq, now.ms],
                )?
            };
            (EntryId::new(id)?, true)
        }
    };
    advance(c, &mut st, now, cfg)?;
    save(c, &st)?;
    let row = load(c, id)?.ok_or_else(|| Error::internal("queue entry vanished"))?;
    let status = status_of(&row, &st, now, cfg);
    Ok((row, status, created))
}

/// A poll, read-only: the status, or `None` when the poll has something to write (a keep-alive
/// due, a due opening, its own place still to draw, or users to admit) and must run [`poll`]
/// instead. (A poll behind a prequeue being placed does not write for it: placing is the placing
/// step's work, and the poller's position is exact meanwhile.)
pub(crate) fn poll_read(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    who: &Identity,
) -> Result<Option<QueueStatus>> {
    let row = own_entry(c, who)?;
    let st = state(c)?;
    let unplaced = row.status == EntryStatus::Prequeue && st.placing_base.is_some();
    if unplaced || touch_due(&row, now, cfg) || admission_due(c, &st, now, cfg)? {
        Ok(None)
    } else {
        Ok(Some(status_of(&row, &st, now, cfg)))
    }
}

/// A poll that writes: the keep-alive if due, the waiting room moved forward, then the status.
pub(crate) fn poll(c: &dyn Tx, now: Now, cfg: &Config, who: &Identity) -> Result<QueueStatus> {
    // `queue_state` first, as in every queue write: the entry is then read as the last writer
    // left it, and the lock order is one (state, then entries).
    let mut st = state(c)?;
    let row = own_entry(c, who)?;
    if touch_due(&row, now, cfg) {
        touch(c, row.id, now)?;
    }
    advance(c, &mut st, now, cfg)?;
    save(c, &st)?;
    let row = own_entry(c, who)?;
    Ok(status_of(&row, &st, now, cfg))
}

/// The *active* guard: `who`'s entry is active at `now`, else `queue_not_active`. Inside a write
/// transaction it is the check that counts: a payment that ended the turn a moment ago is seen.
pub(crate) fn require_active(c: &dyn Tx, now: Now, cfg: &Config, who: &Identity) -> Result<()> {
    let e = load_locked(c, who.entry_id())?
        .filter(|e| e.user_id == who.user_id())
        .ok_or_else(not_this_database)?;
    match effective(&e, now, cfg) {
        EntryStatus::Active => Ok(()),
        EntryStatus::Waiting | EntryStatus::Prequeue => {
            Err(Error::QueueNotActive(QueueState::Waiting))
        }
        EntryStatus::Expired => Err(Error::QueueNotActive(QueueState::Expired)),
    }
}

/// The token's entry; a token whose entry is gone (or is someone else's) is not valid here.
fn own_entry(c: &dyn Tx, who: &Identity) -> Result<Entry> {
    load(c, who.entry_id())?
        .filter(|e| e.user_id == who.user_id())
        .ok_or_else(not_this_database)
}

fn not_this_database() -> Error {
    Error::Unauthorized("the token's queue entry does not exist in this database".into())
}

/// Locks `user`'s live entry, if there is one, until the write ends. A payment takes it before
/// its seats, as a hold does through [`require_active`], so the two never wait for each other
/// in opposite orders (the payment ends the entry after it has bumped its seats' showtime).
pub(crate) fn lock_live_entry(c: &dyn Tx, user: UserId) -> Result<()> {
    c.row_locked(
        "SELECT id FROM queue_entries
         WHERE user_id = ?1 AND status IN ('prequeue', 'waiting', 'active')",
        params![user],
        |_| Ok(()),
    )?;
    Ok(())
}

/// Ends every live entry of `user` (a payment ends the user's turn). Runs inside a write.
pub(crate) fn expire_user(c: &dyn Tx, user: UserId) -> Result<()> {
    // The entry is read under the `queue_state` lock that every change of an entry's status
    // holds: read before it, a concurrent admission or retirement could make the counts drift.
    let mut st = state(c)?;
    if let Some(e) = live_entry_of(c, user)? {
        end(c, &mut st, &e)?;
        save(c, &st)?;
    }
    Ok(())
}

/// Tidies entries that lapsed (idle waiting, active past its TTL), places what is left of the
/// prequeue (in chunks), and admits; returns how many entries were tidied.
pub(crate) fn sweep(c: &dyn Tx, now: Now, cfg: &Config) -> Result<usize> {
    let mut st = state(c)?;
    let mut n = 0;
    loop {
        let retired = retire_lapsed(c, &mut st, now)?;
        n += retired as usize;
        if retired < MAX_RETIRED_PER_CALL {
            break;
        }
    }
    n += c.execute(
        "UPDATE queue_entries SET status = 'expired'
         WHERE status = 'waiting' AND last_seen_at <= ?1",
        params![now.minus(cfg.idle_timeout)],
    )?;
    open_if_due(&mut st, now);
    while place(c, &mut st, now, PLACE_CHUNK)? == PLACE_CHUNK {}
    advance(c, &mut st, now, cfg)?;
    save(c, &st)?;
    Ok(n)
}

/// Places one chunk of the prequeue if an opening is due or under way (the server's background
/// step, so that a big prequeue is placed within seconds whatever the traffic). Returns how many
/// entries it placed; 0 when there is nothing to place.
pub(crate) fn place_step(c: &dyn Tx, now: Now, cfg: &Config) -> Result<i64> {
    let mut st = state(c)?;
    if !st.opening_due(now) && st.placing_base.is_none() {
        return Ok(0);
    }
    open_if_due(&mut st, now);
    let n = place(c, &mut st, now, PLACE_CHUNK)?;
    advance(c, &mut st, now, cfg)?;
    save(c, &st)?;
    Ok(n)
}

/// Whether [`place_step`] has work to do (read-only).
pub(crate) fn placing_due(c: &dyn Tx, now: Now) -> Result<bool> {
    let st = state(c)?;
    Ok(st.opening_due(now) || st.placing_base.is_some())
}

/// Waiting, active, expired and prequeue counts (a full count: for operators, not per request).
pub(crate) fn counts(c: &dyn Tx, now: Now, cfg: &Config) -> Result<QueueCounts> {
    c.row(
        "SELECT
            COUNT(*) FILTER (WHERE status = 'waiting' AND last_seen_at > ?2),
            COUNT(*) FILTER (WHERE status = 'active' AND active_until > ?1),
            COUNT(*) FILTER (WHERE status = 'prequeue'),
            COUNT(*)
         FROM queue_entries",
        params![now.ms, now.minus(cfg.idle_timeout)],
        |r| {
            let (waiting, active, prequeue, total): (i64, i64, i64, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            Ok(QueueCounts {
                waiting,
                active,
                expired: total - waiting - active - prequeue,
                prequeue,
            })
        },
    )?
    .ok_or_else(|| Error::internal("no counts"))
}

/// Places in line behind the frontier (an upper bound of the waiting entries) and the kept count
/// of active sessions: O(1).
pub(crate) fn kept_counts(c: &dyn Tx) -> Result<(i64, i64)> {
    let st = state(c)?;
    Ok(((st.next_seq - st.frontier).max(0), st.active_count))
}

/// The settings in force.
pub(crate) fn settings(c: &dyn Tx, cfg: &Config) -> Result<QueueSettings> {
    let st = state(c)?;
    let p = st.policy(cfg);
    let src = |set: bool| if set { Source::Database } else { Source::Flags };
    Ok(QueueSettings {
        max_active: p.max_active,
        admit_per_minute: p.admit_per_minute,
        paused: p.paused,
        opens_at: st.opens_at.map(from_millis),
        source: SettingsSource {
            max_active: src(st.max_active.is_some()),
            admit_per_minute: src(st.admit_per_minute.is_some()),
            paused: Source::Database,
            opens_at: Source::Database,
        },
        prequeue: st.prequeue_count,
        admitted_total: st.admitted_total,
    })
}

/// Changes the live controls. A new opening cannot be scheduled while the last one's prequeue is
/// still being placed.
pub(crate) fn change(c: &dyn Tx, now: Now, cfg: &Config, ch: QueueChange) -> Result<QueueSettings> {
    let st = state(c)?;
    if let Some(Some(at)) = ch.opens_at {
        if st.placing_base.is_some() && at.timestamp_millis() > now.ms {
            return Err(Error::InvalidRequest(
                "the last opening's prequeue is still being placed; try again in a few seconds"
                    .into(),
            ));
        }
    }
    let keep = |v: Option<u32>| v.map(i64::from);
    let max_active = ch
        .max_active
        .map_or(keep(st.max_active), |v| v.map(i64::from));
    let per_minute = ch
        .admit_per_minute
        .map_or(keep(st.admit_per_minute), |v| v.map(i64::from));
    let paused = ch.paused.unwrap_or(st.paused);
    let opens_at = ch
        .opens_at
        .map_or(st.opens_at, |v| v.map(|t| t.timestamp_millis()));
    c.execute(
        "UPDATE queue_state SET max_active = ?1, admit_per_minute = ?2, paused = ?3, opens_at = ?4
         WHERE id = 1",
        params![max_active, per_minute, paused, opens_at],
    )?;
    settings(c, cfg)
}

/// The queue's kept counts against real counts (for `verify`).
pub(crate) const CHECKS: &[(&str, &str)] = &[
    (
        "queue_active_count",
        "SELECT 'queue_state counts ' || s.active_count || ' active entries but there are '
                || (SELECT COUNT(*) FROM queue_entries WHERE status = 'active')
         FROM queue_state s
         WHERE s.active_count <> (SELECT COUNT(*) FROM queue_entries WHERE status = 'active')",
    ),
    (
        "queue_prequeue_count",
        "SELECT 'queue_state counts ' || s.prequeue_count || ' prequeue entries but there are '
                || (SELECT COUNT(*) FROM queue_entries WHERE status = 'prequeue')
         FROM queue_state s
         WHERE s.prequeue_count <> (SELECT COUNT(*) FROM queue_entries WHERE status = 'prequeue')",
    ),
    (
        "queue_places_handed_out",
        "SELECT 'queue_state hands out places up to ' || s.next_seq || ' but place '
                || (SELECT MAX(seq) FROM queue_entries) || ' is taken'
         FROM queue_state s
         WHERE (SELECT MAX(seq) FROM queue_entries) > s.next_seq OR s.frontier > s.next_seq",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_estimate_grows_with_position_and_respects_the_rate_limit() {
        let cfg = Config::default().with_max_active(10);
        let p = |max_active, admit_per_minute| Policy {
            max_active,
            admit_per_minute,
            paused: false,
        };
        assert_eq!(estimate_wait(1, 0, &p(10, 0), &cfg), 600);
        assert_eq!(estimate_wait(10, 0, &p(10, 0), &cfg), 600);
        assert_eq!(estimate_wait(11, 0, &p(10, 0), &cfg), 1200);
        assert_eq!(estimate_wait(11, 1, &p(10, 0), &cfg), 600);
        assert_eq!(estimate_wait(3, 5, &p(10, 0), &cfg), 0);
        assert_eq!(estimate_wait(30, 5, &p(10, 1), &cfg), 1800);
    }
}
