//! A small blocking client of `booking-server`'s HTTP API (feature `client`), over `ureq`.
//!
//! Every answer the server gives is data: a `404` or a `503` comes back as a [`Response`] with
//! that status, never as an error. [`Error`] is only for requests that got no answer at all —
//! no connection, a timeout, a connection that broke — so callers can count those apart.
//!
//! ```no_run
//! use booking::client::Client;
//! use serde_json::json;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let anon = Client::new("http://127.0.0.1:8080");
//! let entered = anon.post_json("/token", &json!({}))?.json()?;
//! let me = anon.with_token(entered["token"].as_str().unwrap_or_default());
//! let seats = me.get("/concerts/1:1")?;
//! if seats.status == 200 {
//!     println!("{}", seats.json()?);
//! } else {
//!     println!("{} {}", seats.status, seats.text()); // e.g. 403 queue_not_active
//! }
//! # Ok(()) }
//! ```
//!
//! One [`Client`] keeps its connections alive and reuses them (clones, and the clients
//! [`Client::with_token`] makes, share them), follows no redirects, and waits at most
//! [`Builder::timeout`] for a whole request.

use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::io;
use std::time::Duration;

/// The largest response body read (16 MiB); a larger one is an [`ErrorKind::Protocol`] error.
pub const MAX_BODY: u64 = 16 * 1024 * 1024;

/// A client of one server (its base URL), optionally with a bearer token. Cheap to clone; clones
/// share the keep-alive connections.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// How a [`Client`] connects and how long it waits. Made by [`Client::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    base: String,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
}

impl Builder {
    /// The longest a whole request may take, from connecting to the last byte of the answer
    /// (`None`: no limit). 30 s unless set.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Builder {
        self.timeout = timeout;
        self
    }

    /// The longest connecting may take (`None`: only the whole-request limit). 10 s unless set.
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Builder {
        self.connect_timeout = timeout;
        self
    }

    /// The client.
    pub fn build(self) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .allow_non_standard_methods(true)
            .user_agent(concat!("booking-client/", env!("CARGO_PKG_VERSION")))
            .timeout_global(self.timeout)
            .timeout_connect(self.connect_timeout)
            .build();
        Client {
            agent: ureq::Agent::with_parts(
                config,
                ureq::unversioned::transport::DefaultConnector::default(),
                LiteralFirst::default(),
            ),
            base: self.base,
            token: None,
        }
    }
}

/// ureq's resolver, except that a URL whose host is an IP address (as a booking-server's base
/// URL usually is) is answered at once. ureq resolves the host of every request, even one sent
/// on a kept-alive connection, and with a timeout set its default resolver starts a thread per
/// lookup: a thread started and ended per request, which a load generator pays on every call.
#[derive(Debug, Default)]
struct LiteralFirst(ureq::unversioned::resolver::DefaultResolver);

impl ureq::unversioned::resolver::Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        match literal_address(uri) {
            Some(addr) => {
                let mut addrs = self.empty();
                addrs.push(addr);
                Ok(addrs)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}

/// The socket address of an `http://` or `https://` URL whose host is an IP address.
fn literal_address(uri: &ureq::http::Uri) -> Option<std::net::SocketAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: std::net::IpAddr = host.parse().ok()?;
    let port = match (uri.port_u16(), uri.scheme_str()?) {
        (Some(port), "http" | "https") => port,
        (None, "http") => 80,
        (None, "https") => 443,
        _ => return None,
    };
    Some(std::net::SocketAddr::new(ip, port))
}

impl Client {
    /// A client of the server at `base_url` (`http://127.0.0.1:8080`; a trailing `/` is
    /// ignored), with the default timeouts. A URL that is not valid shows as an
    /// [`ErrorKind::Request`] error on each request.
    pub fn new(base_url: impl Into<String>) -> Client {
        Client::builder(base_url).build()
    }

    /// A client of `base_url` with other timeouts.
    pub fn builder(base_url: impl Into<String>) -> Builder {
        let mut base = base_url.into();
        while base.ends_with('/') {
            base.pop();
        }
        Builder {
            base,
            timeout: Some(Duration::from_secs(30)),
            connect_timeout: Some(Duration::from_secs(10)),
        }
    }

