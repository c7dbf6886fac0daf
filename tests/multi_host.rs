//! Several machines on one PostgreSQL database: three real `booking-server` processes, each in a
//! network namespace of its own (a test host with its own address), joined by veth pairs to a
//! bridge in the root namespace, where a throwaway PostgreSQL cluster listens on the bridge's
//! address. The clients are threads of this test in the root namespace, reaching each server at
//! its host's address over the veth.
//!
//! ```text
//!   root namespace: PostgreSQL on 10.A.B.1 (bridge bkb…), the test's client threads
//!        |                 |                 |
//!   veth 10.A.B.2     veth 10.A.B.3     veth 10.A.B.4
//!   booking-server    booking-server    booking-server      (one namespace each)
//! ```
//!
//! Checked, each with counts:
//! 1. 30 clients spread over the three hosts race for one seat: exactly one `201`, 29
//!    `409 seat_unavailable`, and one live ticket (one ticket at all) for the seat in the database.
//! 2. 80 charges of one user spread over the hosts: every one `200`, the balance the exact sum
//!    (read back through every host and in the database), 80 ledger rows, each applied on top of
//!    the one before (no lost update).
//! 3. `kill -9` of one host while payments go on through all three: the other two keep serving
//!    (every request to them succeeds, before and after the kill, and each completes more
//!    payments after it), every acknowledged (`201`) payment is in the database as it was
//!    answered, and `booking-cli verify`, run on another host, is clean.
//!
//! The subnet is a private /24 picked from the test process's id (one not in use on the
//! machine), the names of the namespaces and links carry the id too, so parallel runs do not
//! meet. Everything is removed at the end, failed or not: a guard deletes the namespaces (after
//! killing what still runs in them), the veth pairs and the bridge when it drops, and a small
//! `sh` watchdog in a process group of its own does the same once the test process is gone, if it
//! was killed before its guard could.
//!
//! It needs root (network namespaces, links), `ip` (iproute2) and PostgreSQL's binaries (Debian's
//! `postgresql`; the cluster is always this test's own, never `BOOKING_TEST_POSTGRES`'s, since it
//! must listen on the bridge). Without them the test prints one line saying it was skipped, why
//! and how to run it, and passes — unless `BOOKING_REQUIRE_NETNS=1` (`.ci/run` sets it): then it
//! fails (and without PostgreSQL, as the PostgreSQL half does, when `BOOKING_REQUIRE_POSTGRES=1`).

mod support;

