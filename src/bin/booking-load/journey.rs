//! The journey: N virtual users, each on its own thread and keep-alive connection (its own
//! `booking::client::Client`), go through
//! the whole booking flow again and again until the time is up — POST /token, poll GET /token
//! until active, list concerts, dates and seats, hold a free seat (another one on 409),
//! charge the price, pay — and every request's latency and status is recorded per step.

use crate::stats::{num, Latencies, Table};
use crate::target::Target;
use booking::client::{Client, Error as NoAnswer, Response};
use rand::seq::{IndexedRandom, SliceRandom};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a run is bounded and paced.
#[derive(Debug, Clone)]
pub struct Options {
    /// Virtual users (threads, connections).
    pub users: usize,
    /// No journey starts after this.
    pub duration: Duration,
    /// Pause between two polls of a waiting user.
    pub poll_interval: Duration,
    /// No journey starts after this many have started.
    pub max_journeys: u64,
    /// A request slower than this fails.
    pub timeout: Duration,
}

/// The steps of a journey, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Token,
    Poll,
    Concerts,
    Showtimes,
    Seats,
    Hold,
    Charge,
    Pay,
}

const STEPS: [Step; 8] = [
    Step::Token,
    Step::Poll,
    Step::Concerts,
    Step::Showtimes,
    Step::Seats,
    Step::Hold,
    Step::Charge,
    Step::Pay,
];

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Token => "POST /token",
            Step::Poll => "GET /token",
            Step::Concerts => "GET /concerts",
            Step::Showtimes => "GET /concerts/{id}",
            Step::Seats => "GET /concerts/{id}:{id}",
            Step::Hold => "POST /tickets",
            Step::Charge => "POST /points",
            Step::Pay => "POST /payments",
        }
    }
}

/// Figures of one step.
#[derive(Default, Clone)]
pub struct StepStats {
    /// Latency of every request of this step.
    pub lat: Latencies,
    /// Requests answered with the step's success status.
    pub ok: u64,
    /// Requests answered 409 where a 409 is an expected outcome (a hold lost to another user).
    pub conflicts: u64,
    /// Anything else: other statuses, transport errors, timeouts, malformed bodies.
    pub errors: u64,
}

/// What a run measured.
#[derive(Clone)]
pub struct Report {
    /// Per step, in [`STEPS`] order.
    pub steps: Vec<StepStats>,
    /// Journeys started.
    pub journeys: u64,
    /// Payments answered 201.
    pub paid: u64,
    /// Journeys that found no seat to hold after several tries.
    pub no_seat: u64,
    /// The first few distinct errors.
    pub errors: Vec<String>,
    /// From the start to the last user's end.
    pub elapsed: Duration,
}

