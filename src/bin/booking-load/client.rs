//! A small blocking HTTP/1.1 client with keep-alive, enough for JSON requests to
//! `booking-server` — and only to this machine: [`Target::parse`] refuses any address that is
//! not loopback.

use anyhow::{bail, Context};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Where requests go: a loopback address.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resolved address.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
}

impl Target {
    /// Parses `http://HOST[:PORT][/]`. Every address `HOST` resolves to must be loopback
    /// (127.0.0.0/8 or ::1): this tool never sends load anywhere else.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("only http:// URLs are supported: {url:?}");
        };
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            bail!("give the server's base URL, like http://127.0.0.1:8080 (got {url:?})");
        }
        let with_port = if host.ends_with(']') || !host.contains(':') {
            format!("{host}:80")
        } else {
            host.to_string()
        };
        let addrs: Vec<SocketAddr> = with_port
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host:?}"))?
            .collect();
        if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
            bail!("refusing {url:?}: load goes to loopback addresses only (127.0.0.0/8, ::1)");
        }
        Ok(Target {
            addr: addrs[0],
            host: host.to_string(),
        })
    }
}

/// A response: its status and body.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body (chunked bodies already joined).
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "status {} with a body that is not JSON: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            )
        })
    }
}

/// A request to send.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// GET, POST, ...
    pub method: &'a str,
    /// The path and query.
    pub path: &'a str,
    /// A bearer token.
    pub token: Option<&'a str>,
    /// A JSON body.
    pub body: Option<&'a str>,
    /// An `Idempotency-Key` header.
    pub idempotency_key: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// A GET of `path`.
    pub fn get(path: &'a str) -> Self {
        Request {
            method: "GET",
            path,
            token: None,
            body: None,
            idempotency_key: None,
        }
    }

    /// A POST of `body` to `path`.
    pub fn post(path: &'a str, body: &'a str) -> Self {
        Request {
            method: "POST",
            body: Some(body),
            ..Request::get(path)
        }
    }

    /// With a bearer token.
    pub fn token(self, token: &'a str) -> Self {
        Request {
            token: Some(token),
            ..self
        }
    }

    /// With an idempotency key.
    pub fn key(self, key: &'a str) -> Self {
        Request {
            idempotency_key: Some(key),
            ..self
        }
    }
}

/// One keep-alive connection, opened on first use and reopened when the server closes it.
pub struct Client {
    target: Target,
    timeout: Duration,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    /// A client for `target`; a request that takes longer than `timeout` fails.
    pub fn new(target: Target, timeout: Duration) -> Client {
        Client {
            target,
            timeout,
            conn: None,
        }
    }

    /// Sends `req` and reads the whole response. A request on a reused connection that the
    /// server had already closed (no byte of response came back) is sent once more on a new
    /// connection: the server never saw it.
    pub fn send(&mut self, req: Request<'_>) -> io::Result<Response> {
        let reused = self.conn.is_some();
        match self.try_send(req) {
            Err(e) if reused && closed_by_peer(&e) => {
                self.conn = None;
                self.try_send(req)
            }
            other => other,
        }
    }

    fn try_send(&mut self, req: Request<'_>) -> io::Result<Response> {
        if self.conn.is_none() {
            let s = TcpStream::connect_timeout(&self.target.addr, self.timeout)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(self.timeout))?;
            s.set_write_timeout(Some(self.timeout))?;
            self.conn = Some(BufReader::with_capacity(64 * 1024, s));
        }
        let conn = self.conn.as_mut().expect("connected");
        let result = exchange(conn, &self.target.host, req);
        match &result {
            Ok((_, keep_alive)) if *keep_alive => {}
            _ => self.conn = None,
        }
        result.map(|(r, _)| r)
    }
}

fn closed_by_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// Writes the request, reads the response; also says whether the connection stays open.
fn exchange(
    conn: &mut BufReader<TcpStream>,
    host: &str,
    req: Request<'_>,
) -> io::Result<(Response, bool)> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n",
        req.method, req.path
    );
    if let Some(t) = req.token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(k) = req.idempotency_key {
        head.push_str(&format!("Idempotency-Key: {k}\r\n"));
    }
    let body = req.body.unwrap_or("");
    if req.body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if req.body.is_some() || req.method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body);
    conn.get_mut().write_all(head.as_bytes())?;
    read_response(conn)
}

fn read_response<R: BufRead>(r: &mut R) -> io::Result<(Response, bool)> {
    let status_line = read_line(r)?;
    if status_line.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or("");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut keep_alive = version == "HTTP/1.1";
    let (mut length, mut chunked) = (None, false);
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header {line:?}")))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(value.parse().map_err(|_| bad("bad Content-Length"))?)
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => keep_alive = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let body = if chunked {
        read_chunked(r)?
    } else if let Some(n) = length {
        let mut body = vec![0; n];
        r.read_exact(&mut body)?;
        body
    } else {
        keep_alive = false;
        let mut body = Vec::new();
        r.read_to_end(&mut body)?;
        body
    };
    Ok((Response { status, body }, keep_alive))
}

fn read_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let size_line = read_line(r)?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad(format!("bad chunk size {size_line:?}")))?;
        if size == 0 {
            while !read_line(r)?.is_empty() {} // trailers
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        read_line(r)?;
    }
}

/// One line without its CRLF; an empty string at the end of a header block — and at EOF, which
/// the caller tells apart by context (a status line is never empty).
fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert!(Target::parse("http://127.0.0.1:8080").is_ok());
        assert!(Target::parse("http://127.0.0.2:8080/").is_ok());
        assert!(Target::parse("http://localhost:8080").is_ok());
        assert!(Target::parse("http://[::1]:8080").is_ok());
        for bad in [
            "http://10.0.0.1:8080",
            "http://192.168.1.10",
            "http://8.8.8.8:80",
            "https://127.0.0.1:8080",
            "127.0.0.1:8080",
            "http://127.0.0.1:8080/tickets",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn responses_with_length_chunks_or_close_parse() {
        let raw = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
        let (r, keep) = read_response(&mut raw.as_bytes()).unwrap();
        assert_eq!((r.status, r.body.as_slice(), keep), (201, &b"{}"[..], true));

        let raw =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n";
        let (r, keep) = read_response(&mut raw.as_bytes()).unwrap();
        assert_eq!((r.body.as_slice(), keep), (&b"[1,2]"[..], true));

        let raw = "HTTP/1.1 409 Conflict\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let (r, keep) = read_response(&mut raw.as_bytes()).unwrap();
        assert_eq!((r.status, keep), (409, false));

        let err = read_response(&mut "".as_bytes()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
