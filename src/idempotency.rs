//! Idempotency keys: a keyed request is checked and recorded in the same write transaction as
//! the operation it guards, so a repeat always sees the first one finished.
//!
//! Only a request that succeeded consumes its key: a failed request changed nothing, so
//! retrying it with the same key runs it again (and may then succeed).

use crate::config::Config;
use crate::db::{Now, OptionalRow};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::Booking;
use rusqlite::{params, Connection};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Checks that a key is 1..=255 visible ASCII characters.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| (0x21..=0x7e).contains(&b))
    {
        return Err(Error::InvalidRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(())
}

/// Runs `op` under `key`: a first use runs it and records its answer; a repeat of the same
/// `request` replays the recorded answer; a different request under the same key is
/// `idempotency_key_reused`. Without a key, just runs `op`.
pub(crate) fn guarded<T: Serialize + DeserializeOwned>(
    c: &Connection,
    now: Now,
    user: UserId,
    key: Option<&str>,
    request: &str,
    op: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let Some(key) = key else {
        return op();
    };
    validate_key(key)?;
    let seen: Option<(String, String)> = c
        .prepare_cached(
            "SELECT request, response FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
        )?
        .query_row(params![user, key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional_row()?;
    if let Some((first, response)) = seen {
        if first != request {
            return Err(Error::IdempotencyKeyReused);
        }
        return serde_json::from_str(&response).map_err(Error::internal);
    }
    let out = op()?;
    let response = serde_json::to_string(&out).map_err(Error::internal)?;
    c.prepare_cached(
        "INSERT INTO idempotency_keys (user_id, key, request, response, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![user, key, request, response, now.ms])?;
    Ok(out)
}

impl Booking {
    /// Runs a request write guarded by an optional Idempotency-Key, on the request write path
    /// (group commit when on). `request` fingerprints the request: same key and same
    /// fingerprint replay; same key, other fingerprint is `idempotency_key_reused`.
    pub(crate) fn keyed_write<T, F>(
        &self,
        user: UserId,
        key: Option<&str>,
        request: String,
        op: F,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(&Connection, Now, &Config) -> Result<T> + Send + 'static,
    {
        let (cfg, key) = (self.cfg.clone(), key.map(str::to_owned));
        self.db.write_op(move |c, now| {
            guarded(c, now, user, key.as_deref(), &request, || op(c, now, &cfg))
        })
    }
}

/// Forgets keys older than `cutoff_ms`; returns how many.
pub(crate) fn sweep(c: &Connection, cutoff_ms: i64) -> Result<usize> {
    Ok(c.execute(
        "DELETE FROM idempotency_keys WHERE created_at < ?1",
        [cutoff_ms],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(validate_key("order-42").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("has space").is_err());
        assert!(validate_key(&"k".repeat(256)).is_err());
        assert!(validate_key(&"k".repeat(255)).is_ok());
    }
}
