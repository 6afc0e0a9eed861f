//! Push from your backend: [`Publisher`] in the library, and `POST /publish`
//! and `POST /disconnect` over HTTP (`--publish-key-file`, see
//! [`PublishKey`](crate::PublishKey)). Both end in [`publish`], the one place a
//! publication is handed on: to the local sessions, or with `--redis` to the
//! bus across instances.

use crate::error::PublishError;
use crate::message::Message;
use crate::push::Sessions;
use crate::state::Shared;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(crate) mod endpoint;

/// Which path of the publish API a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /publish?user=NAME` or `POST /publish?all`.
    Publish,
    /// `POST /disconnect?user=NAME`.
    Disconnect,
}

/// What a publication does.
#[derive(Debug)]
pub(crate) enum Action<'a> {
    /// Send the message to every session of the user.
    ToUser(&'a str, Message),
    /// Send the message to every authenticated session.
    ToAll(Message),
    /// Close every session of the user with 1008 `disconnected`.
    Disconnect(&'a str),
}

/// Sends to users' sessions from anywhere in the program, as `POST
/// /publish` does over HTTP. Cloneable and thread-safe; get it from
/// [`Server::publisher`](crate::Server::publisher).
///
/// Unlike [`Sessions`], which is always this server's own sessions, a
/// `Publisher` is the application's channel to its users: it reaches
/// every session the publish API reaches. Messages from one publisher to
/// one session arrive in the order they were published.
///
/// With a bus ([`Config::bus`](crate::Config), feature `redis`) it goes
/// through Redis to every instance, this one included: each call returns
/// once Redis has taken the message, and its count is then of the
/// instances Redis handed it to, not of sessions. While the bus is down
/// it returns [`PublishError::BusDown`], and nothing is sent.
///
/// ```no_run
/// # fn backend(server: &wsauth::Server) -> Result<(), wsauth::PublishError> {
/// let publisher = server.publisher();
/// std::thread::spawn(move || {
///     let _ = publisher.to_user("alice", "your order shipped");
/// });
/// server.publisher().to_all("maintenance at noon")?;
/// server.publisher().disconnect_user("mallory")?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Publisher {
    shared: Arc<Shared>,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Publisher { shared }
    }

    /// Sends a text (`String`, `&str`) or binary (`Vec<u8>`) message to every
    /// session of `user`; returns how many took it.
    pub fn to_user(&self, user: &str, message: impl Into<Message>) -> Result<usize, PublishError> {
        publish(&self.shared, Action::ToUser(user, message.into()))
    }

    /// Sends a message to every authenticated session; returns how many took it.
    pub fn to_all(&self, message: impl Into<Message>) -> Result<usize, PublishError> {
        publish(&self.shared, Action::ToAll(message.into()))
    }

    /// Closes every session of `user` with 1008 `disconnected`; returns how
    /// many were closed. The user's token stays valid: revoke it to keep them out.
    pub fn disconnect_user(&self, user: &str) -> Result<usize, PublishError> {
        publish(&self.shared, Action::Disconnect(user))
    }
}

/// Hands a publication on; the one place every publication goes through,
/// the library's and the HTTP API's. Returns the sessions that took it.
pub(crate) fn publish(shared: &Shared, action: Action<'_>) -> Result<usize, PublishError> {
    if shared.stopping.load(Ordering::SeqCst) {
        return Err(PublishError::Stopped);
    }
    #[cfg(feature = "redis")]
    if let Some(bus) = shared.bus.get() {
        use crate::bus::Publication;
        return bus.publish(match &action {
            Action::ToUser(user, message) => Publication::ToUser(user, message),
            Action::ToAll(message) => Publication::ToAll(message),
            Action::Disconnect(user) => Publication::Disconnect(user),
        });
    }
    Ok(deliver_locally(shared, action))
}

/// Delivers a publication to this server's own sessions, through the same
/// fan-out as [`Sessions`] (which counts the messages handed over).
fn deliver_locally(shared: &Shared, action: Action<'_>) -> usize {
    let sessions = Sessions::new(shared.registry.clone());
    match action {
        Action::ToUser(user, message) => sessions.send_to_user(user, message),
        Action::ToAll(message) => sessions.broadcast(message),
        Action::Disconnect(user) => sessions.close_user(user, 1008, "disconnected"),
    }
}
