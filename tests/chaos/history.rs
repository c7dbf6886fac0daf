//! The history: every request the clients sent, with when it left, when its answer came (or
//! when the client gave up) and the answer — or `Unknown` when none came. Times are the
//! system's wall clock in microseconds, the clock the servers stamp `created_at`, `paid_at`
//! and `held_until` with (one kernel), so client and server times can be compared.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock microseconds since the Unix epoch.
pub type Micros = i64;

/// Now, in wall-clock microseconds.
pub fn now_us() -> Micros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The millisecond a wall-clock instant falls in (the servers' stored times are milliseconds,
/// truncated the same way).
pub fn ms(t: Micros) -> i64 {
    t.div_euclid(1000)
}

/// An RFC 3339 time of an answer, in milliseconds.
pub fn parse_ms(v: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// One operation of the contract, with what the request carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `POST /token`, for a new user (`None`) or a known one.
    Enter { user: Option<String> },
    /// `GET /token`.
    Poll,
    /// `GET /concerts`, `GET /concerts/{id}`, `GET /concerts/{id}:{id}`.
    Catalog { path: String },
    /// `POST /tickets`: `many` is the `seat_ids` form.
    Hold {
        showtime: i64,
        seats: Vec<i64>,
        many: bool,
    },
    /// `DELETE /tickets/{id}`.
    Release { ticket: i64 },
    /// `POST /tickets/{id}/extend`.
    Extend { ticket: i64 },
    /// `POST /points`.
    Charge { amount: i64, key: Option<String> },
    /// `POST /payments`: `many` is the `ticket_ids` form.
    Pay {
        tickets: Vec<i64>,
        many: bool,
        key: Option<String>,
    },
    /// `POST /tickets/{id}/cancel`.
    Cancel { ticket: i64, key: Option<String> },
    /// `GET /tickets`, `/points`, `/point_history`, `/payment_history`.
    Read { path: String },
}

impl Op {
    /// The Idempotency-Key sent, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Op::Charge { key, .. } | Op::Pay { key, .. } | Op::Cancel { key, .. } => key.as_deref(),
            _ => None,
        }
    }

    /// What the server compares under one key: the same fingerprint replays, another one is
    /// `422 idempotency_key_reused` (the two forms of a payment, and any order of its tickets,
    /// are one request).
    pub fn fingerprint(&self) -> String {
        match self {
            Op::Charge { amount, .. } => format!("charge {amount}"),
            Op::Pay { tickets, .. } => {
                let mut t = tickets.clone();
                t.sort_unstable();
                format!("pay {t:?}")
            }
            Op::Cancel { ticket, .. } => format!("cancel {ticket}"),
            other => format!("{other:?}"),
        }
    }

    /// Whether the request may change the database.
    pub fn writes(&self) -> bool {
        !matches!(self, Op::Poll | Op::Catalog { .. } | Op::Read { .. })
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx answer and its body.
    Ok { status: u16, body: Value },
    /// An error answer: the status and the contract's code.
    Fail { status: u16, code: String },
    /// No answer: no connection, a broken one, or no answer in time. It may or may not have
    /// been applied, at any time from when it was sent on.
    Unknown { why: String },
}

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Its place in the history.
    pub id: usize,
    /// The client thread that sent it.
    pub client: usize,
    /// The user (the token's), if it had one.
    pub user: Option<String>,
    /// The queue entry its token points at.
    pub entry: Option<i64>,
    /// Which server process it went to (`s1#3`: server 1, third start).
    pub server: String,
    /// What it asked.
    #[serde(flatten)]
    pub op: Op,
    /// When it was sent.
    pub invoke: Micros,
    /// When its answer came, or the client gave up.
    pub complete: Micros,
    /// The answer.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Record {
    /// A 2xx answer's body.
    pub fn ok(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Ok { body, .. } => Some(body),
            _ => None,
        }
    }

    /// Whether it may have been applied without the client knowing: no answer, or a 5xx
    /// other than `503` (which must not happen, and is not trusted to have changed nothing).
    pub fn unknown(&self) -> bool {
        match &self.outcome {
            Outcome::Unknown { .. } => true,
            Outcome::Fail { status, .. } => *status >= 500 && *status != 503,
            Outcome::Ok { .. } => false,
        }
    }

    /// Whether the answer says it changed nothing (an error answer: `4xx`, or `503 busy`).
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. }) && !self.unknown()
    }

    /// The status of the answer, if one came.
    pub fn status(&self) -> Option<u16> {
        match &self.outcome {
            Outcome::Ok { status, .. } | Outcome::Fail { status, .. } => Some(*status),
            Outcome::Unknown { .. } => None,
        }
    }
}

/// The recorder the clients share.
#[derive(Default)]
pub struct Recorder {
    records: Mutex<Vec<Record>>,
}

impl Recorder {
    /// Appends a record (its id is its place).
    pub fn push(&self, mut r: Record) -> usize {
        let mut all = self.records.lock().unwrap();
        r.id = all.len();
        all.push(r);
        all.len() - 1
    }

    /// Everything recorded, in the order recorded.
    pub fn take(&self) -> Vec<Record> {
        std::mem::take(&mut *self.records.lock().unwrap())
    }
}

/// The entry id a token points at (its `eid` claim), read without checking the signature.
pub fn token_entry(token: &str) -> Option<i64> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["eid"].as_i64()
}

/// A record as one line of JSON (the history file).
pub fn to_line(r: &Record) -> String {
    serde_json::to_string(r).unwrap_or_default()
}
