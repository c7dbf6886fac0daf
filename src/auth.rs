//! Who is asking: queue tokens (HS256 JWTs that point at a queue entry) and the proofs the
//! library hands out once a token checks out. The database stays the truth; the token only
//! proves who is asking and which entry is theirs.
//!
//! [`Identity`] and [`Active`] can only be made by the library ([`crate::Booking::authorize`],
//! [`crate::Booking::authorize_active`]), and the operations take them instead of bare user ids,
//! so no caller can skip a guard. An [`Active`] proves the entry was active when it was made;
//! every write it guards checks again, inside its own transaction.

use crate::error::{Error, Result};
use crate::ids::{EntryId, UserId};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user (UUID).
    pub sub: String,
    /// The queue entry.
    pub eid: i64,
    /// The entry's sequence number (its place in line).
    pub seq: i64,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

/// Proof of a valid token (signature, HS256, lifetime): who is asking, and which queue entry is
/// theirs. The *identity* guard of the contract.
///
/// ```compile_fail
/// // Only the library makes proofs:
/// let forged = booking::Identity { user_id: booking::UserId::new_random(), entry_id: todo!() };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    user_id: UserId,
    entry_id: EntryId,
}

impl Identity {
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn new(user_id: UserId, entry_id: EntryId) -> Identity {
        Identity { user_id, entry_id }
    }

    /// The token's user.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The token's queue entry.
    pub fn entry_id(&self) -> EntryId {
        self.entry_id
    }
}

/// Proof of a valid token whose queue entry was active when the proof was made: the *active*
/// guard of the contract. Writes it guards check the entry again inside their transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Active(Identity);

impl Active {
    pub(crate) fn new(who: Identity) -> Active {
        Active(who)
    }
}

impl std::ops::Deref for Active {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0
    }
}

/// Signs and verifies tokens with one secret.
pub(crate) struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Signer {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the injectable clock, not the system time.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        Signer {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn issue(&self, claims: &Claims) -> Result<String> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).map_err(Error::internal)
    }

    /// Verifies signature, algorithm (HS256 only) and lifetime against `now_secs`.
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Identity> {
        let data = decode::<Claims>(token.trim(), &self.decoding, &self.validation)
            .map_err(|e| Error::Unauthorized(format!("invalid token: {e}")))?;
        let c = data.claims;
        if now_secs >= c.exp {
            return Err(Error::Unauthorized(
                "token has expired; ask for a new one".into(),
            ));
        }
        let user_id = UserId::parse(&c.sub)
            .map_err(|_| Error::Unauthorized("invalid token: bad subject".into()))?;
        let entry_id = EntryId::new(c.eid)
            .map_err(|_| Error::Unauthorized("invalid token: bad entry".into()))?;
        Ok(Identity { user_id, entry_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            sub: UserId::new_random().to_string(),
            eid: 7,
            seq: 7,
            iat: now,
            exp: now + 60,
        }
    }

    #[test]
    fn a_token_verifies_with_its_own_secret_only() {
        let a = Signer::new(b"secret-a-secret-a-secret-a-secret-a");
        let b = Signer::new(b"secret-b-secret-b-secret-b-secret-b");
        let t = a.issue(&claims(1000)).unwrap();
        let p = a.verify(&t, 1000).unwrap();
        assert_eq!(p.entry_id().get(), 7);
        assert_eq!(b.verify(&t, 1000).unwrap_err().code(), "unauthorized");
    }

    #[test]
    fn a_token_past_its_lifetime_is_rejected() {
        let a = Signer::new(b"k");
        let t = a.issue(&claims(1000)).unwrap();
        assert!(a.verify(&t, 1059).is_ok());
        assert_eq!(a.verify(&t, 1060).unwrap_err().code(), "unauthorized");
    }
}
