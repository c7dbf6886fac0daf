//! Group commit: one writer thread owns a write connection, takes whatever write operations are
//! waiting (up to a bound), runs each in its own savepoint inside one `BEGIN IMMEDIATE`
//! transaction, commits once — one fsync for the whole batch — and only then answers every
//! caller in the batch.
//!
//! - A failing operation rolls back only its own savepoint and gets its own error.
//! - No answer precedes the commit that makes it durable; if the commit fails, every operation
//!   of the batch gets that error and none of its effects is visible.
//! - The queue is bounded: a caller waits up to the busy timeout for room, then gets `busy`.

use super::checkpoint::Checkpointer;
use super::sql::Tx;
use super::sqlite::SharedConn;
use super::Now;
use crate::clock::{to_millis, Clock};
use crate::config::GroupCommit;
use crate::error::{Error, Result};
use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender};
use rusqlite::{Connection, TransactionBehavior};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// One queued operation, type-erased.
trait Job: Send {
    /// Runs the operation on the open transaction; true if it succeeded.
    fn run(&mut self, conn: &Connection, now: Now) -> bool;
    /// Delivers the answer once the batch's fate is known (`Err` if the commit failed).
    fn answer(self: Box<Self>, commit: std::result::Result<(), &Error>);
}

struct TypedJob<T, F> {
    op: Option<F>,
    out: Option<Result<T>>,
    reply: Sender<Result<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnMut(&dyn Tx, Now) -> Result<T> + Send + 'static,
{
    fn run(&mut self, conn: &Connection, now: Now) -> bool {
        let mut op = self.op.take().expect("a job runs once");
        let out = catch_unwind(AssertUnwindSafe(|| op(conn as &dyn Tx, now)))
            .unwrap_or_else(|_| Err(Error::internal("a write operation panicked")));
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn answer(self: Box<Self>, commit: std::result::Result<(), &Error>) {
        let out = match (commit, self.out) {
            (Ok(()), Some(out)) => out,
            // The operation's own error stands: nothing of it was written either way.
            (Err(_), Some(Err(e))) => Err(e),
            (Err(e), _) => Err(clone_commit_error(e)),
            (Ok(()), None) => Err(Error::internal("a write operation did not run")),
        };
        let _ = self.reply.send(out);
    }
}

fn clone_commit_error(e: &Error) -> Error {
    match e {
        Error::Busy => Error::Busy,
        other => Error::internal(format!("commit failed: {other}")),
    }
}

/// How many operations the group-commit writer ran, in how many batches of which sizes: a
/// snapshot, for metrics and benchmark reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchStats {
    /// Batches committed (or failed).
    pub batches: u64,
    /// Operations run.
    pub operations: u64,
    /// Batches by size: `("1", n)`, `("2-3", n)`, … `("128+", n)`.
    pub by_size: Vec<(&'static str, u64)>,
}

/// The size classes of [`BatchStats::by_size`] (the last is open).
const BUCKETS: [&str; 8] = [
    "1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128+",
];

/// The writer's live counters.
#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    operations: AtomicU64,
    by_size: [AtomicU64; 8],
}

impl Counters {
    fn record(&self, n: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.operations.fetch_add(n as u64, Ordering::Relaxed);
        let bucket = (usize::BITS - n.max(1).leading_zeros() - 1).min(7) as usize;
        self.by_size[bucket].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> BatchStats {
        BatchStats {
            batches: self.batches.load(Ordering::Relaxed),
            operations: self.operations.load(Ordering::Relaxed),
            by_size: BUCKETS
                .iter()
                .zip(&self.by_size)
                .map(|(name, n)| (*name, n.load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

/// The writer: a queue and the thread that drains it.
pub(crate) struct Batcher {
    queue: Option<Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    wait: Duration,
    stats: Arc<Counters>,
}

impl Batcher {
    pub fn start(
        conn: SharedConn,
        checkpointer: Arc<Checkpointer>,
        clock: Arc<dyn Clock>,
        settings: GroupCommit,
        wait: Duration,
    ) -> Result<Batcher> {
        let (tx, rx) = bounded::<Box<dyn Job>>(settings.queue_capacity.max(1));
        let stats = Arc::new(Counters::default());
        let thread_stats = stats.clone();
        let max = settings.max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("booking-writer".into())
            .spawn(move || writer_loop(conn, &checkpointer, clock, rx, max, &thread_stats))
            .map_err(Error::internal)?;
        Ok(Batcher {
            queue: Some(tx),
            thread: Some(thread),
            wait,
            stats,
        })
    }

    /// Queues `op` and waits for its answer, which comes only after its batch committed.
    pub fn run<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&dyn Tx, Now) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = bounded(1);
        let job: Box<dyn Job> = Box::new(TypedJob {
            op: Some(op),
            out: None,
            reply,
        });
        let queue = self.queue.as_ref().expect("writer running");
        match queue.send_timeout(job, self.wait) {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => return Err(Error::Busy),
            Err(SendTimeoutError::Disconnected(_)) => {
                return Err(Error::internal("the writer thread has stopped"))
            }
        }
        answer
            .recv()
            .unwrap_or_else(|_| Err(Error::internal("the writer thread has stopped")))
    }

    pub fn stats(&self) -> BatchStats {
        self.stats.snapshot()
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.queue.take(); // disconnects: the writer drains what is queued, then stops
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer_loop(
    conn: SharedConn,
    checkpointer: &Checkpointer,
    clock: Arc<dyn Clock>,
    rx: Receiver<Box<dyn Job>>,
    max: usize,
    stats: &Counters,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        stats.record(batch.len());
        let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
        let commit = run_batch(&mut guard, &*clock, &mut batch);
        drop(guard);
        checkpointer.poke();
        for job in batch.drain(..) {
            job.answer(commit.as_ref().map(|_| ()));
        }
    }
}

/// Runs every job in its own savepoint of one transaction and commits.
fn run_batch(conn: &mut Connection, clock: &dyn Clock, batch: &mut [Box<dyn Job>]) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let step = |sql: &str| -> Result<()> {
        tx.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    for job in batch.iter_mut() {
        step("SAVEPOINT op")?;
        let now = Now {
            ms: to_millis(clock.now()),
        };
        if !job.run(&tx, now) {
            step("ROLLBACK TO op")?;
        }
        step("RELEASE op")?;
    }
    tx.commit()?;
    Ok(())
}
