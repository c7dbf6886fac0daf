//! Shared helpers of the HTTP tests: a server on 127.0.0.1:0 over a fresh database of a backend
//! (in this process, or the real `booking-server` binary); clients over the library's
//! `booking::client` with the tests' panicking shorthands; and a raw `TcpStream` connection
//! ([`Conn`]) only for bytes no HTTP client would send.
//!
//! Rule tests run on both engines: `#[apply(engines)]` on a test taking `#[case] backend:
//! Backend` (see `tests/backend`), starting with `if backend.skipped() { return; }`.
#![allow(dead_code)]

#[path = "../backend/mod.rs"]
mod backend;
pub use backend::*;

use booking::client;
use booking::http::{self, Options};
use booking::{Booking, Config, GroupCommit, ManualClock};
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A server running in this process on a fresh database seeded with the demo catalog.
pub struct TestServer {
    pub addr: SocketAddr,
    pub booking: Arc<Booking>,
    pub clock: ManualClock,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The database (dropped after the server and its handle).
    pub db: TestDb,
}

impl TestServer {
    /// The default policy, on a manual clock (tests move time instead of sleeping), on SQLite.
    pub fn start() -> TestServer {
        TestServer::on(Backend::GroupCommit)
    }

    /// The default policy on `backend`'s engine.
    pub fn on(backend: Backend) -> TestServer {
        TestServer::start_on(backend, Config::default())
    }

    /// The given policy, on a manual clock standing now, on SQLite; group commit on unless the
    /// policy says how (as in `booking-server`).
    pub fn start_with(cfg: Config) -> TestServer {
        TestServer::start_on(Backend::GroupCommit, cfg)
    }

    /// [`TestServer::start_with`] on `backend`'s engine.
    pub fn start_on(backend: Backend, cfg: Config) -> TestServer {
        TestServer::start_with_options(backend, cfg, |o| o)
    }

    /// [`TestServer::start_on`], with the HTTP options changed by `tweak`.
    pub fn start_with_options(
        backend: Backend,
        mut cfg: Config,
        tweak: impl FnOnce(Options) -> Options,
    ) -> TestServer {
        if cfg.group_commit.is_none() {
            cfg.group_commit = Some(GroupCommit::default());
        }
        let db = TestDb::new(backend);
        let clock = ManualClock::new(chrono::Utc::now());
        let booking = Booking::open_with_clock(db.location(), cfg, Arc::new(clock.clone()))
            .expect("open database");
        booking.operator().seed_demo_if_empty().expect("seed");
        let booking = Arc::new(booking);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let shutdown = Arc::new(AtomicBool::new(false));
        let options = tweak(Options {
            threads: 8,
            body_threads: 2,
            sweep_every: None,
            panic_route: true,
            ..Options::default()
        });
        let thread = {
            let (b, s) = (booking.clone(), shutdown.clone());
            std::thread::spawn(move || http::serve_with(listener, b, s, options).expect("serve"))
        };
        TestServer {
            addr,
            booking,
            clock,
            shutdown,
            thread: Some(thread),
            db,
        }
    }

    /// A client without a token.
    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// A new user in the waiting room.
    pub fn enter(&self) -> User {
        User::enter(self.addr)
    }

    /// Stops serving and waits for the server to return.
    pub fn stop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An answer: the library client's [`booking::client::Response`] (status, headers, body, and
/// `header`/`text`), with the tests' panicking `json` and the error-shape checks.
#[derive(Debug, Clone)]
pub struct Resp(pub client::Response);

impl std::ops::Deref for Resp {
    type Target = client::Response;
    fn deref(&self) -> &client::Response {
        &self.0
    }
}

impl Resp {
    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> Value {
        self.0
            .json()
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The error code of an error answer (and checks the error shape on the way).
    pub fn code(&self) -> String {
        let v = self.json();
        let obj = v.as_object().expect("an object");
        assert_eq!(obj.len(), 1, "only `error`: {v}");
        let e = v["error"].as_object().expect("error object");
        assert_eq!(e.len(), 2, "code and message: {v}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        e["code"].as_str().expect("code").to_string()
    }

    /// Asserts the status and (for errors) the code.
    #[track_caller]
    pub fn expect(&self, status: u16, code: &str) -> &Resp {
        assert_eq!(self.status, status, "body: {}", self.text());
        if !code.is_empty() {
            assert_eq!(self.code(), code);
        }
        self
    }
}

/// A client of a test server: `booking::client::Client` (one keep-alive connection pool per
/// client and its clones), with the tests' panicking shorthands.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: SocketAddr,
    http: client::Client,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            http: client::Client::new(format!("http://{addr}")),
        }
    }

    pub fn with_token(&self, token: &str) -> Client {
        Client {
            addr: self.addr,
            http: self.http.with_token(token),
        }
    }

    /// The library client underneath.
    pub fn inner(&self) -> &client::Client {
        &self.http
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], b"")
    }

    /// POSTs `body` as it is (no Content-Type).
    pub fn post(&self, path: &str, body: &str) -> Resp {
        self.send("POST", path, &[], body.as_bytes())
    }

    pub fn post_json(&self, path: &str, body: Value) -> Resp {
        Resp(self.http.post_json(path, &body).expect("an answer"))
    }

    /// Any request; the token (if any) goes in `Authorization`.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        self.try_send(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Client::send`], with requests that got no answer as errors (for servers that may die).
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Resp, client::Error> {
        self.http.send(method, path, headers, body).map(Resp)
    }
}

