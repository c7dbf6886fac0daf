//! The tiny_http server that accepts connections and queues their requests, and the socket
//! options accepted sockets inherit from the listener.

use super::Options;
use std::io;
use std::net::TcpListener;
use std::time::Duration;

/// Starts accepting on `listener` (tiny_http's own accept thread and connection threads).
pub fn open(listener: TcpListener, options: &Options) -> io::Result<tiny_http::Server> {
    let limits = tiny_http::Limits {
        max_connections: options.max_connections,
        head_timeout: options.head_timeout,
        idle_timeout: options.idle_timeout,
        ..tiny_http::Limits::default()
    };
    tiny_http::Server::from_listener_with(listener, None, limits).map_err(io::Error::other)
}

/// Socket options that accepted sockets inherit from the listener (Linux): a send timeout, so a
/// client that never reads cannot hold a worker, and `TCP_NODELAY`, so an answer written in two
/// pieces is not held back by Nagle's algorithm.
pub fn tune_listener(listener: &TcpListener, write_timeout: Duration) -> io::Result<()> {
    let socket = socket2::SockRef::from(listener);
    socket.set_write_timeout(Some(write_timeout))?;
    socket.set_nodelay(true)
}
