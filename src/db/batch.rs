//! Group commit, led by a caller when the writer is idle and by a writer thread under a burst.
//! A caller queues its write operation; if no batch is being run, it leads: it takes whatever
//! is queued (up to a bound) — its own operation first — runs each operation in its own
//! savepoint inside one `BEGIN IMMEDIATE` transaction on the process's write connection,
//! commits once (one fsync for the whole batch), and only then answers every caller in the
//! batch. So at light load a write costs one transaction and no hand-off to another thread.
//! Callers that arrive while a batch runs wait, each on its own channel (an answer wakes only
//! its caller). If operations queued up meanwhile, the leading caller does not go on (its own
//! client waits for it): it hands the lead to the writer thread, which runs batch after batch
//! while work is queued and then goes idle, so that under a burst one thread that does nothing
//! else keeps the write connection busy (as databases do for their logs).
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
use crossbeam_channel::{bounded, Sender};
use rusqlite::{Connection, TransactionBehavior};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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
    tell: Sender<Result<T>>,
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
        let _ = self.tell.send(out);
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

/// The queue of operations and who runs batches.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Box<dyn Job>>,
    /// A caller or the writer thread is running batches (or the writer is told to).
    leading: bool,
    /// The writer thread is told to lead (a caller handed the lead over).
    writer_leads: bool,
    /// The batcher is being dropped: the writer thread ends.
    stop: bool,
    /// Callers waiting for room in a full queue.
    waiting_for_room: usize,
}

/// What the callers and the writer thread share.
struct Shared {
    conn: SharedConn,
    checkpointer: Arc<Checkpointer>,
    clock: Arc<dyn Clock>,
    max_batch: usize,
    queue: Mutex<Queue>,
    /// Signalled when room is made in a full queue.
    room: Condvar,
    /// Signalled when the writer thread is told to lead, or to stop.
    writer: Condvar,
    stats: Counters,
}

/// Group commit on one write connection: the queue, and the writer thread for bursts.
pub(crate) struct Batcher {
    shared: Arc<Shared>,
    capacity: usize,
    wait: Duration,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Batcher {
    pub fn start(
        conn: SharedConn,
        checkpointer: Arc<Checkpointer>,
        clock: Arc<dyn Clock>,
        settings: GroupCommit,
        wait: Duration,
    ) -> Result<Batcher> {
        let shared = Arc::new(Shared {
            conn,
            checkpointer,
            clock,
            max_batch: settings.max_batch.max(1),
            queue: Mutex::new(Queue::default()),
            room: Condvar::new(),
            writer: Condvar::new(),
            stats: Counters::default(),
        });
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || writer.writer_thread())
            .map_err(|e| Error::internal(format!("cannot start the group-commit writer: {e}")))?;
        Ok(Batcher {
            shared,
            capacity: settings.queue_capacity.max(1),
            wait,
            thread: Some(thread),
        })
    }

