//! The PostgreSQL the tests run on: a throwaway cluster started once per test process, or an
//! existing server named by `BOOKING_TEST_POSTGRES`.
//!
//! - `BOOKING_TEST_POSTGRES=postgres://user@host:port/postgres`: an existing server, whose role
//!   may create databases (and, for the tamper tests, is a superuser). Each test gets a database
//!   of its own there, dropped at its end.
//! - Otherwise the PostgreSQL binaries are looked for (`initdb` on `PATH`, else Debian's
//!   `/usr/lib/postgresql/*/bin`) and a cluster is made in a temporary directory (from a copy
//!   of a cached `initdb` under the target directory), listening on 127.0.0.1 on a free port
//!   and on a Unix socket in that directory (which the tests use).
//!   As root (initdb refuses to run as root), it runs as the `postgres` user. A small `sh`
//!   watchdog starts the server and, once the test process is gone — finished or killed —
//!   stops it and removes the directory.
//! - Neither: the PostgreSQL cases pass after one line on stderr saying they were skipped, unless
//!   `BOOKING_REQUIRE_POSTGRES=1`: then they fail.
//!
//! [`start_reachable_at`] starts one more throwaway cluster the same way, listening also on one
//! of the machine's addresses and trusting one subnet, for servers in other network namespaces
//! (`tests/multi_host.rs`).

use super::Value;
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Statement};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The cluster of this test process (`None`: PostgreSQL is not available and not required).
pub fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(Cluster::find_or_start) {
        Ok(c) => Some(c),
        Err(why) => {
            if std::env::var("BOOKING_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("BOOKING_REQUIRE_POSTGRES=1 but PostgreSQL is not available: {why}");
            }
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                // Straight to stderr: the test harness would keep a passing test's output.
                let _ = writeln!(
                    std::io::stderr(),
                    "\nPostgreSQL half skipped: install Debian's postgresql or set \
                     BOOKING_TEST_POSTGRES; see README ({why})"
                );
            });
            None
        }
    }
}

/// A PostgreSQL server the tests may make databases on.
pub struct Cluster {
    /// A URL of the server whose database part is replaced per test.
    url: String,
    /// A migrated database new test databases are copied from (the throwaway cluster only).
    template: Option<String>,
}

/// A database of one test, dropped with it.
pub struct Database {
    pub url: String,
    name: String,
    admin: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        // Every handle on it is closed by now; FORCE ends any connection still going away.
        if let Ok(mut c) = Client::connect(&self.admin, NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

impl Cluster {
    fn find_or_start() -> Result<Cluster, String> {
        if let Ok(url) = std::env::var("BOOKING_TEST_POSTGRES") {
            if !url.is_empty() {
                // Named on purpose: unreachable is a failure, never a skip.
                if let Err(e) = Client::connect(&url, NoTls) {
                    panic!("BOOKING_TEST_POSTGRES={url}: cannot connect: {e}");
                }
                return Ok(Cluster {
                    url,
                    template: None,
                });
            }
        }
        let bin = binaries()?;
        start(&bin, None)
    }

    fn admin(&self) -> String {
        with_dbname(&self.url, "postgres")
    }

    /// A new database: copied from the migrated template (or empty, and then migrated by the
    /// first handle that opens it).
    pub fn create_database(&self, migrated: bool) -> Database {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "booking_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let admin = self.admin();
        let mut c = Client::connect(&admin, NoTls).expect("connect to the test cluster");
        let template = match (&self.template, migrated) {
            (Some(t), true) => format!(" TEMPLATE {t}"),
            _ => String::new(),
        };
        c.batch_execute(&format!("CREATE DATABASE {name}{template}"))
            .expect("create a test database");
        Database {
            url: with_dbname(&self.url, &name),
            name,
            admin,
        }
    }
}

impl Cluster {
    /// A name and URL for a database that does not exist yet (dropped with the guard if
    /// something made it).
    pub fn reserve_database(&self) -> Database {
        let name = format!(
            "booking_test_{}_new_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        Database {
            url: with_dbname(&self.url, &name),
            name,
            admin: self.admin(),
        }
    }
}

/// A throwaway cluster of its own (never `BOOKING_TEST_POSTGRES`'s server), made as
/// [`cluster`]'s is, that also listens on `address` (an address of this machine) and trusts every
/// connection from `subnet` (say `10.1.2.0/24`): for clients in other network namespaces. Its
/// URLs name the Unix socket; [`on_host`] turns one into a TCP URL. `Err` says why it could not
/// start (no PostgreSQL binaries, no `postgres` user as root, the server did not come up).
pub fn start_reachable_at(address: &str, subnet: &str) -> Result<Cluster, String> {
    let bin = binaries()?;
    start(&bin, Some((address, subnet)))
}

/// `url` reaching the server over TCP at `host` (same user, port and database).
pub fn on_host(url: &str, host: &str) -> String {
    let (scheme, authority, tail) = split_url(url);
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let port = hostport
        .rsplit_once(':')
        .map(|(_, p)| format!(":{p}"))
        .unwrap_or_default();
    format!("{scheme}://{user}{host}{port}{tail}")
}

/// A URL's scheme, authority (user, host and port) and the rest (path and query).
fn split_url(url: &str) -> (&str, &str, &str) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    (scheme, authority, tail)
}

/// `url` naming database `name` instead.
fn with_dbname(url: &str, name: &str) -> String {
    let (scheme, authority, tail) = split_url(url);
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{name}{query}")
}

/// The directory of `initdb` and `postgres`.
fn binaries() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("initdb"))
        .find(|p| p.is_file());
    if let Some(initdb) = on_path {
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        let dir = real.parent().unwrap().to_path_buf();
        if dir.join("postgres").is_file() {
            return Ok(dir);
        }
    }
    // Debian keeps them off PATH, one directory per major version: the newest.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no initdb on PATH and no /usr/lib/postgresql".to_string())?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb found (PATH, /usr/lib/postgresql/*/bin)".to_string())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args…`, as the `postgres` user when we are root.
