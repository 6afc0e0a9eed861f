//! The listening socket and the connection threads. Each thread accepts a
//! connection itself, serves it to its end (its session included) on its own
//! stack, and goes back to accepting: no thread hands a connection to
//! another, so a connection costs no wake-up of a second thread, no lock and
//! no queue between accept and its first frame.
//!
//! Threads are kept for reuse: creating and ending one maps and unmaps its
//! stack, and every such change interrupts the other CPUs (see
//! docs/performance.md).
//! A thread that takes a connection while no other thread is waiting in
//! `accept` starts one first, so someone always accepts. When the OS
//! refuses that thread, the connection is refused at once (a 503) and this
//! thread stays the one accepting: at the thread ceiling sessions go on,
//! newcomers get an answer, and service resumes as threads end. A thread waits at
//! most [`IDLE_THREAD_WAIT`] for a connection while others wait too, and at
//! most [`MAX_IDLE_THREADS`] wait at once.

use crate::http::is_timeout;
use crate::sys;
use crate::thread_limits;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// How long a waiting thread waits for a connection before it ends (unless
/// it is the last one waiting).
pub const IDLE_THREAD_WAIT: Duration = Duration::from_secs(10);
/// Most threads waiting for a connection at once.
pub const MAX_IDLE_THREADS: usize = 64;
/// Stack of each connection thread: the deepest path (a handshake, a log
/// line) needs a fraction of it, and only touched pages cost memory.
const CONNECTION_STACK_BYTES: usize = 128 * 1024;

/// What a connection thread runs for a connection it accepts.
pub type Serve = dyn Fn(TcpStream, SocketAddr) + Send + Sync;

/// What to do with an accepted connection.
pub struct Accept {
    /// Serve it, its session included, on this thread.
    pub serve: Box<Serve>,
    /// Refuse it at once: the OS would start no thread to accept after this one.
    pub refuse: Box<Serve>,
}

/// The listening socket, shared by the connection threads.
pub struct Listener {
    socket: TcpListener,
    accept: Accept,
    /// Threads blocked in `accept`.
    waiting: AtomicUsize,
    /// Connection threads alive; apart, so that a thread counts itself out
    /// only once it no longer holds the listening socket.
    threads: Arc<AtomicUsize>,
    stopping: AtomicBool,
}

impl Listener {
    /// Binds `addr`; accepting starts with [`Listener::start`].
    pub fn bind(addr: impl ToSocketAddrs, accept: Accept) -> io::Result<Arc<Listener>> {
        let socket = TcpListener::bind(addr)?;
        // `accept` honours the receive timeout (Linux): a waiting thread
        // wakes now and then to see whether it is still needed. Accepted
        // sockets inherit both options; every read sets its own timeout.
        sys::set_receive_timeout(socket.as_fd(), IDLE_THREAD_WAIT)?;
        // Small messages go out at once, without a call per connection.
        sys::set_no_delay(socket.as_fd())?;
        Ok(Arc::new(Listener {
            socket,
            accept,
            waiting: AtomicUsize::new(0),
            threads: Arc::new(AtomicUsize::new(0)),
            stopping: AtomicBool::new(false),
        }))
    }

    /// The address bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Starts the first connection thread.
    pub fn start(self: &Arc<Self>) -> io::Result<()> {
        self.spawn_thread()
    }

    /// Stops accepting: every thread waiting in `accept` returns at once and
    /// ends; threads serving a connection end when it does.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // On a listening socket, shutdown wakes every `accept` with an error.
        sys::shutdown_both(self.socket.as_fd());
    }

    /// Connection threads still alive.
    pub fn threads(&self) -> usize {
        self.threads.load(Ordering::SeqCst)
    }

    fn spawn_thread(self: &Arc<Self>) -> io::Result<()> {
        let (listener, threads) = (self.clone(), self.threads.clone());
        threads.fetch_add(1, Ordering::SeqCst);
        let run = move || {
            listener.connection_thread();
            threads.fetch_sub(1, Ordering::SeqCst);
        };
        let spawned = thread_limits::spawn("wsauth-conn", CONNECTION_STACK_BYTES, Box::new(run));
        if spawned.is_err() {
            self.threads.fetch_sub(1, Ordering::SeqCst);
        }
        spawned
    }

    /// Accepts and serves connections until this thread is not needed;
    /// lets go of the listener when it returns.
    fn connection_thread(self: Arc<Self>) {
        while !self.stopping.load(Ordering::SeqCst) {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let accepted = self.socket.accept();
            let others_waiting = self.waiting.fetch_sub(1, Ordering::SeqCst) - 1;
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            match accepted {
                Ok((stream, peer)) => {
                    if others_waiting == 0 && self.spawn_thread().is_err() {
                        // No one would accept while this thread serves.
                        (self.accept.refuse)(stream, peer);
                        continue;
                    }
                    (self.accept.serve)(stream, peer);
                    if self.waiting.load(Ordering::SeqCst) >= MAX_IDLE_THREADS {
                        break;
                    }
                }
                // Nothing came for a while, or accepting failed: end while
                // another thread waits (one is enough to retry).
                Err(_) if others_waiting > 0 => break,
                Err(e) if is_timeout(&e) => {}
                Err(e) => {
                    // Out of file descriptors, usually: back off instead of spinning.
                    log::warn!("accept failed: {e}");
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}