    /// The same client (sharing its connections) sending `token` as `Authorization: Bearer`.
    pub fn with_token(&self, token: impl Into<String>) -> Client {
        Client {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The bearer token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `GET path` (the path may carry a query).
    pub fn get(&self, path: &str) -> Result<Response, Error> {
        self.send("GET", path, &[], b"")
    }

    /// `POST path` with `body` as JSON.
    pub fn post_json<T: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<Response, Error> {
        self.post_json_with(path, body, &[])
    }

    /// `POST path` with `body` as JSON and an `Idempotency-Key`: a repeat with the same key
    /// replays the first answer.
    pub fn post_json_with_key<T: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
        key: &str,
    ) -> Result<Response, Error> {
        self.post_json_with(path, body, &[("Idempotency-Key", key)])
    }

    fn post_json_with<T: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
        headers: &[(&str, &str)],
    ) -> Result<Response, Error> {
        let body = serde_json::to_vec(body).map_err(|e| Error {
            kind: ErrorKind::Request,
            what: format!("POST {}{path}", self.base),
            cause: Box::new(e),
        })?;
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.send("POST", path, &all, &body)
    }

    /// Any request: `method path` with these headers and body (sent with a `Content-Length`
    /// when not empty, and always for `POST`, `PUT` and `PATCH`); the token, if any, goes in
    /// `Authorization` unless `headers` has one.
    ///
    /// A request whose connection ends before an answer's status and headers came back — as
    /// when the server closed a kept-alive connection just as it was reused — is sent once
    /// more, on a new connection, as HTTP clients do (booking-server always answers a request
    /// it has read; a server that died then shows as [`ErrorKind::Connect`]).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, Error> {
        let what = || format!("{method} {}{path}", self.base);
        let request = |cause: Box<dyn std::error::Error + Send + Sync>| Error {
            kind: ErrorKind::Request,
            what: what(),
            cause,
        };
        if !path.starts_with('/') {
            return Err(request(
                format!("the path must start with '/': {path:?}").into(),
            ));
        }
        let has_auth = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        let build = || {
            let mut b = ureq::http::Request::builder()
                .method(method)
                .uri(format!("{}{path}", self.base));
            for (name, value) in headers {
                b = b.header(*name, *value);
            }
            if let (Some(t), false) = (&self.token, has_auth) {
                b = b.header("Authorization", format!("Bearer {t}"));
            }
            b
        };
        let needs_body = matches!(method, "POST" | "PUT" | "PATCH");
        let run = || -> Result<_, ureq::Error> {
            if body.is_empty() && !needs_body {
                self.agent.run(build().body(())?)
            } else {
                self.agent.run(build().body(body)?)
            }
        };
        // Every error of `run` came before an answer's headers (the body is read below).
        let answer = match run() {
            Err(e) if classify(&e) == ErrorKind::Disconnected => run(),
            other => other,
        }
        .map_err(|e| Error::from_ureq(e, what()))?;
        let status = answer.status().as_u16();
        let headers = answer
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = answer
            .into_body()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| Error::from_ureq(e, what()))?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// An answer of the server, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The headers in the order received (names in lower case).
    pub headers: Vec<(String, String)>,
    /// The body (chunked bodies already joined).
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Result<Value> {
        serde_json::from_slice(&self.body)
    }

    /// The body as JSON, read into `T` (a [`crate::Ticket`], a [`crate::Balance`], ...).
    pub fn json_as<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.body)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The contract's error code of an error answer (`{"error": {"code": ...}}`), if it has one.
    pub fn error_code(&self) -> Option<String> {
        let v = self.json().ok()?;
        v.get("error")?.get("code")?.as_str().map(str::to_string)
    }
}

/// What kind of failure left a request without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No connection could be made (refused, unreachable, no such host).
    Connect,
    /// The server did not answer in time.
    Timeout,
    /// The connection closed or broke before the whole answer came.
    Disconnected,
    /// The answer was not valid HTTP/1.1, or too large.
    Protocol,
    /// The request could not be made: a bad base URL, path, method, header or body.
    Request,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Connect => "could not connect",
            ErrorKind::Timeout => "no answer in time",
            ErrorKind::Disconnected => "the connection broke",
            ErrorKind::Protocol => "not a valid HTTP answer",
            ErrorKind::Request => "bad request",
        })
    }
}

/// A request that got no answer. HTTP error statuses are not errors: they are [`Response`]s.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    what: String,
    cause: Box<dyn std::error::Error + Send + Sync>,
}

