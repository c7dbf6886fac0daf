//! Storage plumbing: opening the file, pragmas, migrations, the read pool and the one write path.
//!
//! Architecture invariant: every write runs inside [`Db::write`] (one `BEGIN IMMEDIATE`
//! transaction), and every domain operation is a plain function over an open `&Connection`, so
//! operations compose and a batch of them can share one commit.

use crate::clock::{millis_of, to_millis, Clock};
use crate::config::Config;
use crate::error::{Error, Result};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use rusqlite_migration::{Migrations, M};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub mod batch;
mod checkpoint;

/// The process's write connection, shared by the direct path and the group-commit writer.
pub(crate) type SharedConn = Arc<Mutex<Connection>>;

/// The schema version this build writes (the number of migrations).
pub const SCHEMA_VERSION: usize = 1;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!("../../schema.sql"))])
}

/// What an operation sees of the moment it runs in: the time, read once inside the transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    /// Milliseconds since the epoch.
    pub ms: i64,
}

/// The database: a pool of read connections and one write connection per process.
pub(crate) struct Db {
    path: PathBuf,
    read: r2d2::Pool<SqliteConnectionManager>,
    write: SharedConn,
    batcher: Option<batch::Batcher>,
    checkpointer: Arc<checkpoint::Checkpointer>,
    clock: Arc<dyn Clock>,
}

/// How much of the database file each connection maps into memory for reading.
const MMAP_BYTES: i64 = 256 << 20;

fn configure(conn: &Connection, cfg: &Config) -> rusqlite::Result<()> {
    conn.busy_timeout(cfg.busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", cfg.durability.pragma())?;
    conn.set_prepared_statement_cache_capacity(64);
    // Reads through a shared memory map instead of a pread per page missing from each
    // connection's own cache: with many reader threads on a large queue, polls ran 1.5x faster.
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    Ok(())
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path, cfg: &Config, clock: Arc<dyn Clock>) -> Result<Db> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let mut write = Connection::open_with_flags(path, flags).map_err(|e| {
            Error::internal(format!("cannot open database {}: {e}", path.display()))
        })?;
        configure(&write, cfg)?;
        // The writer's temporary data in memory, above all the sub-journal of group commit's
        // per-operation savepoints: spilled to a file (SQLite's default past 64 KiB) it cost a
        // pwrite per page an operation first touches, a third of the writer's time on payments.
        write.pragma_update(None, "temp_store", "MEMORY")?;
        // WAL is a property of the file: set once here, before any pooled connection exists.
        let mode: String = write.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            return Err(Error::internal(format!(
                "cannot enable WAL (journal_mode={mode})"
            )));
        }
        migrate(&mut write)?;
        write.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_PAGES)?;
        let checkpoint_conn = Connection::open_with_flags(path, flags)?;
        configure(&checkpoint_conn, cfg)?;
        let checkpointer = Arc::new(checkpoint::Checkpointer::start(checkpoint_conn)?);

        let read_cfg = cfg.clone();
        let manager = SqliteConnectionManager::file(path)
            .with_flags(flags)
            .with_init(move |c| configure(c, &read_cfg));
        let read = r2d2::Pool::builder()
            .max_size(cfg.read_connections.max(1))
            .min_idle(Some(1))
            .build(manager)?;
        let write = Arc::new(Mutex::new(write));
        let batcher = match cfg.group_commit {
            Some(settings) => Some(batch::Batcher::start(
                write.clone(),
                checkpointer.clone(),
                clock.clone(),
                settings,
                cfg.busy_timeout,
            )?),
            None => None,
        };
        Ok(Db {
            path: path.to_path_buf(),
            read,
            write,
            batcher,
            checkpointer,
            clock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The clock's current time.
    pub fn now(&self) -> Now {
        Now {
            ms: to_millis(self.clock.now()),
        }
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits it; an error rolls all of it
    /// back. `now` is read after the write lock is taken, so every expiry decision inside sees
    /// the same instant, and no other writer can move state under it.
    pub fn write<T>(&self, f: impl FnOnce(&Connection, Now) -> Result<T>) -> Result<T> {
        let mut conn = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx, self.now())?;
        tx.commit()?;
        self.checkpointer.poke();
        Ok(out)
    }

    /// Runs a request's write operation: through the group-commit writer when it is on (sharing
    /// one commit with whatever else is queued), else as [`Db::write`]. Either way the answer
    /// comes only after the commit that makes it durable.
    pub fn write_op<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, Now) -> Result<T> + Send + 'static,
    {
        match &self.batcher {
            Some(b) => b.run(f),
            None => self.write(f),
        }
    }

    /// Batch-size counts of the group-commit writer, if it is on.
    pub fn batch_stats(&self) -> Option<&batch::BatchStats> {
        self.batcher.as_ref().map(|b| b.stats())
    }

    /// Runs `f` on a pooled read connection (no write lock).
    pub fn read<T>(&self, f: impl FnOnce(&Connection, Now) -> Result<T>) -> Result<T> {
        let conn = self.read.get()?;
        f(&conn, self.now())
    }

    /// Runs `f` in a read transaction: one consistent snapshot across several statements.
    pub fn read_snapshot<T>(&self, f: impl FnOnce(&Connection, Now) -> Result<T>) -> Result<T> {
        let mut conn = self.read.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let out = f(&tx, self.now())?;
        tx.finish()?;
        Ok(out)
    }
}

/// Brings the schema up to date. Two processes opening a new file at once both try; the loser's
/// transaction rolls back whole, and finding the schema current afterwards is success.
fn migrate(conn: &mut Connection) -> Result<()> {
    let ms = migrations();
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    let result = ms.to_latest(conn);
    conn.set_transaction_behavior(TransactionBehavior::Deferred);
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if v == SCHEMA_VERSION as i64 {
                Ok(())
            } else if v > SCHEMA_VERSION as i64 {
                Err(Error::internal(format!(
                    "database schema version {v} is newer than this build ({SCHEMA_VERSION})"
                )))
            } else {
                Err(e.into())
            }
        }
    }
}

/// Reads a value from `meta`, creating it with `init` first if absent (atomically, in a write).
pub(crate) fn meta_get_or_init(
    conn: &Connection,
    key: &str,
    init: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>> {
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
        rusqlite::params![key, init()],
    )?;
    Ok(conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?)
}

/// `d` as milliseconds, for adding to stored times.
pub(crate) fn ms(d: std::time::Duration) -> i64 {
    millis_of(d)
}

/// Turns "no row" into `not_found` for `what`.
pub(crate) trait OptionalRow<T> {
    /// `Ok(None)` for no row.
    fn optional_row(self) -> Result<Option<T>>;
}

impl<T> OptionalRow<T> for rusqlite::Result<T> {
    fn optional_row(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
