//! The server engine: PostgreSQL over the sync `postgres` client and an r2d2 pool. Opening
//! (creating a missing database, migrations under an advisory lock), [`Tx`] over a pooled
//! connection (`?N` placeholders become `$N` once per statement text, a prepared-statement cache
//! per connection, `query_locked` as `SELECT … FOR UPDATE`), write transactions with bounded
//! retries, reads, and the integrity checks `verify` adds.
//!
//! **Transactions.** A write is one `READ COMMITTED` transaction. Each statement sees what was
//! committed before it started, and a row read with `query_locked` is locked until the end and
//! read in its latest committed version. The domain takes those locks wherever SQLite's single
//! writer used to give exclusion for free: the user's wallet row, `queue_state` for every queue
//! decision, seats (ascending ids) before tickets (ascending ids), the queue entry in guarded
//! writes. Deadlocks that remain possible between rarer operations (PostgreSQL aborts one side,
//! `40P01`) and serialization failures (`40001`) are retried with the whole operation, a bounded
//! number of times, with a short random back-off; the operation is a closure over its inputs, so
//! a retry runs it again from scratch, with a fresh `now`.
//!
//! **Time.** As on SQLite, `now` is read once per transaction from the process clock (right
//! after `BEGIN`), never from the database server.

use super::sql::{Param, Row, ToParam, Tx};
use super::Now;
use crate::clock::{to_millis, Clock};
use crate::config::{Config, Durability};
use crate::error::{Error, Result};
use ::postgres::error::SqlState;
use ::postgres::types::{ToSql, Type};
use ::postgres::{Client, NoTls, Statement};
use r2d2_postgres::PostgresConnectionManager;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The migrations, in order: `migrations/postgres/000N_*.sql` mirror SQLite's migration N.
const MIGRATIONS: [&str; super::SCHEMA_VERSION] = [
    include_str!("../../migrations/postgres/0001_schema.sql"),
    include_str!("../../migrations/postgres/0002_order_lifecycle.sql"),
    include_str!("../../migrations/postgres/0003_waiting_room.sql"),
    include_str!("../../migrations/postgres/0004_seat_versions.sql"),
    include_str!("../../migrations/postgres/0005_ticket_indexes.sql"),
    include_str!("../../migrations/postgres/0006_seat_version_slots.sql"),
];

/// A key of `pg_advisory_xact_lock` that serializes migrations of one database.
const MIGRATION_LOCK: i64 = 0x0062_6f6f_6b69_6e67; // "booking"

/// How many times a write runs at most when it keeps meeting deadlocks or serialization
/// failures; after the last, the caller gets `busy` (safe to retry).
const MAX_ATTEMPTS: u32 = 8;

/// Statements each pooled connection keeps prepared.
const STATEMENT_CACHE: usize = 256;

/// A pooled connection unused for longer than this is checked (one empty query) before it is
/// handed out again: one that the server closed meanwhile (a restart, an idle timeout) is
/// replaced instead of failing a request. A connection in steady use is not checked: the check
/// is a round trip, and r2d2's check on every checkout cost one more per request.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Connections in the pool beyond `read_connections` (which servers set to their worker count):
/// background work (the placer, sweeps) never waits for a request's connection.
const EXTRA_CONNECTIONS: u32 = 4;

/// One PostgreSQL database, opened: a pool of connections shared by reads and writes.
pub(super) struct Postgres {
    pool: r2d2::Pool<Manager>,
}

/// A pooled connection: the client, its prepared statements, and whether a transaction was
/// left open on it (then the pool drops it instead of handing it out again).
pub(super) struct PgConn {
    client: Client,
    statements: HashMap<(bool, String), Statement>,
    in_transaction: bool,
    /// When it was last handed out.
    used_at: Instant,
    /// It failed its idle check.
    dead: bool,
}

/// r2d2's manager for [`PgConn`]: r2d2_postgres's, plus the session settings and the cache.
#[derive(Debug)]
pub(super) struct Manager {
    inner: PostgresConnectionManager<NoTls>,
    session: String,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = ::postgres::Error;

