//! The tiny_http front: the server whose accept loop feeds the workers, restarted on a clone of
//! the listener when that loop ends (tiny_http stops accepting for good after one accept error),
//! and the retired ones whose open connections are still being served.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

type Server = tiny_http::Server;

/// Retired servers kept for their open connections; past this many the oldest is let go.
const MAX_RETIRED: usize = 64;

/// The accepting server and the retired ones.
pub struct Front {
    listener: TcpListener,
    addr: SocketAddr,
    current: Mutex<Arc<Server>>,
    generation: AtomicU64,
    retired: Mutex<Vec<Arc<Server>>>,
    last_restart: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Front {
    /// Starts accepting on (a clone of) `listener`.
    pub fn new(listener: TcpListener) -> io::Result<Front> {
        let addr = listener.local_addr()?;
        let server = accept_on(&listener)?;
        Ok(Front {
            listener,
            addr,
            current: Mutex::new(Arc::new(server)),
            generation: AtomicU64::new(0),
            retired: Mutex::new(Vec::new()),
            last_restart: Mutex::new(None),
        })
    }

    /// The address served.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes each time the accepting server is replaced.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The accepting server and its generation.
    pub fn current(&self) -> (u64, Arc<Server>) {
        let cur = lock(&self.current);
        (self.generation(), cur.clone())
    }

    /// The servers that no longer accept but may still have open connections.
    pub fn retired(&self) -> Vec<Arc<Server>> {
        lock(&self.retired).clone()
    }

    /// The accept loop of generation `dead` ended: replaces it (once per generation), after a
    /// pause that grows when restarts come quickly (say, while the process is out of file
    /// descriptors). Returns false if `give_up()` turned true first.
    pub fn restart(&self, dead: u64, give_up: impl Fn() -> bool) -> bool {
        let mut pause = {
            let mut last = lock(&self.last_restart);
            let quick = last.is_some_and(|t| t.elapsed() < Duration::from_secs(5));
            *last = Some(Instant::now());
            if quick {
                Duration::from_millis(500)
            } else {
                Duration::from_millis(20)
            }
        };
        loop {
            std::thread::sleep(pause);
            if give_up() {
                return false;
            }
            let mut cur = lock(&self.current);
            if self.generation() != dead {
                return true; // another worker restarted it
            }
            match accept_on(&self.listener) {
                Ok(server) => {
                    let old = std::mem::replace(&mut *cur, Arc::new(server));
                    let mut retired = lock(&self.retired);
                    retired.push(old);
                    if retired.len() > MAX_RETIRED {
                        retired.remove(0);
                    }
                    self.generation.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(target: "booking::http", "accept loop restarted");
                    return true;
                }
                Err(e) => {
                    tracing::error!(target: "booking::http", error = %e, "cannot restart the accept loop; retrying");
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

impl Front {
    /// How many connections wait in the kernel's accept queue, where the system tells (Linux).
    /// A live accept loop keeps it near zero; one that stays full means the loop is gone —
    /// tiny_http's accept thread also dies by panicking (an `EMFILE` while cloning an accepted
    /// socket), which leaves no error to receive.
    #[cfg(target_os = "linux")]
    pub fn accept_queue(&self) -> Option<u32> {
        use std::os::fd::AsRawFd;
        // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes into it.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let r = unsafe {
            libc::getsockopt(
                self.listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        // For a listening socket, tcpi_unacked is the accept queue's length.
        (r == 0).then_some(info.tcpi_unacked)
    }

    /// Unknown elsewhere.
    #[cfg(not(target_os = "linux"))]
    pub fn accept_queue(&self) -> Option<u32> {
        None
    }
}

fn accept_on(listener: &TcpListener) -> io::Result<Server> {
    Server::from_listener(listener.try_clone()?, None).map_err(io::Error::other)
}

/// Socket options that accepted sockets inherit from the listener (Linux): a send timeout, so a
/// client that never reads cannot hold a worker, and `TCP_NODELAY`, so an answer written in two
/// pieces is not held back by Nagle's algorithm.
pub fn tune_listener(listener: &TcpListener, write_timeout: Duration) -> io::Result<()> {
    let socket = socket2::SockRef::from(listener);
    socket.set_write_timeout(Some(write_timeout))?;
    socket.set_nodelay(true)
}
