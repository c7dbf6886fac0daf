//! `booking-cli` end to end: the real binary on a fresh database per test, every command in
//! both output modes, exit codes (0 success, 1 domain failure, 2 usage), all-or-nothing catalog
//! files, `verify` against tampering, and the CLI beside another writer on the same file.
#![cfg(feature = "cli")]

use assert_cmd::cargo::cargo_bin_cmd;
use booking::{
    Active, Booking, Clock, Config, ManualClock, Points, Seat, ShowtimeId, SystemClock, Ticket,
    UserId,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[path = "backend/mod.rs"]
mod backend;

const USER: &str = "0b7e5a3c-5f7e-4d6a-9a38-2f4f1f6c9e21";

/// A temporary directory holding `booking.db` (created by `booking-cli init` unless `bare`).
struct Db {
    dir: tempfile::TempDir,
    path: PathBuf,
}

fn bare() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("booking.db");
    Db { dir, path }
}

fn db() -> Db {
    let db = bare();
    db.text(&["init"]);
    db
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Db {
    /// Runs `booking-cli` on this database (through `BOOKING_DB`).
    fn run(&self, args: &[&str]) -> Run {
        let out = cargo_bin_cmd!("booking-cli")
            .env("BOOKING_DB", &self.path)
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .unwrap();
        Run {
            code: out.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// A successful human run: its stdout.
    fn text(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(
            !r.stdout.trim_start().starts_with(['{', '[']),
            "{args:?}: {}",
            r.stdout
        );
        r.stdout
    }

    /// A successful `--json` run: its one JSON document.
    fn json(&self, args: &[&str]) -> Value {
        let r = self.run(&[&["--json"], args].concat());
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", r.stdout))
    }

    /// A failing run, in both modes: the exit code, one `error: ` line first on stderr, and with
    /// `--json` one error document with `code` on stdout. Returns the human stderr.
    fn fails(&self, args: &[&str], exit: i32, code: &str) -> String {
        let human = self.run(args);
        assert_eq!(human.code, exit, "{args:?}: {}", human.stderr);
        assert!(human.stdout.is_empty(), "{args:?}: {}", human.stdout);
        assert!(
            human.stderr.starts_with("error: "),
            "{args:?}: {}",
            human.stderr
        );
        assert!(!human.stderr.contains("panicked"), "{}", human.stderr);
        let r = self.run(&[&["--json"], args].concat());
        assert_eq!(r.code, exit, "{args:?}");
        let doc: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(doc["error"]["code"], code, "{args:?}: {doc}");
        assert!(doc["error"]["message"].as_str().unwrap().len() > 5, "{doc}");
        human.stderr
    }

    fn write_file(&self, name: &str, body: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn tamper(&self, sql: &str) {
        let c = rusqlite::Connection::open(&self.path).unwrap();
        assert_eq!(c.execute(sql, []).unwrap(), 1, "{sql}");
    }
}

/// A library handle on a test's database, as a server would hold one, with the first showtime
/// of the first concert and its seats.
struct Lib {
    b: Booking,
    showtime: ShowtimeId,
    seats: Vec<Seat>,
}

impl Lib {
    fn open(path: &Path, clock: Arc<dyn Clock>) -> Lib {
        let b = Booking::open_with_clock(path, Config::default(), clock).unwrap();
        let op = b.operator();
        let c = op.concerts().unwrap()[0].id;
        let showtime = op.showtimes(c).unwrap()[0].id;
        let seats = op.seats(showtime).unwrap();
        Lib { b, showtime, seats }
    }

    /// A new user, admitted.
    fn user(&self) -> Active {
        let entered = self.b.enter_queue(None).unwrap();
        self.b.authorize_active(&entered.token).unwrap()
    }

    fn hold(&self, who: &Active, seat: usize) -> Ticket {
        self.b
            .hold(who, self.showtime, self.seats[seat].id)
            .unwrap()
    }

    /// A new user holds `seat`, charges `points` and pays for it.
    fn sell(&self, seat: usize, points: i64) -> (UserId, Ticket) {
        let user = self.user();
        let t = self.hold(&user, seat);
        self.b.charge(&user, Points::new(points), None).unwrap();
        self.b.pay(&user, t.id, None).unwrap();
        (user.user_id(), t)
    }
}

#[test]
fn init_creates_or_migrates_and_reports_the_schema_version() {
    let db = bare();
    let text = db.text(&["init"]);
    assert!(text.contains("schema version"), "{text}");
    assert!(db.path.exists());
    let v = db.json(&["init"]);
    assert_eq!(v, json!({ "schema_version": booking::SCHEMA_VERSION }));
}

#[test]
fn concerts_are_added_and_listed() {
    let db = db();
    assert!(db.text(&["concert", "list"]).contains("no concerts yet"));
    assert_eq!(db.json(&["concert", "list"]), json!([]));
    let text = db.text(&[
        "concert",
        "add",
        "--title",
        "Aurora Strings",
        "--venue",
        "Seoul Arts",
    ]);
    assert!(text.contains("added concert 1"), "{text}");
    assert_eq!(
        db.json(&["concert", "add", "--title", "Solo"]),
        json!({ "id": 2 })
    );
    let list = db.json(&["concert", "list"]);
    assert_eq!(
        list,
        json!([
            { "id": 1, "title": "Aurora Strings", "venue": "Seoul Arts" },
            { "id": 2, "title": "Solo", "venue": "" }
        ])
    );
    let table = db.text(&["concert", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "ID  TITLE           VENUE");
    assert_eq!(lines[1], " 1  Aurora Strings  Seoul Arts");
    db.fails(&["concert", "add", "--title", "  "], 1, "invalid_request");
}

#[test]
fn showtimes_are_added_with_their_seats_and_listed() {
    let db = db();
    db.json(&["concert", "add", "--title", "T"]);
    let add = [
        "showtime",
        "add",
        "--concert",
        "1",
        "--seats",
        "50",
        "--price",
        "80000",
    ];
    let text = db.text(&[&add[..], &["--starts-at", "2031-05-01T19:00:00+09:00"]].concat());
    assert!(
        text.contains("added showtime 1 of concert 1: 50 seats at 80,000 points"),
        "{text}"
    );
    let v = db.json(&[&add[..], &["--starts-at", "2031-05-02T19:00:00Z"]].concat());
    assert_eq!(v, json!({ "id": 2 }));
    let list = db.json(&["showtime", "list", "--concert", "1"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(
        list[0],
        json!({ "id": 1, "concert_id": 1, "starts_at": "2031-05-01T10:00:00Z", "sale_opens_at": null,
                "total_seats": 50, "available_seats": 50 })
    );
    let table = db.text(&["showtime", "list", "--concert", "1"]);
    assert!(
        table.starts_with("ID  STARTS AT             SEATS  AVAILABLE\n"),
        "{table}"
    );
    assert!(
        table.contains(" 1  2031-05-01 10:00 UTC     50         50"),
        "{table}"
    );
}

#[test]
fn a_50000_seat_showtime_is_added_in_one_command() {
    let db = db();
    db.json(&["concert", "add", "--title", "Stadium"]);
    let start = std::time::Instant::now();
    db.json(&[
        "showtime",
        "add",
        "--concert",
        "1",
        "--starts-at",
        "2031-05-01T19:00:00+09:00",
        "--seats",
        "50000",
        "--price",
        "99000",
    ]);
    eprintln!(
        "50,000 seats (debug build, fsync on): {:?}",
        start.elapsed()
    );
    let seats = db.json(&["seats", "--showtime", "1"]);
    let seats = seats.as_array().unwrap();
    assert_eq!(seats.len(), 50_000);
    assert_eq!(seats[49_999]["number"], 50_000);
    let map = db.text(&["seats", "--showtime", "1"]);
    assert!(map.contains("49981-50000"), "rows of 20 seats, labelled");
}

#[test]
fn seats_show_as_a_grid_for_people_and_a_list_for_scripts() {
    let db = db();
    db.json(&["seed", "demo"]);
    // A hold and a sale made through the library show up in the CLI's seat map.
    let lib = Lib::open(&db.path, Arc::new(SystemClock));
    lib.sell(2, 150_000);
    lib.hold(&lib.user(), 4);
    let (st, seats) = (lib.showtime, &lib.seats);

    let list = db.json(&["seats", "--showtime", &st.to_string()]);
    assert_eq!(list.as_array().unwrap().len(), 50);
    assert_eq!(
        list[0],
        json!({ "id": seats[0].id, "number": 1, "price": 150000, "status": "available" })
    );
    assert_eq!(list[2]["status"], "sold");
    assert_eq!(list[4]["status"], "held");

    let map = db.text(&["seats", "--showtime", &st.to_string()]);
    assert!(
        map.contains("50 seats, 48 available, 1 held, 1 sold"),
        "{map}"
    );
    assert!(
        map.contains("ROW  SEATS   1  2  3  4  5  6  7  8  9 10  PRICE"),
        "{map}"
    );
    assert!(
        map.contains("  1   1-10   .  .  X  .  h  .  .  .  .  .  150,000"),
        "{map}"
    );
    assert!(
        map.contains("  5  41-50   .  .  .  .  .  .  .  .  .  .  80,000"),
        "{map}"
    );
    assert!(
        !map.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn seed_demo_loads_a_small_future_catalog() {
    let db = db();
    let text = db.text(&["seed", "demo"]);
    assert!(
        text.starts_with("loaded 3 concerts, 7 showtimes, 350 seats"),
        "{text}"
    );
    let v = db.json(&["seed", "demo"]);
    assert_eq!(v, json!({ "concerts": 3, "showtimes": 7, "seats": 350 }));
    let concerts = db.json(&["concert", "list"]);
    assert_eq!(concerts.as_array().unwrap().len(), 6);
    let now = chrono::Utc::now();
    for c in concerts.as_array().unwrap() {
        let id = c["id"].to_string();
        for s in db
            .json(&["showtime", "list", "--concert", &id])
            .as_array()
            .unwrap()
        {
            let at: chrono::DateTime<chrono::Utc> =
                s["starts_at"].as_str().unwrap().parse().unwrap();
            assert!(at > now);
        }
    }
}

const CATALOG: &str = r#"{"concerts": [
  {"title": "Neon Tide", "venue": "KSPO Dome", "showtimes": [
    {"starts_at": "2031-05-01T19:00:00+09:00", "seats": 20,
     "price": [{"from": 1, "to": 5, "price": 150000}, {"from": 6, "to": 20, "price": 90000}]},
    {"starts_at": "2031-05-02T19:00:00+09:00", "seats": 30, "price": 80000}]},
  {"title": "Quiet Hours", "showtimes": []}
]}"#;

#[test]
fn seed_file_loads_a_catalog_with_priced_sections() {
    let db = db();
    let file = db.write_file("catalog.json", CATALOG);
    let text = db.text(&["seed", "--file", &file]);
    assert!(
        text.starts_with("loaded 2 concerts, 2 showtimes, 50 seats"),
        "{text}"
    );
    let v = db.json(&["seed", "--file", &file]);
    assert_eq!(v, json!({ "concerts": 2, "showtimes": 2, "seats": 50 }));
    let seats = db.json(&["seats", "--showtime", "1"]);
    assert_eq!(seats[4]["price"], 150000);
    assert_eq!(seats[5]["price"], 90000);
    let map = db.text(&["seats", "--showtime", "1"]);
    assert!(
        map.contains("  1   1-10   .  .  .  .  .  .  .  .  .  .  90,000-150,000"),
        "{map}"
    );
}

#[test]
fn a_broken_catalog_file_loads_nothing() {
    let db = db();
    // The second concert's second showtime is in the past: the first concert must not stay.
    let past = CATALOG.replace(
        r#""showtimes": []"#,
        r#""showtimes": [{"starts_at": "2031-01-01T00:00:00Z", "seats": 5, "price": 1},
                          {"starts_at": "2001-01-01T00:00:00Z", "seats": 5, "price": 1}]"#,
    );
    let file = db.write_file("past.json", &past);
    let err = db.fails(&["seed", "--file", &file], 1, "invalid_request");
    assert!(err.contains("concert #2 showtime #2"), "{err}");
    assert!(err.contains("not in the future"), "{err}");
    // Sections that leave a seat unpriced.
    let gap = CATALOG.replace(r#""to": 20"#, r#""to": 19"#);
    let err = db.fails(
        &["seed", "--file", &db.write_file("gap.json", &gap)],
        1,
        "invalid_request",
    );
    assert!(err.contains("seat 20 is in no price range"), "{err}");
    // Not JSON, an unknown field, a missing file.
    let err = db.fails(
        &[
            "seed",
            "--file",
            &db.write_file("bad.json", "{\"concerts\": ["),
        ],
        1,
        "invalid_json",
    );
    assert!(err.contains("bad.json") && err.contains("line 1"), "{err}");
    let typo = CATALOG.replace("\"venue\"", "\"venu\"");
    db.fails(
        &["seed", "--file", &db.write_file("typo.json", &typo)],
        1,
        "invalid_json",
    );
    db.fails(&["seed", "--file", "missing.json"], 1, "invalid_request");
    assert_eq!(db.json(&["concert", "list"]), json!([]));
    assert_eq!(db.json(&["verify"])["ok"], true);
}

#[test]
fn points_are_charged_and_shown() {
    let db = db();
    let text = db.text(&["points", "charge", "--user", USER, "--amount", "50000"]);
    assert_eq!(
        text.trim(),
        format!("charged 50,000 points to {USER}; balance 50,000")
    );
    let v = db.json(&["points", "charge", "--user", USER, "--amount", "2500"]);
    assert_eq!(v, json!({ "user_id": USER, "balance": 52500 }));
    // A retry with the same idempotency key changes nothing.
    let keyed = [
        "points",
        "charge",
        "--user",
        USER,
        "--amount",
        "100",
        "--idempotency-key",
        "k1",
    ];
    assert_eq!(db.json(&keyed)["balance"], 52600);
    assert_eq!(db.json(&keyed)["balance"], 52600);
    assert_eq!(
        db.json(&["points", "show", "--user", USER]),
        json!({ "user_id": USER, "balance": 52600 })
    );
    assert_eq!(
        db.text(&["points", "show", "--user", USER]).trim(),
        format!("{USER}: 52,600 points")
    );
    let stranger = UserId::new_random().to_string();
    assert_eq!(
        db.json(&["points", "show", "--user", &stranger])["balance"],
        0
    );
}

#[test]
fn bad_amounts_are_domain_errors_and_change_nothing() {
    let db = db();
    for bad in ["0", "-5", "10000001", "9223372036854775807"] {
        let err = db.fails(
            &["points", "charge", "--user", USER, "--amount", bad],
            1,
            "invalid_amount",
        );
        assert!(err.contains("between 1 and 10000000"), "{err}");
    }
    let at = ["--starts-at", "2031-05-01T19:00:00Z", "--seats", "5"];
    db.json(&["concert", "add", "--title", "T"]);
    db.fails(
        &[
            &["showtime", "add", "--concert", "1", "--price", "0"],
            &at[..],
        ]
        .concat(),
        1,
        "invalid_amount",
    );
    db.fails(
        &[
            &["showtime", "add", "--concert", "1", "--price", "-1"],
            &at[..],
        ]
        .concat(),
        1,
        "invalid_amount",
    );
    assert_eq!(db.json(&["points", "show", "--user", USER])["balance"], 0);
    assert_eq!(db.json(&["showtime", "list", "--concert", "1"]), json!([]));
}

#[test]
fn malformed_values_and_unknown_commands_are_usage_errors() {
    let db = db();
    db.json(&["concert", "add", "--title", "T"]);
    let add = |at: &'static str| -> Vec<&'static str> {
        vec![
            "showtime",
            "add",
            "--concert",
            "1",
            "--seats",
            "5",
            "--price",
            "5",
            "--starts-at",
            at,
        ]
    };
    for args in [
        vec!["frobnicate"],
        vec!["concert"],
        vec!["concert", "add"],
        vec!["concert", "add", "--title", "T", "--colour", "red"],
        vec!["points", "charge", "--user", "not-a-uuid", "--amount", "5"],
        vec!["points", "show", "--user", "1234"],
        vec!["points", "charge", "--user", USER, "--amount", "lots"],
        vec![
            "points",
            "charge",
            "--user",
            USER,
            "--amount",
            "5",
            "--idempotency-key",
            "a b",
        ],
        vec!["showtime", "list", "--concert", "abc"],
        vec!["showtime", "list", "--concert", "0"],
        vec!["seats", "--showtime", "-3"],
        vec!["seed"],
        vec!["seed", "demo", "--file", "x.json"],
        vec!["completions", "tcsh"],
        add("tomorrow"),
        add("2031-05-01 7pm"),
        add("2031-13-01T19:00:00Z"),
    ] {
        let err = db.fails(&args, 2, "usage");
        assert!(err.lines().count() <= 6, "{err}");
    }
    let err = db.fails(&add("tomorrow"), 2, "usage");
    assert!(
        err.contains("--starts-at") && err.contains("RFC 3339"),
        "{err}"
    );
    let err = db.fails(&["points", "show", "--user", "1234"], 2, "usage");
    assert!(err.contains("is not a UUID"), "{err}");
    // An idempotency key is parsed with the other values: a malformed one charges nothing.
    let long = "k".repeat(256);
    let err = db.fails(
        &[
            "points",
            "charge",
            "--user",
            USER,
            "--amount",
            "5",
            "--idempotency-key",
            &long,
        ],
        2,
        "usage",
    );
    assert!(
        err.contains("--idempotency-key") && err.contains("visible ASCII"),
        "{err}"
    );
    assert_eq!(db.json(&["points", "show", "--user", USER])["balance"], 0);
    // A well-formed time in the past is the library's refusal: exit 1.
    let err = db.fails(&add("2001-01-01T00:00:00Z"), 1, "invalid_request");
    assert!(err.contains("not in the future"), "{err}");
}

#[test]
fn unknown_ids_are_not_found_with_a_hint() {
    let db = db();
    let err = db.fails(&["showtime", "list", "--concert", "42"], 1, "not_found");
    assert!(
        err.contains("concert not found") && err.contains("hint: `booking-cli concert list`"),
        "{err}"
    );
    let err = db.fails(&["seats", "--showtime", "42"], 1, "not_found");
    assert!(
        err.contains("showtime not found") && err.contains("hint:"),
        "{err}"
    );
    let add = [
        "showtime",
        "add",
        "--concert",
        "42",
        "--starts-at",
        "2031-05-01T19:00:00Z",
    ];
    db.fails(
        &[&add[..], &["--seats", "5", "--price", "5"]].concat(),
        1,
        "not_found",
    );
}

#[test]
fn the_database_comes_from_db_or_booking_db_and_reads_never_create_it() {
    let db = bare();
    let err = db.fails(&["concert", "list"], 1, "not_found");
    assert!(
        err.contains("no database at") && err.contains("init"),
        "{err}"
    );
    db.fails(&["verify"], 1, "not_found");
    assert!(!db.path.exists());
    // --db wins over BOOKING_DB; the default is ./booking.db.
    let other = db.dir.path().join("other.db");
    let other = other.to_str().unwrap();
    db.json(&["--db", other, "concert", "add", "--title", "Elsewhere"]);
    assert_eq!(
        db.json(&["--db", other, "concert", "list"])[0]["title"],
        "Elsewhere"
    );
    assert!(!db.path.exists());
    let out = cargo_bin_cmd!("booking-cli")
        .env_remove("BOOKING_DB")
        .current_dir(db.dir.path())
        .args(["--json", "init"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(db.path.exists(), "./booking.db by default");
}

#[test]
fn queue_status_counts_entries() {
    let db = db();
    assert_eq!(
        db.json(&["queue", "status"]),
        json!({ "waiting": 0, "active": 0, "expired": 0, "prequeue": 0 })
    );
    let b = Booking::open(&db.path, Config::default().with_max_active(1)).unwrap();
    b.enter_queue(None).unwrap();
    b.enter_queue(None).unwrap();
    assert_eq!(
        db.json(&["queue", "status"]),
        json!({ "waiting": 1, "active": 1, "expired": 0, "prequeue": 0 })
    );
    let table = db.text(&["queue", "status"]);
    assert_eq!(
        table.trim_end(),
        "WAITING  ACTIVE  EXPIRED  PREQUEUE\n      1       1        0         0"
    );
}

#[test]
fn sweep_expires_lapsed_holds_and_reports_counts() {
    let db = db();
    db.json(&["seed", "demo"]);
    // A hold made ten minutes ago (a clock set back) has lapsed by now.
    let clock = ManualClock::new(chrono::Utc::now() - chrono::Duration::minutes(10));
    let lib = Lib::open(&db.path, Arc::new(clock));
    lib.hold(&lib.user(), 0);
    drop(lib);
    let text = db.text(&["sweep"]);
    assert!(text.starts_with("swept: 1 lapsed holds expired"), "{text}");
    let v = db.json(&["sweep"]);
    assert_eq!(
        v,
        json!({ "expired_holds": 0, "expired_entries": 0, "removed_idempotency_keys": 0 })
    );
    assert_eq!(db.json(&["verify"])["ok"], true);
}

/// A database with a paid ticket, a live hold and charged wallets, made through the library.
fn busy_db() -> (Db, UserId, i64) {
    let db = db();
    db.json(&["seed", "demo"]);
    let lib = Lib::open(&db.path, Arc::new(SystemClock));
    let (user, ticket) = lib.sell(0, 200_000);
    lib.hold(&lib.user(), 1);
    (db, user, ticket.id.get())
}

#[test]
fn verify_passes_on_a_healthy_database() {
    let (db, _, _) = busy_db();
    assert_eq!(db.text(&["verify"]).trim(), "ok: every invariant holds");
    assert_eq!(
        db.json(&["verify"]),
        json!({ "ok": true, "violations": [] })
    );
}

#[test]
fn verify_fails_naming_a_tampered_wallet() {
    let (db, user, _) = busy_db();
    db.tamper(&format!(
        "UPDATE wallets SET balance = 999999 WHERE user_id = '{user}'"
    ));
    let r = db.run(&["verify"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("wallet_equals_ledger"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "wallet {user} balance 999999 but ledger sums to 50000"
        )),
        "{}",
        r.stdout
    );
    assert_eq!(r.stderr.trim(), "error: verify found 1 violation(s)");
    let r = db.run(&["--json", "verify"]);
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["violations"][0]["invariant"], "wallet_equals_ledger");
    assert!(v["violations"][0]["detail"]
        .as_str()
        .unwrap()
        .contains(&user.to_string()));
}

#[test]
fn verify_fails_naming_a_tampered_ticket() {
    let (db, _, ticket) = busy_db();
    db.tamper(&format!(
        "UPDATE tickets SET status = 'expired', paid_at = NULL WHERE id = {ticket}"
    ));
    let r = db.run(&["--json", "verify"]);
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let found: Vec<(&str, &str)> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["invariant"].as_str().unwrap(),
                x["detail"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        found
            .iter()
            .any(|(i, d)| *i == "sold_seat_has_one_paid_ticket_and_payment"
                && d.contains("0 paid tickets")),
        "{found:?}"
    );
    assert!(found.iter().any(|(i, d)| *i == "payment_matches_ticket" && d.contains(&format!("ticket {ticket}"))), "{found:?}");
    let r = db.run(&["verify"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains(&format!("for ticket {ticket}")),
        "{}",
        r.stdout
    );
}

#[test]
fn completions_and_help_are_there_for_every_command() {
    let db = db();
    for shell in ["bash", "zsh", "fish"] {
        let script = db.text(&["completions", shell]);
        assert!(
            script.contains("booking-cli") && script.contains("showtime"),
            "{shell}"
        );
        assert_eq!(db.json(&["completions", shell])["shell"], shell);
    }
    let top = db.text(&["--help"]);
    assert!(
        top.contains("Examples:") && top.contains("Exit status"),
        "{top}"
    );
    for cmd in [
        "init",
        "concert add",
        "concert list",
        "showtime add",
        "showtime list",
        "seats",
        "seed",
        "points charge",
        "points show",
        "queue status",
        "sweep",
        "verify",
        "completions",
    ] {
        let args: Vec<&str> = cmd.split(' ').chain(["--help"]).collect();
        let help = db.text(&args);
        assert!(
            help.contains("Example") && help.contains("booking-cli "),
            "{cmd}: {help}"
        );
    }
}

/// The CLI and another writer (a library handle in this process, as a server would hold) on one
/// file at once: each sees the other's writes and the invariants hold.
// `tests/http_processes.rs` does the same beside a running `booking-server` process.
#[test]
fn cli_and_another_writer_share_one_database() {
    let db = db();
    db.json(&["seed", "demo"]);
    let path = db.path.clone();
    let writer = std::thread::spawn(move || library_writes(&path));
    let cli_user = UserId::new_random().to_string();
    for i in 0..8 {
        db.json(&["points", "charge", "--user", &cli_user, "--amount", "1000"]);
        db.json(&[
            "concert",
            "add",
            "--title",
            &format!("Added by the CLI #{i}"),
        ]);
    }
    let (lib_user, showtime, sold_number) = writer.join().unwrap();

    // The CLI sees the library's writes ...
    let bal = db.json(&["points", "show", "--user", &lib_user.to_string()]);
    assert_eq!(bal["balance"], 200_000 - 150_000);
    let seats = db.json(&["seats", "--showtime", &showtime.to_string()]);
    assert_eq!(seats[sold_number - 1]["status"], "sold");
    assert_eq!(
        seats
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "held")
            .count(),
        2
    );
    // ... and the library sees the CLI's.
    let b = Booking::open(&db.path, Config::default()).unwrap();
    assert_eq!(
        b.operator()
            .balance(UserId::parse(&cli_user).unwrap())
            .unwrap()
            .balance,
        Points::new(8_000)
    );
    assert_eq!(b.operator().concerts().unwrap().len(), 3 + 8);
    assert_eq!(
        db.json(&["verify"]),
        json!({ "ok": true, "violations": [] })
    );
}

/// Charges, holds three seats and pays for one, interleaved with the CLI's writes.
fn library_writes(path: &Path) -> (UserId, i64, usize) {
    let lib = Lib::open(path, Arc::new(SystemClock));
    let user = lib.user();
    let mut tickets = Vec::new();
    for i in 0..20 {
        lib.b.charge(&user, Points::new(10_000), None).unwrap();
        if i % 7 == 0 {
            tickets.push(lib.hold(&user, i));
        }
    }
    lib.b.pay(&user, tickets[0].id, None).unwrap();
    (
        user.user_id(),
        lib.showtime.get(),
        lib.seats[0].number as usize,
    )
}

#[test]
fn a_showtime_gets_a_sale_opening() {
    let db = db();
    db.text(&["concert", "add", "--title", "T"]);
    let add = [
        "showtime",
        "add",
        "--concert",
        "1",
        "--starts-at",
        "2031-05-01T19:00:00+09:00",
        "--seats",
        "5",
        "--price",
        "100",
    ];
    let v = db.json(&[&add[..], &["--sale-opens-at", "2031-04-01T10:00:00Z"]].concat());
    assert_eq!(v, json!({ "id": 1 }));
    let list = db.json(&["showtime", "list", "--concert", "1"]);
    assert_eq!(list[0]["sale_opens_at"], "2031-04-01T10:00:00Z");
    db.fails(
        &[&add[..], &["--sale-opens-at", "2031-06-01T10:00:00Z"]].concat(),
        1,
        "invalid_request",
    );
    db.fails(
        &[&add[..], &["--sale-opens-at", "soon"]].concat(),
        2,
        "usage",
    );
}

#[test]
fn an_operator_cancels_a_ticket_with_or_without_the_fee() {
    let db = db();
    db.text(&["seed", "demo"]);
    let lib = Lib::open(&db.path, Arc::new(SystemClock));
    let (user, t) = lib.sell(0, 200_000); // the first seat of the demo costs 150,000
    let text = db.text(&["ticket", "cancel", "--ticket", &t.id.to_string()]);
    assert!(
        text.contains("refunded 135,000 points, fee 15,000"),
        "{text}"
    );
    assert_eq!(
        lib.b.operator().balance(user).unwrap().balance,
        Points::new(185_000)
    );
    db.fails(
        &["ticket", "cancel", "--ticket", &t.id.to_string()],
        1,
        "ticket_not_paid",
    );
    let (user2, t2) = lib.sell(1, 150_000);
    let v = db.json(&[
        "ticket",
        "cancel",
        "--ticket",
        &t2.id.to_string(),
        "--no-fee",
    ]);
    assert_eq!(
        (v["refund"].clone(), v["fee"].clone()),
        (json!(150_000), json!(0))
    );
    assert_eq!(v["balance"], 150_000);
    assert_eq!(v["ticket"]["status"], "cancelled");
    assert_eq!(v["ticket"]["user_id"], user2.to_string());
    db.fails(&["ticket", "cancel", "--ticket", "999"], 1, "not_found");
    db.fails(&["ticket", "cancel", "--ticket", "x"], 2, "usage");
    db.text(&["verify"]);
}

#[test]
fn calling_a_showtime_off_refunds_everyone_and_the_report_shows_it() {
    let db = db();
    db.text(&["seed", "demo"]);
    let lib = Lib::open(&db.path, Arc::new(SystemClock));
    let (a, _) = lib.sell(0, 150_000);
    let (b, _) = lib.sell(1, 150_000);
    let holder = lib.user();
    lib.hold(&holder, 2);
    let report = db.json(&["report", "--showtime", &lib.showtime.to_string()]);
    assert_eq!(
        report,
        json!([{ "showtime_id": lib.showtime.get(), "concert_id": 1,
                 "starts_at": report[0]["starts_at"], "cancelled": false,
                 "total": 50, "available": 47, "held": 1, "sold": 2,
                 "revenue": 300_000, "refunded": 0, "fees": 0 }])
    );
    let table = db.text(&["report"]);
    assert!(table.lines().next().unwrap().contains("REVENUE"), "{table}");
    assert!(table.contains("300,000"), "{table}");
    let v = db.json(&[
        "showtime",
        "cancel",
        "--showtime",
        &lib.showtime.to_string(),
    ]);
    assert_eq!(
        v,
        json!({ "cancelled": 2, "refunded": 300_000, "released": 1 })
    );
    for u in [a, b] {
        assert_eq!(
            lib.b.operator().balance(u).unwrap().balance,
            Points::new(150_000)
        );
    }
    let after = db.json(&["report", "--showtime", &lib.showtime.to_string()]);
    assert_eq!(
        (
            after[0]["sold"].clone(),
            after[0]["held"].clone(),
            after[0]["cancelled"].clone()
        ),
        (json!(0), json!(0), json!(true))
    );
    assert_eq!(
        (after[0]["revenue"].clone(), after[0]["refunded"].clone()),
        (json!(0), json!(300_000))
    );
    let text = db.text(&[
        "showtime",
        "cancel",
        "--showtime",
        &lib.showtime.to_string(),
    ]);
    assert!(text.contains("0 paid tickets cancelled"), "{text}");
    db.fails(&["showtime", "cancel", "--showtime", "99"], 1, "not_found");
    db.fails(&["report", "--showtime", "99"], 1, "not_found");
    db.text(&["verify"]);
}

#[test]
fn queue_controls_are_shown_set_and_cleared() {
    let db = db();
    let shown = db.json(&["queue", "show"]);
    assert_eq!(
        shown,
        json!({ "max_active": 100, "admit_per_minute": 0, "paused": false, "opens_at": null,
                "source": { "max_active": "flags", "admit_per_minute": "flags",
                            "paused": "database", "opens_at": "database" },
                "prequeue": 0, "admitted_total": 0 })
    );
    let v = db.json(&[
        "queue",
        "set",
        "--max-active",
        "7",
        "--admit-per-minute",
        "60",
    ]);
    assert_eq!(
        (v["max_active"].clone(), v["admit_per_minute"].clone()),
        (json!(7), json!(60))
    );
    assert_eq!(v["source"]["admit_per_minute"], "database");
    assert!(db.text(&["queue", "pause"]).contains("PAUSED"));
    assert_eq!(db.json(&["queue", "show"])["paused"], true);
    db.json(&["queue", "resume"]);
    let v = db.json(&["queue", "open-at", "2031-05-01T10:00:00+09:00"]);
    assert_eq!(v["opens_at"], "2031-05-01T01:00:00Z");
    assert_eq!(
        db.json(&["queue", "open-at", "none"])["opens_at"],
        Value::Null
    );
    let v = db.json(&["queue", "set", "--max-active", "flags"]);
    assert_eq!(
        (v["max_active"].clone(), v["source"]["max_active"].clone()),
        (json!(100), json!("flags"))
    );
    db.fails(&["queue", "set"], 2, "usage");
    db.fails(&["queue", "set", "--max-active", "-1"], 2, "usage");
    db.fails(&["queue", "open-at", "tomorrow"], 2, "usage");
    let status = db.json(&["queue", "status"]);
    assert_eq!(
        status,
        json!({ "waiting": 0, "active": 0, "expired": 0, "prequeue": 0 })
    );
}

/// On a `postgres://` URL: read commands refuse a database that does not exist, `init` creates
/// and migrates it (again: nothing to do), and the rest works as on a file — `verify` included.
#[test]
fn init_creates_and_migrates_a_postgres_database() {
    use backend::{Backend, Raw};
    if Backend::Postgres.skipped() {
        return;
    }
    let db = backend::pg::cluster().unwrap().reserve_database();
    let run = |args: &[&str]| {
        let out = cargo_bin_cmd!("booking-cli")
            .env("BOOKING_DB", &db.url)
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        (out.status.code().unwrap(), stdout, stderr)
    };
    let (code, out, _) = run(&["--json", "concert", "list"]);
    assert_eq!(code, 1);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["error"]["code"],
        "not_found"
    );
    for _ in 0..2 {
        let (code, out, err) = run(&["init"]);
        assert_eq!(code, 0, "{err}");
        let ready = format!("is ready (schema version {})", booking::SCHEMA_VERSION);
        assert!(out.contains(&ready), "{out}");
    }
    let (code, _, err) = run(&["seed", "demo"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&["--json", "concert", "list"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let (code, out, _) = run(&["verify"]);
    assert_eq!((code, out.trim()), (0, "ok: every invariant holds"));
    Raw::open(&booking::Location::from(db.url.as_str()))
        .execute(
            "UPDATE seat_versions SET sold = 1 WHERE showtime_id = 1 AND slot = 0",
            &[],
        )
        .unwrap();
    let (code, out, _) = run(&["--json", "verify"]);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["violations"][0]["invariant"], "showtime_sold_count",
        "{report}"
    );
}
