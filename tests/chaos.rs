//! The history-checked chaos test: several real `booking-server` processes on one database,
//! client threads making random journeys through every operation of the contract (several
//! requests of one user at once among them), and a nemesis that `kill -9`s and restarts
//! servers and `SIGSTOP`s them. Every request is recorded with when it was sent, when its
//! answer came and the answer — or "unknown" when none came. Then the servers are stopped, the
//! final state is read through the API and the library, and the checker (`tests/chaos/
//! checker.rs`) holds the history against it. Finally the checker proves itself: faults are
//! planted in copies of the run's history and database, and each must be caught.
//!
//! A short run is part of `cargo test`. Longer, by hand (see TESTING.md):
//!
//! ```text
//! BOOKING_CHAOS_SECS=600 cargo test --release --test chaos -- --nocapture
//! ```
//!
//! Knobs: `BOOKING_CHAOS_SECS` (default 15), `BOOKING_CHAOS_SERVERS` (2),
//! `BOOKING_CHAOS_CLIENTS` (10), `BOOKING_CHAOS_SEED` (random; printed). The history, the final
//! state and the violations of the last run are kept in `target/tmp/chaos-latest/`.

mod support;

mod chaos {
    pub mod checker;
    pub mod cluster;
    pub mod history;
    pub mod plant;
    pub mod state;
    pub mod workload;
}

use booking::{Booking, Config, NewShowtime, Points, PriceRange, Pricing};
use chaos::checker::{self, Policy};
use chaos::cluster::Cluster;
use chaos::history::{self, Op, Outcome, Recorder};
use chaos::state::{self, State};
use chaos::workload::{Catalog, Clients};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const HOLD_TTL: Duration = Duration::from_secs(2);
const SEATS: u32 = 20;

/// One concert; showtimes of 20 seats in three price sections, one more for each 8 s of run
/// (the clients want one showtime most for 8 s, then the next).
fn seed_catalog(db: &std::path::Path, secs: u64) -> Catalog {
    let b = Booking::open(db, Config::default()).expect("open");
    let op = b.operator();
    let concert = op.add_concert("Chaos", "Hall").unwrap();
    let sections = Pricing::Sections(
        [(1, 6, 3_000), (7, 13, 2_000), (14, 20, 1_000)]
            .into_iter()
            .map(|(from, to, price)| PriceRange {
                from,
                to,
                price: Points::new(price),
            })
            .collect(),
    );
    let n = 2 + secs / 8;
    let showtimes = (0..n)
        .map(|i| {
            let new = NewShowtime {
                sale_opens_at: None,
                starts_at: (b.now() + chrono::Duration::days(30 + i as i64)).fixed_offset(),
                seats: SEATS,
                price: sections.clone(),
            };
            let st = op.add_showtime(concert, &new, |_| {}).unwrap();
            let seats = op.seats(st).unwrap().iter().map(|s| s.id.get()).collect();
            (st.get(), seats)
        })
        .collect();
    Catalog {
        concert: concert.get(),
        showtimes,
        hot_for: Duration::from_secs(8),
    }
}

