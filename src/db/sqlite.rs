//! The embedded engine: SQLite in WAL mode. Opening (pragmas, WAL set once, migrations), a pool
//! of read connections, one write connection per process (direct, or through group commit), the
//! background checkpoint thread, and [`Tx`] over a rusqlite connection.

use super::batch::Batcher;
use super::checkpoint::{self, Checkpointer};
use super::sql::{Param, Row, ToParam, Tx};
use super::{BatchStats, Now};
use crate::clock::{to_millis, Clock};
use crate::config::Config;
use crate::error::{Error, Result};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use rusqlite_migration::{Migrations, M};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The process's write connection, shared by the direct path and the group-commit writer.
pub(super) type SharedConn = Arc<Mutex<Connection>>;

use super::SCHEMA_VERSION;

/// `schema.sql` is migration 1; each later change is a file of `migrations/` (PostgreSQL's
/// mirror of each is in `migrations/postgres/`).
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../schema.sql")),
        M::up(include_str!("../../migrations/0002_order_lifecycle.sql")).foreign_key_check(),
        M::up(include_str!("../../migrations/0003_waiting_room.sql")).foreign_key_check(),
        M::up(include_str!("../../migrations/0004_seat_versions.sql")),
        M::up(include_str!("../../migrations/0005_ticket_indexes.sql")),
        M::up(include_str!("../../migrations/0006_seat_version_slots.sql")).foreign_key_check(),
    ])
}

/// One SQLite database file, opened.
pub(super) struct Sqlite {
    read: r2d2::Pool<SqliteConnectionManager>,
    write: SharedConn,
    batcher: Option<Batcher>,
    checkpointer: Arc<Checkpointer>,
}

