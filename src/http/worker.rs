//! The threads of a server and the life of one request: take it from tiny_http, route it, read
//! its body through the limit, answer it (a panic becomes `500 internal`), count it, log it.

use super::handlers;
use super::input::Incoming;
use super::reply::{Failure, Reply};
use super::router::{self, Endpoint, Unrouted};
use super::{Shared, BODY_LIMIT};
use crate::Error;
use crossbeam_channel::{Receiver, RecvTimeoutError, SendError, Sender};
use std::io::{Cursor, Read};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response, StatusCode};

/// How long a thread waits for work before looking at the shutdown flag again.
const POLL: Duration = Duration::from_millis(100);
/// tiny_http reads bodies up to this size before queueing the request.
const PREREAD: usize = 1024;

/// Requests whose bodies still have to be read from the socket.
pub struct BodyLane {
    tx: Sender<Request>,
    rx: Receiver<Request>,
}

impl Default for BodyLane {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        BodyLane { tx, rx }
    }
}

/// A worker: answers queued requests until shutdown, then what is still queued.
pub fn run_worker(shared: &Shared) {
    while !shared.stopping() {
        match shared.server.recv_timeout(POLL) {
            Ok(Some(rq)) => dispatch(shared, rq),
            Ok(None) => {}
            // tiny_http's accept loop no longer reports errors (vendor/tiny_http/PATCHES.md).
            Err(e) => {
                tracing::warn!(target: "booking::http", error = %e, "receiving a request failed")
            }
        }
    }
    while let Ok(Some(rq)) = shared.server.try_recv() {
        dispatch(shared, rq);
    }
}

/// A body thread: answers the requests whose bodies must be read from the socket.
pub fn run_body_lane(shared: &Shared) {
    loop {
        match shared.body_lane.rx.recv_timeout(POLL) {
            Ok(rq) => answer(shared, rq),
            Err(RecvTimeoutError::Timeout) if !shared.stopping() => {}
            Err(_) => return,
        }
    }
}

/// After every thread has stopped: answers what is left in the body lane.
pub fn finish(shared: &Shared) {
    while let Ok(rq) = shared.body_lane.rx.try_recv() {
        answer(shared, rq);
    }
}

/// The background thread: places a due prequeue in line (a chunk per transaction, as fast as
/// it goes, so a million entries take seconds), tidies lapsed rows now and then, and forgets
/// addresses the per-address limiter no longer needs. Nothing depends on it having run.
pub fn run_sweeper(shared: &Shared) {
    let every = shared.options.sweep_every.unwrap_or(Duration::MAX);
    let mut last = Instant::now();
    let mut tidied = Instant::now();
    while !shared.stopping() {
        match shared.booking.operator().place_prequeue() {
            Ok(n) if n > 0 => continue, // more to place: no pause
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(target: "booking::http", error = %e, "placing the prequeue failed")
            }
        }
        std::thread::sleep(POLL);
        if tidied.elapsed() >= TIDY_EVERY {
            tidied = Instant::now();
            shared.enter_limit.tidy();
        }
        if last.elapsed() >= every {
            last = Instant::now();
            if let Err(e) = shared.booking.operator().sweep() {
                tracing::warn!(target: "booking::http", error = %e, "background sweep failed");
            }
        }
    }
}

/// How often the per-address limiter forgets addresses whose bucket is full again.
const TIDY_EVERY: Duration = Duration::from_secs(5);

/// Answers `rq` here if its body is already in memory, else hands it to the body lane.
fn dispatch(shared: &Shared, rq: Request) {
    if body_in_memory(&rq) {
        answer(shared, rq);
    } else {
        // The lane's receiver lives as long as `shared`: sending cannot fail.
        if let Err(SendError(rq)) = shared.body_lane.tx.send(rq) {
            answer(shared, rq);
        }
    }
}

/// Whether tiny_http has read the whole body already (so answering cannot block on the client).
fn body_in_memory(rq: &Request) -> bool {
    rq.body_length().unwrap_or(0) <= PREREAD
        && !rq.headers().iter().any(|h| {
            h.field.equiv("Transfer-Encoding")
                || h.field.equiv("Expect")
                || (h.field.equiv("Connection")
                    && h.value.as_str().to_ascii_lowercase().contains("upgrade"))
        })
}

