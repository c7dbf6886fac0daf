//! Clients that try to hold the server, against the patched tiny_http: each test names the
//! patch of `vendor/tiny_http/PATCHES.md` it proves.

mod support;

use booking::http::{self, Options};
use booking::{Booking, Config};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::{temp_db, Client, Conn, Proc};

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
        booking.operator().seed_demo_if_empty().unwrap();
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

/// What a raw client received before the server closed (or `deadline` passed), and when.
fn read_until_closed(s: &mut TcpStream, deadline: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    s.set_read_timeout(Some(deadline)).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    (got, started.elapsed())
}

/// Patch "A deadline for a request's head, and for an idle keep-alive connection": a client
/// that sends its head a byte at a time is cut off at the deadline while others are served.
#[test]
fn a_head_sent_a_byte_at_a_time_is_cut_off_at_the_deadline() {
    let deadline = Duration::from_secs(1);
    let srv = Served::start(Options {
        head_timeout: deadline,
        idle_timeout: deadline,
        ..Options::default().with_threads(2)
    });
    let addr = srv.addr;
    let slow = std::thread::spawn(move || {
        // 80 bytes, one every 40 ms: the whole head would take over 3 s.
        let head = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n",
            "a".repeat(45)
        );
        let mut s = TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        s.set_nonblocking(true).unwrap();
        let mut answer = Vec::new();
        for b in head.bytes() {
            if s.write_all(&[b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(40));
            let mut buf = [0u8; 256];
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
            if !answer.is_empty() {
                break;
            }
        }
        (answer, started.elapsed())
    });
    // Meanwhile another client is answered at once, again and again.
    let mut answered = 0;
    while !slow.is_finished() {
        let started = Instant::now();
        Client::new(addr).get("/healthz").expect(200, "");
        assert!(started.elapsed() < Duration::from_secs(1));
        answered += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let (answer, took) = slow.join().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "{answer:?} after {took:?}"
    );
    assert!(
        took >= deadline && took < deadline * 3,
        "cut off after {took:?}"
    );
    assert!(answered >= 5, "{answered}");
}

/// Patch "A deadline for a request's head, and for an idle keep-alive connection": a keep-alive
/// connection is closed (without an answer) once idle too long, not while it is in use.
#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(700);
    let srv = Served::start(Options {
        idle_timeout: idle,
        ..Options::default().with_threads(2)
    });
    // In use every 200 ms for over twice the idle timeout: kept open.
    let mut conn = Conn::open(srv.addr);
    for _ in 0..8 {
        conn.request("GET", "/healthz", &[], b"").expect(200, "");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Then idle: closed after the idle timeout (counted from the end of the last request).
    let (got, took) = read_until_closed(conn.stream(), Duration::from_secs(5));
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!(took < idle * 3, "closed after {took:?}");
    // A new connection that sends nothing is bounded by the head timeout (10 s by default),
    // not the idle timeout: still open after it.
    let mut fresh = TcpStream::connect(srv.addr).unwrap();
    let (got, took) = read_until_closed(&mut fresh, idle * 2);
    assert!(got.is_empty() && took >= idle * 2, "{got:?} after {took:?}");
}

/// Patch "A deadline for a request's head, and for an idle keep-alive connection": a head over
/// `max_head_size` (64 KiB) is refused.
#[test]
fn a_head_over_64_kib_is_refused_with_431() {
    let srv = Served::start(Options::default().with_threads(2));
    let mut s = TcpStream::connect(srv.addr).unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let _ = s.write_all(head.as_bytes());
    let (got, _) = read_until_closed(&mut s, Duration::from_secs(5));
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 431"), "{got:?}");
    // One just under the limit is fine.
    let small = format!(
        "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(60 * 1024)
    );
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.write_all(small.as_bytes()).unwrap();
    let mut status = [0u8; 12];
    s.read_exact(&mut status).unwrap();
    assert_eq!(&status, b"HTTP/1.1 200");
}

/// Open descriptors and threads of a process.
fn fds_and_threads(pid: u32) -> (usize, usize) {
    let count = |dir: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{dir}"))
            .unwrap()
            .count()
    };
    (count("fd"), count("task"))
}

/// Patch "An unread body is discarded through a small buffer, or the connection closed": 1,000
/// requests each declaring a 10 GB body (no token needed) are answered, and leave the process's
/// descriptors and threads where they were (they used to leave a socket in CLOSE-WAIT and a
/// thread each, for good).
#[test]
fn a_thousand_huge_declared_bodies_leave_no_descriptor_or_thread_behind() {
    let (_dir, db) = temp_db();
    let server = Proc::spawn(&db, &["--threads", "4"]);
    let addr = server.addr;
    server.client().get("/healthz").expect(200, "");
    let pid = server.child.id();
    let before = fds_and_threads(pid);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut answered = 0;
                for _ in 0..250 {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.write_all(
                        b"POST /points HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n{\"amount\"",
                    )
                    .unwrap();
                    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(10));
                    answered += usize::from(answer.starts_with(b"HTTP/1.1 413"));
                }
                answered
            })
        })
        .collect();
    let answered: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(answered, 1000, "every request is answered 413");
    // Descriptors are freed at once; tiny_http keeps an idle connection thread up to 5 s for
    // the next connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    let near = |(fds, threads): (usize, usize)| fds <= before.0 + 8 && threads <= before.1 + 8;
    let mut after = fds_and_threads(pid);
    while !near(after) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = fds_and_threads(pid);
    }
    assert!(near(after), "descriptors, threads: {before:?} -> {after:?}");
    server.client().get("/healthz").expect(200, "");
}

