//! WAL checkpoints off the request path. A checkpoint copies committed pages from the WAL back
//! into the database file and syncs it; SQLite's auto-checkpoint does that inside whichever
//! commit crosses the threshold, which then pays for everyone (it set payments' p99). Here a
//! thread with its own connection runs `PRAGMA wal_checkpoint(PASSIVE)` — which never blocks
//! readers or the writer — at most every [`INTERVAL`] while commits keep arriving. The write
//! connection keeps a large auto-checkpoint threshold only as a backstop, so the WAL stays
//! bounded even if this thread falls behind.

use crate::error::{Error, Result};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use rusqlite::Connection;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The shortest time between two background checkpoints.
pub const INTERVAL: Duration = Duration::from_millis(25);
/// WAL pages after which a commit checkpoints inline anyway (the backstop).
pub const BACKSTOP_PAGES: u32 = 20_000;

/// The checkpoint thread; dropping it stops the thread.
pub(crate) struct Checkpointer {
    poke: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on `conn` (a connection of its own to the same file).
    pub fn start(conn: Connection) -> Result<Checkpointer> {
        let (poke, pokes) = bounded(1);
        let thread = std::thread::Builder::new()
            .name("booking-checkpoint".into())
            .spawn(move || run(conn, pokes))
            .map_err(Error::internal)?;
        Ok(Checkpointer {
            poke: Some(poke),
            thread: Some(thread),
        })
    }

    /// Tells the thread that something was committed (never blocks; pokes coalesce).
    pub fn poke(&self) {
        if let Some(p) = &self.poke {
            let _ = p.try_send(());
        }
    }
}

fn run(conn: Connection, pokes: Receiver<()>) {
    let mut due = false;
    loop {
        if !due && pokes.recv().is_err() {
            return; // the handle was dropped
        }
        // A failed checkpoint (another one running, a reader in the way) is simply retried
        // after the next commit; the backstop bounds the WAL meanwhile.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        // Rest for INTERVAL, remembering whether commits came meanwhile; a dropped handle ends
        // the rest at once (so a short-lived process does not wait for it on exit).
        due = false;
        let deadline = Instant::now() + INTERVAL;
        loop {
            match pokes.recv_deadline(deadline) {
                Ok(()) => due = true,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.poke.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
