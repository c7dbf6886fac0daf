//! The facade: [`Booking`], the library's whole public API in one place. Each method picks the
//! path — a read, an operator's write ([`Db::write`]), or a request's write ([`Db::write_op`],
//! group commit when on) — and calls one pure domain function over the open transaction. Domain
//! modules never see `Booking`.
//!
//! Users' operations take a proof from [`Booking::authorize`] or [`Booking::authorize_active`]
//! instead of a bare user id, so no caller can skip a guard; active-guarded writes check the
//! entry again inside their own transaction. Operators (the CLI, seeding, scripts) go through
//! [`Booking::operator`], whose methods say in their names what they may do.

use crate::auth::{Active, Claims, Identity, Signer};
use crate::cancellations::{self, By, Cancellation, ShowtimeCancelled};
use crate::catalog::{self, CatalogFile, Concert, NewShowtime, Seat, SeedReport, Showtime, Which};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::{self, BatchStats, Db, Location, Now};
use crate::error::{Error, Result};
use crate::ids::{ConcertId, IdempotencyKey, SeatId, ShowtimeId, TicketId, UserId};
use crate::maintenance::{self, Stats, SweepReport, VerifyReport, Violation};
use crate::money::Points;
use crate::payments::{self, Payment};
use crate::queue::{self, Entered, QueueChange, QueueCounts, QueueSettings, QueueStatus};
use crate::reports::{self, ShowtimeReport};
use crate::seatmap::{self, SeatChanges, SeatMap, SeatVersion};
use crate::tickets::{self, Ticket};
use crate::wallet::{self, Balance, PointTransaction};
use crate::{db::sql::Tx, idempotency};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// The handle: a database, its policy and its clock. Cheap to share across threads
/// (`Arc<Booking>`); several handles — in one process or many — may open the same database.
pub struct Booking {
    db: Db,
    cfg: Arc<Config>,
    signer: Signer,
    clock: Arc<dyn Clock>,
    temp_dir: Option<PathBuf>,
}

impl Booking {
    /// Opens (creating and migrating if needed) the database at `location` with the system
    /// clock: a SQLite file path (`"booking.db"`, a `Path`), or a `postgres://` URL (feature
    /// `postgres`; the database is created if missing). See [`Location`].
    pub fn open(location: impl Into<Location>, cfg: Config) -> Result<Booking> {
        Booking::open_with_clock(location, cfg, Arc::new(SystemClock))
    }

