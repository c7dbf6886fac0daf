//! Points: a wallet row per user plus an append-only ledger, written in the same transaction.
//! A wallet's balance always equals the sum of its ledger rows.

use crate::clock::from_millis;
use crate::config::Config;
use crate::db::sql::{params, stored_enum, Tx};
use crate::db::Now;
use crate::error::{Error, Result};
use crate::ids::{LedgerId, PaymentId, TicketId, UserId};
use crate::money::Points;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A wallet's balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The wallet's user.
    pub user_id: UserId,
    /// Points in it.
    pub balance: Points,
}

/// Why a balance changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LedgerKind {
    /// Points added.
    Charge,
    /// Points spent on a ticket (negative amount).
    Payment,
    /// Points given back.
    Refund,
}

stored_enum!(LedgerKind, "ledger kind", {
    LedgerKind::Charge => "charge",
    LedgerKind::Payment => "payment",
    LedgerKind::Refund => "refund",
});

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PointTransaction {
    /// Its id.
    pub id: LedgerId,
    /// charge, payment or refund.
    pub kind: LedgerKind,
    /// The change (negative for spending).
    pub amount: Points,
    /// The balance right after it.
    pub balance_after: Points,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

pub(crate) fn balance_of(c: &dyn Tx, user: UserId) -> Result<Points> {
    Ok(c.row(
        "SELECT balance FROM wallets WHERE user_id = ?1",
        params![user],
        |r| r.get(0),
    )?
    .unwrap_or(Points::ZERO))
}

/// The user's balance, with the wallet row locked until the transaction ends (made first, at 0,
/// if the user has none yet: on an engine with row locks two first charges then queue on it
/// instead of both reading "no wallet"). Every write that changes a user's money, or checks an
/// Idempotency-Key of theirs, takes this lock first.
pub(crate) fn lock(c: &dyn Tx, user: UserId) -> Result<Points> {
    c.execute(
        "INSERT INTO wallets (user_id, balance) VALUES (?1, 0) ON CONFLICT (user_id) DO NOTHING",
        params![user],
    )?;
    c.row_locked(
        "SELECT balance FROM wallets WHERE user_id = ?1",
        params![user],
        |r| r.get(0),
    )?
    .ok_or_else(|| Error::internal("the wallet just made is gone"))
}

/// Why a balance changes, with what its ledger row names.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reason {
    /// Points added.
    Charge,
    /// Points spent by this payment.
    Payment(PaymentId),
    /// Points given back for this (cancelled) ticket.
    Refund(TicketId),
}

/// Changes a balance by `delta` and writes its ledger row; the one place a balance changes.
pub(crate) fn apply(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    user: UserId,
    delta: Points,
    reason: Reason,
) -> Result<Points> {
    let (kind, payment, refunded) = match reason {
        Reason::Charge => (LedgerKind::Charge, None, None),
        Reason::Payment(p) => (LedgerKind::Payment, Some(p), None),
        Reason::Refund(t) => (LedgerKind::Refund, None, Some(t)),
    };
    let balance = lock(c, user)?;
    let over = Error::BalanceLimit {
        balance,
        max: cfg.max_balance,
    };
    let after = balance.checked_add(delta).ok_or(over)?;
    if after < Points::ZERO {
        return Err(Error::InsufficientPoints {
            balance,
            price: delta.checked_neg().unwrap_or(Points::ZERO),
        });
    }
    if delta > Points::ZERO && after > cfg.max_balance {
        return Err(Error::BalanceLimit {
            balance,
            max: cfg.max_balance,
        });
    }
    c.execute(
        "INSERT INTO wallets (user_id, balance) VALUES (?1, ?2)
         ON CONFLICT (user_id) DO UPDATE SET balance = excluded.balance",
        params![user, after],
    )?;
    c.execute(
        "INSERT INTO point_ledger
            (user_id, kind, amount, balance_after, payment_id, ticket_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![user, kind, delta, after, payment, refunded, now.ms],
    )?;
    Ok(after)
}

/// Adds `amount` points (1..=max charge) to the user's wallet.
pub(crate) fn charge(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    user: UserId,
    amount: Points,
) -> Result<Balance> {
    if amount <= Points::ZERO || amount > cfg.max_charge {
        return Err(Error::InvalidAmount(format!(
            "amount must be between 1 and {}",
            cfg.max_charge
        )));
    }
    let balance = apply(c, now, cfg, user, amount, Reason::Charge)?;
    Ok(Balance {
        user_id: user,
        balance,
    })
}

/// A user's ledger, newest first.
pub(crate) fn history(c: &dyn Tx, user: UserId) -> Result<Vec<PointTransaction>> {
    c.rows(
        "SELECT id, kind, amount, balance_after, created_at FROM point_ledger
         WHERE user_id = ?1 ORDER BY id DESC",
        params![user],
        |r| {
            Ok(PointTransaction {
                id: r.get(0)?,
                kind: r.get(1)?,
                amount: r.get(2)?,
                balance_after: r.get(3)?,
                created_at: from_millis(r.get(4)?),
            })
        },
    )
}
