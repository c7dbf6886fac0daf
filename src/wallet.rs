//! Points: a wallet row per user plus an append-only ledger, written in the same transaction.
//! A wallet's balance always equals the sum of its ledger rows.

use crate::clock::from_millis;
use crate::config::Config;
use crate::db::{Now, OptionalRow};
use crate::error::{Error, Result};
use crate::ids::{PaymentId, UserId};
use crate::Booking;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

/// A wallet's balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The wallet's user.
    pub user_id: UserId,
    /// Points in it.
    pub balance: i64,
}

/// Why a balance changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerKind {
    /// Points added.
    Charge,
    /// Points spent on a ticket (negative amount).
    Payment,
    /// Points given back.
    Refund,
}

impl LedgerKind {
    fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Charge => "charge",
            LedgerKind::Payment => "payment",
            LedgerKind::Refund => "refund",
        }
    }
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PointTransaction {
    /// Its id.
    pub id: i64,
    /// charge, payment or refund.
    pub kind: LedgerKind,
    /// The change (negative for spending).
    pub amount: i64,
    /// The balance right after it.
    pub balance_after: i64,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

pub(crate) fn balance_of(c: &Connection, user: UserId) -> Result<i64> {
    Ok(
        c.prepare_cached("SELECT balance FROM wallets WHERE user_id = ?1")?
            .query_row([user], |r| r.get(0))
            .optional_row()?
            .unwrap_or(0),
    )
}

/// Changes a balance by `delta` and writes its ledger row; the one place a balance changes.
pub(crate) fn apply(
    c: &Connection,
    now: Now,
    cfg: &Config,
    user: UserId,
    delta: i64,
    kind: LedgerKind,
    payment: Option<PaymentId>,
) -> Result<i64> {
    let balance = balance_of(c, user)?;
    let after = balance.checked_add(delta).ok_or(Error::BalanceLimit {
        balance,
        max: cfg.max_balance,
    })?;
    if after < 0 {
        return Err(Error::InsufficientPoints {
            balance,
            price: -delta,
        });
    }
    if delta > 0 && after > cfg.max_balance {
        return Err(Error::BalanceLimit {
            balance,
            max: cfg.max_balance,
        });
    }
    c.prepare_cached(
        "INSERT INTO wallets (user_id, balance) VALUES (?1, ?2)
         ON CONFLICT (user_id) DO UPDATE SET balance = excluded.balance",
    )?
    .execute(params![user, after])?;
    c.prepare_cached(
        "INSERT INTO point_ledger (user_id, kind, amount, balance_after, payment_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![user, kind.as_str(), delta, after, payment, now.ms])?;
    Ok(after)
}

/// Adds `amount` points (1..=max charge) to the user's wallet.
pub(crate) fn charge(
    c: &Connection,
    now: Now,
    cfg: &Config,
    user: UserId,
    amount: i64,
) -> Result<Balance> {
    if amount <= 0 || amount > cfg.max_charge {
        return Err(Error::InvalidAmount(format!(
            "amount must be between 1 and {}",
            cfg.max_charge
        )));
    }
    let balance = apply(c, now, cfg, user, amount, LedgerKind::Charge, None)?;
    Ok(Balance {
        user_id: user,
        balance,
    })
}

pub(crate) fn history(c: &Connection, user: UserId) -> Result<Vec<PointTransaction>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, kind, amount, balance_after, created_at FROM point_ledger
         WHERE user_id = ?1 ORDER BY id DESC",
    )?;
    let rows = stmt.query_map([user], |r| {
        Ok(PointTransaction {
            id: r.get(0)?,
            kind: match r.get_ref(1)?.as_str()? {
                "charge" => LedgerKind::Charge,
                "payment" => LedgerKind::Payment,
                _ => LedgerKind::Refund,
            },
            amount: r.get(2)?,
            balance_after: r.get(3)?,
            created_at: from_millis(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Booking {
    /// Charges `amount` points to the user's wallet. With an idempotency key, a repeat of the
    /// same request replays the first answer and changes nothing.
    pub fn charge(&self, user: UserId, amount: i64, key: Option<&str>) -> Result<Balance> {
        self.keyed_write(
            user,
            key,
            format!("charge amount={amount}"),
            move |c, now, cfg| charge(c, now, cfg, user, amount),
        )
    }

    /// The user's balance (0 for a user who never charged).
    pub fn balance(&self, user: UserId) -> Result<Balance> {
        self.db.read(|c, _| {
            Ok(Balance {
                user_id: user,
                balance: balance_of(c, user)?,
            })
        })
    }

    /// The user's ledger, newest first.
    pub fn point_history(&self, user: UserId) -> Result<Vec<PointTransaction>> {
        self.db.read(|c, _| history(c, user))
    }
}
