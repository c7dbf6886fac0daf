//! The HTTP layer (feature `server`): the only module that knows HTTP and JSON. It routes,
//! checks the guards, parses bodies, calls the library once per request and formats the answer
//! (API.md §3). Every rule stays in the library.
//!
//! ```no_run
//! use std::sync::{atomic::AtomicBool, Arc};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let booking = Arc::new(booking::Booking::open("booking.db", booking::Config::default())?);
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let shutdown = Arc::new(AtomicBool::new(false)); // set it to stop serving
//! booking::http::serve(listener, booking, shutdown)?;
//! # Ok(()) }
//! ```
//!
//! # Threads and limits
//!
//! tiny_http (vendored with patches, see `vendor/tiny_http/PATCHES.md`) accepts connections on
//! its own thread and reads each open connection on a thread of its own, at most
//! `max_connections` at once (further connections wait in the kernel's accept queue until one
//! closes); it queues complete requests. It keeps accepting through accept errors
//! (`ECONNABORTED`, `EMFILE`...), gives a client `head_timeout` to send a request's head
//! (`408`, then the connection is closed) and a keep-alive connection `idle_timeout` to start
//! its next request, so a silent or byte-at-a-time client holds a connection thread only that
//! long; it refuses an ambiguous body length (`400`: two `Content-Length`s that disagree,
//! `Content-Length` with `Transfer-Encoding`...), and throws away up to 1 MiB of a body that no
//! one read, closing the connection after the answer when more is left. On top of that:
//! - a fixed pool of `threads` workers takes requests from the queue and answers them, so the
//!   work in flight — database connections, memory — is bounded whatever the load;
//! - tiny_http reads bodies of up to 1 KiB before queueing; a request whose body still has to be
//!   read from the socket (larger, chunked, `Expect: 100-continue`) goes to a small separate
//!   body pool, so a client that sends its body slowly can pin a body thread (each read waits
//!   at most 30 s for data) but never a worker;
//! - bodies are read through a 64 KiB limit (`413 payload_too_large`);
//! - accepted sockets inherit a send timeout and `TCP_NODELAY` from the listener, so a client
//!   that never reads its answer frees its worker after the timeout;
//! - a panic in a handler becomes `500 internal` and the worker goes on.

mod assets;
mod front;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handlers;
mod input;
mod limits;
mod metrics;
mod reply;
mod router;
mod seatmaps;
mod worker;

use crate::Booking;
use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The largest request body accepted (64 KiB); larger ones get `413 payload_too_large`.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How the server runs. `Options::default()` suits production.
#[derive(Debug, Clone)]
pub struct Options {
    /// Worker threads answering requests.
    pub threads: usize,
    /// Threads reading request bodies that tiny_http did not read in advance (over 1 KiB).
    pub body_threads: usize,
    /// How long writing an answer may block on a client that does not read it.
    pub write_timeout: Duration,
    /// Connections served at once; further ones wait in the kernel's accept queue until one
    /// closes (each open connection has a tiny_http thread reading it).
    pub max_connections: usize,
    /// How long a client has to send a request's head (from the connection's accept for its
    /// first request, from the request's first byte for the next ones); past it the connection
    /// is closed (`408`).
    pub head_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request before it is closed.
    pub idle_timeout: Duration,
    /// How often to tidy lapsed holds and entries in the background (`None`: never). Nothing
    /// depends on it: every read and write decides expiry against the clock itself. The same
    /// thread places a prequeue in line as soon as its opening is due, and tidies the per-address
    /// limiter.
    pub sweep_every: Option<Duration>,
    /// New queue entries (`POST /token`) per minute per client address; 0: no limit. Past it:
    /// `429 rate_limited` with `Retry-After`.
    pub enter_rate_per_ip: u32,
    /// Take the client's address from the last `X-Forwarded-For` entry (the one the trusted
    /// proxy in front added) instead of the socket's peer.
    pub trust_forwarded_for: bool,
    /// Serves `GET /__panic`, whose handler panics (for tests of the panic guard).
    #[doc(hidden)]
    pub panic_route: bool,
}

impl Default for Options {
    fn default() -> Self {
        let limits = tiny_http::Limits::default();
        Options {
            threads: 32,
            body_threads: 4,
            write_timeout: Duration::from_secs(10),
            max_connections: limits.max_connections,
            head_timeout: limits.head_timeout,
            idle_timeout: limits.idle_timeout,
            sweep_every: Some(Duration::from_secs(30)),
            enter_rate_per_ip: 0,
            trust_forwarded_for: false,
            panic_route: false,
        }
    }
}

impl Options {
    /// Sets the number of workers.
    pub fn with_threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }
}

/// What every thread of one server shares.
pub(crate) struct Shared {
    booking: Arc<Booking>,
    metrics: metrics::Metrics,
    options: Options,
    shutdown: Arc<AtomicBool>,
    server: tiny_http::Server,
    body_lane: worker::BodyLane,
    enter_limit: limits::EnterLimit,
    seat_maps: seatmaps::SeatMaps,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }
}

/// Serves the HTTP API on `listener` with [`Options::default`] until `shutdown` becomes true,
/// then returns once the requests in hand are answered.
pub fn serve(
    listener: TcpListener,
    booking: Arc<Booking>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<()> {
    serve_with(listener, booking, shutdown, Options::default())
}

/// [`serve`] with the given options.
pub fn serve_with(
    listener: TcpListener,
    booking: Arc<Booking>,
    shutdown: Arc<AtomicBool>,
    options: Options,
) -> io::Result<()> {
    front::tune_listener(&listener, options.write_timeout)?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        server: front::open(listener, &options)?,
        booking,
        metrics: metrics::Metrics::default(),
        body_lane: worker::BodyLane::default(),
        enter_limit: limits::EnterLimit::new(options.enter_rate_per_ip),
        seat_maps: seatmaps::SeatMaps::default(),
        shutdown,
        options,
    });
    let mut threads = Vec::new();
    let spawn = |name: String, f: fn(&Shared)| {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || f(&shared))
    };
    for i in 0..shared.options.threads.max(1) {
        threads.push(spawn(format!("http-worker-{i}"), worker::run_worker)?);
    }
    for i in 0..shared.options.body_threads.max(1) {
        threads.push(spawn(format!("http-body-{i}"), worker::run_body_lane)?);
    }
    if shared.options.sweep_every.is_some() {
        threads.push(spawn("sweeper".into(), worker::run_sweeper)?);
    }
    tracing::info!(target: "booking::http", %addr, threads = shared.options.threads, "serving");
    for t in threads {
        let _ = t.join();
    }
    worker::finish(&shared);
    tracing::info!(target: "booking::http", "stopped");
    Ok(())
}
