//! The live sessions, so that events from outside a session (a revoked token,
//! shutdown) can wake it at once: its blocked read is ended with
//! `shutdown(Read)` on a clone of its socket, and the session, seeing the
//! reason, writes its own close frame. No other thread ever writes to it.

use crate::auth::Authenticator;
use std::collections::HashMap;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Why a session was woken from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Its token is no longer valid.
    Revoked = 1,
    /// The server is stopping.
    Shutdown = 2,
}

struct Entry {
    /// The session's own socket, not a duplicate (a duplicate doubles the
    /// descriptors a session needs). Valid while the entry exists: a session
    /// leaves the registry (drops its `Member`) before it closes the socket.
    fd: RawFd,
    token: Option<String>,
    expires: Option<u64>,
    wake: Arc<AtomicU8>,
}

#[derive(Default)]
struct Sessions {
    next_id: u64,
    closing: bool,
    entries: HashMap<u64, Entry>,
}

/// All live sessions.
#[derive(Default)]
pub struct Registry {
    sessions: Mutex<Sessions>,
    emptied: Condvar,
}

/// A session's place in the registry; leaving the scope removes it.
pub struct Member<'a> {
    registry: &'a Registry,
    id: u64,
    wake: Arc<AtomicU8>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a session; `None` once the server is stopping.
    pub fn join(&self, stream: &TcpStream) -> Option<Member<'_>> {
        let fd = stream.as_raw_fd();
        let mut sessions = self.lock();
        if sessions.closing {
            return None;
        }
        sessions.next_id += 1;
        let id = sessions.next_id;
        let wake = Arc::new(AtomicU8::new(0));
        sessions.entries.insert(
            id,
            Entry {
                fd,
                token: None,
                expires: None,
                wake: wake.clone(),
            },
        );
        Some(Member {
            registry: self,
            id,
            wake,
        })
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Checks every session's token again; wakes those whose token is no
    /// longer valid, or now expires earlier than it did.
    pub fn revalidate(&self, auth: &dyn Authenticator) {
        let mut sessions = self.lock();
        for entry in sessions.entries.values_mut() {
            let Some(token) = &entry.token else { continue };
            let still = auth.authenticate(token);
            match still {
                Some(identity)
                    if identity.expires.unwrap_or(u64::MAX)
                        >= entry.expires.unwrap_or(u64::MAX) =>
                {
                    entry.expires = identity.expires;
                }
                _ => wake(entry, Wake::Revoked),
            }
        }
    }

    /// Stops new sessions joining and wakes every live one; then waits up to
    /// `grace` for them to end, and cuts off any left.
    pub fn close_all(&self, grace: Duration) {
        let mut sessions = self.lock();
        sessions.closing = true;
        for entry in sessions.entries.values() {
            wake(entry, Wake::Shutdown);
        }
        let deadline = Instant::now() + grace;
        while !sessions.entries.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // A session stuck writing to a peer that does not read.
                for entry in sessions.entries.values() {
                    shutdown(entry.fd, libc::SHUT_RDWR);
                }
                return;
            }
            sessions = self
                .emptied
                .wait_timeout(sessions, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn wake(entry: &Entry, reason: Wake) {
    if entry.wake.swap(reason as u8, Ordering::SeqCst) == 0 {
        shutdown(entry.fd, libc::SHUT_RD);
    }
}

impl Member<'_> {
    /// Records the token the session runs on, for later re-checks.
    pub fn set_token(&self, token: &str, expires: Option<u64>) {
        if let Some(entry) = self.registry.lock().entries.get_mut(&self.id) {
            entry.token = Some(token.to_string());
            entry.expires = expires;
        }
    }

    /// Why the session was woken, if it was.
    pub fn woken(&self) -> Option<Wake> {
        match self.wake.load(Ordering::SeqCst) {
            1 => Some(Wake::Revoked),
            2 => Some(Wake::Shutdown),
            _ => None,
        }
    }
}

impl Drop for Member<'_> {
    fn drop(&mut self) {
        let mut sessions = self.registry.lock();
        sessions.entries.remove(&self.id);
        if sessions.entries.is_empty() {
            self.registry.emptied.notify_all();
        }
    }
}

/// `shutdown(2)` on a registered session's socket.
fn shutdown(fd: RawFd, how: libc::c_int) {
    // SAFETY: called with the registry locked, on the descriptor of an entry
    // that still exists, so the session has not closed it yet.
    unsafe { libc::shutdown(fd, how) };
}