/// Answers one request, whatever happens in its handler; counts and logs it.
fn answer(shared: &Shared, mut rq: Request) {
    let started = Instant::now();
    let mut endpoint = Endpoint::Unmatched;
    let reply = panic::catch_unwind(AssertUnwindSafe(|| {
        reply_to(shared, &mut rq, &mut endpoint)
    }))
    .unwrap_or_else(|_| {
        shared.metrics.panics.fetch_add(1, Relaxed);
        Reply::from(Error::internal("a request handler panicked"))
    });
    // Counted before the answer is written, so whoever reads the answer sees it counted.
    let latency = started.elapsed();
    shared.metrics.record(endpoint, reply.status, latency);
    tracing::info!(
        target: "booking::http",
        method = method_name(rq.method()),
        route = endpoint.label(),
        status = reply.status,
        latency_us = latency.as_micros() as u64,
        error = reply.error,
    );
    if panic::catch_unwind(AssertUnwindSafe(|| send(rq, reply))).is_err() {
        shared.metrics.panics.fetch_add(1, Relaxed);
    }
}

fn reply_to(shared: &Shared, rq: &mut Request, endpoint: &mut Endpoint) -> Reply {
    let resolved = {
        let path = rq.url().split('?').next().unwrap_or("");
        if shared.options.panic_route && path == "/__panic" {
            panic!("the test panic route was called");
        }
        router::resolve(method_name(rq.method()), path)
    };
    let route = match resolved {
        Ok(route) => route,
        Err(Unrouted::NotFound) => return Failure::NoRoute.into(),
        Err(Unrouted::MethodNotAllowed(allow)) => return Failure::MethodNotAllowed(allow).into(),
        Err(Unrouted::BadId(e, at)) => {
            *endpoint = at;
            return e.into();
        }
    };
    *endpoint = route.endpoint();
    if rq.body_length().is_some_and(|n| n > BODY_LIMIT) {
        return Failure::PayloadTooLarge(BODY_LIMIT).into();
    }
    let body = if endpoint.method() == "POST" {
        match read_body(rq) {
            Ok(body) => body,
            Err(e) => return e.into(),
        }
    } else {
        Vec::new()
    };
    let header = |name: &'static str| {
        rq.headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str())
    };
    let forwarded = shared
        .options
        .trust_forwarded_for
        .then(|| header("X-Forwarded-For"))
        .flatten()
        .and_then(|h| h.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok());
    let req = Incoming {
        query: rq.url().split_once('?').map_or("", |(_, q)| q),
        authorization: header("Authorization"),
        idempotency_key: header("Idempotency-Key"),
        if_none_match: header("If-None-Match"),
        client: forwarded.or_else(|| rq.remote_addr().map(|a| a.ip())),
        body,
    };
    handlers::handle(shared, route, &req).unwrap_or_else(Reply::from)
}

/// Reads the body through the size limit.
fn read_body(rq: &mut Request) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::with_capacity(rq.body_length().unwrap_or(0).min(BODY_LIMIT));
    rq.as_reader()
        .take(BODY_LIMIT as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::InvalidRequest(format!("could not read the request body: {e}")))?;
    if body.len() > BODY_LIMIT {
        return Err(Failure::PayloadTooLarge(BODY_LIMIT));
    }
    Ok(body)
}

fn header(name: &'static str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}

/// Writes the reply; a client that went away is not an error worth more than a debug line.
fn send(rq: Request, reply: Reply) {
    let len = reply.body.len();
    let mut headers = Vec::with_capacity(4);
    if reply.status != 304 {
        headers.push(header("Content-Type", reply.content_type));
    }
    if let Some(tag) = &reply.etag {
        headers.push(header("ETag", tag));
    }
    if let Some(secs) = reply.retry_after {
        headers.push(header("Retry-After", &secs.to_string()));
    }
    if let Some(allow) = reply.allow {
        headers.push(header("Allow", allow));
    }
    if reply.status == 401 {
        headers.push(header("WWW-Authenticate", "Bearer"));
    }
    let response = Response::new(
        StatusCode(reply.status),
        headers,
        Cursor::new(reply.body),
        Some(len),
        None,
    )
    .with_chunked_threshold(usize::MAX);
    if let Err(e) = rq.respond(response) {
        tracing::debug!(target: "booking::http", error = %e, "could not write the answer");
    }
}

/// The method as a static string ("OTHER" for non-standard ones, which match no route).
fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::NonStandard(_) => "OTHER",
    }
}
