//! Group commit, led by the callers themselves: a caller queues its write operation and, if no
//! batch is being run, becomes the leader — it takes whatever operations are queued (up to a
//! bound), runs each in its own savepoint inside one `BEGIN IMMEDIATE` transaction on the
//! process's write connection, commits once — one fsync for the whole batch — and only then
//! answers every caller in the batch. Callers that arrive while a leader runs wait, each on its
//! own channel (an answer wakes only its caller). A leader goes on with what was queued
//! meanwhile for a short while ([`LEAD_ON_FOR`]), then hands the lead to the caller at the front
//! of the queue. At light load a write costs one transaction and no hand-off to another thread;
//! under a burst, one commit still serves many (as databases do for their logs).
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
    /// Tells the job's caller, still waiting with the job at the front of the queue, to lead
    /// the next batch.
    fn hand_lead(&self);
}

/// What a waiting caller is told: its answer, or to lead the next batch.
enum Told<T> {
    Answer(Result<T>),
    Lead,
}

struct TypedJob<T, F> {
    op: Option<F>,
    out: Option<Result<T>>,
    tell: Sender<Told<T>>,
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
        let _ = self.tell.send(Told::Answer(out));
    }

    fn hand_lead(&self) {
        let _ = self.tell.send(Told::Lead);
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

/// The queue of operations and whether a leader is running a batch.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Box<dyn Job>>,
    /// A leader is running batches (or has been told to and is on its way).
    leading: bool,
    /// Callers waiting for room in a full queue.
    waiting_for_room: usize,
}

/// How long a leader whose own operation is answered goes on leading while operations are
/// queued, before it hands the lead to the caller at the front of the queue. Handing the lead
/// over wakes another thread, which on a busy machine may wait a scheduling slice before it
/// runs: a leader that goes on a little keeps the write connection busy meanwhile, at the cost
/// of at most this much on its own caller's answer.
const LEAD_ON_FOR: Duration = Duration::from_micros(1500);

/// Group commit on one write connection: the queue, and what a leader needs.
pub(crate) struct Batcher {
    conn: SharedConn,
    checkpointer: Arc<Checkpointer>,
    clock: Arc<dyn Clock>,
    max_batch: usize,
    capacity: usize,
    wait: Duration,
    queue: Mutex<Queue>,
    /// Signalled when room is made in a full queue.
    room: Condvar,
    stats: Counters,
}

impl Batcher {
    pub fn start(
        conn: SharedConn,
        checkpointer: Arc<Checkpointer>,
        clock: Arc<dyn Clock>,
        settings: GroupCommit,
        wait: Duration,
    ) -> Result<Batcher> {
        Ok(Batcher {
            conn,
            checkpointer,
            clock,
            max_batch: settings.max_batch.max(1),
            capacity: settings.queue_capacity.max(1),
            wait,
            queue: Mutex::new(Queue::default()),
            room: Condvar::new(),
            stats: Counters::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `op` and returns its answer, which comes only after its batch committed: led by
    /// this caller when no batch is running, else by whoever leads the batch it falls in.
    pub fn run<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&dyn Tx, Now) -> Result<T> + Send + 'static,
    {
        // Room for an answer and a call to lead: a caller is told to lead only while its job
        // is queued, and answered only once it ran.
        let (tell, told) = bounded(2);
        let job: Box<dyn Job> = Box::new(TypedJob {
            op: Some(op),
            out: None,
            tell,
        });
        let deadline = Instant::now() + self.wait;
        let mut q = self.lock();
        // Back-pressure: a full queue waits for room up to the busy timeout.
        while q.jobs.len() >= self.capacity {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Busy);
            }
            q.waiting_for_room += 1;
            q = self
                .room
                .wait_timeout(q, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            q.waiting_for_room -= 1;
        }
        q.jobs.push_back(job);
        let lead_now = !q.leading;
        q.leading = true;
        drop(q);
        if lead_now {
            self.lead();
        }
        loop {
            match told.recv() {
                Ok(Told::Answer(out)) => return out,
                Ok(Told::Lead) => self.lead(),
                // The sender lives in the job, which is answered before it is dropped.
                Err(_) => return Err(Error::internal("a write operation was dropped")),
            }
        }
    }

    /// Leads: runs the queued operations in batches until the queue is empty, or until this
    /// caller's own operation is answered and it has led for [`LEAD_ON_FOR`] — then it hands
    /// the lead to the caller at the front of the queue. The caller's own job is among the
    /// first batch (it is at the front of the queue when it is told to lead).
    fn lead(&self) {
        let started = Instant::now();
        let mut q = self.lock();
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
                return;
            }
            if started.elapsed() >= LEAD_ON_FOR {
                if let Some(next) = q.jobs.front() {
                    next.hand_lead();
                }
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

    pub fn stats(&self) -> BatchStats {
        self.stats.snapshot()
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
        let conn = b.conn.clone();
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
    fn under_a_steady_stream_the_lead_moves_between_callers_and_every_write_is_answered_once() {
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
                                ran_on.lock().unwrap().insert(std::thread::current().id());
                                // A little work, so a leader's batches take time.
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
        let s = b.stats();
        assert_eq!(s.operations, 2400);
        assert!(s.batches < 2400, "some writes shared a commit: {s:?}");
        assert!(
            ran_on.lock().unwrap().len() > 1,
            "the lead passed from one caller to another"
        );
        let (n, distinct): (i64, i64) = b
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