impl Report {
    fn new() -> Report {
        Report {
            steps: vec![StepStats::default(); STEPS.len()],
            journeys: 0,
            paid: 0,
            no_seat: 0,
            errors: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    fn merge(&mut self, other: &Report) {
        for (a, b) in self.steps.iter_mut().zip(&other.steps) {
            a.lat.merge(&b.lat);
            a.ok += b.ok;
            a.conflicts += b.conflicts;
            a.errors += b.errors;
        }
        self.journeys += other.journeys;
        self.paid += other.paid;
        self.no_seat += other.no_seat;
        for e in &other.errors {
            if self.errors.len() < 10 && !self.errors.contains(e) {
                self.errors.push(e.clone());
            }
        }
    }

    /// Errors over all steps (expected 409s excluded).
    pub fn error_count(&self) -> u64 {
        self.steps.iter().map(|s| s.errors).sum()
    }

    /// Latency of every request of every step.
    pub fn all(&self) -> Latencies {
        let mut all = Latencies::default();
        for s in &self.steps {
            all.merge(&s.lat);
        }
        all
    }

    /// The per-step table (milliseconds).
    pub fn table(&self) -> Table {
        let mut t = Table::new(&[
            "step", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "ok", "409", "errors",
        ]);
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut row = |name: &str, lat: &Latencies, ok: u64, conflicts: u64, errors: u64| {
            t.row(vec![
                name.to_string(),
                lat.count().to_string(),
                num(lat.count() as f64 / secs),
                num(lat.quantile_us(0.50) / 1000.0),
                num(lat.quantile_us(0.99) / 1000.0),
                num(lat.quantile_us(1.0) / 1000.0),
                ok.to_string(),
                conflicts.to_string(),
                errors.to_string(),
            ]);
        };
        for (step, s) in STEPS.iter().zip(&self.steps) {
            row(step.name(), &s.lat, s.ok, s.conflicts, s.errors);
        }
        let sum = |f: fn(&StepStats) -> u64| self.steps.iter().map(f).sum::<u64>();
        row(
            "all requests",
            &self.all(),
            sum(|s| s.ok),
            sum(|s| s.conflicts),
            sum(|s| s.errors),
        );
        t
    }
}

/// Runs the journey with `opts.users` virtual users against `target`.
pub fn run(target: &Target, opts: &Options) -> Report {
    let total = Mutex::new(Report::new());
    let started = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + opts.duration;
    std::thread::scope(|s| {
        for _ in 0..opts.users {
            s.spawn(|| {
                let mut user = User {
                    client: Client::builder(&target.url)
                        .timeout(Some(opts.timeout))
                        .connect_timeout(Some(opts.timeout))
                        .build(),
                    report: Report::new(),
                    opts,
                    // A journey that started keeps polling at most this long for admission.
                    give_up: deadline + opts.timeout,
                };
                while Instant::now() < deadline
                    && started.fetch_add(1, Ordering::Relaxed) < opts.max_journeys
                {
                    user.report.journeys += 1;
                    match user.journey() {
                        Ok(true) => user.report.paid += 1,
                        Ok(false) => user.report.no_seat += 1,
                        Err(Abandoned) => {}
                    }
                }
                total.lock().unwrap().merge(&user.report);
            });
        }
    });
    let mut report = total.into_inner().unwrap();
    report.elapsed = start.elapsed();
    report
}

/// A journey stopped by an unexpected answer (already counted as an error).
struct Abandoned;

struct User<'a> {
    client: Client,
    report: Report,
    opts: &'a Options,
    give_up: Instant,
}

impl User<'_> {
    /// One whole journey; `Ok(true)` when it paid, `Ok(false)` when no seat could be held.
    fn journey(&mut self) -> Result<bool, Abandoned> {
        let anon = self.client.clone();
        let entered = self.call(Step::Token, || anon.post_json("/token", &json!({})), 201)?;
        let token = self.field(Step::Token, &entered, "token")?;
        let me = self.client.with_token(token.as_str().unwrap_or_default());
        let mut status = entered["status"].as_str().unwrap_or_default().to_string();
        while status != "active" {
            if status != "waiting" || Instant::now() > self.give_up {
                return self.fail(Step::Poll, format!("never admitted (status {status:?})"));
            }
            std::thread::sleep(self.opts.poll_interval);
            let polled = self.call(Step::Poll, || me.get("/token"), 200)?;
            status = polled["status"].as_str().unwrap_or_default().to_string();
        }
        let Some(ticket) = self.hold_some_seat(&me)? else {
            return Ok(false);
        };
        let price = self.field(Step::Hold, &ticket, "price")?;
        let id = self.field(Step::Hold, &ticket, "id")?;
        let key = uuid::Uuid::new_v4().to_string();
        let body = json!({ "amount": price });
        self.call(
            Step::Charge,
            || me.post_json_with_key("/points", &body, &key),
            200,
        )?;
        let key = uuid::Uuid::new_v4().to_string();
        let body = json!({ "ticket_id": id });
        self.call(
            Step::Pay,
            || me.post_json_with_key("/payments", &body, &key),
            201,
        )?;
        Ok(true)
    }

    /// Picks a concert, a date with seats left and a free seat at random, and holds it; on a
    /// 409 tries other free seats of the same listing, then lists again (a few rounds).
    fn hold_some_seat(&mut self, me: &Client) -> Result<Option<Value>, Abandoned> {
        let concerts = self.call(Step::Concerts, || me.get("/concerts"), 200)?;
        let concerts = ids(&concerts, |_| true);
        for _ in 0..5 {
            let Some(&concert) = concerts.choose(&mut rand::rng()) else {
                return self.fail(Step::Concerts, "no concerts".into());
            };
            let path = format!("/concerts/{concert}");
            let dates = self.call(Step::Showtimes, || me.get(&path), 200)?;
            let dates = ids(&dates, |d| d["available_seats"].as_i64().unwrap_or(0) > 0);
            let Some(&showtime) = dates.choose(&mut rand::rng()) else {
                continue;
            };
            let path = format!("/concerts/{concert}:{showtime}");
            let seats = self.call(Step::Seats, || me.get(&path), 200)?;
            let mut free = ids(&seats, |s| s["status"] == "available");
            free.shuffle(&mut rand::rng());
            for seat in free.into_iter().take(4) {
                let body = json!({ "showtime_id": showtime, "seat_id": seat });
                let held = self.request(Step::Hold, || me.post_json("/tickets", &body))?;
                match held.status {
                    201 => {
                        self.report.steps[Step::Hold as usize].ok += 1;
                        return self.parse(Step::Hold, &held).map(Some);
                    }
                    409 => self.report.steps[Step::Hold as usize].conflicts += 1,
                    _ => return self.unexpected(Step::Hold, &held),
                }
            }
        }
        Ok(None)
    }