    fn connect(&self) -> std::result::Result<PgConn, ::postgres::Error> {
        let mut client = self.inner.connect()?;
        client.batch_execute(&self.session)?;
        Ok(PgConn {
            client,
            statements: HashMap::new(),
            in_transaction: false,
            used_at: Instant::now(),
            dead: false,
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> std::result::Result<(), ::postgres::Error> {
        self.inner.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.in_transaction || conn.dead || conn.client.is_closed()
    }
}

/// The settings of every session: how long a statement waits for a lock before the caller gets
/// `busy`, and how hard a commit syncs (`Durability::Normal` acknowledges a commit before its
/// WAL is flushed, as SQLite's `synchronous=NORMAL` may lose the last commits on power loss).
fn session_settings(cfg: &Config) -> String {
    let sync = match cfg.durability {
        Durability::Full => "on",
        Durability::Normal => "off",
    };
    format!(
        "SET lock_timeout = {}; SET synchronous_commit = {sync}; SET TIME ZONE 'UTC'",
        cfg.busy_timeout.as_millis().max(1)
    )
}

fn parse_url(url: &str) -> Result<::postgres::Config> {
    let mut pg = ::postgres::Config::from_str(url).map_err(|e| {
        Error::InvalidRequest(format!(
            "invalid PostgreSQL URL {}: {e}",
            super::location::redacted(url)
        ))
    })?;
    if pg.get_application_name().is_none() {
        pg.application_name("booking");
    }
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(Duration::from_secs(10));
    }
    Ok(pg)
}

/// Whether the database named by `url` exists (the server is reachable and says so).
pub(super) fn exists(url: &str) -> Result<bool> {
    let pg = parse_url(url)?;
    match pg.connect(NoTls) {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => Ok(false),
        Err(e) => Err(connect_error(url, e)),
    }
}

fn connect_error(url: &str, e: ::postgres::Error) -> Error {
    Error::internal(format!(
        "cannot connect to {}: {}",
        super::location::redacted(url),
        describe(&e)
    ))
}

/// Connects, creating the database first if it does not exist (as SQLite creates a missing
/// file). Two processes creating it at once: the loser finds it made.
fn connect_creating(url: &str, pg: &::postgres::Config) -> Result<Client> {
    match pg.connect(NoTls) {
        Ok(c) => return Ok(c),
        Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {}
        Err(e) => return Err(connect_error(url, e)),
    }
    let name = pg
        .get_dbname()
        .map(str::to_string)
        .or_else(|| pg.get_user().map(str::to_string))
        .ok_or_else(|| Error::InvalidRequest("the PostgreSQL URL names no database".into()))?;
    let mut admin = pg.clone();
    admin.dbname("postgres");
    let mut c = admin.connect(NoTls).map_err(|e| connect_error(url, e))?;
    let ident = format!("\"{}\"", name.replace('"', "\"\""));
    match c.batch_execute(&format!("CREATE DATABASE {ident}")) {
        Ok(()) => {}
        // Made meanwhile by another process: `duplicate_database`, or, when both created it at
        // the same moment, a unique violation in the catalog.
        Err(e)
            if e.code() == Some(&SqlState::DUPLICATE_DATABASE)
                || e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
        Err(e) => {
            return Err(Error::internal(format!(
                "database {name} does not exist and cannot be created: {}",
                describe(&e)
            )))
        }
    }
    pg.connect(NoTls).map_err(|e| connect_error(url, e))
}

impl Postgres {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub fn open(url: &str, cfg: &Config) -> Result<Postgres> {
        let pg = parse_url(url)?;
        let mut first = connect_creating(url, &pg)?;
        migrate(&mut first)?;
        drop(first);
        let manager = Manager {
            inner: PostgresConnectionManager::new(pg, NoTls),
            session: session_settings(cfg),
        };
        let pool = r2d2::Pool::builder()
            .max_size(
                cfg.read_connections
                    .max(1)
                    .saturating_add(EXTRA_CONNECTIONS),
            )
            .min_idle(Some(1))
            // Checked in `conn` instead, only when idle (see IDLE_CHECK).
            .test_on_check_out(false)
            // Waiting for a connection is waiting for the database: `busy` past the timeout
            // (with a floor, so that a tiny busy timeout does not fail the first connections
            // while they are still being made).
            .connection_timeout(cfg.busy_timeout.max(Duration::from_secs(1)))
            .build(manager)
            .map_err(|e| {
                Error::internal(format!(
                    "cannot connect to {}: {e}",
                    super::location::redacted(url)
                ))
            })?;
        Ok(Postgres { pool })
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>> {
        loop {
            let mut conn = self.pool.get().map_err(|_| Error::Busy)?;
            let idle = conn.used_at.elapsed() >= IDLE_CHECK;
            conn.used_at = Instant::now();
            if !idle || conn.client.check_connection().is_ok() {
                return Ok(conn);
            }
            // Dropped by the pool (`has_broken`); the next one is made anew if need be.
            conn.dead = true;
        }
    }

    /// Runs `f` in one write transaction and commits it, running it again (from scratch, with
    /// a fresh `now`) when PostgreSQL aborted it for a deadlock or a serialization failure.
    pub fn write<T>(
        &self,
        clock: &dyn Clock,
        mut f: impl FnMut(&dyn Tx, Now) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.conn()?;
            match write_once(&mut conn, clock, &mut f) {
                Attempt::Done(out) => return out,
                Attempt::Conflict(_) if attempt < MAX_ATTEMPTS => {
                    drop(conn);
                    back_off(attempt);
                }
                Attempt::Conflict(e) => {
                    tracing::warn!(attempts = attempt, "write gave up after conflicts: {e}");
                    return Err(Error::Busy);
                }
            }
        }
    }

    /// `f` on a pooled connection (each statement sees what was committed before it), or in a
    /// `REPEATABLE READ` read-only transaction (one snapshot) if `snapshot`.
    pub fn read<T>(&self, snapshot: bool, f: impl FnOnce(&dyn Tx) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        if !snapshot {
            let tx = PgTx::new(&mut conn, false);
            return f(&tx);
        }
        begin(
            &mut conn,
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        )?;
        let out = {
            let tx = PgTx::new(&mut conn, false);
            f(&tx)
        };
        match out {
            Ok(v) => {
                finish(&mut conn, "COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = finish(&mut conn, "ROLLBACK");
                Err(e)
            }
        }
    }
}

enum Attempt<T> {
    Done(Result<T>),
    /// Aborted by the server to let another transaction through: run it again.
    Conflict(String),
}

fn write_once<T>(
    conn: &mut PgConn,
    clock: &dyn Clock,
    f: &mut impl FnMut(&dyn Tx, Now) -> Result<T>,
) -> Attempt<T> {
    if let Err(e) = begin(conn, "BEGIN ISOLATION LEVEL READ COMMITTED") {
        return Attempt::Done(Err(e));
    }
    let now = Now {
        ms: to_millis(clock.now()),
    };
    let (out, conflict) = {
        let tx = PgTx::new(conn, true);
        let out = f(&tx, now);
        (out, tx.conflict.take())
    };
    match out {
        Ok(v) => match conn.client.batch_execute("COMMIT") {
            Ok(()) => {
                conn.in_transaction = false;
                Attempt::Done(Ok(v))
            }
            Err(e) => {
                // A failed COMMIT has ended the transaction (rolled back) unless the connection
                // broke; then the pool drops it.
                if !conn.client.is_closed() {
                    conn.in_transaction = false;
                }
                if is_conflict(&e) {
                    Attempt::Conflict(describe(&e))
                } else {
                    Attempt::Done(Err(to_error(e)))
                }
            }
        },
        Err(e) => {
            let _ = finish(conn, "ROLLBACK");
            match conflict {
                Some(why) => Attempt::Conflict(why),
                None => Attempt::Done(Err(e)),
            }
        }
    }
}

fn begin(conn: &mut PgConn, sql: &str) -> Result<()> {
    conn.client.batch_execute(sql).map_err(to_error)?;
    conn.in_transaction = true;
    Ok(())
}

/// `COMMIT` or `ROLLBACK`; if it fails the connection keeps its flag and the pool drops it.
fn finish(conn: &mut PgConn, sql: &str) -> Result<()> {
    conn.client.batch_execute(sql).map_err(to_error)?;
    conn.in_transaction = false;
    Ok(())
}

fn back_off(attempt: u32) {
    let cap_ms = 2u64.saturating_pow(attempt.min(6)); // 2, 4, … 64 ms
    std::thread::sleep(Duration::from_micros(rand::random_range(0..cap_ms * 1000)));
}

fn is_conflict(e: &::postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// What the server said, for an internal error's message (never shown to clients).
fn describe(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(": ");
                s.push_str(d);
            }
            s
        }
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// A lock wait past `lock_timeout`, or a statement cancelled, is `busy`; anything else is
/// `internal`.
fn to_error(e: ::postgres::Error) -> Error {
    match e.code() {
        Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::QUERY_CANCELED => {
            Error::Busy
        }
        _ if is_conflict(&e) => Error::Busy,
        _ => Error::internal(describe(&e)),
    }
}

/// Brings the schema up to date, in one transaction under an advisory lock (two processes
/// opening a new database at once: the second waits, then finds it current).
fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction().map_err(to_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(to_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             id      BIGINT PRIMARY KEY CHECK (id = 1),
             version BIGINT NOT NULL
         );
         INSERT INTO schema_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    )
    .map_err(to_error)?;
    let current: i64 = tx
        .query_one("SELECT version FROM schema_version WHERE id = 1", &[])
        .map_err(to_error)?
        .get(0);
    let latest = MIGRATIONS.len() as i64;
    if current > latest {
        return Err(Error::internal(format!(
            "database schema version {current} is newer than this build ({latest})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql)
            .map_err(|e| Error::internal(format!("migration {}: {}", i + 1, describe(&e))))?;
    }
    tx.execute(
        "UPDATE schema_version SET version = $1 WHERE id = 1",
        &[&latest],
    )
    .map_err(to_error)?;
    tx.commit().map_err(to_error)
}

/// PostgreSQL's side of `verify`: foreign keys checked again row by row (they can be switched
/// off: `session_replication_role`, disabled triggers), and the schema's own guards still in
/// force — no trigger disabled (the ledger's append-only rule, foreign keys), no index left
/// invalid, no constraint left unvalidated. (`amcheck` is not used: it needs an extension the
/// database may not have.)
pub(super) fn integrity(c: &dyn Tx) -> Result<Vec<(&'static str, String)>> {
    let mut found = Vec::new();
    let fks: Vec<(String, String, String, String)> = c.rows(
        "SELECT con.conrelid::regclass::text, quote_ident(a.attname),
                con.confrelid::regclass::text, quote_ident(af.attname)
         FROM pg_constraint con
         JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
         JOIN pg_attribute af ON af.attrelid = con.confrelid AND af.attnum = con.confkey[1]
         WHERE con.contype = 'f' AND cardinality(con.conkey) = 1
           AND con.connamespace = current_schema()::regnamespace
         ORDER BY 1, 2",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    for (table, column, parent, key) in fks {
        let sql = format!(
            "SELECT 'row ' || x.ctid || ' of {table} ({col} ' || x.{column} || ') points at a missing {parent}'
             FROM {table} x
             WHERE x.{column} IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{key} = x.{column})",
            col = column.replace('\'', "''"),
        );
        found.extend(
            c.rows(&sql, &[], |r| r.get::<String>(0))?
                .into_iter()
                .map(|d| ("foreign_keys", d)),
        );
    }
    let guards: [(&'static str, &str); 3] = [
        (
            "postgres_trigger_disabled",
            "SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text || ' is disabled'
             FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
             WHERE t.tgenabled = 'D' AND r.relnamespace = current_schema()::regnamespace
             ORDER BY 1",
        ),
        (
            "postgres_index_invalid",
            "SELECT 'index ' || i.indexrelid::regclass::text || ' is not valid'
             FROM pg_index i JOIN pg_class r ON r.oid = i.indrelid
             WHERE NOT (i.indisvalid AND i.indisready)
               AND r.relnamespace = current_schema()::regnamespace
             ORDER BY 1",
        ),
        (
            "postgres_constraint_not_validated",
            "SELECT 'constraint ' || con.conname || ' on ' || con.conrelid::regclass::text
                    || ' is not validated'
             FROM pg_constraint con
             WHERE NOT con.convalidated AND con.connamespace = current_schema()::regnamespace
             ORDER BY 1",
        ),
    ];
    for (check, sql) in guards {
        found.extend(
            c.rows(sql, &[], |r| r.get::<String>(0))?
                .into_iter()
                .map(|d| (check, d)),
        );
    }
    Ok(found)
}

/// Rewrites `?N` placeholders as PostgreSQL's `$N`, leaving string literals, quoted identifiers
/// and comments alone.
pub(super) fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\'' | '"' => {
                out.push(ch);
                for c in chars.by_ref() {
                    out.push(c);
                    if c == ch {
                        break; // a doubled quote reopens at once: same result
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(ch);
                for c in chars.by_ref() {
                    out.push(c);
                    if c == '\n' {
                        break;
                    }
                }
            }
            '?' if chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(ch),
        }
    }
    out
}

/// [`Tx`] over a pooled connection: in a write transaction (`lock_rows`: `query_locked` takes
/// row locks) or on a read path.
struct PgTx<'c> {
    conn: RefCell<&'c mut PgConn>,
    lock_rows: bool,
    /// Set when a statement was aborted for a deadlock or a serialization failure: the write
    /// runs again whatever error the operation turned it into.
    conflict: Cell<Option<String>>,
}

impl<'c> PgTx<'c> {
    fn new(conn: &'c mut PgConn, lock_rows: bool) -> PgTx<'c> {
        PgTx {
            conn: RefCell::new(conn),
            lock_rows,
            conflict: Cell::new(None),
        }
    }

    fn error(&self, e: ::postgres::Error) -> Error {
        if is_conflict(&e) {
            self.conflict.set(Some(describe(&e)));
        }
        to_error(e)
    }

    /// Runs `sql` (locking what it reads if `locked`) and gives every row. Rows are collected
    /// before anyone sees them, so a caller may run statements while reading them.
    fn run(
        &self,
        sql: &str,
        locked: bool,
        params: &[&dyn ToParam],
    ) -> Result<Vec<::postgres::Row>> {
        let mut guard = self.conn.borrow_mut();
        let conn = &mut **guard;
        let stmt = self.statement(conn, sql, locked)?;
        let values = bind_all(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| &**v as _).collect();
        conn.client.query(&stmt, &refs).map_err(|e| self.error(e))
    }

    fn statement(&self, conn: &mut PgConn, sql: &str, locked: bool) -> Result<Statement> {
        let key = (locked, sql.to_string());
        if let Some(s) = conn.statements.get(&key) {
            return Ok(s.clone());
        }
        let mut text = dollar_params(sql);
        if locked {
            text.push_str(" FOR UPDATE");
        }
        let stmt = conn.client.prepare(&text).map_err(|e| self.error(e))?;
        if conn.statements.len() >= STATEMENT_CACHE {
            conn.statements.clear();
        }
        conn.statements.insert(key, stmt.clone());
        Ok(stmt)
    }
}

impl Tx for PgTx<'_> {
    fn execute(&self, sql: &str, params: &[&dyn ToParam]) -> Result<usize> {
        let mut guard = self.conn.borrow_mut();
        let conn = &mut **guard;
        let stmt = self.statement(conn, sql, false)?;
        let values = bind_all(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| &**v as _).collect();
        let n = conn
            .client
            .execute(&stmt, &refs)
            .map_err(|e| self.error(e))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn query(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        for r in &self.run(sql, false, params)? {
            each(&PgRow(r))?;
        }
        Ok(())
    }

    fn query_locked(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        for r in &self.run(sql, self.lock_rows, params)? {
            each(&PgRow(r))?;
        }
        Ok(())
    }

    fn takes_row_locks(&self) -> bool {
        self.lock_rows
    }
}

type Bound<'a> = Box<dyn ToSql + Sync + 'a>;

fn bind_all<'a>(stmt: &Statement, params: &'a [&'a dyn ToParam]) -> Result<Vec<Bound<'a>>> {
    if stmt.params().len() != params.len() {
        return Err(Error::internal(format!(
            "the statement takes {} parameters, {} given",
            stmt.params().len(),
            params.len()
        )));
    }
    stmt.params()
        .iter()
        .zip(params)
        .map(|(ty, p)| bind(p.to_param(), ty))
        .collect()
}

fn is_text(ty: &Type) -> bool {
    [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
    ]
    .contains(ty)
}

/// A parameter as the type PostgreSQL inferred for it: the seam's integers bind to any integer
/// type, a flag or text; NULL to any type the schema uses.
fn bind<'a>(p: Param<'a>, ty: &Type) -> Result<Bound<'a>> {
    let mismatch = |what: &str| Error::internal(format!("cannot bind {what} to a {ty} parameter"));
    let out_of_range = |n: i64| Error::internal(format!("{n} is out of range for {ty}"));
    Ok(match p {
        Param::Null => {
            if *ty == Type::INT8 {
                Box::new(None::<i64>)
            } else if *ty == Type::INT4 {
                Box::new(None::<i32>)
            } else if *ty == Type::INT2 {
                Box::new(None::<i16>)
            } else if *ty == Type::BOOL {
                Box::new(None::<bool>)
            } else if *ty == Type::BYTEA {
                Box::new(None::<&[u8]>)
            } else if is_text(ty) {
                Box::new(None::<&str>)
            } else {
                return Err(mismatch("NULL"));
            }
        }
        Param::Int(n) => {
            if *ty == Type::INT8 {
                Box::new(n)
            } else if *ty == Type::INT4 {
                Box::new(i32::try_from(n).map_err(|_| out_of_range(n))?)
            } else if *ty == Type::INT2 {
                Box::new(i16::try_from(n).map_err(|_| out_of_range(n))?)
            } else if *ty == Type::BOOL {
                Box::new(n != 0)
            } else if is_text(ty) {
                Box::new(n.to_string())
            } else {
                return Err(mismatch("an integer"));
            }
        }
        Param::Text(s) => {
            if is_text(ty) {
                Box::new(s)
            } else if *ty == Type::BYTEA {
                Box::new(s.into_owned().into_bytes())
            } else {
                return Err(mismatch("text"));
            }
        }
        Param::Bytes(b) => {
            if *ty == Type::BYTEA {
                Box::new(b)
            } else {
                return Err(mismatch("bytes"));
            }
        }
    })
}

struct PgRow<'r>(&'r ::postgres::Row);

impl PgRow<'_> {
    fn ty(&self, i: usize) -> Result<&Type> {
        self.0
            .columns()
            .get(i)
            .map(|c| c.type_())
            .ok_or_else(|| super::sql::bad_column(i, "in the result"))
    }

    fn get<'a, T: ::postgres::types::FromSql<'a>>(&'a self, i: usize, what: &str) -> Result<T> {
        self.0
            .try_get(i)
            .map_err(|_| super::sql::bad_column(i, what))
    }
}

impl Row for PgRow<'_> {
    fn int(&self, i: usize) -> Result<Option<i64>> {
        let ty = self.ty(i)?;
        if *ty == Type::INT8 {
            self.get(i, "an integer")
        } else if *ty == Type::INT4 {
            Ok(self.get::<Option<i32>>(i, "an integer")?.map(i64::from))
        } else if *ty == Type::INT2 {
            Ok(self.get::<Option<i16>>(i, "an integer")?.map(i64::from))
        } else if *ty == Type::BOOL {
            Ok(self.get::<Option<bool>>(i, "a flag")?.map(i64::from))
        } else {
            Err(super::sql::bad_column(i, "an integer"))
        }
    }

    fn text(&self, i: usize) -> Result<Option<&str>> {
        self.get(i, "text")
    }

    fn bytes(&self, i: usize) -> Result<Option<&[u8]>> {
        if *self.ty(i)? == Type::BYTEA {
            self.get(i, "bytes")
        } else {
            Ok(self.get::<Option<&str>>(i, "bytes")?.map(str::as_bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dollar_params;

    #[test]
    fn placeholders_become_dollars_outside_literals() {
        assert_eq!(
            dollar_params("SELECT a FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT a FROM t WHERE a = $1 AND b = $12"
        );
        assert_eq!(
            dollar_params("SELECT 'is it ?1' || ?2, \"odd?3\" -- ?4\n FROM t WHERE x = ?3"),
            "SELECT 'is it ?1' || $2, \"odd?3\" -- ?4\n FROM t WHERE x = $3"
        );
        assert_eq!(
            dollar_params("SELECT 'it''s ?1', ?1"),
            "SELECT 'it''s ?1', $1"
        );
    }
}
