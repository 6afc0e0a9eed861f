//! Server push: send to a live session from any thread, list the live
//! sessions, and broadcast to all of them or to one user's.

use crate::error::SendError;
use crate::link::Link;
use crate::message::{Message, sendable_code, short_reason};
use crate::registry::Registry;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

/// Sends to one session from any thread. Cloneable and cheap to keep: it
/// holds no file descriptor open and wakes nothing while unused.
///
/// A send returns once the whole frame has left for the socket, after the
/// frames handed to the session before it (they keep their order); it never
/// waits longer than the write timeout
/// ([`Config::write_timeout`](crate::Config::write_timeout)), after which
/// the session is cut off.
///
/// ```no_run
/// # fn keep(handle: wsauth::SessionHandle) {
/// std::thread::spawn(move || {
///     for reading in 0.. {
///         if handle.send(format!("reading {reading}")).is_err() {
///             break; // the session has ended
///         }
///         std::thread::sleep(std::time::Duration::from_secs(1));
///     }
/// });
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SessionHandle {
    link: Weak<Link>,
}

impl SessionHandle {
    pub(crate) fn new(link: &Arc<Link>) -> Self {
        SessionHandle {
            link: Arc::downgrade(link),
        }
    }

    /// Sends a text (`String`, `&str`) or binary (`Vec<u8>`) message.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.send_frame(&message.into().to_frame())
    }

    pub(crate) fn send_frame(&self, frame: &[u8]) -> Result<(), SendError> {
        let link = self.link.upgrade().ok_or(SendError::Closed)?;
        link.write_frames(frame, false)?;
        link.count_sent(frame);
        link.count_pushed(1);
        Ok(())
    }

    /// Closes the session with `code` and `reason` (see
    /// [`Reply::close`](crate::Reply::close) for the codes allowed).
    pub fn close(&self, code: u16, reason: impl Into<String>) -> Result<(), SendError> {
        let link = self.link.upgrade().ok_or(SendError::Closed)?;
        link.close_from_handle(sendable_code(code), &short_reason(reason.into()))
    }

    /// Whether the session can still be sent to.
    pub fn is_open(&self) -> bool {
        self.link.upgrade().is_some_and(|link| !link.is_closed())
    }
}

/// One live, authenticated session.
///
/// ```no_run
/// # fn show(server: &wsauth::Server) {
/// for session in server.sessions().list() {
///     println!("{} from {}", session.user, session.peer);
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LiveSession {
    /// Who it belongs to.
    pub user: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// Sends to it.
    pub handle: SessionHandle,
}

/// The live sessions of one server: list them, send to all or to one user's.
/// Cloneable; get it from [`Server::sessions`](crate::Server::sessions) or
/// [`SessionInfo::sessions`](crate::SessionInfo::sessions).
///
/// ```no_run
/// # fn chat(sessions: wsauth::Sessions) {
/// let delivered = sessions.broadcast("server restarting in a minute");
/// let to_alice = sessions.send_to_user("alice", "hello alice");
/// println!("{delivered} sessions told, {to_alice} of them alice's");
/// # }
/// ```
#[derive(Clone)]
pub struct Sessions {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("live", &self.registry.len())
            .finish()
    }
}

impl Sessions {
    pub(crate) fn new(registry: Arc<Registry>) -> Self {
        Sessions { registry }
    }

    /// The authenticated sessions open now.
    pub fn list(&self) -> Vec<LiveSession> {
        self.registry
            .authenticated()
            .into_iter()
            .map(|(user, link)| LiveSession {
                user: user.to_string(),
                peer: link.peer(),
                handle: SessionHandle::new(&link),
            })
            .collect()
    }

    /// Sends `message` to every authenticated session; returns how many took
    /// it (into their socket or their outbox). The frame is formatted once;
    /// no session is waited for: one whose outbox would overflow is closed
    /// with 1008 `too slow` instead.
    pub fn broadcast(&self, message: impl Into<Message>) -> usize {
        self.send_where(message.into(), |_| true)
    }

    /// Sends `message` to every session of `user`; returns how many took it.
    pub fn send_to_user(&self, user: &str, message: impl Into<Message>) -> usize {
        self.send_where(message.into(), |u| u == user)
    }

    /// Closes every session of `user` with `code` and `reason`; returns how many.
    pub(crate) fn close_user(&self, user: &str, code: u16, reason: &str) -> usize {
        self.list()
            .into_iter()
            .filter(|session| session.user == user)
            .filter(|session| session.handle.close(code, reason).is_ok())
            .count()
    }

    fn send_where(&self, message: Message, wanted: impl Fn(&str) -> bool) -> usize {
        let frame = message.to_frame();
        let mut delivered = 0;
        let mut last = None;
        for (user, link) in self.registry.authenticated() {
            if wanted(&user) && link.push_frame(&frame).is_ok() {
                link.count_sent(&frame);
                delivered += 1;
                last = Some(link);
            }
        }
        if let Some(link) = last {
            link.count_pushed(delivered);
        }
        delivered
    }
}