    /// Opens the database at `location` with the given clock.
    pub fn open_with_clock(
        location: impl Into<Location>,
        cfg: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Booking> {
        let db = Db::open(location.into(), &cfg, clock.clone())?;
        let secret = match &cfg.jwt_secret {
            Some(s) if !s.is_empty() => s.clone(),
            Some(_) => return Err(Error::InvalidRequest("the JWT secret is empty".into())),
            None => db.write(|c, _| {
                db::meta_get_or_init(c, "jwt_secret", || rand::random::<[u8; 32]>().to_vec())
            })?,
        };
        Ok(Booking {
            db,
            signer: Signer::new(&secret),
            cfg: Arc::new(cfg),
            clock,
            temp_dir: None,
        })
    }

    /// Opens a fresh database in a new temporary directory, removed when the handle drops.
    /// Meant for tests and examples.
    pub fn open_temporary(cfg: Config, clock: Arc<dyn Clock>) -> Result<Booking> {
        let dir = std::env::temp_dir().join(format!("booking-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(Error::internal)?;
        let mut b = Booking::open_with_clock(dir.join("booking.db"), cfg, clock)?;
        b.temp_dir = Some(dir);
        Ok(b)
    }

    /// The policy in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The clock's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Where the database is: its file, or its PostgreSQL URL (shown without the password).
    pub fn location(&self) -> &Location {
        self.db.location()
    }

    /// Batch-size counts of the group-commit writer (`None` when group commit is off).
    pub fn batch_stats(&self) -> Option<BatchStats> {
        self.db.batch_stats()
    }

    // ---- the waiting room ------------------------------------------------------------------

    /// Enters the waiting room. With `None` a new user is created. A user who already has a live
    /// (waiting or active) entry gets that same entry back (`created: false`) with a fresh token;
    /// entering when there is room admits at once.
    pub fn enter_queue(&self, user: Option<UserId>) -> Result<Entered> {
        let user = user.unwrap_or_else(UserId::new_random);
        let cfg = self.cfg.clone();
        let (entry, status, created, now) = self.db.write_op(move |c, now| {
            let (entry, status, created) = queue::enter(c, now, &cfg, user)?;
            Ok((entry, status, created, now))
        })?;
        let iat = now.ms.div_euclid(1000);
        let token = self.signer.issue(&Claims {
            sub: user.to_string(),
            eid: entry.id.get(),
            seq: entry.seq.unwrap_or(0),
            iat,
            exp: iat.saturating_add(self.cfg.jwt_lifetime.as_secs() as i64),
        })?;
        Ok(Entered {
            status,
            token,
            created,
        })
    }

    /// Checks a token (signature, HS256 only, lifetime): the *identity* guard. The proof names
    /// the user and their queue entry, whatever its state.
    pub fn authorize(&self, token: &str) -> Result<Identity> {
        self.signer.verify(token, self.clock.now().timestamp())
    }

    /// Checks a token and that its queue entry is active now: the *active* guard. Writes that
    /// take the proof check the entry again inside their own transaction.
    pub fn authorize_active(&self, token: &str) -> Result<Active> {
        let who = self.authorize(token)?;
        self.require_active(&who)?;
        Ok(Active::new(who))
    }

    /// The read half of the *active* guard: `queue_not_active` unless `who`'s entry is active now.
    pub(crate) fn require_active(&self, who: &Identity) -> Result<()> {
        self.db
            .read(|c, now| queue::require_active(c, now, &self.cfg, who))
    }

    /// The *active* guard of a write that takes the proof (`hold_seats`, `extend`): the token
    /// only. Such a write checks the entry inside its own transaction, so a read before it
    /// would ask the same question twice (a hold over HTTP ran 1.10x faster without it). A
    /// proof made here must go to such a write only, never to a read.
    pub(crate) fn authorize_active_write(&self, token: &str) -> Result<Active> {
        Ok(Active::new(self.authorize(token)?))
    }

    /// The status of the caller's entry. Polling keeps a waiting entry alive and admits users
    /// when slots are free; a poll that changes nothing takes no write lock.
    pub fn queue_status(&self, who: &Identity) -> Result<QueueStatus> {
        if let Some(status) = self
            .db
            .read_snapshot(|c, now| queue::poll_read(c, now, &self.cfg, who))?
        {
            return Ok(status);
        }
        let (cfg, who) = (self.cfg.clone(), *who);
        self.db
            .write_op(move |c, now| queue::poll(c, now, &cfg, &who))
    }

    // ---- the catalog (active users) --------------------------------------------------------

    /// Every concert, by id.
    pub fn concerts(&self, _who: &Active) -> Result<Vec<Concert>> {
        self.db.read(|c, _| catalog::list_concerts(c))
    }

    /// The bookable showtimes (starting in the future) of `concert`, by start time;
    /// `not_found` for an unknown concert.
    pub fn showtimes(&self, _who: &Active, concert: ConcertId) -> Result<Vec<Showtime>> {
        self.db
            .read(|c, now| catalog::list_showtimes(c, now, concert, Which::Bookable))
    }

    /// The seats of `showtime` by number, with their status now; `not_found` for an unknown
    /// concert or a showtime that is not that concert's.
    pub fn seats(
        &self,
        _who: &Active,
        concert: ConcertId,
        showtime: ShowtimeId,
    ) -> Result<Vec<Seat>> {
        self.db
            .read(|c, now| catalog::list_seats(c, now, concert, showtime))
    }

    /// The seats of `showtime` with the version of the map they make, read in one snapshot.
    pub fn seat_map(
        &self,
        _who: &Active,
        concert: ConcertId,
        showtime: ShowtimeId,
    ) -> Result<SeatMap> {
        self.db.read_snapshot(|c, now| {
            Ok(SeatMap {
                version: seatmap::version(c, now, concert, showtime)?,
                seats: catalog::list_seats(c, now, concert, showtime)?,
            })
        })
    }

    /// The version of `showtime`'s seat map now (two index lookups, whatever the map's size):
    /// equal versions mean equal maps. `not_found` as [`Booking::seats`].
    pub fn seat_version(
        &self,
        _who: &Active,
        concert: ConcertId,
        showtime: ShowtimeId,
    ) -> Result<SeatVersion> {
        self.db
            .read_snapshot(|c, now| seatmap::version(c, now, concert, showtime))
    }

    /// The seats of `showtime` whose status changed after `since` (every seat when `since` is
    /// not a version of this map), with the version they bring the map to.
    pub fn seats_since(
        &self,
        _who: &Active,
        concert: ConcertId,
        showtime: ShowtimeId,
        since: SeatVersion,
    ) -> Result<SeatChanges> {
        self.db
            .read_snapshot(|c, now| seatmap::since(c, now, concert, showtime, since))
    }

    // ---- holds and tickets -----------------------------------------------------------------

    /// Holds a seat for the caller for the hold TTL. The caller's entry must still be active
    /// when the hold is written (checked in the same transaction).
    pub fn hold(&self, who: &Active, showtime: ShowtimeId, seat: SeatId) -> Result<Ticket> {
        let mut held = self.hold_seats(who, showtime, &[seat])?;
        held.pop()
            .ok_or_else(|| Error::internal("a hold of one seat held none"))
    }

    /// Holds several seats of one showtime for the caller, in one transaction: every one of
    /// them, or none (`seat_unavailable` names the first taken seat). The per-user limit counts
    /// them all. Tickets come back in the order of `seats`.
    pub fn hold_seats(
        &self,
        who: &Active,
        showtime: ShowtimeId,
        seats: &[SeatId],
    ) -> Result<Vec<Ticket>> {
        let (cfg, who, seats) = (self.cfg.clone(), **who, seats.to_vec());
        self.db.write_op(move |c, now| {
            queue::require_active(c, now, &cfg, &who)?;
            tickets::hold(c, now, &cfg, who.user_id(), showtime, &seats)
        })
    }

    /// Gives a live hold back: the ticket is `released` and its seat available at once.
    pub fn release(&self, who: &Identity, ticket: TicketId) -> Result<Ticket> {
        let user = who.user_id();
        self.db
            .write_op(move |c, now| tickets::release(c, now, user, ticket))
    }

    /// Extends a live hold to now + hold TTL (at most `max_hold_extensions` times per ticket).
    /// The caller's entry must still be active (checked in the same transaction).
    pub fn extend(&self, who: &Active, ticket: TicketId) -> Result<Ticket> {
        let (cfg, who) = (self.cfg.clone(), **who);
        self.db.write_op(move |c, now| {
            queue::require_active(c, now, &cfg, &who)?;
            tickets::extend(c, now, &cfg, who.user_id(), ticket)
        })
    }

    /// The caller's tickets, newest first, with their status now.
    pub fn tickets(&self, who: &Identity) -> Result<Vec<Ticket>> {
        self.db
            .read(|c, now| tickets::of_user(c, now, who.user_id()))
    }

    // ---- points and payments ---------------------------------------------------------------

    /// Charges `amount` points to the caller's wallet. With an idempotency key, a repeat of the
    /// same request replays the first answer and changes nothing.
    pub fn charge(
        &self,
        who: &Identity,
        amount: Points,
        key: Option<&IdempotencyKey>,
    ) -> Result<Balance> {
        self.charge_for(who.user_id(), amount, key)
    }

    /// The caller's balance (0 for a user who never charged).
    pub fn balance(&self, who: &Identity) -> Result<Balance> {
        self.balance_of(who.user_id())
    }

    /// The caller's ledger, newest first.
    pub fn point_history(&self, who: &Identity) -> Result<Vec<PointTransaction>> {
        self.db.read(|c, _| wallet::history(c, who.user_id()))
    }

    /// Pays for a held ticket of the caller's: the seat is theirs for good and their turn in the
    /// waiting room ends. With an idempotency key, a repeat of the same request replays the first
    /// answer and changes nothing.
    pub fn pay(
        &self,
        who: &Identity,
        ticket: TicketId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Payment> {
        self.pay_tickets(who, &[ticket], key)
    }

    /// Pays for several held tickets of the caller's at once: one debit of their sum, one ledger
    /// row, one payment; every ticket paid, or none. The turn ends once.
    pub fn pay_tickets(
        &self,
        who: &Identity,
        tickets: &[TicketId],
        key: Option<&IdempotencyKey>,
    ) -> Result<Payment> {
        let (user, ids) = (who.user_id(), tickets.to_vec());
        let mut sorted = ids.clone();
        sorted.sort();
        let request = match sorted.as_slice() {
            [one] => format!("pay ticket_id={one}"),
            many => format!(
                "pay ticket_ids={}",
                many.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        self.keyed_write(user, key, request, move |c, now, cfg| {
            payments::pay(c, now, cfg, user, &ids)
        })
    }

    /// Cancels a paid ticket of the caller's (until `cancel_cutoff` before the show): the fee is
    /// kept, the rest refunded to the wallet, and the seat is for sale again at once. With an
    /// idempotency key, a repeat replays the first answer and changes nothing.
    pub fn cancel(
        &self,
        who: &Identity,
        ticket: TicketId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Cancellation> {
        let user = who.user_id();
        self.keyed_write(
            user,
            key,
            format!("cancel ticket_id={ticket}"),
            move |c, now, cfg| cancellations::cancel_ticket(c, now, cfg, ticket, By::User(user)),
        )
    }

    /// The caller's payments, newest first.
    pub fn payment_history(&self, who: &Identity) -> Result<Vec<Payment>> {
        self.db.read(|c, _| payments::history(c, who.user_id()))
    }

    // ---- operators -------------------------------------------------------------------------

    /// What operators may do (the CLI, seeding, scripts, an embedder's admin tools): act on any
    /// user's wallet, load the catalog, tidy and check the database. These are explicit methods,
    /// not a way around the users' guards.
    pub fn operator(&self) -> Operator<'_> {
        Operator { b: self }
    }

    // ---- plumbing ------------------------------------------------------------------------------

    fn charge_for(
        &self,
        user: UserId,
        amount: Points,
        key: Option<&IdempotencyKey>,
    ) -> Result<Balance> {
        self.keyed_write(
            user,
            key,
            format!("charge amount={amount}"),
            move |c, now, cfg| wallet::charge(c, now, cfg, user, amount),
        )
    }

    fn balance_of(&self, user: UserId) -> Result<Balance> {
        self.db.read(|c, _| {
            Ok(Balance {
                user_id: user,
                balance: wallet::balance_of(c, user)?,
            })
        })
    }

    /// A request write guarded by an optional Idempotency-Key, on the request write path (group
    /// commit when on). `request` fingerprints the request: same key and same fingerprint
    /// replay; same key, other fingerprint is `idempotency_key_reused`.
    fn keyed_write<T, F>(
        &self,
        user: UserId,
        key: Option<&IdempotencyKey>,
        request: String,
        op: F,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnMut(&dyn Tx, Now, &Config) -> Result<T> + Send + 'static,
    {
        let (cfg, key) = (self.cfg.clone(), key.cloned());
        let mut op = op;
        self.db.write_op(move |c, now| {
            idempotency::guarded(c, now, user, key.as_ref(), &request, || op(c, now, &cfg))
        })
    }
}

impl Drop for Booking {
    fn drop(&mut self) {
        if let Some(dir) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// An operator's view of a [`Booking`]: the catalog, any user's wallet, housekeeping and
/// checks. Made by [`Booking::operator`].
#[derive(Clone, Copy)]
pub struct Operator<'a> {
    b: &'a Booking,
}

impl Operator<'_> {
    /// Adds a concert.
    pub fn add_concert(&self, title: &str, venue: &str) -> Result<ConcertId> {
        self.b
            .db
            .write(|c, _| catalog::add_concert(c, title, venue))
    }

    /// Adds a showtime of `concert` with its seats, in one transaction; `progress(n)` is called
    /// as each `n` more seats are written.
    pub fn add_showtime(
        &self,
        concert: ConcertId,
        s: &NewShowtime,
        mut progress: impl FnMut(u64),
    ) -> Result<ShowtimeId> {
        self.b
            .db
            .write(|c, now| catalog::add_showtime(c, now, concert, s, &mut progress))
    }

    /// Loads a whole catalog in one transaction: all of it, or (on any error) none of it.
    /// `progress(n)` is called as each `n` more seats are written.
    pub fn seed(&self, cat: &CatalogFile, mut progress: impl FnMut(u64)) -> Result<SeedReport> {
        self.b
            .db
            .write(|c, now| catalog::seed(c, now, cat, &mut progress))
    }

    /// Seeds the demo catalog if the database has no concerts; returns what was loaded, if
    /// anything.
    pub fn seed_demo_if_empty(&self) -> Result<Option<SeedReport>> {
        let cat = catalog::demo_catalog(self.b.clock.now());
        self.b.db.write(|c, now| {
            if !catalog::is_empty(c)? {
                return Ok(None);
            }
            catalog::seed(c, now, &cat, &mut |_| {}).map(Some)
        })
    }

    /// Every concert, by id.
    pub fn concerts(&self) -> Result<Vec<Concert>> {
        self.b.db.read(|c, _| catalog::list_concerts(c))
    }

    /// Every showtime of `concert`, past ones included.
    pub fn showtimes(&self, concert: ConcertId) -> Result<Vec<Showtime>> {
        self.b
            .db
            .read(|c, now| catalog::list_showtimes(c, now, concert, Which::All))
    }

    /// The seats of `showtime`, whichever concert it belongs to.
    pub fn seats(&self, showtime: ShowtimeId) -> Result<Vec<Seat>> {
        self.b.db.read_snapshot(|c, now| {
            let concert = catalog::concert_of(c, showtime)?;
            catalog::list_seats(c, now, concert, showtime)
        })
    }

    /// Charges `amount` points to `user`'s wallet (an operator's top-up), under the same rules
    /// as a user's own charge.
    pub fn charge(
        &self,
        user: UserId,
        amount: Points,
        key: Option<&IdempotencyKey>,
    ) -> Result<Balance> {
        self.b.charge_for(user, amount, key)
    }

    /// `user`'s balance.
    pub fn balance(&self, user: UserId) -> Result<Balance> {
        self.b.balance_of(user)
    }

    /// Waiting, active and expired counts.
    pub fn queue_counts(&self) -> Result<QueueCounts> {
        self.b.db.read(|c, now| queue::counts(c, now, &self.b.cfg))
    }

    /// The waiting room's settings in force, and where each comes from.
    pub fn queue_settings(&self) -> Result<QueueSettings> {
        self.b
            .db
            .read_snapshot(|c, _| queue::settings(c, &self.b.cfg))
    }

    /// Changes the waiting room's live controls (max active, admissions per minute, pause, the
    /// scheduled opening). They are kept in the database: every process on it applies them at
    /// its next queue call.
    pub fn change_queue(&self, change: QueueChange) -> Result<QueueSettings> {
        self.b
            .db
            .write(|c, now| queue::change(c, now, &self.b.cfg, change))
    }

    /// Places the next chunk of a prequeue once its opening is due (a server calls this in the
    /// background, so that a big prequeue is placed within seconds). Returns how many entries
    /// it placed; 0 when there is nothing to place (and then it took no write lock).
    pub fn place_prequeue(&self) -> Result<i64> {
        if !self.b.db.read(|c, now| queue::placing_due(c, now))? {
            return Ok(0);
        }
        let cfg = self.b.cfg.clone();
        self.b
            .db
            .write_op(move |c, now| queue::place_step(c, now, &cfg))
    }

    /// Marks lapsed holds and queue entries expired, admits waiting users into freed slots, and
    /// forgets old idempotency keys. Correctness never depends on this having run.
    pub fn sweep(&self) -> Result<SweepReport> {
        self.b
            .db
            .write(|c, now| maintenance::sweep(c, now, &self.b.cfg))
    }

    /// Checks every invariant of the contract and the engine's own integrity.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.b.db.read_snapshot(|c, now| {
            let mut violations = maintenance::verify(c, now, &self.b.cfg)?;
            violations.extend(
                self.b
                    .db
                    .integrity(c)?
                    .into_iter()
                    .map(|(invariant, detail)| Violation { invariant, detail }),
            );
            Ok(VerifyReport {
                ok: violations.is_empty(),
                violations,
            })
        })
    }

    /// Cancels any paid ticket until its show starts, refunding its price less the fee (or all
    /// of it with `no_fee`).
    pub fn cancel_ticket(&self, ticket: TicketId, no_fee: bool) -> Result<Cancellation> {
        self.b.db.write(|c, now| {
            cancellations::cancel_ticket(c, now, &self.b.cfg, ticket, By::Operator { no_fee })
        })
    }

    /// Calls a showtime off: every paid ticket cancelled with a full refund, every live hold
    /// released, and no more holds — in one transaction.
    pub fn cancel_showtime(&self, showtime: ShowtimeId) -> Result<ShowtimeCancelled> {
        self.b
            .db
            .write(|c, now| cancellations::cancel_showtime(c, now, &self.b.cfg, showtime))
    }

    /// Per showtime (or for one): seats by status, revenue, refunds and fees.
    pub fn report(&self, showtime: Option<ShowtimeId>) -> Result<Vec<ShowtimeReport>> {
        if let Some(id) = showtime {
            self.b.db.read(|c, _| catalog::concert_of(c, id))?;
        }
        self.b
            .db
            .read_snapshot(|c, now| reports::report(c, now, showtime))
    }

    /// Live figures for metrics.
    pub fn stats(&self) -> Result<Stats> {
        self.b
            .db
            .read_snapshot(|c, now| maintenance::stats(c, now, &self.b.cfg))
    }
}
