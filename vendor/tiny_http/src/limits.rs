//! booking patch: what one server lets its clients hold.

/// Limits on the connections of a [`Server`](crate::Server), given to
/// [`Server::from_listener_with`](crate::Server::from_listener_with). The other constructors
/// use [`Limits::default()`].
///
/// ```
/// let limits = tiny_http::Limits {
///     max_connections: 512,
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 2048,
        }
    }
}
