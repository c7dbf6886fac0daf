use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read};

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use crate::common::{HTTPVersion, Method};
use crate::util::RefinedTcpStream;
use crate::util::{ReadControl, ReadTimeout, Unread};
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::{Limits, Request};

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: Option<SocketAddr>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // booking patch: how long reads of the connection may wait; the limits; when the
    // connection was accepted; whether a request was read from it already
    read_control: Arc<ReadControl>,
    limits: Limits,
    accepted: Instant,
    requests_read: bool,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
    /// booking patch: the connection is to be closed without an answer: it ended or stayed
    /// idle too long before a request began, or cannot be reused
    Close,
    /// booking patch: the head is larger than `Limits::max_head_size`
    HeadTooLarge,
    /// booking patch: an HTTP version above 1.1
    VersionNotSupported,
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    ///
    /// booking patch: fails (closing the connection) when the peer's address cannot be read,
    /// say because the client already reset the connection, instead of panicking later.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        limits: &Limits,
    ) -> IoResult<ClientConnection> {
        let accepted = Instant::now();
        let remote_addr = read_socket.peer_addr()?;
        let secure = read_socket.secure();
        let read_control = ReadControl::new();
        read_socket.set_read_control(read_control.clone());

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        Ok(ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            read_control,
            limits: limits.clone(),
            accepted,
            requests_read: false,
        })
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source, starting with `first` if given.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    ///
    /// booking patch: counts the bytes read against `budget`, what is left of
    /// `Limits::max_head_size` for this head.
    fn read_next_line(
        &mut self,
        mut first: Option<u8>,
        budget: &mut usize,
    ) -> Result<AsciiString, ReadError> {
        let mut buf = Vec::new();
        let mut prev_byte_was_cr = false;

        loop {
            let byte = match first.take() {
                Some(b) => b,
                None => match self.next_header_source.by_ref().bytes().next() {
                    Some(b) => b.map_err(ReadError::ReadIoError)?,
                    None => {
                        let err = IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF");
                        return Err(ReadError::ReadIoError(err));
                    }
                },
            };

            *budget = budget.checked_sub(1).ok_or(ReadError::HeadTooLarge)?;

            if byte == b'\n' && prev_byte_was_cr {
                buf.pop(); // removing the '\r'
                return AsciiString::from_ascii(buf).map_err(|_| {
                    let err = IoError::new(ErrorKind::InvalidInput, "Header is not in ASCII");
                    ReadError::ReadIoError(err)
                });
            }

            prev_byte_was_cr = byte == b'\r';

            buf.push(byte);
        }
    }

    /// booking patch: discards what the application left unread of the previous request's
    /// body, through a small buffer and within `Limits::head_timeout`, if that is at most
    /// `Limits::discard_limit` bytes; else (or if it does not arrive in time) the connection is
    /// closed. Discarding used to allocate the whole declared size at once on the thread that
    /// dropped the request.
    fn discard_unread(&mut self) -> Result<(), ReadError> {
        let unread = match self.read_control.take_unread() {
            Unread::Nothing => return Ok(()),
            Unread::Bytes(n) if n <= self.limits.discard_limit as u64 => n,
            Unread::Bytes(_) | Unread::Unknown => return Err(ReadError::Close),
        };
        let deadline = Instant::now() + self.limits.head_timeout;
        self.read_control.set_timeout(ReadTimeout::Until(deadline));
        let mut rest = (&mut self.next_header_source).take(unread);
        match std::io::copy(&mut rest, &mut std::io::sink()) {
            Ok(n) if n == unread => Ok(()),
            _ => Err(ReadError::Close),
        }
    }

    /// booking patch: waits for the first byte of the next request: until the connection's
    /// head deadline for its first request, for `Limits::idle_timeout` for the next ones.
    /// Then gives the rest of the head `Limits::head_timeout` from now.
    fn read_first_byte(&mut self) -> Result<u8, ReadError> {
        let deadline = if self.requests_read {
            Instant::now() + self.limits.idle_timeout
        } else {
            self.accepted + self.limits.head_timeout
        };
        self.read_control.set_timeout(ReadTimeout::Until(deadline));
        let mut byte = [0u8];
        loop {
            match self.next_header_source.read(&mut byte) {
                Ok(0) => return Err(ReadError::Close),
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::TimedOut => return Err(ReadError::Close),
                Err(e) => return Err(ReadError::ReadIoError(e)),
            }
        }
        if self.requests_read {
            let deadline = Instant::now() + self.limits.head_timeout;
            self.read_control.set_timeout(ReadTimeout::Until(deadline));
        }
        Ok(byte[0])
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        // booking patch: the head is read under a deadline, once the previous request's body
        // is done with (read, or dropped by the application)
        self.next_header_source
            .wait_turn()
            .map_err(ReadError::ReadIoError)?;
        self.discard_unread()?;
        let first = self.read_first_byte()?;
        let mut budget = self.limits.max_head_size;

        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let line = self.read_next_line(Some(first), &mut budget)?;

                let (method, path, version) = parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?;
                if version > (1, 1) {
                    return Err(ReadError::VersionNotSupported);
                }
                (method, path, version)
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                loop {
                    let line = self.read_next_line(None, &mut budget)?;

                    if line.is_empty() {
                        break;
                    };
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            self.remote_addr,
            data_source,
            writer,
            Some(self.read_control.clone()),
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::BadFraming => ReadError::WrongHeader(version),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // booking patch: the body is read by the application, each read waiting at most
        // `Limits::body_timeout` (an upgraded connection is the application's: no timeout)
        self.requests_read = true;
        let upgrade = request.headers().iter().any(|h| {
            h.field.equiv("Connection") && h.value.as_str().to_ascii_lowercase().contains("upgrade")
        });
        self.read_control
            .set_timeout(match self.limits.body_timeout {
                Some(timeout) if !upgrade => ReadTimeout::Each(timeout),
                _ => ReadTimeout::Never,
            });

        // return the request
        Ok(request)
    }
}

