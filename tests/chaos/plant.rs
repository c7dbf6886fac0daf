//! The checker proves itself on the real run: known faults are planted in copies of the run's
//! history and of its database (a copy made with `VACUUM INTO`, then changed with SQL, the
//! schema's guards switched off), and each must be caught by the check that is there for it.

use super::checker::*;
use super::history::{ms, Op, Outcome, Record};
use super::state::State;
use rusqlite::{params, Connection};
use serde_json::json;
use std::path::Path;

/// One planted fault: what it is, the check that must name it, and the copies it is in.
pub struct Plant {
    pub fault: String,
    pub rule: &'static str,
    pub history: Vec<Record>,
    pub state: State,
}

fn acked<'a>(
    h: &'a [Record],
    pick: impl Fn(&Op) -> bool + 'a,
) -> impl Iterator<Item = &'a Record> + 'a {
    h.iter().filter(move |r| r.ok().is_some() && pick(&r.op))
}

/// A copy of the database at `db`, changed by `sql` (run with foreign keys and the ledger's
/// append-only triggers off), read back as a state with the real run's API views.
fn db_copy(
    db: &Path,
    dir: &Path,
    name: &str,
    real: &State,
    change: impl FnOnce(&Connection),
) -> State {
    let copy = dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&copy);
    Connection::open(db)
        .unwrap()
        .execute("VACUUM INTO ?1", params![copy.to_str().unwrap()])
        .unwrap();
    let c = Connection::open(&copy).unwrap();
    c.execute_batch(
        "PRAGMA foreign_keys = OFF;
         DROP TRIGGER IF EXISTS point_ledger_append_only_update;
         DROP TRIGGER IF EXISTS point_ledger_append_only_delete;",
    )
    .unwrap();
    change(&c);
    drop(c);
    let mut s = State::read(&copy);
    s.api = real.api.clone();
    s
}