use serde_json::{json, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use support::{pg, Client, Proc, User};

/// Servers, one per namespace.
const HOSTS: usize = 3;
/// Scenario 1: clients racing for one seat.
const RACERS: usize = 30;
/// Scenario 2: charges of one user, and the threads sending them.
const CHARGES: usize = 80;
const CHARGERS: usize = 16;
/// Scenario 3: paying clients per host, payments each host acknowledges before the kill, and
/// payments each client of a surviving host completes after it.
const PAYERS_PER_HOST: usize = 2;
const PAID_BEFORE_KILL: usize = 8;
const PAID_AFTER_KILL: usize = 10;
/// Seats each paying client may use (one payment each).
const SEATS_PER_PAYER: usize = 100;
/// The price of every seat of scenario 3.
const PRICE: i64 = 1_000;
/// How long a phase of scenario 3 may take before the test gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(30);

/// The network of one run: a bridge in the root namespace and one namespace per host, each
/// joined to the bridge by a veth pair. Removed when dropped.
struct Net {
    /// Part of every name this run makes (the process id and a random byte, in hex).
    tag: String,
    /// The first three octets of the run's /24.
    prefix: String,
    hosts: usize,
    /// Removes everything once this process is gone, if the guard did not run.
    watchdog: Option<Child>,
}

/// Removes a run's namespaces (killing what runs in them first), veth pairs and bridge; each step
/// may find its object already gone. `$1` the tag, `$2` the number of hosts, `$3` the `ip` command.
const CLEANUP: &str = r#"
tag=$1; hosts=$2; ip=$3; i=0
while [ "$i" -lt "$hosts" ]; do
  ns="booking-$tag-h$i"
  for p in $("$ip" netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  "$ip" netns del "$ns" 2>/dev/null
  "$ip" link del "bkv${tag}h$i" 2>/dev/null
  i=$((i + 1))
done
"$ip" link del "bkb$tag" 2>/dev/null
exit 0
"#;

/// The `ip` command: on `PATH`, else where Debian puts it (`/usr/sbin`, `/sbin`: not on every
/// user's `PATH`).
fn ip_command() -> PathBuf {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("ip"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| "ip".into())
}

impl Net {
    fn bridge(&self) -> String {
        format!("bkb{}", self.tag)
    }

    fn namespace(&self, i: usize) -> String {
        format!("booking-{}-h{i}", self.tag)
    }

    /// The root namespace's address on the bridge (PostgreSQL listens there).
    fn gateway(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// Host `i`'s address.
    fn address(&self, i: usize) -> String {
        format!("{}.{}", self.prefix, i + 2)
    }

    fn subnet(&self) -> String {
        format!("{}.0/24", self.prefix)
    }

    /// Makes the bridge and `hosts` namespaces joined to it; `Err` says what could not be done.
    fn create(hosts: usize) -> Result<Net, String> {
        match Command::new(ip_command()).arg("-V").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => return Err(format!("`ip -V` failed: {}", stderr_of(&o))),
            Err(e) => return Err(format!("no `ip` command (iproute2): {e}")),
        }
        let pid = std::process::id();
        let tag = format!("{pid:x}{:02x}", rand::random::<u8>());
        let mut net = Net {
            tag,
            prefix: free_prefix(pid)?,
            hosts,
            watchdog: None,
        };
        // First the watchdog, so that whatever gets made is removed even if this process dies now.
        let mut watchdog = Command::new("/bin/sh");
        watchdog
            .arg("-c")
            .arg(format!(
                "parent=$1; while [ -d \"/proc/$parent\" ]; do sleep 0.5; done; shift; {CLEANUP}"
            ))
            .arg("sh")
            .arg(pid.to_string())
            .arg(&net.tag)
            .arg(hosts.to_string())
            .arg(ip_command())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        net.watchdog = Some(
            watchdog
                .spawn()
                .map_err(|e| format!("cannot start sh: {e}"))?,
        );

        let bridge = net.bridge();
        let gateway = format!("{}/24", net.gateway());
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &gateway, "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..hosts {
            let ns = net.namespace(i);
            let outside = format!("bkv{}h{i}", net.tag);
            let inside = format!("bkv{}n{i}", net.tag);
            let address = format!("{}/24", net.address(i));
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ])?;
            ip(&["link", "set", &inside, "netns", &ns])?;
            ip(&["link", "set", &outside, "master", &bridge])?;
            ip(&["link", "set", &outside, "up"])?;
            ip(&["-n", &ns, "addr", "add", &address, "dev", &inside])?;
            ip(&["-n", &ns, "link", "set", &inside, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = Command::new("/bin/sh")
            .arg("-c")
            .arg(CLEANUP)
            .arg("sh")
            .arg(&self.tag)
            .arg(self.hosts.to_string())
            .arg(ip_command())
            .stdin(Stdio::null())
            .status();
    }
}

fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// Runs `ip args…`; `Err` names the command and what it said.
fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new(ip_command())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("`ip {}` failed: {}", args.join(" "), stderr_of(&o)))
    }
}