/// Patch "An unread body is discarded through a small buffer, or the connection closed": up to
/// 1 MiB left unread is thrown away and the connection kept; more, or a chunked body, closes it.
#[test]
fn an_unread_body_is_discarded_up_to_1_mib_else_the_connection_is_closed() {
    let srv = Served::start(Options::default().with_threads(2));
    let mut conn = Conn::open(srv.addr);
    // Bodies that no handler reads (50 KiB to a GET; 100 KiB to a POST, over the 64 KiB
    // limit): the next request on the same connection is answered.
    conn.request("GET", "/healthz", &[], &[b'x'; 50 * 1024])
        .expect(200, "");
    conn.request("POST", "/points", &[], &[b'x'; 100 * 1024])
        .expect(413, "payload_too_large");
    conn.request("GET", "/healthz", &[], b"").expect(200, "");

    // 2 MiB declared: answered, then closed.
    let mut conn = Conn::open(srv.addr);
    conn.stream()
        .write_all(b"POST /points HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n{\"a\"")
        .unwrap();
    conn.read_response()
        .unwrap()
        .expect(413, "payload_too_large");
    let (rest, _) = read_until_closed(conn.stream(), Duration::from_secs(5));
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));

    // A chunked body left unread: answered, then closed; what follows it is not read as a
    // request (it used to be, from wherever the body stopped being read).
    let mut conn = Conn::open(srv.addr);
    conn.stream()
        .write_all(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
    conn.read_response().unwrap().expect(200, "");
    let (rest, _) = read_until_closed(conn.stream(), Duration::from_secs(5));
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}

/// Sends `raw` on a new connection; returns everything the server wrote before closing.
fn exchange(addr: SocketAddr, raw: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let (got, _) = read_until_closed(&mut s, Duration::from_secs(5));
    String::from_utf8_lossy(&got).into_owned()
}

/// Patch "An ambiguous body length is refused": two `Content-Length`s that disagree (the first
/// used to win), an invalid one, one beside `Transfer-Encoding`, or a transfer coding that does
/// not end in chunked get `400` and the connection closed; the request is not executed.
#[test]
fn an_ambiguous_body_length_is_refused_with_400() {
    let srv = Served::start(Options::default().with_threads(2));
    let u = support::User::enter(srv.addr);
    let charge = |headers: &str, body: &str| {
        format!(
            "POST /points HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n{headers}\r\n{body}",
            u.token
        )
    };
    let body = r#"{"amount": 5}"#; // 13 bytes
    for headers in [
        "Content-Length: 13\r\nContent-Length: 12\r\n",
        "Content-Length: 12\r\nContent-Length: 13\r\n",
        "Content-Length: 13, 12\r\n",
        "Content-Length: +13\r\n",
        "Content-Length: 13abc\r\n",
        "Content-Length: \r\n",
        "Content-Length: 99999999999999999999999\r\n",
        "Content-Length: 13\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 13\r\n",
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
    ] {
        let answer = exchange(srv.addr, &charge(headers, body));
        assert!(
            answer.starts_with("HTTP/1.1 400") && answer.contains("Connection: close"),
            "{headers:?}: {answer:?}"
        );
        // Nothing after the refusal: the connection was closed.
        assert_eq!(
            answer.matches("HTTP/1.1").count(),
            1,
            "{headers:?}: {answer:?}"
        );
    }
    assert_eq!(
        u.get("/points").json()["balance"],
        0,
        "a refused request ran"
    );
    // Repeats of one value are one value (RFC 9110 §8.6); a chunked body alone is fine.
    for headers in [
        "Content-Length: 13\r\nContent-Length: 13\r\nConnection: close\r\n",
        "Content-Length: 13, 13\r\nConnection: close\r\n",
    ] {
        let answer = exchange(srv.addr, &charge(headers, body));
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{headers:?}: {answer:?}"
        );
    }
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let answer = exchange(
        srv.addr,
        &charge(
            "Transfer-Encoding: chunked\r\nConnection: close\r\n",
            &chunked,
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert_eq!(u.get("/points").json()["balance"], 15);
}

/// Patch "An HTTP version above 1.1 is refused at once": it used to leave the connection's
/// thread waiting for ever (its `505` waited for the request's own answer).
#[test]
fn an_http_2_request_line_gets_505_at_once() {
    let srv = Served::start(Options::default().with_threads(2));
    let started = Instant::now();
    let answer = exchange(srv.addr, "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 505"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
