//! The soak: the booking journey started at a steady rate for a long time against one server,
//! with one row of figures a minute — what the clients saw (journeys, requests, errors,
//! latency) and what the server holds (resident memory, descriptors, threads). A leak shows as a
//! column that keeps growing while the load stays the same.
//!
//! Each journey is a new user: `POST /token`, polls until active, lists concerts, dates and
//! seats, holds a free seat (another on `409`), charges its price, pays and cancels (all three
//! with an `Idempotency-Key`), then reads its point history. Cancelling puts the seat back on
//! sale, so a small catalog lasts for hours.

use crate::stats::{num, Latencies, Table};
use crate::target::Target;
use anyhow::{bail, Context};
use booking::client::{Client, Response};
use booking::{parse_duration, Booking, Config};
use rand::seq::{IndexedRandom, SliceRandom};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What `soak` takes.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The server's base URL; loopback addresses only.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The server's process id: its memory, descriptors and threads are read from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// Journeys started per second.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// How long, in minutes.
    #[arg(long, default_value_t = 30)]
    minutes: u32,
    /// Client threads (each journey runs on one; journeys start late when all are busy).
    #[arg(long, default_value_t = 64)]
    workers: usize,
    /// A request slower than this is an error.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Pause between polls of a waiting user.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    poll_interval: Duration,
    /// The server's database: `verify` runs on it at the end.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Seconds per row (a "minute"; shorter only for this tool's own tests).
    #[arg(long, default_value_t = 60, hide = true)]
    row_secs: u64,
}

/// What the clients saw in one minute (requests by the minute they finished in).
#[derive(Default, Clone)]
struct Minute {
    journeys: u64,
    no_seat: u64,
    /// Journeys that started more than a second behind their schedule.
    late: u64,
    requests: u64,
    errors: u64,
    lat: Latencies,
}

/// The server's figures at one instant.
#[derive(Debug, Clone, Copy, Default)]
struct Proc {
    rss_kib: u64,
    anon_kib: u64,
    fds: u64,
    threads: u64,
}

fn sample(pid: u32) -> anyhow::Result<Proc> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status (is the server running?)"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("cannot list /proc/{pid}/fd"))?
        .count() as u64;
    Ok(Proc {
        rss_kib: field("VmRSS:"),
        anon_kib: field("RssAnon:"),
        fds,
        threads: field("Threads:"),
    })
}

struct Shared<'a> {
    args: &'a Args,
    url: String,
    start: Instant,
    end: Instant,
    next: AtomicU64,
    minutes: Mutex<Vec<Minute>>,
    errors: Mutex<Vec<String>>,
}

impl Shared<'_> {
    fn minute_of(&self, t: Instant) -> usize {
        (t.saturating_duration_since(self.start).as_secs() / self.args.row_secs) as usize
    }

    fn with_minute(&self, t: Instant, f: impl FnOnce(&mut Minute)) {
        let m = self.minute_of(t);
        let mut all = self.minutes.lock().unwrap();
        if all.len() <= m {
            all.resize(m + 1, Minute::default());
        }
        f(&mut all[m]);
    }

    fn error(&self, what: String) {
        self.with_minute(Instant::now(), |m| m.errors += 1);
        let mut e = self.errors.lock().unwrap();
        if e.len() < 20 && !e.contains(&what) {
            e.push(what);
        }
    }
}

