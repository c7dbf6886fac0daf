//! The final state the history is checked against: the database's rows (read with SQL once
//! every server is stopped), the library's `verify`, and what the API answers each user
//! (tickets, balance, point history, payment history).

use booking::client::Client;
use booking::{Booking, Config};
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A row of `tickets`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRow {
    pub id: i64,
    pub user: String,
    pub showtime: i64,
    pub seat: i64,
    pub price: i64,
    /// As stored (a lapsed hold may still read `held`).
    pub status: String,
    pub created_at: i64,
    pub held_until: i64,
    pub extensions: i64,
    pub paid_at: Option<i64>,
    pub payment_id: Option<i64>,
    pub ended_at: Option<i64>,
    pub refund: Option<i64>,
    pub fee: Option<i64>,
}

/// A row of `payments`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRow {
    pub id: i64,
    pub user: String,
    pub ticket_id: i64,
    pub amount: i64,
    pub paid_at: i64,
}

/// A row of `point_ledger`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRow {
    pub id: i64,
    pub user: String,
    pub kind: String,
    pub amount: i64,
    pub balance_after: i64,
    pub payment_id: Option<i64>,
    pub ticket_id: Option<i64>,
    pub created_at: i64,
}

/// A row of `queue_entries`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRow {
    pub id: i64,
    pub user: String,
    pub status: String,
    pub created_at: i64,
}

/// What the API answered one user after the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiView {
    /// When the reads started (ms): a hold whose end is later may read either way.
    pub read_at: i64,
    pub balance: i64,
    pub tickets: Vec<Value>,
    pub point_history: Vec<Value>,
    pub payment_history: Vec<Value>,
}

/// Everything the checker compares the history with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub tickets: BTreeMap<i64, TicketRow>,
    pub payments: BTreeMap<i64, PaymentRow>,
    pub ledger: Vec<LedgerRow>,
    pub wallets: BTreeMap<String, i64>,
    pub entries: BTreeMap<i64, EntryRow>,
    /// `verify`'s violations: (invariant, detail).
    pub verify: Vec<(String, String)>,
    /// Per user, what the API answered.
    pub api: BTreeMap<String, ApiView>,
}

impl State {
    /// The database's rows and `verify`'s report (no API views). No server may be writing.
    pub fn read(db: &Path) -> State {
        let mut s = State::rows(db);
        let report = Booking::open(db, Config::default())
            .expect("open through the library")
            .operator()
            .verify()
            .expect("verify");
        s.verify = report
            .violations
            .iter()
            .map(|v| (v.invariant.to_string(), v.detail.clone()))
            .collect();
        s
    }

    fn rows(db: &Path) -> State {
        let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database");
        let mut s = State::default();
        let mut q = c
            .prepare(
                "SELECT id, user_id, showtime_id, seat_id, price, status, created_at, held_until,
                        extensions, paid_at, payment_id, ended_at, refund, fee FROM tickets",
            )
            .unwrap();
        for t in q
            .query_map([], |r| {
                Ok(TicketRow {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    showtime: r.get(2)?,
                    seat: r.get(3)?,
                    price: r.get(4)?,
                    status: r.get(5)?,
                    created_at: r.get(6)?,
                    held_until: r.get(7)?,
                    extensions: r.get(8)?,
                    paid_at: r.get(9)?,
                    payment_id: r.get(10)?,
                    ended_at: r.get(11)?,
                    refund: r.get(12)?,
                    fee: r.get(13)?,
                })
            })
            .unwrap()
        {
            let t = t.unwrap();
            s.tickets.insert(t.id, t);
        }
        let mut q = c
            .prepare("SELECT id, user_id, ticket_id, amount, paid_at FROM payments")
            .unwrap();
        for p in q
            .query_map([], |r| {
                Ok(PaymentRow {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    ticket_id: r.get(2)?,
                    amount: r.get(3)?,
                    paid_at: r.get(4)?,
                })
            })
            .unwrap()
        {
            let p = p.unwrap();
            s.payments.insert(p.id, p);
        }
        let mut q = c
            .prepare(
                "SELECT id, user_id, kind, amount, balance_after, payment_id, ticket_id, created_at
                 FROM point_ledger ORDER BY id",
            )
            .unwrap();
        s.ledger = q
            .query_map([], |r| {
                Ok(LedgerRow {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    kind: r.get(2)?,
                    amount: r.get(3)?,
                    balance_after: r.get(4)?,
                    payment_id: r.get(5)?,
                    ticket_id: r.get(6)?,
                    created_at: r.get(7)?,
                })
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut q = c.prepare("SELECT user_id, balance FROM wallets").unwrap();
        s.wallets = q
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut q = c
            .prepare("SELECT id, user_id, status, created_at FROM queue_entries")
            .unwrap();
        for e in q
            .query_map([], |r| {
                Ok(EntryRow {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    status: r.get(2)?,
                    created_at: r.get(3)?,
                })
            })
            .unwrap()
        {
            let e = e.unwrap();
            s.entries.insert(e.id, e);
        }
        s
    }

    /// The rows of one user's tickets, newest first.
    pub fn tickets_of<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a TicketRow> + 'a {
        self.tickets.values().rev().filter(move |t| t.user == user)
    }
}

/// Reads, through the API of the server at `url`, what each user (by token) sees.
pub fn read_api(url: &str, tokens: &BTreeMap<String, String>) -> BTreeMap<String, ApiView> {
    let client = Client::builder(url)
        .timeout(Some(Duration::from_secs(30)))
        .build();
    let mut views = BTreeMap::new();
    for (user, token) in tokens {
        let me = client.with_token(token.as_str());
        let read_at = super::history::ms(super::history::now_us());
        let get = |path: &str| -> Value {
            let r = me.get(path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
            assert_eq!(r.status, 200, "GET {path} for {user}: {}", r.text());
            r.json().unwrap()
        };
        let list = |path: &str| get(path).as_array().cloned().unwrap_or_default();
        views.insert(
            user.clone(),
            ApiView {
                read_at,
                balance: get("/points")["balance"].as_i64().unwrap_or(-1),
                tickets: list("/tickets"),
                point_history: list("/point_history"),
                payment_history: list("/payment_history"),
            },
        );
    }
    views
}
