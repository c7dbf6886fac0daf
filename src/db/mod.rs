//! Storage: the one place that opens a database, runs transactions and knows the engine.
//!
//! Architecture invariant: every write runs inside [`Db::write`] or [`Db::write_op`] (one write
//! transaction, or one savepoint of a group commit), and every domain operation is a plain
//! function over an open [`sql::Tx`], so operations compose and a batch of them can share one
//! commit. Domain code never sees the engine: `sql` is the seam; `sqlite` (embedded, the
//! default) and `postgres` (feature `postgres`) are what is under it, picked by the
//! [`Location`].

pub(crate) mod batch;
mod checkpoint;
mod location;
#[cfg(feature = "postgres")]
mod postgres;
pub(crate) mod sql;
mod sqlite;

pub use batch::BatchStats;
pub use location::Location;

use crate::clock::{millis_of, to_millis, Clock};
use crate::config::Config;
use crate::error::Result;
use sql::{params, Tx};
use std::sync::Arc;

/// The schema version this build writes (the number of migrations, the same on every engine).
pub const SCHEMA_VERSION: usize = 6;

/// What an operation sees of the moment it runs in: the time, read once inside the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Now {
    /// Milliseconds since the epoch.
    pub ms: i64,
}

impl Now {
    /// `now + d`, in stored milliseconds.
    pub fn plus(self, d: std::time::Duration) -> i64 {
        self.ms.saturating_add(millis_of(d))
    }

    /// `now - d`, in stored milliseconds.
    pub fn minus(self, d: std::time::Duration) -> i64 {
        self.ms.saturating_sub(millis_of(d))
    }
}

/// The engine under one handle.
// One per open database, never moved once built: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Engine {
    Sqlite(sqlite::Sqlite),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Postgres),
}

/// The database of one [`crate::Booking`] handle.
pub(crate) struct Db {
    engine: Engine,
    location: Location,
    clock: Arc<dyn Clock>,
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `location`.
    pub fn open(location: Location, cfg: &Config, clock: Arc<dyn Clock>) -> Result<Db> {
        let engine = match &location {
            Location::File(path) => Engine::Sqlite(sqlite::Sqlite::open(path, cfg, clock.clone())?),
            #[cfg(feature = "postgres")]
            Location::Postgres(url) => Engine::Postgres(postgres::Postgres::open(url, cfg)?),
            #[cfg(not(feature = "postgres"))]
            Location::Postgres(_) => return Err(no_postgres()),
        };
        Ok(Db {
            engine,
            location,
            clock,
        })
    }

    /// Where the database is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    fn now(&self) -> Now {
        Now {
            ms: to_millis(self.clock.now()),
        }
    }

    /// Runs `f` in one write transaction and commits it; an error rolls all of it back. `now` is
    /// read once the write lock is held, so every expiry decision inside sees the same instant
    /// and no other writer moves state under it.
    ///
    /// `f` may run more than once: an engine with many writers (PostgreSQL) runs it again, from
    /// scratch and with a fresh `now`, when the server aborted its transaction to resolve a
    /// deadlock. Only what `f` returns from its last run counts.
    pub fn write<T>(&self, f: impl FnMut(&dyn Tx, Now) -> Result<T>) -> Result<T> {
        match &self.engine {
            Engine::Sqlite(e) => e.write(&*self.clock, f),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.write(&*self.clock, f),
        }
    }

    /// Runs a request's write operation: through group commit when it is on (sharing one commit
    /// with whatever else is queued; SQLite only — on PostgreSQL concurrent commits already
    /// share their WAL flushes), else as [`Db::write`]. Either way the answer comes only after
    /// the commit that makes it durable. Like `write`'s, `f` may run more than once.
    pub fn write_op<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&dyn Tx, Now) -> Result<T> + Send + 'static,
    {
        match &self.engine {
            Engine::Sqlite(e) => e.write_op(&*self.clock, f),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.write(&*self.clock, f),
        }
    }

    /// Runs `f` on a read connection (no write lock; each statement sees committed data).
    pub fn read<T>(&self, f: impl FnOnce(&dyn Tx, Now) -> Result<T>) -> Result<T> {
        match &self.engine {
            Engine::Sqlite(e) => e.read(false, |c| f(c, self.now())),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.read(false, |c| f(c, self.now())),
        }
    }

    /// Runs `f` in a read transaction: one consistent snapshot across several statements.
    pub fn read_snapshot<T>(&self, f: impl FnOnce(&dyn Tx, Now) -> Result<T>) -> Result<T> {
        match &self.engine {
            Engine::Sqlite(e) => e.read(true, |c| f(c, self.now())),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.read(true, |c| f(c, self.now())),
        }
    }

    /// Batch-size counts of the group-commit writer, if it is on (SQLite only).
    pub fn batch_stats(&self) -> Option<BatchStats> {
        match &self.engine {
            Engine::Sqlite(e) => e.batch_stats(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(_) => None,
        }
    }

    /// The engine's own integrity checks (SQLite: `integrity_check`, `foreign_key_check`;
    /// PostgreSQL: foreign keys re-checked, no guard of the schema switched off), one
    /// `(check, detail)` per problem found.
    pub fn integrity(&self, c: &dyn Tx) -> Result<Vec<(&'static str, String)>> {
        match &self.engine {
            Engine::Sqlite(_) => sqlite::integrity(c),
            #[cfg(feature = "postgres")]
            Engine::Postgres(_) => postgres::integrity(c),
        }
    }
}

#[cfg(not(feature = "postgres"))]
fn no_postgres() -> crate::error::Error {
    crate::error::Error::InvalidRequest(
        "this build has no PostgreSQL support (build with the cargo feature `postgres`)".into(),
    )
}

impl Location {
    /// Whether the database exists: the file, or (on PostgreSQL) the database on its server.
    /// An unreachable server is an error.
    pub fn exists(&self) -> Result<bool> {
        match self {
            Location::File(path) => Ok(path.exists()),
            #[cfg(feature = "postgres")]
            Location::Postgres(url) => postgres::exists(url),
            #[cfg(not(feature = "postgres"))]
            Location::Postgres(_) => Err(no_postgres()),
        }
    }
}

/// Reads a value from `meta`, creating it with `init` first if absent (atomically, in a write).
pub(crate) fn meta_get_or_init(
    c: &dyn Tx,
    key: &str,
    init: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        params![key, init()],
    )?;
    c.value("SELECT value FROM meta WHERE key = ?1", params![key])
}