fn configure(conn: &Connection, cfg: &Config) -> rusqlite::Result<()> {
    conn.busy_timeout(cfg.busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", cfg.durability.pragma())?;
    conn.set_prepared_statement_cache_capacity(64);
    // No memory map (`mmap_size` stays 0): a reader that finds the WAL changed since its last
    // read unmaps the whole map and maps it again, so during a sale, with commits every
    // millisecond, nearly every read paid an munmap (with a TLB flush on the other core) and an
    // mmap. Reads through each connection's own cache and pread: holds over HTTP 1.13x, entries
    // 1.2x; only read-only polls of a 1M queue in the library lose (2x, invisible over HTTP).
    Ok(())
}

impl Sqlite {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path, cfg: &Config, clock: Arc<dyn Clock>) -> Result<Sqlite> {
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
        let checkpointer = Arc::new(Checkpointer::start(checkpoint_conn)?);

        let read_cfg = cfg.clone();
        let manager = SqliteConnectionManager::file(path)
            .with_flags(flags)
            .with_init(move |c| configure(c, &read_cfg));
        let read = r2d2::Pool::builder()
            .max_size(cfg.read_connections.max(1))
            .min_idle(Some(1))
            // r2d2 checks each connection as it is handed out, by running a statement on it
            // (parsed anew each time): a connection to a file cannot go stale as a socket can.
            .test_on_check_out(false)
            .build(manager)?;
        let write = Arc::new(Mutex::new(write));
        let batcher = match cfg.group_commit {
            Some(settings) => Some(Batcher::start(
                write.clone(),
                checkpointer.clone(),
                clock,
                settings,
                cfg.busy_timeout,
            )?),
            None => None,
        };
        Ok(Sqlite {
            read,
            write,
            batcher,
            checkpointer,
        })
    }

    /// One `BEGIN IMMEDIATE` transaction on the process's write connection.
    pub fn write<T>(
        &self,
        clock: &dyn Clock,
        mut f: impl FnMut(&dyn Tx, Now) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = Now {
            ms: to_millis(clock.now()),
        };
        let out = f(&*tx, now)?;
        tx.commit()?;
        self.checkpointer.poke();
        Ok(out)
    }

    /// A request write: through the group-commit writer when it is on, else [`Sqlite::write`].
    pub fn write_op<T, F>(&self, clock: &dyn Clock, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&dyn Tx, Now) -> Result<T> + Send + 'static,
    {
        match &self.batcher {
            Some(b) => b.run(f),
            None => self.write(clock, f),
        }
    }

    /// `f` on a pooled read connection; in a read transaction (one snapshot) if `snapshot`.
    pub fn read<T>(&self, snapshot: bool, f: impl FnOnce(&dyn Tx) -> Result<T>) -> Result<T> {
        let mut conn = self.read.get()?;
        if !snapshot {
            return f(&*conn);
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let out = f(&*tx)?;
        tx.finish()?;
        Ok(out)
    }

    pub fn batch_stats(&self) -> Option<BatchStats> {
        self.batcher.as_ref().map(|b| b.stats())
    }
}

/// Brings the schema up to date. Two processes opening a new file at once both try; the loser's
/// transaction rolls back whole, and finding the schema current afterwards is success.
fn migrate(conn: &mut Connection) -> Result<()> {
    let ms = migrations();
    // A migration that rebuilds a table drops the old one, which foreign keys would refuse;
    // they are checked whole at the end of each such migration instead (`foreign_key_check`).
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    let result = ms.to_latest(conn);
    conn.set_transaction_behavior(TransactionBehavior::Deferred);
    conn.pragma_update(None, "foreign_keys", "ON")?;
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

/// SQLite's own checks: `PRAGMA integrity_check` and foreign keys.
pub(super) fn integrity(c: &dyn Tx) -> Result<Vec<(&'static str, String)>> {
    let mut found: Vec<(&'static str, String)> = c
        .rows("PRAGMA integrity_check", &[], |r| r.get::<String>(0))?
        .into_iter()
        .filter(|line| line != "ok")
        .map(|line| ("sqlite_integrity_check", line))
        .collect();
    found.extend(
        c.rows(
            "SELECT 'row ' || rowid || ' of ' || \"table\" || ' points at a missing ' || parent
             FROM pragma_foreign_key_check",
            &[],
            |r| r.get::<String>(0),
        )?
        .into_iter()
        .map(|d| ("foreign_keys", d)),
    );
    Ok(found)
}

/// A parameter as rusqlite binds it.
struct Bind<'a>(&'a dyn ToParam);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0.to_param() {
            Param::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Param::Int(n) => ToSqlOutput::Borrowed(ValueRef::Integer(n)),
            Param::Text(std::borrow::Cow::Borrowed(s)) => {
                ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
            }
            Param::Text(std::borrow::Cow::Owned(s)) => ToSqlOutput::from(s),
            Param::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn bind<'a>(params: &'a [&'a dyn ToParam]) -> impl rusqlite::Params + 'a {
    rusqlite::params_from_iter(params.iter().map(|p| Bind(*p)))
}

impl Tx for Connection {
    fn execute(&self, sql: &str, params: &[&dyn ToParam]) -> Result<usize> {
        Ok(self.prepare_cached(sql)?.execute(bind(params))?)
    }

    fn query(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.prepare_cached(sql)?;
        let mut rows = stmt.query(bind(params))?;
        while let Some(r) = rows.next()? {
            each(&SqliteRow(r))?;
        }
        Ok(())
    }

    /// The new row's id is its rowid: SQLite runs the `INSERT` without its `RETURNING id`,
    /// which it would otherwise buffer through a temporary table opened per statement.
    fn insert(&self, sql: &str, params: &[&dyn ToParam]) -> Result<i64> {
        let Some(plain) = sql.trim_end().strip_suffix("RETURNING id") else {
            return Err(Error::internal(format!(
                "not an INSERT … RETURNING id: {sql}"
            )));
        };
        match self.prepare_cached(plain)?.execute(bind(params))? {
            1 => Ok(self.last_insert_rowid()),
            n => Err(Error::internal(format!("{n} rows from: {sql}"))),
        }
    }
}

struct SqliteRow<'a, 'b>(&'a rusqlite::Row<'b>);

impl SqliteRow<'_, '_> {
    fn value(&self, i: usize) -> Result<ValueRef<'_>> {
        Ok(self.0.get_ref(i)?)
    }
}

impl Row for SqliteRow<'_, '_> {
    fn int(&self, i: usize) -> Result<Option<i64>> {
        match self.value(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(n) => Ok(Some(n)),
            _ => Err(super::sql::bad_column(i, "an integer")),
        }
    }

    fn text(&self, i: usize) -> Result<Option<&str>> {
        match self.value(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(Some)
                .map_err(|_| super::sql::bad_column(i, "UTF-8 text")),
            _ => Err(super::sql::bad_column(i, "text")),
        }
    }

    fn bytes(&self, i: usize) -> Result<Option<&[u8]>> {
        match self.value(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) | ValueRef::Text(b) => Ok(Some(b)),
            _ => Err(super::sql::bad_column(i, "bytes")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sql::params;

    #[test]
    fn an_insert_gives_the_new_rows_id_without_running_its_returning_clause() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
             CREATE TABLE log (id INTEGER PRIMARY KEY, v TEXT);
             CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log (v) VALUES ('x'), ('y'); END;
             INSERT INTO t (id, v) VALUES (41, 'before');",
        )
        .unwrap();
        let tx: &dyn Tx = &c;
        let sql = "INSERT INTO t (v) VALUES (?1) RETURNING id";
        let a = tx.insert(sql, params!["a"]).unwrap();
        let b = tx.insert(sql, params!["b"]).unwrap();
        assert_eq!((a, b), (42, 43), "the rows' ids, not the trigger's rows'");
        let v: String = tx
            .value("SELECT v FROM t WHERE id = ?1", params![b])
            .unwrap();
        assert_eq!(v, "b");
        // A failed insert is an error, not the previous row's id.
        assert!(tx.insert(sql, params![Option::<i64>::None]).is_err());
        assert!(tx
            .insert("INSERT INTO t (v) VALUES (?1)", params!["c"])
            .is_err());
    }
}
