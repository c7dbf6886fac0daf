//! Storage: the one place that opens a database, runs transactions and knows the engine.
//!
//! Architecture invariant: every write runs inside [`Db::write`] or [`Db::write_op`] (one write
//! transaction, or one savepoint of a group commit), and every domain operation is a plain
//! function over an open [`sql::Tx`], so operations compose and a batch of them can share one
//! commit. Domain code never sees the engine: `sql` is the seam, `sqlite` is what is under it.

pub(crate) mod batch;
mod checkpoint;
pub(crate) mod sql;
mod sqlite;

pub use batch::BatchStats;

use crate::clock::{millis_of, to_millis, Clock};
use crate::config::Config;
use crate::error::Result;
use sql::{params, Tx};
use std::path::Path;
use std::sync::Arc;

/// The schema version this build writes (the number of migrations).
pub const SCHEMA_VERSION: usize = sqlite::SCHEMA_VERSION;

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

/// The database of one [`crate::Booking`] handle.
pub(crate) struct Db {
    engine: sqlite::Sqlite,
    clock: Arc<dyn Clock>,
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path, cfg: &Config, clock: Arc<dyn Clock>) -> Result<Db> {
        let engine = sqlite::Sqlite::open(path, cfg, clock.clone())?;
        Ok(Db { engine, clock })
    }

    /// Where the database is (a file path).
    pub fn location(&self) -> &Path {
        self.engine.path()
    }

    fn now(&self) -> Now {
        Now {
            ms: to_millis(self.clock.now()),
        }
    }

    /// Runs `f` in one write transaction and commits it; an error rolls all of it back. `now` is
    /// read once the write lock is held, so every expiry decision inside sees the same instant
    /// and no other writer moves state under it.
    pub fn write<T>(&self, f: impl FnOnce(&dyn Tx, Now) -> Result<T>) -> Result<T> {
        self.engine.write(&*self.clock, f)
    }

    /// Runs a request's write operation: through group commit when it is on (sharing one commit
    /// with whatever else is queued), else as [`Db::write`]. Either way the answer comes only
    /// after the commit that makes it durable.
    pub fn write_op<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Tx, Now) -> Result<T> + Send + 'static,
    {
        self.engine.write_op(&*self.clock, f)
    }

    /// Runs `f` on a read connection (no write lock; each statement sees committed data).
    pub fn read<T>(&self, f: impl FnOnce(&dyn Tx, Now) -> Result<T>) -> Result<T> {
        self.engine.read(false, |c| f(c, self.now()))
    }

    /// Runs `f` in a read transaction: one consistent snapshot across several statements.
    pub fn read_snapshot<T>(&self, f: impl FnOnce(&dyn Tx, Now) -> Result<T>) -> Result<T> {
        self.engine.read(true, |c| f(c, self.now()))
    }

    /// Batch-size counts of the group-commit writer, if it is on.
    pub fn batch_stats(&self) -> Option<BatchStats> {
        self.engine.batch_stats()
    }

    /// The engine's own integrity checks (SQLite: `integrity_check`, `foreign_key_check`), one
    /// `(check, detail)` per problem found.
    pub fn integrity(&self, c: &dyn Tx) -> Result<Vec<(&'static str, String)>> {
        sqlite::integrity(c)
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