/// A private /24 (`10.X.Y`) chosen from the process id, the first from there that no address or
/// route of the machine is in.
fn free_prefix(pid: u32) -> Result<String, String> {
    let mut taken = String::new();
    for what in [["-4", "addr"], ["-4", "route"]] {
        let o = Command::new(ip_command())
            .args(what)
            .output()
            .map_err(|e| e.to_string())?;
        taken.push_str(&String::from_utf8_lossy(&o.stdout));
    }
    let start = pid as usize % (128 * 256);
    (0..128 * 256)
        .map(|k| (start + k) % (128 * 256))
        .map(|n| format!("10.{}.{}", 64 + n / 256, n % 256))
        .find(|p| !taken.contains(&format!("{p}.")))
        .ok_or_else(|| "no free 10.x.y.0/24".to_string())
}

/// One `booking-server` in a namespace.
struct Server {
    proc: Proc,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// `ip netns exec NS booking-server --db URL --addr ADDRESS:8080 …`, once it listens. Its
    /// stderr goes to `log`.
    fn start(ns: &str, address: &str, db: &str, log: PathBuf) -> Server {
        let err = std::fs::File::create(&log).expect("server log");
        let mut cmd = Command::new(ip_command());
        cmd.args(["netns", "exec", ns])
            .arg(env!("CARGO_BIN_EXE_booking-server"))
            .args(["--db", db, "--addr", &format!("{address}:8080")])
            .args(["--max-active", "100000", "--threads", "8"])
            .env_remove("BOOKING_JWT_SECRET")
            .env_remove("BOOKING_DB")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stderr(err);
        let proc = Proc::start(cmd).unwrap_or_else(|line| {
            panic!(
                "booking-server in {ns} did not start (first line {line:?}); its stderr:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Server {
            addr: proc.addr,
            proc,
            log,
        }
    }

    fn kill9(&mut self) {
        self.proc.kill9();
    }
}

/// Says the test was skipped, and why, and how to run it; or fails when it must run.
fn skip(why: &str) {
    if std::env::var("BOOKING_REQUIRE_NETNS").is_ok_and(|v| v == "1") {
        panic!("BOOKING_REQUIRE_NETNS=1 but the multi-host test cannot run: {why}");
    }
    // Straight to stderr: the harness would keep a passing test's output.
    let _ = writeln!(
        std::io::stderr(),
        "multi_host skipped: {why}; it needs root, iproute2 (`ip`) and Debian's postgresql: \
         run `cargo test --test multi_host` as root (BOOKING_REQUIRE_NETNS=1 makes a skip a failure)"
    );
}

#[test]
fn three_hosts_on_one_postgres_database() {
    let began = Instant::now();
    let net = match Net::create(HOSTS) {
        Ok(n) => n,
        Err(why) => return skip(&format!("cannot make network namespaces: {why}")),
    };
    let cluster = match pg::start_reachable_at(&net.gateway(), &net.subnet()) {
        Ok(c) => c,
        Err(why) if std::env::var("BOOKING_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("BOOKING_REQUIRE_POSTGRES=1 but PostgreSQL cannot start: {why}")
        }
        Err(why) => return skip(&format!("cannot start PostgreSQL: {why}")),
    };
    let db = cluster.create_database(true);
    // The servers' URL: the cluster over TCP at the bridge's address.
    let url = pg::on_host(&db.url, &net.gateway());
    let catalog = seed(&url);
    let logs = tempfile::tempdir().expect("temp dir");
    let mut servers: Vec<Server> = (0..HOSTS)
        .map(|i| {
            Server::start(
                &net.namespace(i),
                &net.address(i),
                &url,
                logs.path().join(format!("server-{i}.log")),
            )
        })
        .collect();
    for (i, s) in servers.iter().enumerate() {
        assert_eq!(s.addr.ip().to_string(), net.address(i));
    }
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let mut sql = postgres::Client::connect(&url, postgres::NoTls).expect("connect over TCP");
    let started = began.elapsed();

    let t = Instant::now();
    one_seat_many_hosts(&addrs, &catalog, &mut sql);
    let race = t.elapsed();
    // The servers reached PostgreSQL over their veth, each from its own address.
    let clients: Vec<String> = sql
        .query(
            "SELECT DISTINCT host(client_addr) FROM pg_stat_activity
             WHERE datname = current_database() AND client_addr IS NOT NULL",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for i in 0..HOSTS {
        assert!(
            clients.contains(&net.address(i)),
            "no connection from host {i} ({}) among {clients:?}",
            net.address(i)
        );
    }
    let t = Instant::now();
    charges_over_hosts(&addrs, &mut sql);
    let charges = t.elapsed();
    let t = Instant::now();
    let paid = kill_a_host_while_paying(&mut servers, &catalog, &mut sql);
    let kill = t.elapsed();

    // verify, from another machine than the test's: booking-cli in host 1's namespace.
    let out = Command::new(ip_command())
        .args(["netns", "exec", &net.namespace(1)])
        .arg(env!("CARGO_BIN_EXE_booking-cli"))
        .args(["--db", &url, "--json", "verify"])
        .env_remove("BOOKING_DB")
        .output()
        .expect("run booking-cli verify");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "booking-cli verify printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr_of(&out)
        )
    });
    assert!(
        out.status.success() && report["ok"] == true,
        "verify: {report}"
    );

    drop(sql);
    for s in &servers {
        let log = std::fs::read_to_string(&s.log).unwrap_or_default();
        assert!(!log.contains("panicked"), "a server panicked:\n{log}");
    }
    drop(servers);
    drop(net);
    eprintln!(
        "multi_host: 3 hosts up in {:.1}s; one seat, {RACERS} racers: {:.1}s; {CHARGES} charges: \
         {:.1}s; kill -9 during payments ({} acknowledged before the kill, {} after, on {} hosts): \
         {:.1}s; verify clean; {:.1}s in all",
        started.as_secs_f64(),
        race.as_secs_f64(),
        charges.as_secs_f64(),
        paid.0,
        paid.1,
        HOSTS - 1,
        kill.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
}