impl Error {
    /// What kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the server did not answer in time.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    fn from_ureq(e: ureq::Error, what: String) -> Error {
        Error {
            kind: classify(&e),
            what,
            cause: Box::new(e),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.what, self.kind, self.cause)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}

fn classify(e: &ureq::Error) -> ErrorKind {
    use io::ErrorKind as Io;
    match e {
        ureq::Error::Timeout(_) => ErrorKind::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => ErrorKind::Connect,
        ureq::Error::Io(io) => match io.kind() {
            Io::TimedOut | Io::WouldBlock => ErrorKind::Timeout,
            Io::ConnectionRefused
            | Io::AddrNotAvailable
            | Io::HostUnreachable
            | Io::NetworkUnreachable
            | Io::NetworkDown => ErrorKind::Connect,
            _ => ErrorKind::Disconnected,
        },
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_) => {
            ErrorKind::Request
        }
        ureq::Error::BodyStalled => ErrorKind::Disconnected,
        _ => ErrorKind::Protocol,
    }
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;
    use crate::{Booking, Config, SystemClock};
    use serde_json::json;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn an_ip_address_is_its_own_resolution_and_a_name_is_left_to_the_resolver() {
        let addr = |url: &str| literal_address(&url.parse().unwrap()).map(|a| a.to_string());
        assert_eq!(
            addr("http://127.0.0.1:8080/token").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(addr("http://10.1.2.3/x").as_deref(), Some("10.1.2.3:80"));
        assert_eq!(addr("https://10.1.2.3/x").as_deref(), Some("10.1.2.3:443"));
        assert_eq!(addr("http://[::1]:9/").as_deref(), Some("[::1]:9"));
        assert_eq!(addr("http://localhost:8080/"), None);
        assert_eq!(addr("http://booking.example/"), None);
        assert_eq!(addr("ftp://127.0.0.1/"), None);
    }

    /// booking-server's HTTP layer in this process, on the demo catalog.
    struct Server {
        url: String,
        shutdown: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Server {
        fn start() -> Server {
            let b = Booking::open_temporary(Config::default(), Arc::new(SystemClock)).unwrap();
            b.operator().seed_demo_if_empty().unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let shutdown = Arc::new(AtomicBool::new(false));
            let options = crate::http::Options {
                threads: 4,
                sweep_every: None,
                ..Default::default()
            };
            let (b, stop) = (Arc::new(b), shutdown.clone());
            let thread = std::thread::spawn(move || {
                crate::http::serve_with(listener, b, stop, options).unwrap()
            });
            Server {
                url,
                shutdown,
                thread: Some(thread),
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.shutdown.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// A stand-in that counts connections and answers `200 {"n": <request number>}` to each
    /// request; with `drop_every_second`, it reads every second request of a connection and
    /// closes the connection without answering (a server closing an idle keep-alive
    /// connection just as the client reuses it); with `silent`, it never answers.
    fn stand_in(drop_every_second: bool, silent: bool) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let n = count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || serve(conn, n, drop_every_second, silent));
            }
        });
        (url, accepted)
    }

    fn serve(conn: TcpStream, n: usize, drop_every_second: bool, silent: bool) {
        let mut r = BufReader::new(conn.try_clone().unwrap());
        let mut w = conn;
        for i in 0.. {
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
            }
            if silent {
                std::thread::sleep(Duration::from_secs(5));
                return;
            }
            if drop_every_second && i % 2 == 1 {
                return;
            }
            let body = format!("{{\"n\": {n}}}");
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            if w.write_all((head + &body).as_bytes()).is_err() {
                return;
            }
        }
    }

    #[test]
    fn error_statuses_are_answers_not_errors() {
        let srv = Server::start();
        let c = Client::new(&srv.url);
        let health = c.get("/healthz").unwrap();
        assert_eq!(
            (health.status, health.json().unwrap()),
            (200, json!({"status": "ok"}))
        );
        assert_eq!(health.header("content-TYPE"), Some("application/json"));
        assert!(health.is_success());
        let r = c.get("/concerts").unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.error_code().as_deref(), Some("unauthorized"));
        assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
        let r = c.send("DELETE", "/token", &[], b"").unwrap();
        assert_eq!(
            (r.status, r.header("allow")),
            (405, Some("GET, HEAD, POST"))
        );
        assert_eq!(
            c.get("/nope").unwrap().error_code().as_deref(),
            Some("not_found")
        );
        let r = c.post_json("/token", &json!({"user_id": "nope"})).unwrap();
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (400, Some("invalid_request"))
        );
        assert!(c.get("/").unwrap().text().contains("<html"));
    }

    #[test]
    fn a_token_goes_with_every_request_of_its_client() {
        let srv = Server::start();
        let anon = Client::new(format!("{}/", srv.url));
        let entered = anon.post_json("/token", &json!({})).unwrap();
        assert_eq!(entered.status, 201);
        let token = entered.json().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string();
        let me = anon.with_token(token.clone());
        assert_eq!(me.token(), Some(token.as_str()));
        assert_eq!(anon.token(), None);
        assert_eq!(
            me.get("/token").unwrap().json().unwrap()["status"],
            "active"
        );
        let seats = me.get("/concerts/1:1").unwrap();
        assert_eq!(seats.status, 200);
        let ticket = me
            .post_json("/tickets", &json!({"showtime_id": 1, "seat_id": 3}))
            .unwrap();
        assert_eq!(ticket.status, 201, "{}", ticket.text());
        let ticket: crate::Ticket = ticket.json_as().unwrap();
        assert_eq!(ticket.seat_number, 3);
        // An explicit Authorization header wins over the client's token.
        let r = me
            .send("GET", "/token", &[("Authorization", "Bearer x.y.z")], b"")
            .unwrap();
        assert_eq!(r.status, 401);
        // An Idempotency-Key replays the first answer.
        let first = me
            .post_json_with_key("/points", &json!({"amount": 500}), "k-1")
            .unwrap();
        let again = me
            .post_json_with_key("/points", &json!({"amount": 500}), "k-1")
            .unwrap();
        assert_eq!((first.status, &first.body), (200, &again.body));
        assert_eq!(me.get("/points").unwrap().json().unwrap()["balance"], 500);
    }

    #[test]
    fn bodies_methods_and_paths_are_sent_as_given() {
        let srv = Server::start();
        let c = Client::new(&srv.url);
        // Bytes that are not JSON reach the server as they are.
        let r = c.send("POST", "/token", &[], &[0xff, b'{']).unwrap();
        assert_eq!(r.error_code().as_deref(), Some("invalid_json"));
        // A body on a GET is sent (and read against the limit).
        let big = vec![b'x'; 100 * 1024];
        let r = c.send("GET", "/healthz", &[], &big).unwrap();
        assert_eq!(r.error_code().as_deref(), Some("payload_too_large"));
        // A method no standard names.
        let r = c.send("BREW", "/metrics", &[], b"").unwrap();
        assert_eq!(r.status, 405);
        // HEAD: the headers, no body.
        let r = c.send("HEAD", "/healthz", &[], b"").unwrap();
        assert_eq!((r.status, r.body.len()), (200, 0));
        // A path must be a path.
        let e = c.get("healthz").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Request);
        let e = Client::new("not a url").get("/healthz").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Request, "{e}");
    }

    #[test]
    fn no_server_is_a_connect_error() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap(); // dropped: nothing listens there now
        let e = Client::new(format!("http://{addr}"))
            .get("/healthz")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
        assert!(!e.is_timeout());
        assert!(e.to_string().starts_with("GET http://"), "{e}");
    }

    #[test]
    fn a_server_that_never_answers_is_a_timeout() {
        let (url, _) = stand_in(false, true);
        let c = Client::builder(url)
            .timeout(Some(Duration::from_millis(300)))
            .build();
        let started = std::time::Instant::now();
        let e = c.get("/x").unwrap_err();
        assert!(e.is_timeout(), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn connections_are_kept_alive_and_a_stale_one_is_replaced() {
        let (url, accepted) = stand_in(false, false);
        let c = Client::new(url);
        for _ in 0..5 {
            assert_eq!(c.get("/x").unwrap().json().unwrap(), json!({"n": 0}));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection for all");

        // The server drops every kept-alive connection as the next request arrives: each
        // such request is sent again on a new connection, and every one is answered.
        let (url, accepted) = stand_in(true, false);
        let c = Client::new(url);
        for i in 0..4 {
            assert_eq!(c.get("/x").unwrap().json().unwrap(), json!({"n": i}));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn redirects_are_answers_too() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap() > 0 && !line.ends_with("\r\n\r\n") {}
            let mut w = conn;
            w.write_all(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        });
        let r = Client::new(url).get("/here").unwrap();
        assert_eq!((r.status, r.header("location")), (302, Some("/elsewhere")));
    }
}
