//! A full disk: the real `booking-server` on a database in a small filesystem the test makes (a
//! tmpfs with a size limit, mounted in a private mount namespace), while clients pay in a loop
//! (enter → charge → hold → pay) and the test fills the filesystem with a filler file until
//! writes fail. Then:
//! - every request gets an answer within [`ANSWER_BOUND`] (never a hang), and every failure is
//!   `503 busy` or `500 internal` with the JSON error shape;
//! - once the filler is deleted, the same server (no restart) takes payments again;
//! - after it stops: `booking-cli verify` is clean, every acknowledged payment is in the database,
//!   and nothing a failed request tried is (no payment for a failed pay, no ledger row for a
//!   failed charge).
//!
//! The filesystem: a keeper process (`unshare --mount … sleep`) mounts a tmpfs in its own mount
//! namespace; the server and the test reach it through `/proc/<keeper>/root/…`, so no mount is
//! ever visible on the host and nothing is left behind, whatever happens to the test: the tmpfs
//! goes when the keeper and the server are gone (both are killed when the test's guards drop,
//! and the keeper exits by itself after 15 minutes).
//!
//! Mounting needs root (or CAP_SYS_ADMIN) on Linux. Without it the test says so and passes
//! without running, unless `BOOKING_REQUIRE_FULL_DISK=1` (CI sets it), which makes it fail.

mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Client, Proc};

/// The size of the filesystem.
const FS_SIZE: &str = "24m";
/// The longest any request may take to be answered, full disk or not.
const ANSWER_BOUND: Duration = Duration::from_secs(10);
/// Clients paying at once.
const CLIENTS: usize = 4;

/// The process whose private mount namespace holds the tmpfs; killed on drop.
struct Keeper {
    child: Child,
    mount_point: tempfile::TempDir,
}

impl Keeper {
    /// Mounts a tmpfs of `size` in a new mount namespace; `Err` says why it could not.
    fn start(size: &str) -> Result<Keeper, String> {
        if !Path::new("/proc/self/root").exists() {
            return Err("no /proc (not Linux?)".into());
        }
        let mount_point = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size={size},mode=0700 booking-full-disk \"$0\" \
                 && echo mounted && exec sleep 900"
            ))
            .arg(mount_point.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        if line.trim() != "mounted" {
            let _ = child.kill();
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "cannot mount a tmpfs in a private mount namespace: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Keeper { child, mount_point })
    }

    /// A path inside the small filesystem, as processes in the keeper's namespace see it.
    fn inside(&self, name: &str) -> PathBuf {
        self.mount_point.path().join(name)
    }

    /// A path inside the small filesystem, as seen from the host (for plain file operations:
    /// SQLite resolves `/proc/<pid>/root` as a symbolic link to `/`, so a database is only
    /// opened from inside the namespace).
    fn path(&self, name: &str) -> PathBuf {
        let inside = self.mount_point.path().strip_prefix("/").unwrap();
        Path::new(&format!("/proc/{}/root", self.child.id()))
            .join(inside)
            .join(name)
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fills the filesystem of `path` with a file there, until a write fails with "no space".
/// Returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("create the filler");
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 512] {
        let buf = vec![0xA5u8; chunk];
        loop {
            match f.write(&buf) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) || e.kind() == ErrorKind::StorageFull => {
                    break
                }
                Err(e) => panic!("filling: {e}"),
            }
        }
    }
    written
}

/// What happened to one request.
#[derive(Debug, Clone)]
enum Answer {
    Ok(Value),
    /// A failure answer (`500 internal` or `503 busy`): its status.
    Failed(u16),
}

/// Everything wrong the clients saw (the test fails if any).
#[derive(Default)]
struct Problems(Mutex<Vec<String>>);

impl Problems {
    fn add(&self, p: String) {
        eprintln!("problem: {p}");
        self.0.lock().unwrap().push(p);
    }
}

/// Counts of answers.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed_500: AtomicUsize,
    failed_503: AtomicUsize,
    slowest_ms: AtomicUsize,
}