    /// Sends a request expecting `want`; anything else is an error that abandons the journey.
    fn call(
        &mut self,
        step: Step,
        send: impl FnOnce() -> Result<Response, NoAnswer>,
        want: u16,
    ) -> Result<Value, Abandoned> {
        let r = self.request(step, send)?;
        if r.status != want {
            return self.unexpected(step, &r);
        }
        self.report.steps[step as usize].ok += 1;
        self.parse(step, &r)
    }

    /// Sends a request and records its latency; a request that got no answer is an error.
    fn request(
        &mut self,
        step: Step,
        send: impl FnOnce() -> Result<Response, NoAnswer>,
    ) -> Result<Response, Abandoned> {
        let t0 = Instant::now();
        let r = send();
        self.report.steps[step as usize].lat.record(t0.elapsed());
        r.or_else(|e| {
            let what = if e.is_timeout() {
                format!("no answer within {:?}", self.opts.timeout)
            } else {
                e.to_string()
            };
            self.fail(step, format!("{}: {what}", step.name()))
        })
    }

    fn parse(&mut self, step: Step, r: &Response) -> Result<Value, Abandoned> {
        r.json().or_else(|e| {
            let body = String::from_utf8_lossy(&r.body[..r.body.len().min(200)]).into_owned();
            self.fail(
                step,
                format!(
                    "{}: status {} with a body that is not JSON ({e}): {body:?}",
                    step.name(),
                    r.status
                ),
            )
        })
    }

    fn field(&mut self, step: Step, v: &Value, name: &str) -> Result<Value, Abandoned> {
        match v.get(name) {
            Some(x) if !x.is_null() => Ok(x.clone()),
            _ => self.fail(step, format!("{}: no {name:?} in {v}", step.name())),
        }
    }

    fn unexpected<T>(&mut self, step: Step, r: &Response) -> Result<T, Abandoned> {
        let body = String::from_utf8_lossy(&r.body[..r.body.len().min(200)]).into_owned();
        self.fail(step, format!("{}: status {} {body}", step.name(), r.status))
    }

    fn fail<T>(&mut self, step: Step, what: String) -> Result<T, Abandoned> {
        self.report.steps[step as usize].errors += 1;
        if self.report.errors.len() < 10 && !self.report.errors.contains(&what) {
            self.report.errors.push(what);
        }
        Err(Abandoned)
    }
}

/// The `id`s of the objects of a JSON array that pass `keep`.
fn ids(list: &Value, keep: impl Fn(&Value) -> bool) -> Vec<i64> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter(|x| keep(x))
                .filter_map(|x| x["id"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Fake;

    fn opts(users: usize, max_journeys: u64) -> Options {
        Options {
            users,
            duration: Duration::from_secs(2),
            poll_interval: Duration::from_millis(2),
            max_journeys,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn journeys_against_a_fake_server_pay_for_exactly_the_seats_sold() {
        let fake = Fake::start(40, 5);
        let target = Target::parse(&format!("http://{}", fake.addr)).unwrap();
        let report = run(&target, &opts(4, 60));
        assert_eq!(report.error_count(), 0, "{:?}", report.errors);
        assert_eq!(report.journeys, 60);
        assert_eq!(report.paid, fake.sold());
        assert_eq!(
            report.paid, 40,
            "every seat is sold before journeys run out"
        );
        assert_eq!(report.no_seat, 20);
        for (step, s) in STEPS.iter().zip(&report.steps) {
            assert!(s.lat.count() > 0, "{step:?} never ran");
        }
        assert!(report.table().to_string().contains("POST /payments"));
    }

    #[test]
    fn a_server_that_is_not_there_gives_errors_not_a_hang() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap(); // the listener is dropped: nothing listens there any more
        let target = Target::parse(&format!("http://{addr}")).unwrap();
        let report = run(&target, &opts(2, 6));
        assert_eq!(report.journeys, 6);
        assert_eq!(report.steps[Step::Token as usize].errors, 6);
        assert_eq!(report.paid, 0);
        assert!(!report.errors.is_empty());
    }
}
