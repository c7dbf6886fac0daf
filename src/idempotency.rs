//! Idempotency keys: a keyed request is checked and recorded in the same write transaction as
//! the operation it guards, so a repeat always sees the first one finished.
//!
//! Only a request that succeeded consumes its key: a failed request changed nothing, so
//! retrying it with the same key runs it again (and may then succeed).

use crate::db::sql::{params, Tx};
use crate::db::Now;
use crate::error::{Error, Result};
use crate::ids::{IdempotencyKey, UserId};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Runs `op` under `key`: a first use runs it and records its answer; a repeat of the same
/// `request` replays the recorded answer; a different request under the same key is
/// `idempotency_key_reused`. Without a key, just runs `op`.
pub(crate) fn guarded<T: Serialize + DeserializeOwned>(
    c: &dyn Tx,
    now: Now,
    user: UserId,
    key: Option<&IdempotencyKey>,
    request: &str,
    op: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let Some(key) = key else {
        return op();
    };
    // Two requests with one key of one user queue here, so the second sees the first finished.
    crate::wallet::lock(c, user)?;
    let seen: Option<(String, String)> = c.row(
        "SELECT request, response FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
        params![user, *key],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if let Some((first, response)) = seen {
        if first != request {
            return Err(Error::IdempotencyKeyReused);
        }
        return serde_json::from_str(&response).map_err(Error::internal);
    }
    let out = op()?;
    let response = serde_json::to_string(&out).map_err(Error::internal)?;
    c.execute(
        "INSERT INTO idempotency_keys (user_id, key, request, response, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![user, *key, request, response, now.ms],
    )?;
    Ok(out)
}

/// Forgets keys older than `cutoff_ms`; returns how many.
pub(crate) fn sweep(c: &dyn Tx, cutoff_ms: i64) -> Result<usize> {
    c.execute(
        "DELETE FROM idempotency_keys WHERE created_at < ?1",
        params![cutoff_ms],
    )
}
