//! booking patch: how long a read on a connection may wait, chosen by whoever reads it now (the
//! connection's thread reading a request's head, or the application reading its body).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a read may wait for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadTimeout {
    /// As long as it takes.
    Never,
    /// Until this instant (for everything read until it is changed): a deadline.
    Until(Instant),
    /// This long for each read: an inactivity timeout.
    Each(Duration),
}

/// Shared by a connection's read half and the code that decides how it may be read.
#[derive(Debug)]
pub(crate) struct ReadControl {
    timeout: Mutex<ReadTimeout>,
}

impl ReadControl {
    pub(crate) fn new() -> Arc<ReadControl> {
        Arc::new(ReadControl {
            timeout: Mutex::new(ReadTimeout::Never),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ReadTimeout> {
        self.timeout.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_timeout(&self, timeout: ReadTimeout) {
        *self.lock() = timeout;
    }

    pub(crate) fn timeout(&self) -> ReadTimeout {
        *self.lock()
    }
}