fn command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The watchdog: starts the server, waits while the test process (`$1`) lives and the server
/// runs, stops the server at once, and once the test process is gone removes the cluster's
/// directory. (A server that stopped by itself — its port taken at start — leaves the directory
/// to the next try until then.)
const WATCHDOG: &str = r#"
parent=$1; bin=$2; dir=$3; port=$4; listen=$5
"$bin/postgres" -D "$dir/data" -p "$port" -k "$dir" -c listen_addresses="$listen" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=400 -c shared_buffers=64MB -c deadlock_timeout=100ms \
    -c track_commit_timestamp=on >"$dir/log" 2>&1 &
pg=$!
while [ -d "/proc/$parent" ] && kill -0 "$pg" 2>/dev/null; do sleep 0.2; done
kill -QUIT "$pg" 2>/dev/null
wait "$pg" 2>/dev/null
while [ -d "/proc/$parent" ]; do sleep 0.5; done
rm -rf "$dir"
"#;

/// Starts a cluster listening on 127.0.0.1 and, given `reachable` = (address, subnet), on that
/// address too, trusting connections from that subnet.
fn start(bin: &Path, reachable: Option<(&str, &str)>) -> Result<Cluster, String> {
    let root = is_root();
    if root
        && !Command::new("id")
            .arg("postgres")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return Err("running as root and there is no `postgres` user to run the server as".into());
    }
    let dir = std::env::temp_dir().join(format!(
        "booking-pg-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if root {
        let mut c = Command::new("chown");
        c.arg("postgres:").arg(&dir);
        run(c, "chown")?;
    }
    let data = dir.join("data");
    make_data_dir(bin, &data, root)?;
    let mut listen = "127.0.0.1".to_string();
    if let Some((address, subnet)) = reachable {
        listen = format!("{listen},{address}");
        let hba = data.join("pg_hba.conf");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&hba)
            .map_err(|e| format!("{}: {e}", hba.display()))?;
        writeln!(f, "host all all {subnet} trust").map_err(|e| e.to_string())?;
    }

    // A free port (another process may take it before the server does: try again then).
    let mut last = String::new();
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut watchdog = command(root, Path::new("/bin/sh"));
        watchdog
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(std::process::id().to_string())
            .arg(bin)
            .arg(&dir)
            .arg(port.to_string())
            .arg(&listen)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = watchdog
            .spawn()
            .map_err(|e| format!("start postgres: {e}"))?;
        // Through the Unix socket in the cluster's directory: a quarter less latency than TCP
        // on loopback, and every test statement is a round trip.
        let socket_dir = dir
            .to_str()
            .ok_or("a temp dir that is not UTF-8")?
            .replace('/', "%2F");
        let url = format!("postgres://postgres@{socket_dir}:{port}/postgres");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if Client::connect(&url, NoTls).is_ok() {
                let template = make_template(&url)?;
                return Ok(Cluster {
                    url,
                    template: Some(template),
                });
            }
            if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                last = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Err(format!("postgres did not start: {last}"))
}