/// Runs the soak; true when there was no error and (with `--db`) `verify` is clean.
pub fn run(args: Args) -> anyhow::Result<bool> {
    if !(args.rate > 0.0 && args.rate <= 10_000.0) {
        bail!("--rate is journeys per second, above 0 and at most 10000");
    }
    if args.minutes == 0 || args.workers == 0 || args.row_secs == 0 {
        bail!("--minutes and --workers must be at least 1");
    }
    let target = Target::parse(&args.url)?;
    if let Some(pid) = args.pid {
        sample(pid)?;
    }
    let start = Instant::now();
    let shared = Shared {
        args: &args,
        url: target.url.clone(),
        start,
        end: start + Duration::from_secs(u64::from(args.minutes) * args.row_secs),
        next: AtomicU64::new(0),
        minutes: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
    };
    println!(
        "soak: {} journeys/s for {} min against {} ({} client threads)",
        args.rate, args.minutes, args.url, args.workers
    );
    let mut table = Table::new(&[
        "minute", "journeys", "requests", "errors", "p50 ms", "p99 ms", "max ms", "RSS MiB",
        "anon MiB", "fds", "threads",
    ]);
    let mut samples = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..args.workers {
            s.spawn(|| worker(&shared));
        }
        // One row a minute: the clients' figures of the minute that just ended, and the
        // server's as it ends.
        for m in 1..=args.minutes {
            let at = start + Duration::from_secs(u64::from(m) * args.row_secs);
            // The server is read a moment before the minute ends: at the end of the last
            // one the clients close their connections.
            let read_at = at - Duration::from_millis(200);
            std::thread::sleep(read_at.saturating_duration_since(Instant::now()));
            let p = args.pid.map(sample).transpose().unwrap_or_else(|e| {
                shared.error(format!("{e:#}"));
                None
            });
            samples.push(p);
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            let minute = shared
                .minutes
                .lock()
                .unwrap()
                .get(m as usize - 1)
                .cloned()
                .unwrap_or_default();
            let mib = |kib: u64| num(kib as f64 / 1024.0);
            let row = vec![
                m.to_string(),
                minute.journeys.to_string(),
                minute.requests.to_string(),
                minute.errors.to_string(),
                num(minute.lat.quantile_us(0.50) / 1000.0),
                num(minute.lat.quantile_us(0.99) / 1000.0),
                num(minute.lat.quantile_us(1.0) / 1000.0),
                p.map(|p| mib(p.rss_kib)).unwrap_or_default(),
                p.map(|p| mib(p.anon_kib)).unwrap_or_default(),
                p.map(|p| p.fds.to_string()).unwrap_or_default(),
                p.map(|p| p.threads.to_string()).unwrap_or_default(),
            ];
            // Printed as it comes (a long run shows its progress), then as one table.
            println!("{}", row.join("\t"));
            table.row(row);
        }
    });
    let minutes = shared.minutes.lock().unwrap().clone();
    let total = minutes.iter().fold(Minute::default(), |mut t, m| {
        t.journeys += m.journeys;
        t.no_seat += m.no_seat;
        t.late += m.late;
        t.requests += m.requests;
        t.errors += m.errors;
        t.lat.merge(&m.lat);
        t
    });
    println!("\n{table}");
    println!(
        "journeys {} ({} found no seat, {} started over 1 s late), requests {}, errors {}; \
         p50 {} ms, p99 {} ms, max {} ms over the whole run",
        total.journeys,
        total.no_seat,
        total.late,
        total.requests,
        total.errors,
        num(total.lat.quantile_us(0.50) / 1000.0),
        num(total.lat.quantile_us(0.99) / 1000.0),
        num(total.lat.quantile_us(1.0) / 1000.0),
    );
    if let (Some(Some(first)), Some(Some(last))) = (samples.first(), samples.last()) {
        println!(
            "server from minute 1 to {}: RSS {:.1} -> {:.1} MiB (anonymous {:.1} -> {:.1}), \
             descriptors {} -> {}, threads {} -> {}",
            samples.len(),
            first.rss_kib as f64 / 1024.0,
            last.rss_kib as f64 / 1024.0,
            first.anon_kib as f64 / 1024.0,
            last.anon_kib as f64 / 1024.0,
            first.fds,
            last.fds,
            first.threads,
            last.threads
        );
    }
    for e in shared.errors.lock().unwrap().iter() {
        println!("  error: {e}");
    }
    let mut ok = total.errors == 0;
    if let Some(db) = &args.db {
        // A fixed secret: opening writes nothing and issues no token.
        let cfg = Config::default().with_jwt_secret(b"booking-chaos checks only".to_vec());
        let b = Booking::open(db, cfg).with_context(|| format!("cannot open {}", db.display()))?;
        let report = b.operator().verify()?;
        println!("verify: {}", if report.ok { "ok" } else { "VIOLATIONS" });
        for v in &report.violations {
            println!("  violation {}: {}", v.invariant, v.detail);
        }
        ok &= report.ok;
    }
    println!("result: {}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}

/// Takes the next journey's slot, waits for its time, runs it; until the end.
fn worker(shared: &Shared) {
    let client = Client::builder(&shared.url)
        .timeout(Some(shared.args.timeout))
        .connect_timeout(Some(shared.args.timeout))
        .build();
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let due = shared.start + Duration::from_secs_f64(i as f64 / shared.args.rate);
        if due >= shared.end {
            // Connected until the end, so the last minute's figures see every client.
            std::thread::sleep(shared.end.saturating_duration_since(Instant::now()));
            return;
        }
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let late = Instant::now().saturating_duration_since(due) > Duration::from_secs(1);
        let mut j = Journey {
            shared,
            client: &client,
        };
        let found_seat = j.run();
        shared.with_minute(Instant::now(), |m| {
            m.journeys += 1;
            m.late += u64::from(late);
            m.no_seat += u64::from(found_seat == Ok(false));
        });
    }
}

