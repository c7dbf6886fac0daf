//! What only the PostgreSQL engine does: run a write again when the server aborted it for a
//! conflict, and migrate a new database once when several processes open it together. (Every
//! rule test runs on PostgreSQL too, through the `backends` template.)
mod fixture;

use booking::*;
use fixture::*;
use std::sync::Arc;

/// Makes the next `n` ledger inserts fail with SQLSTATE `code`, as the server fails a
/// transaction it aborts to break a deadlock (`40P01`) or a serialization conflict (`40001`).
/// A sequence counts them: unlike a table, it is not rolled back with the failed transaction.
fn fail_ledger_inserts(f: &Fixture, n: i64, code: &str) {
    f.raw()
        .batch(&format!(
            "CREATE SEQUENCE conflicts;
             CREATE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF nextval('conflicts') <= {n} THEN
                     RAISE EXCEPTION 'a conflict, as the server reports one'
                         USING ERRCODE = '{code}';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER conflict BEFORE INSERT ON point_ledger
                 FOR EACH ROW EXECUTE FUNCTION conflict();"
        ))
        .unwrap();
}

fn conflicts_seen(f: &Fixture) -> i64 {
    f.raw().int("SELECT last_value FROM conflicts", &[])
}

#[test]
fn a_write_aborted_for_a_deadlock_or_a_conflict_runs_again_whole() {
    if Backend::Postgres.skipped() {
        return;
    }
    for code in ["40P01", "40001"] {
        let f = fixture(Backend::Postgres);
        let u = f.user();
        fail_ledger_inserts(&f, 2, code);
        // Twice aborted, then run a third time from scratch: one charge, one ledger row.
        assert_eq!(f.b.charge(&u, pts(700), None).unwrap().balance, pts(700));
        assert_eq!(conflicts_seen(&f), 3);
        assert_eq!(f.b.point_history(&u).unwrap().len(), 1);
        // A keyed request too: its key is recorded once, with the answer of the run that
        // committed.
        fail_ledger_inserts_again(&f);
        let key = IdempotencyKey::parse("again").unwrap();
        assert_eq!(
            f.b.charge(&u, pts(5), Some(&key)).unwrap().balance,
            pts(705)
        );
        assert_eq!(
            f.b.charge(&u, pts(5), Some(&key)).unwrap().balance,
            pts(705)
        );
        assert_eq!(f.b.point_history(&u).unwrap().len(), 2);
        f.assert_verified();
    }
}

/// Restarts the count: the next ledger inserts fail again as many times.
fn fail_ledger_inserts_again(f: &Fixture) {
    f.raw().batch("ALTER SEQUENCE conflicts RESTART").unwrap();
}

#[test]
fn a_write_that_keeps_meeting_conflicts_is_busy_and_leaves_nothing() {
    if Backend::Postgres.skipped() {
        return;
    }
    let f = fixture(Backend::Postgres);
    let u = f.user();
    fail_ledger_inserts(&f, 1_000, "40P01");
    assert_eq!(code(f.b.charge(&u, pts(700), None)), "busy");
    let runs = conflicts_seen(&f);
    assert!((2..=10).contains(&runs), "a bounded number of runs: {runs}");
    assert_eq!(f.b.balance(&u).unwrap().balance, Points::ZERO);
    assert!(f.b.point_history(&u).unwrap().is_empty());
    f.assert_verified();
}

#[test]
fn handles_opening_a_new_database_together_migrate_it_once() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = pg::cluster().unwrap().reserve_database();
    let url = Arc::new(db.url.clone());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let b = Booking::open(url.as_str(), Config::default()).unwrap();
                b.enter_queue(None).unwrap().token
            })
        })
        .collect();
    let tokens: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // One schema, one secret: every handle's token is good on every other.
    let b = Booking::open(url.as_str(), Config::default()).unwrap();
    for t in &tokens {
        b.authorize(t).unwrap();
    }
    let raw = Raw::open(b.location());
    assert_eq!(
        raw.int("SELECT version FROM schema_version", &[]),
        SCHEMA_VERSION as i64
    );
    assert_eq!(
        raw.int("SELECT COUNT(*) FROM meta WHERE key = 'jwt_secret'", &[]),
        1
    );
    assert!(b.operator().verify().unwrap().ok);
    drop(raw);
    drop(b);
}