/// What the test seeded: the race's showtime and seat, and the payments' showtime and seats (in
/// number order).
struct Catalog {
    concert: i64,
    race_showtime: i64,
    race_seat: i64,
    pay_showtime: i64,
    pay_seats: Vec<i64>,
}

/// A concert with two showtimes: 10 seats for the race, one per paying client's payment for
/// scenario 3. Loaded through the library, over TCP like the servers.
fn seed(url: &str) -> Catalog {
    let b = booking::Booking::open(url, booking::Config::default()).expect("open over TCP");
    let starts = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let seats = HOSTS * PAYERS_PER_HOST * SEATS_PER_PAYER;
    let cat: booking::CatalogFile = serde_json::from_value(json!({"concerts": [{
        "title": "Three hosts", "venue": "One database",
        "showtimes": [
            {"starts_at": starts, "seats": 10, "price": 50_000},
            {"starts_at": starts, "seats": seats, "price": PRICE},
        ]
    }]}))
    .unwrap();
    b.operator().seed(&cat, |_| {}).expect("seed");
    drop(b);
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let concert: i64 = c.query_one("SELECT id FROM concerts", &[]).unwrap().get(0);
    let shows: Vec<i64> = c
        .query("SELECT id FROM showtimes ORDER BY total_seats", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let seats_of = |c: &mut postgres::Client, show: i64| -> Vec<i64> {
        c.query(
            "SELECT id FROM seats WHERE showtime_id = $1 ORDER BY number",
            &[&show],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    let race_seat = seats_of(&mut c, shows[0])[4];
    let pay_seats = seats_of(&mut c, shows[1]);
    Catalog {
        concert,
        race_showtime: shows[0],
        race_seat,
        pay_showtime: shows[1],
        pay_seats,
    }
}

/// Scenario 1: 30 users, entered on the three hosts in turn, each sending its hold to the next
/// host, all at once.
fn one_seat_many_hosts(hosts: &[SocketAddr], cat: &Catalog, sql: &mut postgres::Client) {
    let users: Vec<User> = (0..RACERS)
        .map(|i| User::enter(hosts[i % hosts.len()]))
        .collect();
    let barrier = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let c = Client::new(hosts[(i + 1) % hosts.len()]).with_token(&u.token);
            let barrier = barrier.clone();
            let body = json!({"showtime_id": cat.race_showtime, "seat_id": cat.race_seat});
            std::thread::spawn(move || {
                barrier.wait();
                c.post_json("/tickets", body)
            })
        })
        .collect();
    let answers: Vec<_> = racers.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<usize> = (0..RACERS).filter(|i| answers[*i].status == 201).collect();
    assert_eq!(
        winners.len(),
        1,
        "one winner; statuses {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for (i, a) in answers.iter().enumerate() {
        if i != winners[0] {
            a.expect(409, "seat_unavailable");
        }
    }
    let won = answers[winners[0]].json();
    assert_eq!(won["user_id"], users[winners[0]].id);
    assert_eq!(won["seat_id"], cat.race_seat);

    let (live, all, live_id) = {
        let r = sql
            .query_one(
                "SELECT count(*) FILTER (WHERE status IN ('held', 'paid')), count(*),
                        max(id) FILTER (WHERE status IN ('held', 'paid'))
                 FROM tickets WHERE seat_id = $1",
                &[&cat.race_seat],
            )
            .unwrap();
        (
            r.get::<_, i64>(0),
            r.get::<_, i64>(1),
            r.get::<_, Option<i64>>(2),
        )
    };
    assert_eq!(
        (live, all),
        (1, 1),
        "one live ticket, and no other, for the seat"
    );
    assert_eq!(live_id, won["id"].as_i64());
    let claim: Option<i64> = sql
        .query_one(
            "SELECT ticket_id FROM seats WHERE id = $1",
            &[&cat.race_seat],
        )
        .unwrap()
        .get(0);
    assert_eq!(claim, won["id"].as_i64());
    // Every host shows it held.
    for (h, addr) in hosts.iter().enumerate() {
        let c = Client::new(*addr).with_token(&users[0].token);
        let map = c
            .get(&format!("/concerts/{}:{}", cat.concert, cat.race_showtime))
            .json();
        let seat = map
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == cat.race_seat)
            .unwrap();
        assert_eq!(seat["status"], "held", "host {h}: {seat}");
    }
}

