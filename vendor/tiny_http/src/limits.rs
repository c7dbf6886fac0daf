//! booking patch: what one server lets its clients hold.

use std::time::Duration;

/// Limits on the connections of a [`Server`](crate::Server), given to
/// [`Server::from_listener_with`](crate::Server::from_listener_with). The other constructors
/// use [`Limits::default()`].
///
/// ```
/// let limits = tiny_http::Limits {
///     max_connections: 512,
///     head_timeout: std::time::Duration::from_secs(5),
///     ..tiny_http::Limits::default()
/// };
/// # let _ = limits;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once (each has a thread of its own while it is open). Once this
    /// many are open, the server accepts no more until one closes: new connections wait in the
    /// kernel's accept queue (the listener's backlog; past it, the kernel refuses or drops them,
    /// depending on the system). At least 1. Default: 2048.
    pub max_connections: usize,
    /// How long a client has to send a request's head (request line and headers, and a body of
    /// up to 1 KiB, which is read with it): from the connection's accept for its first request,
    /// from the first byte of the request for the next ones. A client that has not sent a
    /// whole head by then gets `408 Request Timeout` (or nothing, if it sent nothing at all)
    /// and the connection is closed. It also bounds a TLS handshake, which runs on the accept
    /// thread. Default: 10 s.
    pub head_timeout: Duration,
    /// How long a keep-alive connection may wait for the first byte of its next request,
    /// counted from the end of the previous request (its head and its body, as read by the
    /// application; not its answer). Past it the connection is closed without an answer. A new
    /// connection's first request is bounded by `head_timeout` alone. Default: 10 s.
    pub idle_timeout: Duration,
    /// How long each read of a request body by the application may wait for data before
    /// failing with `TimedOut` (an inactivity timeout, not a deadline for the whole body).
    /// `None`: for ever. Default: 30 s.
    pub body_timeout: Option<Duration>,
    /// The largest request head (request line and headers, line ends included) accepted; a
    /// larger one gets `431 Request Header Fields Too Large` and the connection is closed.
    /// Default: 64 KiB.
    pub max_head_size: usize,
    /// The most of a request body left unread by the application (it answered without reading
    /// it all) that is read and thrown away, within `head_timeout`, to keep the connection for
    /// the next request; with more left (or a chunked body, or one the client was to send after
    /// `100 Continue`) the connection is closed instead. Default: 1 MiB.
    pub discard_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 2048,
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            body_timeout: Some(Duration::from_secs(30)),
            max_head_size: 64 * 1024,
            discard_limit: 1024 * 1024,
        }
    }
}
