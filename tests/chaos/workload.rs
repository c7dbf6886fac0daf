//! The workload: client threads making random journeys through every operation of the
//! contract, over a catalog small enough that they fight over seats, each request to a random
//! server, and now and then several requests of one user at once. Every request goes into the
//! history with its answer, or as unknown.
//!
//! A client keeps a rough picture of its user (tickets held and paid, keys used) from the
//! answers only to choose sensible requests; nothing here decides what is right — the checker
//! does, from the history.

use super::cluster::Cluster;
use super::history::{now_us, token_entry, Op, Outcome, Record, Recorder};
use booking::client::Client;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The seats of the run: per showtime, its seat ids.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub concert: i64,
    pub showtimes: Vec<(i64, Vec<i64>)>,
    /// How long one showtime is the one most clients want, before the next (so a long run
    /// does not sell everything out and go quiet).
    pub hot_for: Duration,
}

/// One client thread's context.
pub struct Clients<'a> {
    pub cluster: &'a Cluster,
    pub recorder: &'a Recorder,
    pub catalog: &'a Catalog,
    pub started: Instant,
    pub deadline: Instant,
    /// How long a request may take before it is recorded as unknown (one client in three
    /// waits longer than the servers' busy timeout, and so sees their `503 busy`).
    pub timeout: Duration,
    /// Each client's connections, by server URL.
    agents: Mutex<HashMap<(usize, String), Client>>,
}

/// A user, as far as this client's answers tell.
#[derive(Debug, Clone)]
struct Me {
    user: String,
    token: String,
    entry: Option<i64>,
    /// Held tickets: (id, price).
    held: Vec<(i64, i64)>,
    /// Paid tickets: (id, price).
    paid: Vec<(i64, i64)>,
    /// Requests sent with a key, to repeat.
    keyed: Vec<Op>,
    /// Whether one of its payments was answered (its turn is over).
    turn_over: bool,
}

fn key(rng: &mut StdRng) -> String {
    format!("k-{:016x}", rng.random::<u64>())
}