/// Scenario 2: one user's 80 charges (amounts 1000, 1001, … so each is told apart), charge `k`
/// sent to host `k mod 3`, by 16 threads at once.
fn charges_over_hosts(hosts: &[SocketAddr], sql: &mut postgres::Client) {
    let user = User::enter(hosts[0]);
    let amount = |k: usize| 1_000 + k as i64;
    let barrier = Arc::new(Barrier::new(CHARGERS));
    let threads: Vec<_> = (0..CHARGERS)
        .map(|t| {
            let clients: Vec<Client> = hosts
                .iter()
                .map(|a| Client::new(*a).with_token(&user.token))
                .collect();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (t..CHARGES)
                    .step_by(CHARGERS)
                    .map(|k| {
                        let r = clients[k % clients.len()]
                            .post_json("/points", json!({ "amount": amount(k) }));
                        (k, r)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut answered = 0;
    for h in threads {
        for (k, r) in h.join().unwrap() {
            assert_eq!(r.status, 200, "charge {k}: {}", r.text());
            answered += 1;
        }
    }
    assert_eq!(answered, CHARGES);
    let sum: i64 = (0..CHARGES).map(amount).sum();
    for addr in hosts {
        let b = Client::new(*addr).with_token(&user.token).get("/points");
        assert_eq!(b.json()["balance"], sum, "balance through {addr}");
    }
    let balance: i64 = sql
        .query_one(
            "SELECT balance FROM wallets WHERE user_id = $1",
            &[&user.id],
        )
        .unwrap()
        .get(0);
    assert_eq!(balance, sum);
    let rows: Vec<(String, i64, i64)> = sql
        .query(
            "SELECT kind, amount, balance_after FROM point_ledger WHERE user_id = $1
             ORDER BY balance_after",
            &[&user.id],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows.len(), CHARGES, "ledger rows");
    let mut amounts: Vec<i64> = rows.iter().map(|r| r.1).collect();
    amounts.sort();
    assert_eq!(amounts, (0..CHARGES).map(amount).collect::<Vec<_>>());
    // Each charge applied on top of exactly the one before it.
    let mut before = 0;
    for (kind, amount, after) in &rows {
        assert_eq!(kind, "charge");
        assert_eq!(*after, before + amount, "ledger {rows:?}");
        before = *after;
    }
}

/// An acknowledged payment, as answered.
#[derive(Debug, Clone)]
struct Paid {
    host: usize,
    id: i64,
    user: String,
    ticket: i64,
    amount: i64,
    /// Sent after the kill.
    after_kill: bool,
}

/// Scenario 3: two paying clients per host (each journey a new user: enter, charge the price,
/// hold a seat of its own, pay with an `Idempotency-Key`); once each host has acknowledged a few
/// payments, host 0 is killed with `kill -9`; the clients of hosts 1 and 2 go on until each has
/// completed a few more. Returns the payments acknowledged before and after the kill.
fn kill_a_host_while_paying(
    servers: &mut [Server],
    cat: &Catalog,
    sql: &mut postgres::Client,
) -> (usize, usize) {
    let hosts: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let paid: Arc<Mutex<Vec<Paid>>> = Arc::default();
    let problems: Arc<Mutex<Vec<String>>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let per_host: Arc<Vec<AtomicUsize>> =
        Arc::new((0..HOSTS).map(|_| AtomicUsize::new(0)).collect());
    let payers = HOSTS * PAYERS_PER_HOST;
    let after: Arc<Vec<AtomicUsize>> = Arc::new((0..payers).map(|_| AtomicUsize::new(0)).collect());
    let clients: Vec<_> = (0..payers)
        .map(|w| {
            let host = w % HOSTS;
            let addr = hosts[host];
            let seats = cat.pay_seats[w * SEATS_PER_PAYER..(w + 1) * SEATS_PER_PAYER].to_vec();
            let show = cat.pay_showtime;
            let (paid, problems, killed, stop, per_host, after) = (
                paid.clone(),
                problems.clone(),
                killed.clone(),
                stop.clone(),
                per_host.clone(),
                after.clone(),
            );
            std::thread::spawn(move || {
                let problem = |what: String| problems.lock().unwrap().push(what);
                for seat in seats {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let after_kill = killed.load(Ordering::SeqCst);
                    // One journey; `Err` carries what went wrong (`None`: no answer).
                    let journey = || -> Result<Paid, (String, Option<u16>)> {
                        let c = Client::new(addr);
                        let step = |what: &str,
                                    r: Result<support::Resp, booking::client::Error>,
                                    ok: u16| {
                            match r {
                                Ok(r) if r.status == ok => Ok(r.json()),
                                Ok(r) => Err((
                                    format!("{what}: {} {}", r.status, r.text()),
                                    Some(r.status),
                                )),
                                Err(e) => Err((format!("{what}: no answer: {e}"), None)),
                            }
                        };
                        let entered = step("enter", c.try_send("POST", "/token", &[], b""), 201)?;
                        let token = entered["token"].as_str().unwrap().to_string();
                        let user = entered["user_id"].as_str().unwrap().to_string();
                        let c = c.with_token(&token);
                        let send = |path: &str, key: Option<&str>, body: Value| {
                            let headers: Vec<(&str, &str)> =
                                key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
                            c.try_send("POST", path, &headers, body.to_string().as_bytes())
                        };
                        step(
                            "charge",
                            send("/points", None, json!({"amount": PRICE})),
                            200,
                        )?;
                        let t = step(
                            "hold",
                            send(
                                "/tickets",
                                None,
                                json!({"showtime_id": show, "seat_id": seat}),
                            ),
                            201,
                        )?;
                        let ticket = t["id"].as_i64().unwrap();
                        let key = format!("pay-{ticket}");
                        let p = step(
                            "pay",
                            send("/payments", Some(&key), json!({"ticket_id": ticket})),
                            201,
                        )?;
                        Ok(Paid {
                            host,
                            id: p["id"].as_i64().unwrap(),
                            user,
                            ticket,
                            amount: p["amount"].as_i64().unwrap(),
                            after_kill,
                        })
                    };
                    match journey() {
                        Ok(p) => {
                            paid.lock().unwrap().push(p);
                            per_host[host].fetch_add(1, Ordering::SeqCst);
                            if after_kill {
                                after[w].fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        // The killed host: no answer from the kill on is what is expected.
                        Err((_, None)) if host == 0 && killed.load(Ordering::SeqCst) => return,
                        Err((what, _)) => {
                            problem(format!(
                                "client {w} on host {host} (killed: {}): {what}",
                                killed.load(Ordering::SeqCst)
                            ));
                            return;
                        }
                    }
                }
                problem(format!("client {w} on host {host} ran out of seats"));
            })
        })
        .collect();

    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + PHASE_LIMIT;
        while !done() {
            let problems = problems.lock().unwrap().clone();
            if !problems.is_empty() || Instant::now() > deadline {
                stop.store(true, Ordering::SeqCst);
                panic!("waiting for {what}: problems {problems:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for(
        &format!("{PAID_BEFORE_KILL} payments on each host"),
        &|| {
            per_host
                .iter()
                .all(|n| n.load(Ordering::SeqCst) >= PAID_BEFORE_KILL)
        },
    );
    killed.store(true, Ordering::SeqCst);
    servers[0].kill9();
    // Host 0 answers no more.
    assert!(
        Client::new(hosts[0])
            .try_send("GET", "/healthz", &[], b"")
            .is_err(),
        "host 0 still answers after kill -9"
    );
    wait_for(
        &format!("{PAID_AFTER_KILL} payments after the kill by each client of hosts 1 and 2"),
        &|| {
            (0..payers)
                .filter(|w| w % HOSTS != 0)
                .all(|w| after[w].load(Ordering::SeqCst) >= PAID_AFTER_KILL)
        },
    );
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("paying client");
    }
    let problems = problems.lock().unwrap().clone();
    assert!(problems.is_empty(), "{problems:?}");
    // The survivors still serve after all that.
    for addr in &hosts[1..] {
        Client::new(*addr).get("/healthz").expect(200, "");
    }

    // Every acknowledged payment is in the database, as answered, its ticket paid.
    let paid = paid.lock().unwrap().clone();
    for p in &paid {
        assert_eq!(p.amount, PRICE);
        let rows = sql
            .query(
                "SELECT p.user_id, p.ticket_id, p.amount, t.status
                 FROM payments p JOIN tickets t ON t.id = p.ticket_id WHERE p.id = $1",
                &[&p.id],
            )
            .unwrap();
        assert_eq!(rows.len(), 1, "acknowledged payment {p:?} is missing");
        let r = &rows[0];
        assert_eq!(
            (
                r.get::<_, String>(0),
                r.get::<_, i64>(1),
                r.get::<_, i64>(2),
                r.get::<_, String>(3)
            ),
            (p.user.clone(), p.ticket, p.amount, "paid".to_string()),
            "payment {p:?}"
        );
    }
    let before = paid.iter().filter(|p| !p.after_kill).count();
    assert!(paid.iter().filter(|p| p.after_kill).all(|p| p.host != 0));
    (before, paid.len() - before)
}