    #[cfg(test)]
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.shared.lock()
    }

    /// Queues `op` and returns its answer, which comes only after its batch committed: led by
    /// this caller when no batch is running, else by whoever leads the batch it falls in.
    pub fn run<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&dyn Tx, Now) -> Result<T> + Send + 'static,
    {
        let (tell, told) = bounded(1);
        let job: Box<dyn Job> = Box::new(TypedJob {
            op: Some(op),
            out: None,
            tell,
        });
        let deadline = Instant::now() + self.wait;
        let shared = &*self.shared;
        let mut q = shared.lock();
        // Back-pressure: a full queue waits for room up to the busy timeout.
        while q.jobs.len() >= self.capacity {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Busy);
            }
            q.waiting_for_room += 1;
            q = shared
                .room
                .wait_timeout(q, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            q.waiting_for_room -= 1;
        }
        q.jobs.push_back(job);
        if !q.leading {
            // The writer is idle: this caller leads one batch (its job is the only one
            // queued), then hands over to the writer thread if more work came meanwhile.
            q.leading = true;
            shared.run_batches(q, false);
        } else {
            drop(q);
        }
        told.recv()
            .unwrap_or_else(|_| Err(Error::internal("a write operation was dropped")))
    }

    pub fn stats(&self) -> BatchStats {
        self.shared.stats.snapshot()
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.writer.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs batches while leading, from the queue `q` holds. A caller (`writer` false) runs
    /// one batch and then, if work is queued, hands the lead to the writer thread; the writer
    /// thread runs batches until the queue is empty.
    fn run_batches<'a>(&'a self, mut q: MutexGuard<'a, Queue>, writer: bool) {
        loop {
            let n = q.jobs.len().min(self.max_batch);
            let mut batch: Vec<Box<dyn Job>> = q.jobs.drain(..n).collect();
            if q.waiting_for_room > 0 {
                self.room.notify_all();
            }
            drop(q);
            self.run_and_answer(&mut batch);
            q = self.lock();
            if q.jobs.is_empty() {
                q.leading = false;
                q.writer_leads = false;
                return;
            }
            if !writer {
                q.writer_leads = true;
                drop(q);
                self.writer.notify_one();
                return;
            }
        }
    }

    /// The writer thread: leads whenever a caller hands the lead over, until the batcher is
    /// dropped.
    fn writer_thread(&self) {
        let mut q = self.lock();
        loop {
            while !q.writer_leads && !q.stop {
                q = self.writer.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            if q.writer_leads {
                self.run_batches(q, true);
                q = self.lock();
            } else {
                return;
            }
        }
    }

    /// Runs one batch and answers every operation of it.
    fn run_and_answer(&self, batch: &mut Vec<Box<dyn Job>>) {
        self.stats.record(batch.len());
        let commit = catch_unwind(AssertUnwindSafe(|| {
            let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            run_batch(&mut conn, &*self.clock, batch)
        }))
        .unwrap_or_else(|_| Err(Error::internal("running a batch panicked")));
        self.checkpointer.poke();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn batcher(dir: &std::path::Path) -> Batcher {
        let path = dir.join("batch.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (n INTEGER)")
            .unwrap();
        let checkpointer = Checkpointer::start(Connection::open(&path).unwrap()).unwrap();
        Batcher::start(
            Arc::new(Mutex::new(conn)),
            Arc::new(checkpointer),
            Arc::new(SystemClock),
            GroupCommit {
                max_batch: 64,
                queue_capacity: 256,
            },
            Duration::from_secs(5),
        )
        .unwrap()
    }

    #[test]
    fn a_lone_write_runs_on_its_callers_thread_in_a_batch_of_one() {
        let dir = tempfile::tempdir().unwrap();
        let b = batcher(dir.path());
        let ran_on = b
            .run(|c, _| {
                c.execute("INSERT INTO t (n) VALUES (1)", &[])?;
                Ok(std::thread::current().id())
            })
            .unwrap();
        assert_eq!(ran_on, std::thread::current().id(), "no hand-off");
        let s = b.stats();
        assert_eq!((s.batches, s.operations), (1, 1));
    }

    #[test]
    fn writes_that_arrive_during_a_batch_share_the_next_commit() {
        let dir = tempfile::tempdir().unwrap();
        let b = Arc::new(batcher(dir.path()));
        // Hold the write connection: the first leader waits for it with its batch of one,
        // while everyone else queues behind.
        let conn = b.shared.conn.clone();
        let held = conn.lock().unwrap();
        let writers: Vec<_> = (0..20)
            .map(|i| {
                let b = b.clone();
                std::thread::spawn(move || {
                    b.run(move |c, _| {
                        c.execute(
                            "INSERT INTO t (n) VALUES (?1)",
                            crate::db::sql::params![i as i64],
                        )
                    })
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.lock().jobs.len() < 19 {
            assert!(Instant::now() < deadline, "the writers did not queue");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(held);
        for w in writers {
            assert_eq!(w.join().unwrap().unwrap(), 1);
        }
        let s = b.stats();
        assert_eq!(s.operations, 20);
        assert_eq!(
            s.batches, 2,
            "one batch of 1, then one of the 19 that queued meanwhile"
        );
        let n: i64 = conn
            .lock()
            .unwrap()
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 20);
    }

    #[test]
    fn under_a_steady_stream_the_writer_thread_takes_the_lead_and_every_write_is_answered_once() {
        let dir = tempfile::tempdir().unwrap();
        let b = Arc::new(batcher(dir.path()));
        let ran_on = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let (b, ran_on) = (b.clone(), ran_on.clone());
                std::thread::spawn(move || {
                    for i in 0..300 {
                        let ran_on = ran_on.clone();
                        let n = b
                            .run(move |c, _| {
                                let name = std::thread::current().name().map(str::to_string);
                                ran_on.lock().unwrap().insert(name);
                                // A little work, so batches take time and work queues.
                                std::thread::sleep(Duration::from_micros(50));
                                c.execute(
                                    "INSERT INTO t (n) VALUES (?1)",
                                    crate::db::sql::params![(w * 1000 + i) as i64],
                                )
                            })
                            .unwrap();
                        assert_eq!(n, 1);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let ran_on = ran_on.lock().unwrap();
        assert!(
            ran_on.contains(&Some("group-commit".to_string())),
            "the writer thread led under the stream: {ran_on:?}"
        );
        assert!(
            ran_on.iter().any(|n| n.as_deref() != Some("group-commit")),
            "callers led when the writer was idle: {ran_on:?}"
        );
        let s = b.stats();
        assert_eq!(s.operations, 2400);
        assert!(s.batches < 2400, "some writes shared a commit: {s:?}");
        let (n, distinct): (i64, i64) = b
            .shared
            .conn
            .lock()
            .unwrap()
            .query_row("SELECT COUNT(*), COUNT(DISTINCT n) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, distinct), (2400, 2400), "every write ran exactly once");
    }
}
