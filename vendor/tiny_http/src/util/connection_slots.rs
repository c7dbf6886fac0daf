//! booking patch: a bound on the connections open at once.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How many connections are open, out of how many allowed.
pub(crate) struct ConnectionSlots {
    open: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

/// One open connection's place; dropping it frees the place.
pub(crate) struct Slot(Arc<ConnectionSlots>);

impl ConnectionSlots {
    pub(crate) fn new(max: usize) -> Arc<ConnectionSlots> {
        Arc::new(ConnectionSlots {
            open: Mutex::new(0),
            freed: Condvar::new(),
            max: max.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a free place; `None` once `closing()` is true.
    pub(crate) fn acquire(self: &Arc<Self>, closing: impl Fn() -> bool) -> Option<Slot> {
        let mut open = self.lock();
        loop {
            if closing() {
                return None;
            }
            if *open < self.max {
                *open += 1;
                return Some(Slot(self.clone()));
            }
            // The timeout is only a safety net: dropping a slot or the server notifies.
            open = self
                .freed
                .wait_timeout(open, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Wakes the waiting `acquire` (to look at its `closing()` again).
    pub(crate) fn wake(&self) {
        let _open = self.lock();
        self.freed.notify_all();
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        *self.lock()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.0.lock();
        *open -= 1;
        self.0.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectionSlots;

    #[test]
    fn a_slot_is_given_back_on_drop() {
        let slots = ConnectionSlots::new(2);
        let a = slots.acquire(|| false).unwrap();
        let _b = slots.acquire(|| false).unwrap();
        assert_eq!(slots.open(), 2);
        assert!(slots.acquire(|| true).is_none());
        drop(a);
        assert_eq!(slots.open(), 1);
        assert!(slots.acquire(|| false).is_some());
    }
}