/// One raw keep-alive connection, for what no HTTP client sends: a request target that is
/// not a path (`*`, an absolute URL), a chunked or endless body, half a request, or many
/// requests on one known connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        Conn::try_open(addr).expect("connect")
    }

    pub fn try_open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn {
            reader: BufReader::new(stream),
        })
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        self.try_request(method, target, headers, body)
            .expect("a response")
    }

    /// Writes `method target HTTP/1.1` with a `Host`, the headers, a `Content-Length` (when
    /// there is a body, and always for POST) and the body, then reads the answer.
    pub fn try_request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Resp> {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let s = self.stream();
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        self.read_response()
    }

    /// Reads one final response (body by Content-Length, else to EOF), skipping `1xx` ones.
    pub fn read_response(&mut self) -> std::io::Result<Resp> {
        loop {
            let r = self.read_one()?;
            if r.status >= 200 {
                return Ok(r);
            }
        }
    }

    fn read_one(&mut self) -> std::io::Result<Resp> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').expect("header");
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().unwrap());
        let mut body = Vec::new();
        match len {
            _ if status < 200 => {}
            Some(n) => {
                body.resize(n, 0);
                self.reader.read_exact(&mut body)?;
            }
            None => {
                self.reader.read_to_end(&mut body)?;
            }
        }
        Ok(Resp(client::Response {
            status,
            headers,
            body,
        }))
    }
}

/// One request on a new raw connection (see [`Conn`]).
pub fn raw(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
    Conn::open(addr).request(method, target, headers, b"")
}

/// A user with a token.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub token: String,
    pub http: Client,
    /// The answer to entering the queue.
    pub entered: Value,
}

impl User {
    /// Enters the queue as a new user (expects `201`).
    pub fn enter(addr: SocketAddr) -> User {
        let c = Client::new(addr);
        let r = c.post("/token", "");
        r.expect(201, "");
        let v = r.json();
        let token = v["token"].as_str().expect("token").to_string();
        User {
            id: v["user_id"].as_str().unwrap().to_string(),
            http: c.with_token(&token),
            token,
            entered: v,
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.http.get(path)
    }

    pub fn post(&self, path: &str, body: Value) -> Resp {
        self.http.post_json(path, body)
    }

    pub fn status(&self) -> Value {
        let r = self.get("/token");
        r.expect(200, "");
        r.json()
    }

    pub fn hold(&self, showtime: i64, seat: i64) -> Resp {
        self.post(
            "/tickets",
            json!({"showtime_id": showtime, "seat_id": seat}),
        )
    }

    pub fn charge(&self, amount: i64) -> Resp {
        self.post("/points", json!({ "amount": amount }))
    }

    pub fn pay(&self, ticket: i64) -> Resp {
        self.post("/payments", json!({ "ticket_id": ticket }))
    }

    pub fn with_key(&self, method: &str, path: &str, key: &str, body: Value) -> Resp {
        self.http.send(
            method,
            path,
            &[("Idempotency-Key", key)],
            body.to_string().as_bytes(),
        )
    }
}

/// The real `booking-server` binary on a free port.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Proc {
    /// The server on `db` (a file path, or a URL: see [`TestDb::arg`]).
    pub fn spawn(db: impl AsRef<OsStr>, args: &[&str]) -> Proc {
        Proc::spawn_via(None, db, args, &[])
    }

    /// Runs the binary through `sh -c "<prefix>; exec server ..."` when `shell_prefix` is given
    /// (for example to lower a limit with `ulimit`), with extra environment variables.
    pub fn spawn_via(
        shell_prefix: Option<&str>,
        db: impl AsRef<OsStr>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Proc {
        let bin = env!("CARGO_BIN_EXE_booking-server");
        let mut cmd = match shell_prefix {
            None => Command::new(bin),
            Some(prefix) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                    .arg(bin);
                c
            }
        };
        cmd.arg("--db")
            .arg(db.as_ref())
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env_remove("BOOKING_JWT_SECRET")
            .env_remove("BOOKING_DB")
            .env_remove("RUST_LOG")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        Proc::start(cmd).unwrap_or_else(|line| panic!("no address in {line:?}"))
    }

    /// Starts `cmd` (a `booking-server` command line, perhaps behind a wrapper such as `ip netns
    /// exec`) with its stdout piped, and reads the address from its first line; `Err` holds that
    /// line when it names none (the process is killed then).
    pub fn start(mut cmd: Command) -> Result<Proc, String> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn booking-server");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        match line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
        {
            Some(addr) => Ok(Proc {
                child,
                addr,
                stdout,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(line)
            }
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// A new user in this server's waiting room.
    pub fn enter(&self) -> User {
        User::enter(self.addr)
    }

    /// The rest of what the server printed at start (it prints nothing after).
    pub fn banner(&mut self) -> String {
        let _ = self.child.kill();
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        rest
    }

    /// Sends `signal` (by name, as `kill` takes it), then waits for the exit status.
    pub fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        self.child.wait().expect("wait")
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// A fresh directory and a database path inside it.
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("booking.db");
    (dir, path)
}

/// The first showtime of the first concert and its seats (ids), as an active user sees them.
pub fn first_showtime(u: &User) -> (i64, i64, Vec<Value>) {
    let concerts = u.get("/concerts").json();
    let c = concerts[0]["id"].as_i64().unwrap();
    let shows = u.get(&format!("/concerts/{c}")).json();
    let s = shows[0]["id"].as_i64().unwrap();
    let seats = u.get(&format!("/concerts/{c}:{s}")).json();
    (c, s, seats.as_array().unwrap().clone())
}
