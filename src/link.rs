//! What other threads may touch of a live session: the write side of its
//! socket, its wake-up, its counters and its token's expiry.
//!
//! Only the session's own thread reads the socket. Any thread may write, but
//! whole frames only and one writer at a time: every write, the session's
//! own (tungstenite's pongs and close replies included) and every push from
//! another thread, goes through [`Link::write_frames`] or
//! [`Link::push_frame`] (in `write.rs`), which hand whole buffers of whole
//! frames to the socket, or to the session's outbox behind what already
//! waits there. tungstenite formats a frame completely before any I/O and,
//! with a zero write buffer, hands each one whole to a single `write` call
//! (`protocol/frame/mod.rs`), so no frame is ever split between two writers.

mod stream;
mod write;

pub use stream::SessionStream;
pub use write::close_frame_bytes;

use crate::flusher::Flusher;
use crate::metrics::Metrics;
use crate::sys::pollfd;
use crate::transport::Transport;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use write::{Writer, payload_len};

/// Most threads waiting at once for their frame to leave one session's
/// outbox; past it a send fails with [`SendError::Full`](crate::SendError::Full) at once.
pub const MAX_WAITING_WRITERS: usize = 16;
/// Most bytes handed to the socket in one non-blocking write.
const MAX_CHUNK: usize = 256 * 1024;

/// Why a session was woken from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Its token is no longer valid (or has expired).
    Revoked = 1,
    /// The server is stopping.
    Shutdown = 2,
    /// A handle sent a close frame.
    Closed = 3,
}

/// How [`Link::wait_writable`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// The descriptor can be written.
    Ready,
    /// The client left, or the session was woken to end.
    PeerGone,
    /// The deadline passed first.
    Deadline,
}

/// One live session's shared part.
pub struct Link {
    /// The socket, or the TLS stream over it: every write goes through it.
    /// Its socket is shared with the list of pending connections while a
    /// first-message token is awaited (it may close the connection to make room).
    stream: Transport,
    peer: SocketAddr,
    write_timeout: Duration,
    writer: Mutex<Writer>,
    wake: AtomicU8,
    /// Data messages sent, by the session and by pushes alike.
    messages_sent: AtomicU64,
    /// Unix seconds at which the token expires; `u64::MAX`: never.
    expires: AtomicU64,
    /// The token the session runs on, for re-checks; set once authenticated.
    token: OnceLock<String>,
    /// The server's counters, for messages and bytes sent.
    metrics: Arc<Metrics>,
    /// Writes the outbox out when no writer of this session is waiting.
    flusher: Arc<Flusher<Link>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("peer", &self.peer()).finish()
    }
}

impl Link {
    /// Wraps an upgraded connection's stream.
    pub fn new(
        stream: Transport,
        peer: SocketAddr,
        write_timeout: Duration,
        metrics: Arc<Metrics>,
        flusher: Arc<Flusher<Link>>,
    ) -> Arc<Link> {
        Arc::new(Link {
            stream,
            peer,
            write_timeout,
            writer: Mutex::new(Writer::default()),
            wake: AtomicU8::new(0),
            messages_sent: AtomicU64::new(0),
            expires: AtomicU64::new(u64::MAX),
            token: OnceLock::new(),
            metrics,
            flusher,
        })
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The socket, for the session thread's read timeouts.
    pub fn stream(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// The stream itself (TLS or not), for ending the connection.
    pub fn transport(&self) -> &Transport {
        &self.stream
    }

    fn state(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one data message sent, `frame` being its whole frame (for its
    /// payload bytes in the metrics).
    pub fn count_sent(&self, frame: &[u8]) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.metrics.message_sent(payload_len(frame));
    }

    /// Counts `n` messages pushed to sessions from outside them.
    pub fn count_pushed(&self, n: usize) {
        self.metrics.pushed(n);
    }

    /// Data messages sent so far.
    pub fn messages_sent(&self) -> u64 {
        self.messages_sent.load(Ordering::Relaxed)
    }

    /// Wakes the session's blocked read: `shutdown(Read)` on its socket (the
    /// descriptor stays open while this link exists, so it cannot have been
    /// reused). The first reason wins.
    pub fn wake(&self, reason: Wake) {
        if self
            .wake
            .compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            let _ = self.stream().shutdown(Shutdown::Read);
        }
    }

    /// Why the session was woken, if it was.
    pub fn woken(&self) -> Option<Wake> {
        match self.wake.load(Ordering::SeqCst) {
            1 => Some(Wake::Revoked),
            2 => Some(Wake::Shutdown),
            3 => Some(Wake::Closed),
            _ => None,
        }
    }

    /// Waits until `fd` (not this session's socket: a pipe, say) can be
    /// written, the client leaves (a FIN or a reset; a wake-up looks the
    /// same, as it shuts the socket's read half), or `deadline` passes.
    pub fn wait_writable(&self, fd: BorrowedFd<'_>, deadline: Option<Instant>) -> Waited {
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                return Waited::Deadline;
            }
            let mut fds = [
                pollfd(fd.as_raw_fd(), libc::POLLOUT),
                pollfd(self.stream().as_raw_fd(), libc::POLLRDHUP),
            ];
            // An error (a signal) is a wait that found nothing: look again.
            let ready = crate::sys::poll(&mut fds, left).unwrap_or(0);
            if ready > 0 && fds[1].revents != 0 {
                return Waited::PeerGone;
            }
            if ready > 0 && fds[0].revents != 0 {
                return Waited::Ready;
            }
        }
    }

    /// Cuts the connection off (a session stuck writing when the server stops).
    pub fn cut(&self) {
        let _ = self.stream().shutdown(Shutdown::Both);
    }

    /// Records the token the session runs on and its expiry.
    pub fn set_token(&self, token: String, expires: Option<u64>) {
        // The expiry first: a reload that sees the token must see its expiry
        // too, or it would take "never" for an expiry cut short and revoke.
        self.set_expires(expires);
        let _ = self.token.set(token);
    }

    /// The token the session runs on, once authenticated.
    pub fn token(&self) -> Option<&str> {
        self.token.get().map(String::as_str)
    }

    /// When the token expires (Unix seconds); `None` never.
    pub fn expires(&self) -> Option<u64> {
        match self.expires.load(Ordering::Relaxed) {
            u64::MAX => None,
            at => Some(at),
        }
    }

    /// Moves the token's expiry (a reload may change it).
    pub fn set_expires(&self, expires: Option<u64>) {
        self.expires
            .store(expires.unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}