/// A client's view of one request: bounded in time, and failures only `busy` or `internal`.
fn call(
    c: &Client,
    method: &str,
    path: &str,
    body: Option<Value>,
    want: u16,
    problems: &Problems,
    tally: &Tally,
) -> Option<Answer> {
    let started = Instant::now();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let r = c.try_send(method, path, &[], body.as_bytes());
    let took = started.elapsed();
    tally
        .slowest_ms
        .fetch_max(took.as_millis() as usize, Ordering::Relaxed);
    if took > ANSWER_BOUND {
        problems.add(format!("{method} {path} took {took:?}"));
    }
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            problems.add(format!("{method} {path}: no answer ({e})"));
            return None;
        }
    };
    if r.status == want {
        tally.ok.fetch_add(1, Ordering::Relaxed);
        return Some(Answer::Ok(r.json()));
    }
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let code = v["error"]["code"].as_str().unwrap_or("").to_string();
    let shaped = v.as_object().is_some_and(|o| o.len() == 1)
        && v["error"].as_object().is_some_and(|e| e.len() == 2)
        && v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty());
    match (r.status, code.as_str()) {
        (500, "internal") if shaped => {
            tally.failed_500.fetch_add(1, Ordering::Relaxed);
        }
        (503, "busy") if shaped => {
            tally.failed_503.fetch_add(1, Ordering::Relaxed);
        }
        _ => problems.add(format!(
            "{method} {path}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )),
    }
    Some(Answer::Failed(r.status))
}

/// One client's purchase and what each step answered.
#[derive(Debug, Clone, Default)]
struct Journey {
    user_id: Option<String>,
    charged: Option<bool>,
    ticket: Option<i64>,
    paid: Option<Result<(i64, i64), u16>>,
}

/// A seat to buy: showtime, seat id, price.
type SeatRef = (i64, i64, i64);

/// One purchase: enter, charge the price, hold the seat, pay. Stops at the first failure.
fn journey(
    addr: std::net::SocketAddr,
    seats: &Mutex<Vec<SeatRef>>,
    problems: &Problems,
    tally: &Tally,
) -> Option<Journey> {
    let mut j = Journey::default();
    let anon = Client::new(addr);
    let Answer::Ok(entered) = call(&anon, "POST", "/token", None, 201, problems, tally)? else {
        return Some(j);
    };
    j.user_id = entered["user_id"].as_str().map(String::from);
    let c = anon.with_token(entered["token"].as_str().unwrap());
    let (showtime, seat, price) = seats.lock().unwrap().pop()?;
    let give_back = |j: Journey| {
        seats.lock().unwrap().insert(0, (showtime, seat, price));
        Some(j)
    };
    let charge = call(
        &c,
        "POST",
        "/points",
        Some(json!({ "amount": price })),
        200,
        problems,
        tally,
    )?;
    j.charged = Some(matches!(charge, Answer::Ok(_)));
    if !matches!(charge, Answer::Ok(_)) {
        return give_back(j);
    }
    let hold = call(
        &c,
        "POST",
        "/tickets",
        Some(json!({ "showtime_id": showtime, "seat_id": seat })),
        201,
        problems,
        tally,
    )?;
    let Answer::Ok(ticket) = hold else {
        return give_back(j);
    };
    let ticket = ticket["id"].as_i64().unwrap();
    j.ticket = Some(ticket);
    let pay = call(
        &c,
        "POST",
        "/payments",
        Some(json!({ "ticket_id": ticket })),
        201,
        problems,
        tally,
    )?;
    j.paid = Some(match pay {
        Answer::Ok(p) => Ok((p["id"].as_i64().unwrap(), p["amount"].as_i64().unwrap())),
        Answer::Failed(status) => Err(status),
    });
    Some(j)
}

#[test]
fn a_full_disk_fails_requests_cleanly_and_the_server_recovers_without_a_restart() {
    full_disk(&[]);
}

#[test]
fn the_same_without_group_commit() {
    full_disk(&["--no-group-commit"]);
}

/// The scenario, on a server started with `flags` besides the test's own.
fn full_disk(flags: &[&str]) {
    let keeper = match Keeper::start(FS_SIZE) {
        Ok(k) => k,
        Err(why) if std::env::var("BOOKING_REQUIRE_FULL_DISK").as_deref() == Ok("1") => {
            panic!("BOOKING_REQUIRE_FULL_DISK=1 but {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: the full-disk test needs to mount a tmpfs (root on Linux): {why}");
            return;
        }
    };
    // The server runs in the keeper's mount namespace, on the small filesystem.
    let in_namespace = format!("exec nsenter -t {} -m -- \"$0\" \"$@\"", keeper.child.id());
    let mut args = vec!["--demo", "--max-active", "1000000", "--threads", "8"];
    args.extend_from_slice(flags);
    let mut server = Proc::spawn_via(Some(&in_namespace), keeper.inside("booking.db"), &args, &[]);
    let addr = server.addr;

    // Every seat of the demo catalog, as an active user sees them.
    let u = server.enter();
    let mut seats: Vec<SeatRef> = Vec::new();
    for c in u.get("/concerts").json().as_array().unwrap() {
        let c = c["id"].as_i64().unwrap();
        for s in u.get(&format!("/concerts/{c}")).json().as_array().unwrap() {
            let s = s["id"].as_i64().unwrap();
            for seat in u
                .get(&format!("/concerts/{c}:{s}"))
                .json()
                .as_array()
                .unwrap()
            {
                seats.push((
                    s,
                    seat["id"].as_i64().unwrap(),
                    seat["price"].as_i64().unwrap(),
                ));
            }
        }
    }
    let seats = Arc::new(Mutex::new(seats));
    let problems = Arc::new(Problems::default());
    let tally = Arc::new(Tally::default());
    let journeys: Arc<Mutex<Vec<Journey>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (seats, problems, tally, journeys, stop) = (
                seats.clone(),
                problems.clone(),
                tally.clone(),
                journeys.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(j) = journey(addr, &seats, &problems, &tally) else {
                        break;
                    };
                    let failed = !matches!(j.paid, Some(Ok(_)));
                    journeys.lock().unwrap().push(j);
                    if failed {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    let paid = || {
        journeys
            .lock()
            .unwrap()
            .iter()
            .filter(|j| matches!(j.paid, Some(Ok(_))))
            .count()
    };
    let failures =
        || tally.failed_500.load(Ordering::Relaxed) + tally.failed_503.load(Ordering::Relaxed);
    let wait_for = |what: &str, limit: Duration, done: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < limit,
                "{what}: not within {limit:?} ({:?}); {} payments, {} journeys, {} seats left, files {:?}",
                problems.0.lock().unwrap(),
                paid(),
                journeys.lock().unwrap().len(),
                seats.lock().unwrap().len(),
                ["booking.db", "booking.db-wal", "booking.db-shm", "filler"]
                    .map(|f| std::fs::metadata(keeper.path(f)).map(|m| m.len()).ok()),
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    };

    // Payments go through; then the disk fills up under them.
    wait_for(
        "20 payments before the disk fills",
        Duration::from_secs(60),
        &|| paid() >= 20,
    );
    let filler = keeper.path("filler");
    let filled = fill(&filler);
    let paid_before = paid();
    let full_since = Instant::now();
    let took = wait_for(
        "requests failing on the full disk",
        Duration::from_secs(30),
        &|| failures() >= 20,
    );
    let paid_while_full = paid() - paid_before;
    eprintln!(
        "{flags:?}: filled {} MiB; {} failures within {took:?} ({paid_while_full} payments still went through)",
        filled >> 20,
        failures()
    );
    std::thread::sleep(Duration::from_millis(500));

    // Space again: the same server takes payments again, without a restart.
    std::fs::remove_file(&filler).expect("delete the filler");
    let freed_at = Instant::now();
    let paid_full = paid();
    let recovered = wait_for(
        "payments after the disk was freed",
        Duration::from_secs(30),
        &|| paid() >= paid_full + 20,
    );
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("a client thread");
    }
    eprintln!(
        "{flags:?}: full for {:?}; 20 payments {recovered:?} after freeing; answers: {} ok, {} × 500, {} × 503; slowest {} ms",
        freed_at - full_since,
        tally.ok.load(Ordering::Relaxed),
        tally.failed_500.load(Ordering::Relaxed),
        tally.failed_503.load(Ordering::Relaxed),
        tally.slowest_ms.load(Ordering::Relaxed),
    );
    assert!(
        problems.0.lock().unwrap().is_empty(),
        "{:?}",
        problems.0.lock().unwrap()
    );
    assert_eq!(server.terminate().code(), Some(0), "a clean stop");

    // Nothing acknowledged is lost; nothing that failed is there.
    let out = Command::new("nsenter")
        .args(["-t", &keeper.child.id().to_string(), "-m", "--"])
        .arg(env!("CARGO_BIN_EXE_booking-cli"))
        .arg("--db")
        .arg(keeper.inside("booking.db"))
        .args(["--json", "verify"])
        .output()
        .expect("booking-cli verify");
    assert!(
        out.status.success(),
        "verify: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = tempfile::tempdir().unwrap();
    for f in ["booking.db", "booking.db-wal"] {
        if keeper.path(f).exists() {
            std::fs::copy(keeper.path(f), copy.path().join(f)).expect("copy the database out");
        }
    }
    let conn = rusqlite::Connection::open(copy.path().join("booking.db")).expect("open the copy");
    let journeys = journeys.lock().unwrap();
    let mut acknowledged = 0;
    for j in journeys.iter() {
        let Some(user) = &j.user_id else { continue };
        let payments: Vec<(i64, i64, i64)> = conn
            .prepare("SELECT p.id, p.ticket_id, p.amount FROM payments p WHERE p.user_id = ?1")
            .unwrap()
            .query_map([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let ledger: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM point_ledger WHERE user_id = ?1",
                [user],
                |r| r.get(0),
            )
            .unwrap();
        match (&j.paid, j.charged) {
            (Some(Ok((id, amount))), _) => {
                acknowledged += 1;
                assert_eq!(
                    payments,
                    vec![(*id, j.ticket.unwrap(), *amount)],
                    "acknowledged payment of {user}"
                );
                let status: String = conn
                    .query_row(
                        "SELECT status FROM tickets WHERE id = ?1",
                        [j.ticket.unwrap()],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(status, "paid");
                assert_eq!(ledger, 2, "the charge and the payment of {user}");
            }
            (Some(Err(_)), _) => {
                assert!(payments.is_empty(), "a failed payment is not there: {j:?}");
                assert_eq!(ledger, 1, "only the charge of {j:?}");
            }
            (None, Some(true)) => {
                assert!(payments.is_empty(), "{j:?}");
                assert_eq!(ledger, 1, "only the charge of {j:?}");
            }
            (None, _) => {
                assert!(payments.is_empty(), "{j:?}");
                assert_eq!(ledger, 0, "a failed charge is not there: {j:?}");
            }
        }
    }
    let total: i64 = conn
        .query_row("SELECT COUNT(*) FROM payments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        total, acknowledged,
        "every payment in the database was acknowledged"
    );
    eprintln!("{flags:?}: {acknowledged} acknowledged payments, all there; verify clean");
}