#[test]
fn a_history_under_crashes_and_pauses_checks_out() {
    let secs = knob("BOOKING_CHAOS_SECS", 15);
    let n_servers = knob("BOOKING_CHAOS_SERVERS", 2).max(1) as usize;
    let n_clients = knob("BOOKING_CHAOS_CLIENTS", 10).max(1) as usize;
    let seed = knob("BOOKING_CHAOS_SEED", rand::random::<u32>() as u64);
    let began = Instant::now();
    // What was checked is kept (the last run's only) for a look after a failure.
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos-latest");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).unwrap();
    eprintln!(
        "chaos: {secs} s, {n_servers} servers, {n_clients} clients, seed {seed}; files in {}",
        out_dir.display()
    );

    let (dir, db) = support::temp_db();
    let catalog = seed_catalog(&db, secs);
    // Holds lapse during the run (2 s); sessions end after 6 s, and more users come than
    // there are active slots, so some wait in line and poll. Servers differ in how they commit.
    let max_active = (5 * n_clients).to_string();
    let flags = (0..n_servers)
        .map(|i| {
            let mut f: Vec<String> = [
                "--hold-ttl",
                "2s",
                "--max-active",
                &max_active,
                "--active-ttl",
                "6s",
                "--max-hold-extensions",
                "2",
                "--threads",
                "4",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if i % 2 == 1 {
                f.push("--no-group-commit".into());
            }
            f
        })
        .collect();
    let cluster = Cluster::start(&db, flags);
    let recorder = Recorder::default();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let clients = Clients::new(
        &cluster,
        &recorder,
        &catalog,
        deadline,
        Duration::from_millis(1_500),
    );
    let tokens: BTreeMap<String, String> = std::thread::scope(|s| {
        let nemesis = s.spawn(|| {
            cluster.nemesis(deadline, &mut StdRng::seed_from_u64(seed));
        });
        let handles: Vec<_> = (0..n_clients)
            .map(|i| {
                let clients = &clients;
                s.spawn(move || clients.run(i, &mut StdRng::seed_from_u64(seed + 1 + i as u64)))
            })
            .collect();
        let tokens = handles
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect();
        nemesis.join().expect("nemesis");
        tokens
    });
    let ran_for = began.elapsed();

    // Quiesce: every server stopped cleanly; then one fresh server answers each user's reads.
    cluster.stop_all();
    let reader = Cluster::start(&db, vec![vec![]]);
    let api = state::read_api(&reader.url(0), &tokens);
    reader.stop_all();
    let history = recorder.take();
    let mut state = State::read(&db);
    state.api = api;

    let policy = Policy {
        hold_ttl_ms: HOLD_TTL.as_millis() as i64,
    };
    let violations = checker::check(&history, &state, &policy);

    // Keep what was checked.
    let lines: Vec<String> = history.iter().map(history::to_line).collect();
    std::fs::write(out_dir.join("history.jsonl"), lines.join("\n")).unwrap();
    std::fs::write(
        out_dir.join("state.json"),
        serde_json::to_string(&state).unwrap(),
    )
    .unwrap();
    std::fs::write(
        out_dir.join("nemesis.json"),
        serde_json::to_string_pretty(&*cluster.events.lock().unwrap()).unwrap(),
    )
    .unwrap();
    std::fs::write(
        out_dir.join("violations.txt"),
        violations
            .iter()
            .map(|v| format!("{}: {}\n", v.check, v.detail))
            .collect::<String>(),
    )
    .unwrap();

    summary(&history, &cluster, &state, &violations, ran_for);
    assert!(
        violations.is_empty(),
        "{} violations (all in {}); the first: {:#?}",
        violations.len(),
        out_dir.join("violations.txt").display(),
        &violations[..violations.len().min(10)]
    );
    // The run did what it is for: answered and unknown writes of every kind, crashes, pauses.
    let count = |f: &dyn Fn(&history::Record) -> bool| history.iter().filter(|r| f(r)).count();
    for (what, n) in [
        (
            "answered holds",
            count(&|r| matches!(r.op, Op::Hold { .. }) && r.ok().is_some()),
        ),
        (
            "answered payments",
            count(&|r| matches!(r.op, Op::Pay { .. }) && r.ok().is_some()),
        ),
        (
            "answered cancellations",
            count(&|r| matches!(r.op, Op::Cancel { .. }) && r.ok().is_some()),
        ),
        (
            "answered releases",
            count(&|r| matches!(r.op, Op::Release { .. }) && r.ok().is_some()),
        ),
        (
            "answered extensions",
            count(&|r| matches!(r.op, Op::Extend { .. }) && r.ok().is_some()),
        ),
        ("unknown writes", count(&|r| r.op.writes() && r.unknown())),
    ] {
        assert!(n > 0, "no {what} in the run");
    }

    // The checker proves itself: each planted fault is caught by its check.
    let plants = chaos::plant::plants(&history, &state, &db, dir.path(), policy.hold_ttl_ms);
    let mut missed = Vec::new();
    eprintln!("\nplanted faults (each in a copy of the run's history or database):");
    for p in &plants {
        let found = checker::check(&p.history, &p.state, &policy);
        let mut by: Vec<&str> = found.iter().map(|v| v.check).collect();
        by.dedup();
        let caught = by.contains(&p.rule);
        eprintln!(
            "  {:<28} {:<60} caught by {:?}",
            p.rule,
            p.fault,
            checker::counts(&found)
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect::<Vec<_>>()
        );
        if !caught {
            missed.push((p.rule, p.fault.clone()));
        }
    }
    assert!(missed.is_empty(), "planted faults not caught: {missed:?}");
    eprintln!("chaos: done in {:.1?}", began.elapsed());
}

/// Prints what ran and what the checks found.
fn summary(
    history: &[history::Record],
    cluster: &Cluster,
    state: &State,
    violations: &[checker::Violation],
    ran_for: Duration,
) {
    let mut by_op: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for r in history {
        let name = match &r.op {
            Op::Enter { .. } => "enter",
            Op::Poll => "poll",
            Op::Catalog { .. } => "catalog",
            Op::Hold { many: false, .. } => "hold (one seat)",
            Op::Hold { many: true, .. } => "hold (seat_ids)",
            Op::Release { .. } => "release",
            Op::Extend { .. } => "extend",
            Op::Charge { key: None, .. } => "charge",
            Op::Charge { .. } => "charge (keyed)",
            Op::Pay { key: None, .. } => "pay",
            Op::Pay { .. } => "pay (keyed)",
            Op::Cancel { key: None, .. } => "cancel",
            Op::Cancel { .. } => "cancel (keyed)",
            Op::Read { .. } => "read",
        };
        let slot = match &r.outcome {
            Outcome::Ok { .. } => 0,
            Outcome::Fail { .. } => 1,
            Outcome::Unknown { .. } => 2,
        };
        by_op.entry(name).or_default()[slot] += 1;
        let s = match &r.outcome {
            Outcome::Ok { status, .. } => status.to_string(),
            Outcome::Fail { status, code } => format!("{status} {code}"),
            Outcome::Unknown { why } => format!("unknown ({why})"),
        };
        *statuses.entry(s).or_default() += 1;
    }
    let events = cluster.events.lock().unwrap();
    let kills = events.iter().filter(|e| e.what == "kill -9").count();
    let stops = events.iter().filter(|e| e.what == "SIGSTOP").count();
    let mut keyed: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for r in history {
        if let (Some(u), Some(k)) = (r.user.as_deref(), r.op.key()) {
            *keyed.entry((u, k)).or_default() += 1;
        }
    }
    eprintln!(
        "\nchaos: {} requests in {:.1?}; nemesis: {kills} kill -9 + restart, {stops} SIGSTOP/SIGCONT",
        history.len(),
        ran_for
    );
    eprintln!(
        "  {:<18} {:>7} {:>7} {:>7}",
        "operation", "ok", "error", "unknown"
    );
    for (op, [ok, fail, unknown]) in &by_op {
        eprintln!("  {op:<18} {ok:>7} {fail:>7} {unknown:>7}");
    }
    eprintln!("  answers: {statuses:?}");
    eprintln!(
        "  keys sent more than once: {}; final state: {} tickets, {} payments, {} ledger rows, {} queue entries, {} users read through the API",
        keyed.values().filter(|n| **n > 1).count(),
        state.tickets.len(),
        state.payments.len(),
        state.ledger.len(),
        state.entries.len(),
        state.api.len()
    );
    eprintln!("  checks: {:?}", checker::counts(violations));
}