/// The faults, planted in copies of `history`, `state` and the database at `db` (copies go in
/// `dir`). Panics if the run lacks what a fault needs (a run of a few seconds has it all).
pub fn plants(history: &[Record], state: &State, db: &Path, dir: &Path, ttl: i64) -> Vec<Plant> {
    let mut out = Vec::new();
    let next_id = history.len();
    let stamp = |mut r: Record, id: usize, invoke: i64, complete: i64, outcome: Outcome| {
        r.id = id;
        r.invoke = invoke;
        r.complete = complete;
        r.outcome = outcome;
        r
    };

    // A 500 among the answers.
    let mut h = history.to_vec();
    let any = history
        .iter()
        .find(|r| r.user.is_some())
        .expect("a request")
        .clone();
    h.push(stamp(
        Record {
            op: Op::Read {
                path: "/points".into(),
            },
            ..any
        },
        next_id,
        history.last().unwrap().complete + 1_000,
        history.last().unwrap().complete + 2_000,
        Outcome::Fail {
            status: 500,
            code: "internal".into(),
        },
    ));
    out.push(Plant {
        fault: "a 500 answer".into(),
        rule: NO_5XX_BUT_503,
        history: h,
        state: state.clone(),
    });

    // A repeated key that answered something else than the first time.
    let first = acked(history, |op| op.key().is_some())
        .next()
        .expect("an answered keyed request")
        .clone();
    let mut body = first.ok().unwrap().clone();
    body["planted"] = json!(true);
    let mut h = history.to_vec();
    h.push(stamp(
        first.clone(),
        next_id,
        first.complete + 1_000,
        first.complete + 2_000,
        Outcome::Ok {
            status: first.status().unwrap(),
            body,
        },
    ));
    out.push(Plant {
        fault: format!("request {} replayed with another body", first.id),
        rule: IDEMPOTENT_REPLAY,
        history: h,
        state: state.clone(),
    });

    // A hold answered to a user on their old entry after their payment was answered.
    let pay = acked(history, |op| matches!(op, Op::Pay { .. }))
        .find(|r| r.entry.is_some())
        .expect("an answered payment")
        .clone();
    let at = pay.complete + 1_000;
    let mut h = history.to_vec();
    h.push(stamp(
        Record { op: Op::Hold { showtime: 1, seats: vec![1], many: false }, ..pay.clone() },
        next_id,
        at,
        at + 1_000,
        Outcome::Ok { status: 201, body: json!({"id": 1_000_000, "seat_id": 1, "price": 1,
            "held_until": chrono::DateTime::from_timestamp_millis(ms(at) + ttl).unwrap().to_rfc3339()}) },
    ));
    out.push(Plant {
        fault: format!("a hold answered after payment request {}", pay.id),
        rule: PAYMENT_ENDS_THE_TURN,
        history: h,
        state: state.clone(),
    });

    // A hold answered on a seat sold before it was sent (by another user).
    let (sale, ticket, seat) = acked(history, |op| matches!(op, Op::Pay { .. }))
        .flat_map(|r| {
            r.ok().unwrap()["ticket_ids"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| t.as_i64())
                .map(move |t| (r, t))
        })
        .filter_map(|(r, t)| state.tickets.get(&t).map(|row| (r, t, row.seat)))
        .find(|(r, t, _)| {
            // No cancellation of it was sent before the planted hold is answered.
            !history.iter().any(|c| {
                matches!(c.op, Op::Cancel { ticket, .. } if ticket == *t)
                    && c.invoke < r.complete + 2_000
            })
        })
        .expect("a sale not cancelled at once");
    let other = history
        .iter()
        .find(|r| r.user.is_some() && r.user != sale.user)
        .expect("another user")
        .clone();
    let at = sale.complete + 1_000;
    let showtime = state.tickets[&ticket].showtime;
    let mut h = history.to_vec();
    h.push(stamp(
        Record { op: Op::Hold { showtime, seats: vec![seat], many: false }, ..other },
        next_id,
        at,
        at + 1_000,
        Outcome::Ok { status: 201, body: json!({"id": 1_000_001, "seat_id": seat, "price": 1,
            "held_until": chrono::DateTime::from_timestamp_millis(ms(at) + ttl).unwrap().to_rfc3339()}) },
    ));
    out.push(Plant {
        fault: format!("seat {seat} held after request {} sold it", sale.id),
        rule: NO_HOLD_AFTER_SALE,
        history: h,
        state: state.clone(),
    });

    // The API answering a balance the database does not have.
    let mut s = state.clone();
    let (user, view) = s.api.iter_mut().next().expect("an API view");
    view.balance += 1;
    let user = user.clone();
    out.push(Plant {
        fault: format!("the API's balance of {user} off by one"),
        rule: API_AGREES_WITH_DB,
        history: history.to_vec(),
        state: s,
    });

    // A lost acknowledged payment.
    let id = acked(history, |op| matches!(op, Op::Pay { .. }))
        .find_map(|r| r.ok().unwrap()["id"].as_i64())
        .unwrap();
    let s = db_copy(db, dir, "lost-payment", state, |c| {
        c.execute("DELETE FROM payments WHERE id = ?1", params![id])
            .unwrap();
    });
    out.push(Plant {
        fault: format!("answered payment {id} deleted"),
        rule: ACKNOWLEDGED_WRITES_PRESENT,
        history: history.to_vec(),
        state: s,
    });

    // A lost acknowledged charge, its wallet lowered to match the ledger (verify stays clean).
    let quiet = |user: &str| {
        !history
            .iter()
            .any(|r| r.user.as_deref() == Some(user) && r.op.writes() && r.unknown())
    };
    let (user, row) = acked(history, |op| matches!(op, Op::Charge { .. }))
        .filter_map(|r| r.user.clone())
        .filter(|u| quiet(u))
        .find_map(|u| {
            let balance = state.wallets.get(&u).copied().unwrap_or(0);
            state
                .ledger
                .iter()
                .find(|e| e.user == u && e.kind == "charge" && e.amount <= balance)
                .map(|e| (u.clone(), e.clone()))
        })
        .expect("a user with no unknown writes whose balance covers a charge");
    let s = db_copy(db, dir, "lost-charge", state, |c| {
        c.execute("DELETE FROM point_ledger WHERE id = ?1", params![row.id])
            .unwrap();
        c.execute(
            "UPDATE wallets SET balance = balance - ?2 WHERE user_id = ?1",
            params![user, row.amount],
        )
        .unwrap();
    });
    out.push(Plant {
        fault: format!("charge of {} to {user} lost, wallet lowered", row.amount),
        rule: WALLET_MATCHES_HISTORY,
        history: history.to_vec(),
        state: s,
    });

    // A ticket no request made.
    let t = state.tickets.values().next().expect("a ticket").clone();
    let before = state.tickets.values().map(|t| t.created_at).min().unwrap() - 10 * ttl;
    let s = db_copy(db, dir, "phantom-ticket", state, |c| {
        c.execute(
            "INSERT INTO tickets (user_id, showtime_id, seat_id, price, status, created_at, held_until)
             VALUES (?1, ?2, ?3, ?4, 'expired', ?5, ?6)",
            params![t.user, t.showtime, t.seat, t.price, before, before + ttl],
        )
        .unwrap();
    });
    out.push(Plant {
        fault: format!("a phantom ticket of {} on seat {}", t.user, t.seat),
        rule: NOTHING_UNREQUESTED,
        history: history.to_vec(),
        state: s,
    });

    // Two claims on one seat at once: a later ticket moved into an earlier one's claim.
    let mut by_seat: std::collections::BTreeMap<i64, Vec<&super::state::TicketRow>> =
        Default::default();
    for t in state.tickets.values() {
        by_seat.entry(t.seat).or_default().push(t);
    }
    let (a, b) = by_seat
        .values_mut()
        .find_map(|ts| {
            ts.sort_by_key(|t| t.created_at);
            let a = ts.first()?;
            let b = ts.get(1)?;
            let end = a.ended_at.unwrap_or(a.held_until).min(a.held_until);
            (end - a.created_at >= 2).then(|| ((*a).clone(), (*b).clone()))
        })
        .expect("a seat held twice");
    let inside = a.created_at + 1;
    let s = db_copy(db, dir, "overlap", state, |c| {
        c.execute(
            "UPDATE tickets SET created_at = ?2 WHERE id = ?1",
            params![b.id, inside],
        )
        .unwrap();
    });
    out.push(Plant {
        fault: format!(
            "ticket {} moved into ticket {}'s claim on seat {}",
            b.id, a.id, a.seat
        ),
        rule: ONE_CLAIM_PER_SEAT,
        history: history.to_vec(),
        state: s,
    });

    // A broken invariant only verify sees.
    let user = state.wallets.keys().next().expect("a wallet").clone();
    let s = db_copy(db, dir, "verify", state, |c| {
        c.execute(
            "UPDATE wallets SET balance = balance + 1 WHERE user_id = ?1",
            params![user],
        )
        .unwrap();
    });
    out.push(Plant {
        fault: format!("wallet of {user} one more than its ledger"),
        rule: VERIFY_CLEAN,
        history: history.to_vec(),
        state: s,
    });

    out
}