impl<'a> Clients<'a> {
    pub fn new(
        cluster: &'a Cluster,
        recorder: &'a Recorder,
        catalog: &'a Catalog,
        deadline: Instant,
        timeout: Duration,
    ) -> Clients<'a> {
        Clients {
            cluster,
            recorder,
            catalog,
            started: Instant::now(),
            deadline,
            timeout,
            agents: Mutex::new(HashMap::new()),
        }
    }

    /// One client thread: journeys until the deadline; returns the tokens it got, by user.
    pub fn run(&self, client: usize, rng: &mut StdRng) -> Vec<(String, String)> {
        let mut users: Vec<(String, String)> = Vec::new();
        while Instant::now() < self.deadline {
            if let Some(me) = self.journey(client, rng, &users) {
                users.retain(|(u, _)| *u != me.user);
                users.push((me.user, me.token));
            }
        }
        users
    }

    /// Sends one request to a random server and records it.
    fn call(&self, client: usize, me: Option<&Me>, op: Op, rng: &mut StdRng) -> Record {
        let (server, url) = match self.cluster.pick(rng) {
            Some(s) => s,
            None => ("none".into(), "http://127.0.0.1:9".into()),
        };
        let agent = self
            .agents
            .lock()
            .unwrap()
            .entry((client, url.clone()))
            .or_insert_with(|| {
                let patient = client % 3 == 2;
                Client::builder(url.as_str())
                    .timeout(Some(if patient {
                        Duration::from_secs(8)
                    } else {
                        self.timeout
                    }))
                    .connect_timeout(Some(Duration::from_secs(1)))
                    .build()
            })
            .clone();
        let c = match me {
            Some(me) => agent.with_token(me.token.as_str()),
            None => agent,
        };
        let (method, path, body) = request(&op);
        let key = op.key().map(str::to_string);
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(k) = &key {
            headers.push(("Idempotency-Key", k));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let invoke = now_us();
        let answer = c.send(method, &path, &headers, body.as_bytes());
        let complete = now_us();
        let outcome = match answer {
            Ok(r) if r.is_success() => Outcome::Ok {
                status: r.status,
                body: r.json().unwrap_or_else(|_| Value::String(r.text())),
            },
            Ok(r) => Outcome::Fail {
                status: r.status,
                code: r.error_code().unwrap_or_else(|| r.text()),
            },
            Err(e) => Outcome::Unknown {
                why: e.kind().to_string(),
            },
        };
        let mut r = Record {
            id: 0,
            client,
            user: me.map(|m| m.user.clone()),
            entry: me.and_then(|m| m.entry),
            server,
            op,
            invoke,
            complete,
            outcome,
        };
        r.id = self.recorder.push(r.clone());
        r
    }

    /// Several requests of one user at once (each on its own thread, each to a random server).
    fn burst(&self, client: usize, me: &Me, ops: Vec<Op>, rng: &mut StdRng) -> Vec<Record> {
        let seeds: Vec<u64> = ops.iter().map(|_| rng.random()).collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = ops
                .into_iter()
                .zip(seeds)
                .map(|(op, seed)| {
                    s.spawn(move || {
                        let mut rng = rand::SeedableRng::seed_from_u64(seed);
                        self.call(client, Some(me), op, &mut rng)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    /// One journey: enter (a new user, or one of this client's earlier ones again), wait for
    /// admission, then a random run of steps. Returns the user if it got a token.
    fn journey(&self, client: usize, rng: &mut StdRng, earlier: &[(String, String)]) -> Option<Me> {
        let again = if rng.random_bool(0.3) {
            earlier.choose(rng).map(|(u, _)| u.clone())
        } else {
            None
        };
        let r = self.call(client, None, Op::Enter { user: again }, rng);
        let Some(body) = r.ok() else {
            std::thread::sleep(Duration::from_millis(50));
            return None;
        };
        let token = body["token"].as_str()?.to_string();
        let mut me = Me {
            user: body["user_id"].as_str()?.to_string(),
            entry: token_entry(&token),
            token,
            held: Vec::new(),
            paid: Vec::new(),
            keyed: Vec::new(),
            turn_over: false,
        };
        let mut status = body["status"].as_str().unwrap_or_default().to_string();
        let give_up = Instant::now() + Duration::from_secs(8);
        while status != "active" {
            if status == "expired" || Instant::now() > give_up.min(self.deadline) {
                return Some(me);
            }
            std::thread::sleep(Duration::from_millis(150));
            if let Some(b) = self.call(client, Some(&me), Op::Poll, rng).ok() {
                status = b["status"].as_str().unwrap_or_default().to_string();
            }
        }
        if rng.random_bool(0.3) {
            let c = self.catalog.concert;
            let (st, _) = self.showtime(rng);
            for path in [
                "/concerts".to_string(),
                format!("/concerts/{c}"),
                format!("/concerts/{c}:{st}"),
            ] {
                self.call(client, Some(&me), Op::Catalog { path }, rng);
            }
        }
        for _ in 0..rng.random_range(3..=10) {
            if Instant::now() >= self.deadline {
                break;
            }
            self.step(client, &mut me, rng);
        }
        Some(me)
    }

    /// The showtime most clients want now (sometimes the next one), and its seats.
    fn showtime(&self, rng: &mut StdRng) -> (i64, Vec<i64>) {
        let n = self.catalog.showtimes.len();
        let hot =
            (self.started.elapsed().as_secs_f64() / self.catalog.hot_for.as_secs_f64()) as usize;
        let i = (hot + usize::from(rng.random_bool(0.25))) % n;
        self.catalog.showtimes[i].clone()
    }

    /// A hold request of 1–3 seats of the hot showtime.
    fn hold_op(&self, rng: &mut StdRng) -> Op {
        let (showtime, seats) = self.showtime(rng);
        let k = if rng.random_bool(0.6) {
            1
        } else {
            rng.random_range(2..=3)
        };
        let seats: Vec<i64> = seats.choose_multiple(rng, k).copied().collect();
        Op::Hold {
            showtime,
            many: k > 1 || rng.random_bool(0.3),
            seats,
        }
    }

    fn pay_op(&self, me: &Me, rng: &mut StdRng) -> Option<Op> {
        if me.held.is_empty() {
            return None;
        }
        let n = rng.random_range(1..=me.held.len().min(3));
        let tickets: Vec<i64> = me.held.choose_multiple(rng, n).map(|t| t.0).collect();
        Some(Op::Pay {
            many: n > 1 || rng.random_bool(0.3),
            tickets,
            key: rng.random_bool(0.6).then(|| key(rng)),
        })
    }

    fn charge_op(&self, me: &Me, rng: &mut StdRng) -> Op {
        let owed: i64 = me.held.iter().map(|t| t.1).sum();
        Op::Charge {
            amount: owed + rng.random_range(1..=3_000),
            key: rng.random_bool(0.5).then(|| key(rng)),
        }
    }

    /// What the answers of `records` tell about `me`.
    fn learn(me: &mut Me, records: &[Record]) {
        for r in records {
            let Some(body) = r.ok() else { continue };
            match &r.op {
                Op::Hold { .. } => {
                    let list = match body {
                        Value::Array(a) => a.clone(),
                        one => vec![one.clone()],
                    };
                    for t in list {
                        if let (Some(id), Some(p)) = (t["id"].as_i64(), t["price"].as_i64()) {
                            me.held.push((id, p));
                        }
                    }
                }
                Op::Release { ticket } => me.held.retain(|t| t.0 != *ticket),
                Op::Pay { tickets, .. } => {
                    me.turn_over = true;
                    for id in tickets {
                        if let Some(i) = me.held.iter().position(|t| t.0 == *id) {
                            let t = me.held.remove(i);
                            me.paid.push(t);
                        }
                    }
                }
                Op::Cancel { ticket, .. } => me.paid.retain(|t| t.0 != *ticket),
                _ => {}
            }
            if r.op.key().is_some() && !me.keyed.contains(&r.op) {
                me.keyed.push(r.op.clone());
            }
        }
    }

    /// One random step of a journey.
    fn step(&self, client: usize, me: &mut Me, rng: &mut StdRng) {
        let one = |op: Op, me: &mut Me, rng: &mut StdRng| {
            let r = self.call(client, Some(me), op, rng);
            Self::learn(me, std::slice::from_ref(&r));
            r
        };
        match rng.random_range(0..100) {
            // Holds, single and multi-seat.
            0..=19 => {
                let op = self.hold_op(rng);
                one(op, me, rng);
            }
            // Several requests of this user at once.
            20..=33 => {
                let ops = match rng.random_range(0..5) {
                    0 => vec![self.hold_op(rng), self.hold_op(rng)],
                    // A payment racing holds of the same user (the turn ends at the payment).
                    1 => match self.pay_op(me, rng) {
                        Some(pay) => vec![pay, self.hold_op(rng), self.hold_op(rng)],
                        None => vec![self.hold_op(rng), self.charge_op(me, rng)],
                    },
                    // One keyed charge sent twice at once.
                    2 => {
                        let op = Op::Charge {
                            amount: rng.random_range(1..=5_000),
                            key: Some(key(rng)),
                        };
                        vec![op.clone(), op]
                    }
                    // One payment sent twice at once, with or without a key.
                    3 => match self.pay_op(me, rng) {
                        Some(pay) => vec![pay.clone(), pay],
                        None => vec![self.charge_op(me, rng), self.hold_op(rng)],
                    },
                    // A cancellation twice at once, and a read.
                    _ => match me.paid.choose(rng) {
                        Some(t) => {
                            let op = Op::Cancel {
                                ticket: t.0,
                                key: rng.random_bool(0.5).then(|| key(rng)),
                            };
                            vec![
                                op.clone(),
                                op,
                                Op::Read {
                                    path: "/points".into(),
                                },
                            ]
                        }
                        None => vec![self.hold_op(rng), self.hold_op(rng)],
                    },
                };
                let records = self.burst(client, me, ops, rng);
                Self::learn(me, &records);
            }
            34..=41 => {
                if let Some(t) = me.held.choose(rng) {
                    one(Op::Extend { ticket: t.0 }, me, rng);
                }
            }
            42..=47 => {
                if let Some(t) = me.held.choose(rng) {
                    one(Op::Release { ticket: t.0 }, me, rng);
                }
            }
            48..=55 => {
                let op = self.charge_op(me, rng);
                one(op, me, rng);
            }
            56..=69 => {
                if let Some(op) = self.pay_op(me, rng) {
                    let r = one(op.clone(), me, rng);
                    // Short of points: top up, then the same request again (a failed request
                    // did not use up its key).
                    if matches!(&r.outcome, Outcome::Fail { code, .. } if code == "insufficient_points")
                    {
                        let top_up = self.charge_op(me, rng);
                        one(top_up, me, rng);
                        one(op, me, rng);
                    }
                }
            }
            70..=79 => {
                if let Some(t) = me.paid.choose(rng) {
                    let op = Op::Cancel {
                        ticket: t.0,
                        key: rng.random_bool(0.5).then(|| key(rng)),
                    };
                    one(op, me, rng);
                }
            }
            // A keyed request again: the same one (replays), or another under its key (422).
            80..=85 => {
                if let Some(op) = me.keyed.choose(rng).cloned() {
                    let op = if rng.random_bool(0.8) {
                        op
                    } else {
                        Op::Charge {
                            amount: rng.random_range(1..=999),
                            key: op.key().map(str::to_string),
                        }
                    };
                    one(op, me, rng);
                }
            }
            86..=91 => {
                let path = [
                    "/tickets",
                    "/points",
                    "/point_history",
                    "/payment_history",
                    "/token",
                ]
                .choose(rng)
                .unwrap()
                .to_string();
                one(Op::Read { path }, me, rng);
            }
            // Holding on after paying, with the same token: refused (the turn is over).
            92..=94 if me.turn_over => {
                let op = self.hold_op(rng);
                one(op, me, rng);
            }
            // A pause: holds lapse (the TTL is short).
            _ => std::thread::sleep(Duration::from_millis(rng.random_range(100..2_500))),
        }
    }
}

/// The HTTP request of an operation: method, path, JSON body.
fn request(op: &Op) -> (&'static str, String, Option<Value>) {
    match op {
        Op::Enter { user } => (
            "POST",
            "/token".into(),
            Some(match user {
                Some(u) => json!({ "user_id": u }),
                None => json!({}),
            }),
        ),
        Op::Poll => ("GET", "/token".into(), None),
        Op::Catalog { path } | Op::Read { path } => ("GET", path.clone(), None),
        Op::Hold {
            showtime,
            seats,
            many,
        } => (
            "POST",
            "/tickets".into(),
            Some(if *many {
                json!({"showtime_id": showtime, "seat_ids": seats})
            } else {
                json!({"showtime_id": showtime, "seat_id": seats[0]})
            }),
        ),
        Op::Release { ticket } => ("DELETE", format!("/tickets/{ticket}"), None),
        Op::Extend { ticket } => ("POST", format!("/tickets/{ticket}/extend"), None),
        Op::Charge { amount, .. } => ("POST", "/points".into(), Some(json!({ "amount": amount }))),
        Op::Pay { tickets, many, .. } => (
            "POST",
            "/payments".into(),
            Some(if *many {
                json!({ "ticket_ids": tickets })
            } else {
                json!({ "ticket_id": tickets[0] })
            }),
        ),
        Op::Cancel { ticket, .. } => ("POST", format!("/tickets/{ticket}/cancel"), None),
    }
}
