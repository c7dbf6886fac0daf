//! The backends every rule test runs on, from one source: a test takes `#[case] backend:
//! Backend` and `#[apply(backends)]` (library tests: SQLite direct, SQLite with group commit,
//! PostgreSQL) or `#[apply(engines)]` (HTTP tests: SQLite as the server runs it, PostgreSQL).
//!
//! Each test gets a fresh database ([`TestDb`]): a file in a temporary directory, or a database
//! of its own on a throwaway PostgreSQL cluster that the test process starts once (see
//! [`pg`]). [`Raw`] runs SQL behind the library's back on either engine.
//!
//! Without PostgreSQL on the machine, the PostgreSQL cases pass after saying once that they were
//! skipped — unless `BOOKING_REQUIRE_POSTGRES=1` (as CI sets it): then they fail.
#![allow(dead_code, unused_macros)]

pub mod pg;

use booking::{Booking, Clock, Config, Durability, GroupCommit, Location};
use rstest_reuse::template;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

/// Where and how request writes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, one transaction per request write.
    Direct,
    /// SQLite, request writes through the group-commit writer (many share one commit).
    GroupCommit,
    /// PostgreSQL: many writers at once, row locks, retried deadlocks.
    Postgres,
}

/// The backends every library rule test runs on.
#[template]
#[rstest::rstest]
#[case::direct(Backend::Direct)]
#[case::group_commit(Backend::GroupCommit)]
#[case::postgres(Backend::Postgres)]
pub fn backends(#[case] backend: Backend) {}

/// The engines an HTTP test runs on: SQLite as `booking-server` runs it (group commit), and
/// PostgreSQL.
#[template]
#[rstest::rstest]
#[case::sqlite(Backend::GroupCommit)]
#[case::postgres(Backend::Postgres)]
pub fn engines(#[case] backend: Backend) {}

impl Backend {
    /// Whether this is PostgreSQL.
    pub fn is_postgres(self) -> bool {
        self == Backend::Postgres
    }

    /// True when this backend cannot run here and the test should end now, passing (PostgreSQL
    /// missing, and not required): `if backend.skipped() { return; }`.
    pub fn skipped(self) -> bool {
        self.is_postgres() && pg::cluster().is_none()
    }
}

/// The test config of `backend`: the contract's defaults, commits without fsync (tests that
/// need durability set it themselves), and the backend's write path.
pub fn test_config(backend: Backend) -> Config {
    let cfg = Config::default().with_durability(Durability::Normal);
    match backend {
        Backend::Direct | Backend::Postgres => cfg,
        Backend::GroupCommit => cfg.with_group_commit(Some(GroupCommit {
            max_batch: 64,
            queue_capacity: 256,
        })),
    }
}

/// A fresh database for one test: removed (the directory, or the PostgreSQL database) when
/// dropped. Drop it after every handle on it.
pub struct TestDb {
    location: Location,
    _keep: Keep,
}

enum Keep {
    Dir(tempfile::TempDir),
    Postgres(pg::Database),
}

impl TestDb {
    /// A new database for `backend`, with the schema (PostgreSQL: made from the cluster's
    /// migrated template).
    pub fn new(backend: Backend) -> TestDb {
        TestDb::make(backend, true)
    }

    /// A new database with nothing in it yet (PostgreSQL: an empty database; SQLite: no file).
    pub fn empty(backend: Backend) -> TestDb {
        TestDb::make(backend, false)
    }

    fn make(backend: Backend, migrated: bool) -> TestDb {
        if backend.is_postgres() {
            let cluster = pg::cluster().expect("PostgreSQL is available (check skipped() first)");
            let db = cluster.create_database(migrated);
            TestDb {
                location: Location::Postgres(db.url.clone()),
                _keep: Keep::Postgres(db),
            }
        } else {
            let dir = tempfile::tempdir().expect("temp dir");
            TestDb {
                location: Location::File(dir.path().join("booking.db")),
                _keep: Keep::Dir(dir),
            }
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The location as a command line takes it (`--db`), the URL with its password.
    pub fn arg(&self) -> std::ffi::OsString {
        match &self.location {
            Location::File(p) => p.clone().into_os_string(),
            Location::Postgres(url) => url.into(),
        }
    }

    /// Opens a handle on it.
    pub fn open(&self, cfg: Config, clock: Arc<dyn Clock>) -> Booking {
        Booking::open_with_clock(&self.location, cfg, clock).expect("open the test database")
    }

    /// A raw connection to it (see [`Raw`]).
    pub fn raw(&self) -> Raw {
        Raw::open(&self.location)
    }
}

/// A handle on a fresh database, and the database (dropped after the handle).
pub struct Fresh {
    pub b: Booking,
    pub db: TestDb,
}

impl std::ops::Deref for Fresh {
    type Target = Booking;
    fn deref(&self) -> &Booking {
        &self.b
    }
}

/// A handle on a fresh database of `backend`.
pub fn fresh(backend: Backend, cfg: Config, clock: Arc<dyn Clock>) -> Fresh {
    let db = TestDb::new(backend);
    Fresh {
        b: db.open(cfg, clock),
        db,
    }
}

/// A value for a raw statement's parameter.
pub trait Arg {
    fn value(&self) -> Value;
}

#[derive(Debug, Clone)]
pub enum Value {
    Int(i64),
    Text(String),
}

impl Arg for i64 {
    fn value(&self) -> Value {
        Value::Int(*self)
    }
}

impl Arg for &str {
    fn value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl Arg for String {
    fn value(&self) -> Value {
        Value::Text(self.clone())
    }
}

/// A raw connection to a test database, to look behind the library or break invariants on
/// purpose. Statements use `?1`-style parameters on both engines. Steps whose SQL differs
/// between engines have a method each.
pub enum Raw {
    Sqlite(rusqlite::Connection),
    Postgres(RefCell<postgres::Client>),
}

/// The tables a raw "write lock" takes on PostgreSQL: every table the library writes.
const TABLES: &str = "meta, queue_state, queue_entries, concerts, showtimes, seats, tickets, \
                      wallets, payments, point_ledger, idempotency_keys";

impl Raw {
    pub fn open(location: &Location) -> Raw {
        match location {
            Location::File(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                c.busy_timeout(Duration::from_secs(5)).unwrap();
                Raw::Sqlite(c)
            }
            Location::Postgres(url) => Raw::Postgres(RefCell::new(
                postgres::Client::connect(url, postgres::NoTls).unwrap(),
            )),
        }
    }

    /// Runs a statement; how many rows it changed, or the engine's error message.
    pub fn execute(&self, sql: &str, args: &[&dyn Arg]) -> Result<usize, String> {
        let args: Vec<Value> = args.iter().map(|a| a.value()).collect();
        match self {
            Raw::Sqlite(c) => c
                .execute(
                    sql,
                    rusqlite::params_from_iter(args.iter().map(sqlite_value)),
                )
                .map_err(|e| e.to_string()),
            Raw::Postgres(c) => {
                let mut c = c.borrow_mut();
                let stmt = c
                    .prepare(&pg::dollar_params(sql))
                    .map_err(|e| pg_message(&e))?;
                let bound = pg::bind(&stmt, &args);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    bound.iter().map(|b| &**b as _).collect();
                c.execute(&stmt, &refs)
                    .map(|n| n as usize)
                    .map_err(|e| pg_message(&e))
            }
        }
    }

    /// Runs statements without parameters, separated by `;`.
    pub fn batch(&self, sql: &str) -> Result<(), String> {
        match self {
            Raw::Sqlite(c) => c.execute_batch(sql).map_err(|e| e.to_string()),
            Raw::Postgres(c) => c
                .borrow_mut()
                .batch_execute(sql)
                .map_err(|e| pg_message(&e)),
        }
    }

    /// The first row of a query, each column as an integer (`None` for NULL).
    pub fn row(&self, sql: &str, args: &[&dyn Arg]) -> Vec<Option<i64>> {
        let args: Vec<Value> = args.iter().map(|a| a.value()).collect();
        match self {
            Raw::Sqlite(c) => {
                let mut stmt = c.prepare(sql).unwrap();
                let n = stmt.column_count();
                stmt.query_row(
                    rusqlite::params_from_iter(args.iter().map(sqlite_value)),
                    |r| (0..n).map(|i| r.get::<_, Option<i64>>(i)).collect(),
                )
                .unwrap()
            }
            Raw::Postgres(c) => {
                let mut c = c.borrow_mut();
                let stmt = c.prepare(&pg::dollar_params(sql)).unwrap();
                let bound = pg::bind(&stmt, &args);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    bound.iter().map(|b| &**b as _).collect();
                let row = c.query_one(&stmt, &refs).unwrap();
                (0..row.len()).map(|i| pg::int(&row, i)).collect()
            }
        }
    }

    /// The one integer a query returns.
    pub fn int(&self, sql: &str, args: &[&dyn Arg]) -> i64 {
        self.row(sql, args)[0].expect("not NULL")
    }

    /// Takes what SQLite's `BEGIN IMMEDIATE` takes — every writer waits, readers go on — until
    /// [`Raw::rollback`]. PostgreSQL: every table the library writes, locked `EXCLUSIVE`.
    pub fn lock_writes(&self) {
        match self {
            Raw::Sqlite(_) => self.batch("BEGIN IMMEDIATE").unwrap(),
            Raw::Postgres(_) => self
                .batch(&format!("BEGIN; LOCK TABLE {TABLES} IN EXCLUSIVE MODE"))
                .unwrap(),
        }
    }

    pub fn rollback(&self) {
        self.batch("ROLLBACK").unwrap();
    }

    /// Foreign keys stop being enforced on this connection (SQLite: the pragma; PostgreSQL:
    /// `session_replication_role`, which needs a superuser).
    pub fn foreign_keys_off(&self) {
        match self {
            Raw::Sqlite(_) => self.batch("PRAGMA foreign_keys = OFF").unwrap(),
            Raw::Postgres(_) => self
                .batch("SET session_replication_role = replica")
                .unwrap(),
        }
    }
}

fn sqlite_value(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Int(n) => rusqlite::types::Value::Integer(*n),
        Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
    }
}

fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}
