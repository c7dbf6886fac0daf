//! Several real `booking-server` processes on one database file, and the nemesis that kills
//! (`kill -9`) and restarts them and stops (`SIGSTOP`) and resumes (`SIGCONT`) them.
//!
//! A restarted server listens on a new port, never one this run used before: a client's
//! request to the old one is refused instead of reaching the new process (the client library
//! sends a request once more when a connection breaks before the answer; to a new process on
//! the same port that would run one request twice without the history knowing).

use super::history::{now_us, Micros};
use crate::support::Proc;
use rand::Rng;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a server process is doing, as far as the nemesis made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Up,
    Stopped,
    Down,
}

struct Slot {
    proc: Option<Proc>,
    url: String,
    health: Health,
    generation: u32,
}

/// One thing the nemesis did.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: Micros,
    pub server: usize,
    pub what: String,
}

/// The servers of one run.
pub struct Cluster {
    db: PathBuf,
    flags: Vec<Vec<String>>,
    slots: Mutex<Vec<Slot>>,
    ports: Mutex<BTreeSet<u16>>,
    pub events: Mutex<Vec<Event>>,
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status();
}

impl Cluster {
    /// Starts one server per entry of `flags`, each with those flags, on `db`.
    pub fn start(db: &Path, flags: Vec<Vec<String>>) -> Cluster {
        let c = Cluster {
            db: db.to_path_buf(),
            slots: Mutex::new(Vec::new()),
            ports: Mutex::new(BTreeSet::new()),
            events: Mutex::new(Vec::new()),
            flags,
        };
        for i in 0..c.flags.len() {
            let proc = c.spawn(i);
            let url = format!("http://{}", proc.addr);
            c.slots.lock().unwrap().push(Slot {
                proc: Some(proc),
                url,
                health: Health::Up,
                generation: 1,
            });
        }
        c
    }

    /// A server process on a port this run has not used.
    fn spawn(&self, i: usize) -> Proc {
        let args: Vec<&str> = self.flags[i].iter().map(String::as_str).collect();
        loop {
            let mut p = Proc::spawn(&self.db, &args);
            if self.ports.lock().unwrap().insert(p.addr.port()) {
                return p;
            }
            p.kill9();
        }
    }

    fn event(&self, server: usize, what: String) {
        self.events.lock().unwrap().push(Event {
            at: now_us(),
            server,
            what,
        });
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// A server for a request, at random among those not known dead (a stopped one looks
    /// alive to clients): its label (`s1#2`) and URL.
    pub fn pick(&self, rng: &mut impl Rng) -> Option<(String, String)> {
        let slots = self.slots.lock().unwrap();
        let live: Vec<(usize, &Slot)> = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.health != Health::Down)
            .collect();
        if live.is_empty() {
            return None;
        }
        let (i, s) = live[rng.random_range(0..live.len())];
        Some((format!("s{i}#{}", s.generation), s.url.clone()))
    }

    /// The URL of a live server (for reads after the run).
    pub fn url(&self, i: usize) -> String {
        self.slots.lock().unwrap()[i].url.clone()
    }

    /// `kill -9` server `i` (clients stop choosing it), and start it again on the same file
    /// after `down`.
    pub fn crash(&self, i: usize, down: Duration) {
        let proc = {
            let mut slots = self.slots.lock().unwrap();
            slots[i].health = Health::Down;
            slots[i].proc.take()
        };
        if let Some(mut p) = proc {
            p.kill9();
        }
        self.event(i, "kill -9".into());
        std::thread::sleep(down);
        let p = self.spawn(i);
        let mut slots = self.slots.lock().unwrap();
        slots[i].url = format!("http://{}", p.addr);
        slots[i].proc = Some(p);
        slots[i].health = Health::Up;
        slots[i].generation += 1;
        drop(slots);
        self.event(i, format!("restarted after {down:?}"));
    }

    /// `SIGSTOP` server `i` for `pause`, then `SIGCONT`.
    pub fn pause(&self, i: usize, pause: Duration) {
        let pid = {
            let mut slots = self.slots.lock().unwrap();
            slots[i].health = Health::Stopped;
            slots[i].proc.as_ref().map(|p| p.child.id())
        };
        let Some(pid) = pid else { return };
        signal(pid, "STOP");
        self.event(i, "SIGSTOP".into());
        std::thread::sleep(pause);
        signal(pid, "CONT");
        self.slots.lock().unwrap()[i].health = Health::Up;
        self.event(i, format!("SIGCONT after {pause:?}"));
    }

    /// Stops every server cleanly (`SIGTERM`; `kill -9` if one does not exit within 15 s).
    pub fn stop_all(&self) {
        let procs: Vec<Proc> = self
            .slots
            .lock()
            .unwrap()
            .iter_mut()
            .filter_map(|s| {
                s.health = Health::Down;
                s.proc.take()
            })
            .collect();
        for mut p in procs {
            let pid = p.child.id();
            signal(pid, "CONT");
            signal(pid, "TERM");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        p.kill9();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }

    /// The nemesis: until `deadline`, every 0.5–2 s, one server (at random) is killed and
    /// restarted (down for 0.2–1 s) or stopped (0.5–3 s, now and then 5.5–7 s), in turn; one
    /// fault at a time.
    pub fn nemesis(&self, deadline: Instant, rng: &mut impl Rng) {
        for round in 0.. {
            let wait = Duration::from_millis(rng.random_range(500..2_000));
            if Instant::now() + wait >= deadline {
                return;
            }
            std::thread::sleep(wait);
            let i = rng.random_range(0..self.len());
            if round % 2 == 0 {
                self.crash(i, Duration::from_millis(rng.random_range(200..1_000)));
            } else {
                // The first pause outlasts most clients' timeout, so some requests surely end
                // unknown (and are answered later, or not at all); every fourth one outlasts
                // the busy timeout (5 s), so a stopped server holding the write lock makes
                // the others' writes fail with `503 busy`.
                let ms = match round {
                    1 => 2_500,
                    r if r % 8 == 7 => rng.random_range(5_500..7_000),
                    _ => rng.random_range(500..3_000),
                };
                self.pause(i, Duration::from_millis(ms));
            }
        }
    }
}