/// `initdb`'s output at `data`: copied from a cache under the target directory when one is
/// there (initdb takes seconds; a copy, a tenth of that), else made and cached.
fn make_data_dir(bin: &Path, data: &Path, root: bool) -> Result<(), String> {
    let version = Command::new(bin.join("initdb"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let tag: String = version
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("postgres-initdb-{tag}"));
    let copy = |from: &Path, to: &Path| -> Result<(), String> {
        let mut c = Command::new("cp");
        c.arg("-a").arg(from).arg(to);
        run(c, "copy the initdb cache")
    };
    if cache.is_dir() {
        copy(&cache, data)?;
        if root {
            let mut c = Command::new("chown");
            c.args(["-R", "postgres:"]).arg(data);
            run(c, "chown")?;
        }
        return Ok(());
    }
    let mut initdb = command(root, &bin.join("initdb"));
    initdb.arg("-D").arg(data).args([
        "-N",
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C",
    ]);
    run(initdb, "initdb")?;
    // Cache it for the next test processes (whoever renames first wins).
    let partial = cache.with_extension(format!("partial-{}", std::process::id()));
    if std::fs::create_dir_all(cache.parent().unwrap()).is_ok()
        && copy(data, &partial).is_ok()
        && std::fs::rename(&partial, &cache).is_err()
    {
        let _ = std::fs::remove_dir_all(&partial);
    }
    Ok(())
}

/// A migrated database to copy test databases from: made by opening a handle on it (the
/// library's own migrations), without the handle's JWT secret (each test database makes its
/// own).
fn make_template(url: &str) -> Result<String, String> {
    let name = "booking_template";
    let template_url = with_dbname(url, name);
    let b = booking::Booking::open(template_url.as_str(), booking::Config::default())
        .map_err(|e| format!("migrate the template database: {e}"))?;
    drop(b);
    let mut c = Client::connect(&template_url, NoTls).map_err(|e| e.to_string())?;
    c.batch_execute("DELETE FROM meta")
        .map_err(|e| e.to_string())?;
    drop(c);
    // A database is copied only while no one is connected to it: no one may connect any more,
    // and a pooled connection still on its way out is ended now.
    let mut admin = Client::connect(url, NoTls).map_err(|e| e.to_string())?;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .map_err(|e| e.to_string())?;
    Ok(name.to_string())
}

/// `?N` placeholders as PostgreSQL's `$N` (the tests' SQL has them in no literal).
pub fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// Parameters as the types PostgreSQL inferred for them.
pub fn bind(stmt: &Statement, args: &[Value]) -> Vec<Box<dyn ToSql + Sync>> {
    stmt.params()
        .iter()
        .zip(args)
        .map(|(ty, v)| -> Box<dyn ToSql + Sync> {
            match v {
                Value::Int(n) if *ty == Type::INT8 => Box::new(*n),
                Value::Int(n) if *ty == Type::INT4 => Box::new(*n as i32),
                Value::Int(n) if *ty == Type::INT2 => Box::new(*n as i16),
                Value::Int(n) if *ty == Type::BOOL => Box::new(*n != 0),
                Value::Int(n) => Box::new(n.to_string()),
                Value::Text(s) => Box::new(s.clone()),
            }
        })
        .collect()
}

/// Column `i` as an integer (any integer type, or a flag).
pub fn int(row: &postgres::Row, i: usize) -> Option<i64> {
    let ty = row.columns()[i].type_();
    if *ty == Type::INT8 {
        row.get(i)
    } else if *ty == Type::INT4 {
        row.get::<_, Option<i32>>(i).map(i64::from)
    } else if *ty == Type::INT2 {
        row.get::<_, Option<i16>>(i).map(i64::from)
    } else if *ty == Type::BOOL {
        row.get::<_, Option<bool>>(i).map(i64::from)
    } else {
        panic!("column {i} is a {ty}, not an integer (cast it AS BIGINT)")
    }
}