struct Journey<'a, 'b> {
    shared: &'a Shared<'b>,
    client: &'a Client,
}

/// A journey stopped by an unexpected answer (counted as an error).
#[derive(Debug, PartialEq, Eq)]
struct Stopped;

impl Journey<'_, '_> {
    /// One journey: `Ok(true)` when it paid and cancelled, `Ok(false)` when no seat was free.
    fn run(&mut self) -> Result<bool, Stopped> {
        let anon = self.client;
        let entered = self.expect("POST /token", 201, || anon.post_json("/token", &json!({})))?;
        let token = entered["token"].as_str().unwrap_or_default().to_string();
        let me = self.client.with_token(token);
        let mut status = entered["status"].as_str().unwrap_or_default().to_string();
        let give_up = Instant::now() + Duration::from_secs(120);
        while status != "active" {
            if status != "waiting" || Instant::now() > give_up {
                self.shared
                    .error(format!("never admitted (status {status:?})"));
                return Err(Stopped);
            }
            std::thread::sleep(self.shared.args.poll_interval);
            status = self.expect("GET /token", 200, || me.get("/token"))?["status"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
        let concerts = self.expect("GET /concerts", 200, || me.get("/concerts"))?;
        let Some(concert) = pick(&concerts, |_| true) else {
            self.shared.error("no concerts".into());
            return Err(Stopped);
        };
        let path = format!("/concerts/{concert}");
        let dates = self.expect("GET /concerts/{id}", 200, || me.get(&path))?;
        let Some(showtime) = pick(&dates, |d| d["available_seats"].as_i64() > Some(0)) else {
            return Ok(false);
        };
        let path = format!("/concerts/{concert}:{showtime}");
        let seats = self.expect("GET /concerts/{id}:{id}", 200, || me.get(&path))?;
        let mut free: Vec<i64> = seats
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["status"] == "available")
            .filter_map(|s| s["id"].as_i64())
            .collect();
        free.shuffle(&mut rand::rng());
        let mut ticket = None;
        for seat in free.into_iter().take(4) {
            let body = json!({"showtime_id": showtime, "seat_id": seat});
            let r = self.send("POST /tickets", || me.post_json("/tickets", &body))?;
            match r.status {
                201 => {
                    ticket = Some(self.body("POST /tickets", &r)?);
                    break;
                }
                409 => {}
                _ => return self.unexpected("POST /tickets", &r),
            }
        }
        let Some(ticket) = ticket else {
            return Ok(false);
        };
        let (id, price) = (ticket["id"].as_i64(), ticket["price"].as_i64());
        let (Some(id), Some(price)) = (id, price) else {
            self.shared
                .error(format!("POST /tickets: no id or price in {ticket}"));
            return Err(Stopped);
        };
        let key = || uuid::Uuid::new_v4().to_string();
        let (k1, k2, k3) = (key(), key(), key());
        let body = json!({ "amount": price });
        self.expect("POST /points", 200, || {
            me.post_json_with_key("/points", &body, &k1)
        })?;
        let body = json!({ "ticket_id": id });
        self.expect("POST /payments", 201, || {
            me.post_json_with_key("/payments", &body, &k2)
        })?;
        let cancel = format!("/tickets/{id}/cancel");
        self.expect("POST /tickets/{id}/cancel", 200, || {
            me.post_json_with_key(&cancel, &json!({}), &k3)
        })?;
        self.expect("GET /point_history", 200, || me.get("/point_history"))?;
        Ok(true)
    }

    /// Sends one request, recording its latency in the minute it finished.
    fn send(
        &mut self,
        what: &str,
        f: impl FnOnce() -> Result<Response, booking::client::Error>,
    ) -> Result<Response, Stopped> {
        let t0 = Instant::now();
        let r = f();
        let done = Instant::now();
        self.shared.with_minute(done, |m| {
            m.requests += 1;
            m.lat.record(done - t0);
        });
        r.map_err(|e| {
            self.shared.error(format!("{what}: {e}"));
            Stopped
        })
    }

    fn expect(
        &mut self,
        what: &str,
        want: u16,
        f: impl FnOnce() -> Result<Response, booking::client::Error>,
    ) -> Result<Value, Stopped> {
        let r = self.send(what, f)?;
        if r.status != want {
            return self.unexpected(what, &r);
        }
        self.body(what, &r)
    }

    fn body(&mut self, what: &str, r: &Response) -> Result<Value, Stopped> {
        r.json().map_err(|e| {
            self.shared
                .error(format!("{what}: status {} and no JSON ({e})", r.status));
            Stopped
        })
    }

    fn unexpected<T>(&mut self, what: &str, r: &Response) -> Result<T, Stopped> {
        let body = String::from_utf8_lossy(&r.body[..r.body.len().min(200)]).into_owned();
        self.shared
            .error(format!("{what}: status {} {body}", r.status));
        Err(Stopped)
    }
}

/// The `id` of a random element of a JSON array that passes `keep`.
fn pick(list: &Value, keep: impl Fn(&Value) -> bool) -> Option<i64> {
    let ids: Vec<i64> = list
        .as_array()?
        .iter()
        .filter(|x| keep(x))
        .filter_map(|x| x["id"].as_i64())
        .collect();
    ids.choose(&mut rand::rng()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use booking::http::{serve_with, Options};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn a_short_soak_against_a_real_server_passes_and_reads_its_figures() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("soak.db");
        let b = Booking::open(&db, Config::default()).unwrap();
        b.operator().seed_demo_if_empty().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let (b, stop) = (Arc::new(b), stop.clone());
            let options = Options {
                threads: 4,
                sweep_every: None,
                ..Options::default()
            };
            std::thread::spawn(move || serve_with(listener, b, stop, options).unwrap())
        };
        let args = Args {
            url,
            // The server runs in this process: its figures are this process's.
            pid: Some(std::process::id()),
            rate: 10.0,
            minutes: 2,
            workers: 4,
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(20),
            db: Some(db),
            row_secs: 1,
        };
        assert!(run(args).unwrap());
        stop.store(true, Ordering::SeqCst);
        server.join().unwrap();
    }

    #[test]
    fn process_figures_come_from_proc() {
        let p = sample(std::process::id()).unwrap();
        assert!(p.rss_kib > 0 && p.fds > 0 && p.threads > 0, "{p:?}");
        assert!(sample(u32::MAX).is_err());
    }
}
