//! Abuse limits of the HTTP layer (they are about addresses, not about the rules): a token
//! bucket per client address on `POST /token`, in bounded memory.
//!
//! The limiter is per process: behind a load balancer spreading clients over N servers, an
//! address may enter up to N times the rate. The memory is bounded twice: addresses whose
//! bucket has refilled are forgotten (`retain_recent`, from the background thread every few
//! seconds), and past [`MAX_TRACKED`] addresses the whole table is dropped (a flood of new
//! addresses then gets one fresh burst each, never an unbounded table).

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

/// The most addresses remembered at once.
pub const MAX_TRACKED: usize = 1_000_000;

/// New entries per minute per client address.
pub struct EnterLimit {
    quota: Option<Quota>,
    limiter: RwLock<Option<DefaultKeyedRateLimiter<IpAddr>>>,
    clock: DefaultClock,
}

impl EnterLimit {
    /// `per_minute` entries per minute per address, in a burst of up to as many; 0: no limit.
    pub fn new(per_minute: u32) -> EnterLimit {
        let quota = NonZeroU32::new(per_minute).map(Quota::per_minute);
        EnterLimit {
            quota,
            limiter: RwLock::new(quota.map(RateLimiter::keyed)),
            clock: DefaultClock::default(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Option<DefaultKeyedRateLimiter<IpAddr>>> {
        self.limiter.read().unwrap_or_else(|p| p.into_inner())
    }

    /// `Ok` if `addr` may enter now; else how long until it may.
    pub fn check(&self, addr: IpAddr) -> Result<(), Duration> {
        match &*self.read() {
            None => Ok(()),
            Some(l) => l
                .check_key(&addr)
                .map_err(|not_until| not_until.wait_time_from(self.clock.now())),
        }
    }

    /// Forgets addresses whose bucket is full again; starts afresh past [`MAX_TRACKED`].
    pub fn tidy(&self) {
        let too_many = match &*self.read() {
            None => return,
            Some(l) => {
                l.retain_recent();
                l.shrink_to_fit();
                l.len() > MAX_TRACKED
            }
        };
        if too_many {
            *self.limiter.write().unwrap_or_else(|p| p.into_inner()) =
                self.quota.map(RateLimiter::keyed);
        }
    }

    /// Addresses remembered now.
    pub fn tracked(&self) -> usize {
        self.read().as_ref().map_or(0, |l| l.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_quota_then_waits_and_others_are_unaffected() {
        let l = EnterLimit::new(30);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..30 {
            assert!(l.check(a).is_ok());
        }
        let wait = l.check(a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        assert!(l.check(b).is_ok());
        assert_eq!(l.tracked(), 2);
    }

    #[test]
    fn no_limit_without_a_rate() {
        let l = EnterLimit::new(0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10_000 {
            assert!(l.check(a).is_ok());
        }
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn memory_stays_bounded_however_many_addresses_arrive() {
        let l = EnterLimit::new(1_000);
        for i in 0..50_000u32 {
            let _ = l.check(IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!(l.tracked(), 50_000);
        // One entry each leaves their buckets nearly full: after a moment they are forgotten.
        // governor forgets a key two emission intervals (2 × 60 ms at 1,000 a minute) after its
        // last use; 100 ms passed only when the loop itself was slow (a debug build).
        std::thread::sleep(Duration::from_millis(250));
        l.tidy();
        assert_eq!(l.tracked(), 0);
    }
}
