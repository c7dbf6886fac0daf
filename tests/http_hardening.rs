//! Clients that try to hold the server, against the patched tiny_http: each test names the
//! patch of `vendor/tiny_http/PATCHES.md` it proves.

mod support;

use booking::http::{self, Options};
use booking::{Booking, Config};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::{Client, Conn};

/// A server in this process with the given options, on a fresh database.
struct Served {
    addr: SocketAddr,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(options: Options) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let booking = Booking::open(dir.path().join("booking.db"), Config::default()).unwrap();
        booking.seed_demo_if_empty().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Arc::new(AtomicBool::new(false));
        let options = Options {
            sweep_every: None,
            ..options
        };
        let thread = {
            let (b, s) = (Arc::new(booking), shutdown.clone());
            std::thread::spawn(move || http::serve_with(listener, b, s, options).unwrap())
        };
        Served {
            addr,
            shutdown,
            thread: Some(thread),
            _dir: dir,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Patch "A bound on the connections open at once".
#[test]
fn connections_past_the_bound_wait_for_one_to_close() {
    let srv = Served::start(Options {
        max_connections: 4,
        ..Options::default().with_threads(2)
    });
    let addr = srv.addr;
    // Four keep-alive connections take every place.
    let mut held: Vec<Conn> = (0..4)
        .map(|_| {
            let mut c = Conn::open(addr);
            c.request("GET", "/healthz", &[], b"").expect(200, "");
            c
        })
        .collect();
    // A fifth connects (the kernel completes it) but is not served while they stay open ...
    let fifth = std::thread::spawn(move || Client::new(addr).get("/healthz").status);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!fifth.is_finished(), "served past the bound");
    // ... and is once one of them closes.
    drop(held.pop());
    assert_eq!(fifth.join().unwrap(), 200);
    // A burst of 40 clients through the 1 free place and the 3 that free up: all served.
    drop(held);
    let started = Instant::now();
    let burst: Vec<_> = (0..40)
        .map(|_| std::thread::spawn(move || Client::new(addr).get("/healthz").status))
        .collect();
    for c in burst {
        assert_eq!(c.join().unwrap(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
