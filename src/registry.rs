//! The live sessions, so that events from outside a session (a revoked or
//! expired token, shutdown) can wake it at once, and pushes can find it.

use crate::auth::{Authenticator, unix_now};
use crate::link::{Link, Wake};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

struct Entry {
    link: Arc<Link>,
    /// Set once the session is authenticated.
    user: Option<Arc<str>>,
}

#[derive(Default)]
struct Sessions {
    next_id: u64,
    closing: bool,
    entries: HashMap<u64, Entry>,
}

/// All live sessions.
pub struct Registry {
    sessions: Mutex<Sessions>,
    emptied: Condvar,
    /// No token expires before this (Unix seconds): until then the
    /// once-a-second expiry check walks nothing, so idle sessions cost nothing.
    earliest_expiry: AtomicU64,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            sessions: Mutex::default(),
            emptied: Condvar::new(),
            earliest_expiry: AtomicU64::new(u64::MAX),
        }
    }
}

/// A session's place in the registry; dropping it removes the session.
pub struct Member<'a> {
    registry: &'a Registry,
    id: u64,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a session; `None` once the server is stopping.
    pub fn join(&self, link: Arc<Link>) -> Option<Member<'_>> {
        let mut sessions = self.lock();
        if sessions.closing {
            return None;
        }
        sessions.next_id += 1;
        let id = sessions.next_id;
        sessions.entries.insert(id, Entry { link, user: None });
        Some(Member { registry: self, id })
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// The authenticated sessions, with their users.
    pub fn authenticated(&self) -> Vec<(Arc<str>, Arc<Link>)> {
        self.lock()
            .entries
            .values()
            .filter_map(|e| Some((e.user.clone()?, e.link.clone())))
            .collect()
    }

    /// Checks every session's token again; wakes those whose token is no
    /// longer valid, or now expires earlier than it did. The checks run
    /// outside the registry's lock: a slow signature check must not keep
    /// sessions from opening or closing meanwhile.
    pub fn revalidate(&self, auth: &dyn Authenticator) {
        let links: Vec<Arc<Link>> = self
            .lock()
            .entries
            .values()
            .map(|e| e.link.clone())
            .collect();
        for link in links {
            let Some(token) = link.token() else {
                continue;
            };
            let was = link.expires();
            match auth.authenticate(token) {
                Some(identity)
                    if identity.expires.unwrap_or(u64::MAX) >= was.unwrap_or(u64::MAX) =>
                {
                    link.set_expires(identity.expires);
                }
                _ => link.wake(Wake::Revoked),
            }
        }
    }

    /// Wakes the sessions whose token has expired, in case one is busy in
    /// its handler instead of waiting for its own deadline.
    pub fn wake_expired(&self) {
        let now = unix_now();
        if now < self.earliest_expiry.load(Ordering::Relaxed) {
            return;
        }
        let sessions = self.lock();
        let mut earliest = u64::MAX;
        for entry in sessions.entries.values() {
            match entry.link.expires() {
                Some(e) if now >= e => entry.link.wake(Wake::Revoked),
                Some(e) => earliest = earliest.min(e),
                None => {}
            }
        }
        self.earliest_expiry.store(earliest, Ordering::Relaxed);
    }

    /// Stops new sessions joining and wakes every live one; then waits up to
    /// `grace` for them to end, and cuts off any left.
    pub fn close_all(&self, grace: Duration) {
        let mut sessions = self.lock();
        sessions.closing = true;
        for entry in sessions.entries.values() {
            entry.link.wake(Wake::Shutdown);
        }
        let deadline = Instant::now() + grace;
        while !sessions.entries.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // A session stuck writing to a peer that does not read.
                for entry in sessions.entries.values() {
                    entry.link.cut();
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

impl Member<'_> {
    /// Marks the session authenticated, so pushes and listings see it, and
    /// notes when its token expires: on its link, where the expiry walk
    /// reads it, and in the registry's earliest expiry, both under the lock
    /// that walk takes (a walk that found the link without its expiry would
    /// raise the earliest expiry past it, and no tick would wake it).
    pub fn authenticated(&self, user: &str, expires: Option<u64>) {
        let mut sessions = self.registry.lock();
        if let Some(entry) = sessions.entries.get_mut(&self.id) {
            entry.user = Some(user.into());
            entry.link.set_expires(expires);
        }
        if let Some(e) = expires {
            self.registry
                .earliest_expiry
                .fetch_min(e, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::transport::Transport;
    use std::net::{TcpListener, TcpStream};

    /// A link over a loopback connection (its far end is dropped).
    fn link() -> Arc<Link> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let stream = TcpStream::connect(listener.local_addr().expect("bound")).expect("connects");
        let peer = stream.local_addr().expect("connected");
        let transport = Transport::Plain(Arc::new(stream));
        Link::new(
            transport,
            peer,
            Duration::from_secs(1),
            Arc::new(Metrics::default()),
            crate::flusher::Flusher::new(1 << 20),
        )
    }

    #[test]
    fn an_expiry_walk_after_authenticated_keeps_the_new_expiry() {
        let registry = Registry::default();
        let now = unix_now();
        // An expired session, so that the next tick walks the sessions.
        let expired = registry.join(link()).expect("open");
        expired.authenticated("old", Some(now - 1));
        let fresh = registry.join(link()).expect("open");
        fresh.authenticated("alice", Some(now + 3600));
        registry.wake_expired();
        let earliest = registry.earliest_expiry.load(Ordering::Relaxed);
        assert!(
            earliest <= now + 3600,
            "earliest expiry {earliest}, alice's {}",
            now + 3600
        );
    }
}