impl ClientConnection {
    /// booking patch: answers `status` (empty, `Connection: close`) to a request that is
    /// refused, then ends the connection.
    fn refuse(&mut self, status: u16, version: HTTPVersion) -> Option<Request> {
        let writer = self.sink.next().unwrap();
        let do_not_send_body = status == 417;
        crate::Response::closing(crate::StatusCode(status))
            .raw_print(writer, version, &[], do_not_send_body, None)
            .ok();
        None
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        // booking patch: every refusal says `Connection: close` (the connection is closed
        // after it), through `refuse`
        let rq = match self.read() {
            Err(ReadError::WrongRequestLine) => {
                // we don't know where the next request would start, so we have to close
                return self.refuse(400, HTTPVersion(1, 1));
            }

            Err(ReadError::WrongHeader(ver)) => {
                // we don't know where the next request would start, so we have to close
                return self.refuse(400, ver);
            }

            Err(ReadError::ReadIoError(ref err)) if err.kind() == ErrorKind::TimedOut => {
                // request timeout
                return self.refuse(408, HTTPVersion(1, 1));
            }

            Err(ReadError::ExpectationFailed(ver)) => {
                // TODO: should be recoverable, but needs handling in case of body
                return self.refuse(417, ver);
            }

            // booking patch: a head larger than `Limits::max_head_size`
            Err(ReadError::HeadTooLarge) => return self.refuse(431, HTTPVersion(1, 1)),

            // booking patch: this was checked once the request was built, and the `505`
            // then waited for ever for the request's own answer (a deadlock holding the
            // connection's thread); where the next request would start is unknown, too
            Err(ReadError::VersionNotSupported) => {
                return self.refuse(505, HTTPVersion(1, 1));
            }

            Err(ReadError::ReadIoError(_)) | Err(ReadError::Close) => return None,

            Ok(rq) => rq,
        };

        // updating the status of the connection
        let connection_header = rq
            .headers()
            .iter()
            .find(|h| h.field.equiv("Connection"))
            .map(|h| h.value.as_str());

        let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

        match lowercase {
            Some(ref val) if val.contains("close") => self.no_more_requests = true,
            Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
            Some(ref val)
                if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
            {
                self.no_more_requests = true
            }
            None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
            _ => (),
        };

        // returning the request
        Some(rq)
    }
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
