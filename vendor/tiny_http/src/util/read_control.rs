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

/// What the application left unread of a request's body when it dropped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Unread {
    /// Nothing: the next request starts right after.
    Nothing,
    /// This many bytes of a body with a `Content-Length`.
    Bytes(u64),
    /// An unknown amount (a chunked body), or a body the client may never send (it waits for
    /// `100 Continue`): the connection cannot be reused.
    Unknown,
}

/// Shared by a connection's read half and the code that decides how it may be read.
#[derive(Debug)]
pub(crate) struct ReadControl {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    timeout: ReadTimeout,
    unread: Unread,
}

impl ReadControl {
    pub(crate) fn new() -> Arc<ReadControl> {
        Arc::new(ReadControl {
            state: Mutex::new(State {
                timeout: ReadTimeout::Never,
                unread: Unread::Nothing,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_timeout(&self, timeout: ReadTimeout) {
        self.lock().timeout = timeout;
    }

    pub(crate) fn timeout(&self) -> ReadTimeout {
        self.lock().timeout
    }

    /// Records what a body reader left unread (the larger of two reports counts).
    pub(crate) fn left_unread(&self, unread: Unread) {
        let mut state = self.lock();
        state.unread = state.unread.max(unread);
    }

    /// What the last body left unread, which is then forgotten.
    pub(crate) fn take_unread(&self) -> Unread {
        std::mem::replace(&mut self.lock().unread, Unread::Nothing)
    }
}
