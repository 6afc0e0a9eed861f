//! Your own session logic: a [`Handler`] made per session decides what to
//! say; the server keeps every rule (limits, idle ping and close, expiry,
//! revocation, shutdown, logs) whatever the handler does.

use crate::auth::Identity;
use crate::error::SendError;
use crate::link::{Link, Waited};
use crate::message::{Message, data_frame, data_frame_of, sendable_code, short_reason};
use crate::push::{SessionHandle, Sessions};
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Instant;
use tungstenite::protocol::frame::coding::Data;

/// What a handler learns when its session opens.
///
/// ```
/// use wsauth::{Handler, Reply, SessionInfo};
/// struct Greeter { user: String }
/// impl Handler for Greeter {
///     fn on_open(&mut self, reply: &mut Reply<'_>) { let _ = reply.text(format!("hi {}", self.user)); }
///     fn on_text(&mut self, _text: &str, _reply: &mut Reply<'_>) {}
/// }
/// fn make(info: &SessionInfo) -> Greeter {
///     println!("{} from {} ({:?})", info.identity.user, info.peer, info.subprotocol);
///     Greeter { user: info.identity.user.clone() }
/// }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Who the token belongs to, and until when it is valid.
    pub identity: Identity,
    /// The client's address.
    pub peer: SocketAddr,
    /// The subprotocol selected in the 101, if any.
    pub subprotocol: Option<String>,
    /// Sends to this session from any thread, at any time.
    pub handle: SessionHandle,
    /// Every live session of this server, for broadcasts.
    pub sessions: Sessions,
}

/// A session's logic. The server calls it on the session's own thread, one
/// call at a time; answer through the [`Reply`], or keep
/// [`SessionInfo::handle`] to send later from another thread. While a call
/// runs the session reads nothing from its client: a call that may wait on
/// something outside waits with [`Reply::wait_writable`], or returns soon
/// once [`Reply::is_closing`] says so.
///
/// ```
/// use wsauth::{Handler, Reply};
///
/// /// Answers every text message with its length.
/// struct Length;
/// impl Handler for Length {
///     fn on_text(&mut self, text: &str, reply: &mut Reply<'_>) {
///         let _ = reply.text(text.len().to_string());
///     }
/// }
/// ```
pub trait Handler {
    /// The session has opened (after first-message authentication, if any).
    fn on_open(&mut self, reply: &mut Reply<'_>) {
        let _ = reply;
    }

    /// A text message arrived.
    fn on_text(&mut self, text: &str, reply: &mut Reply<'_>);

    /// A binary message arrived. By default the session is closed with 1003,
    /// the code for data a endpoint cannot accept.
    fn on_binary(&mut self, data: &[u8], reply: &mut Reply<'_>) {
        let _ = data;
        reply.close(1003, "binary messages not supported");
    }

    /// The session has ended: the close code sent or answered, or `None`
    /// when the connection ended without a close frame.
    fn on_close(&mut self, code: Option<u16>) {
        let _ = code;
    }
}

/// What a handler can do during a call: send any number of messages, or
/// close the session with a code and reason of its choosing.
///
/// ```
/// use wsauth::{Handler, Reply};
/// struct Quiz;
/// impl Handler for Quiz {
///     fn on_text(&mut self, text: &str, reply: &mut Reply<'_>) {
///         if text == "42" {
///             let _ = reply.text("right");
///             reply.close(1000, "done");
///         } else {
///             let _ = reply.text("try again");
///         }
///     }
/// }
/// ```
pub struct Reply<'a> {
    link: &'a Arc<Link>,
    /// When the session's idle timeout passes, if nothing is heard first.
    idle_at: Option<Instant>,
    pub(crate) close: Option<(u16, String)>,
    pub(crate) failed: Option<SendError>,
}

impl<'a> Reply<'a> {
    /// A reply for one call of a session whose idle timeout passes at `idle_at`.
    pub(crate) fn new(link: &'a Arc<Link>, idle_at: Option<Instant>) -> Self {
        Reply {
            link,
            idle_at,
            close: None,
            failed: None,
        }
    }

    /// Sends a text message now. After [`Reply::close`] or a failed send,
    /// nothing more goes out and every send returns that error (a close:
    /// [`SendError::Closed`]); the session ends once this call returns.
    pub fn text(&mut self, text: impl AsRef<str>) -> Result<(), SendError> {
        self.send_frame(&data_frame(Data::Text, text.as_ref().as_bytes()))
    }

    /// Sends a binary message now, as [`Reply::text`] does a text one.
    pub fn binary(&mut self, data: impl AsRef<[u8]>) -> Result<(), SendError> {
        self.send_frame(&data_frame(Data::Binary, data.as_ref()))
    }

    /// Sends, as one text message, `first` followed by `second`.
    pub(crate) fn text_of(&mut self, first: &str, second: &str) -> Result<(), SendError> {
        self.send_frame(&data_frame_of(
            Data::Text,
            &[first.as_bytes(), second.as_bytes()],
        ))
    }

    /// Sends a text (`String`, `&str`) or binary (`Vec<u8>`) message now, as
    /// [`SessionHandle::send`](crate::SessionHandle::send) does from another
    /// thread.
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), SendError> {
        self.send_frame(&message.into().to_frame())
    }

    /// Closes the session once this call returns. A code that may not be sent
    /// (RFC 6455: 1000-1003, 1007-1014, 3000-4999 may) becomes 1011; the
    /// reason is cut to 123 bytes.
    pub fn close(&mut self, code: u16, reason: impl Into<String>) {
        if self.close.is_none() {
            self.close = Some((sendable_code(code), short_reason(reason.into())));
        }
    }

    /// Whether the session has been told to end (shutdown, a revoked or
    /// expired token, a handle's close): a handler busy with a long task
    /// should return soon.
    pub fn is_closing(&self) -> bool {
        self.link.woken().is_some() || self.link.is_closed()
    }

    /// Waits until `fd` can be written (a pipe to a program, say) while the
    /// session keeps its rules: while a call runs, the session reads nothing
    /// from its client, so a handler that may wait on something outside
    /// should wait here. `false`: the session must end first, and will once
    /// this call returns: its client left, its idle timeout passed (it then
    /// closes with 1001 `idle timeout`), or it was told to end.
    ///
    /// ```no_run
    /// # use std::io::Write;
    /// # use std::os::fd::AsFd;
    /// # fn feed(pipe: &mut std::io::PipeWriter, mut line: &[u8], reply: &mut wsauth::Reply<'_>) {
    /// // `pipe` is non-blocking: a full pipe says WouldBlock.
    /// while !line.is_empty() {
    ///     match pipe.write(line) {
    ///         Ok(n) => line = &line[n..],
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
    ///             if !reply.wait_writable(pipe.as_fd()) {
    ///                 return;
    ///             }
    ///         }
    ///         Err(_) => return,
    ///     }
    /// }
    /// # }
    /// ```
    pub fn wait_writable(&mut self, fd: BorrowedFd<'_>) -> bool {
        if self.close.is_some() || self.failed.is_some() {
            return false;
        }
        match self.link.wait_writable(fd, self.idle_at) {
            Waited::Ready => true,
            Waited::Deadline => {
                self.close(1001, "idle timeout");
                false
            }
            Waited::PeerGone => {
                // A wake-up is told apart by the session itself.
                self.failed = Some(SendError::Closed);
                false
            }
        }
    }

    fn send_frame(&mut self, frame: &[u8]) -> Result<(), SendError> {
        if self.close.is_some() {
            return Err(SendError::Closed);
        }
        if let Some(e) = self.failed {
            return Err(e);
        }
        let sent = self.link.write_frames(frame, true);
        match sent {
            Ok(()) => self.link.count_sent(frame),
            Err(e) => self.failed = Some(e),
        }
        sent
    }
}

/// The default handler: a greeting, then every text message back with a
/// prefix and every binary message back unchanged. [`Server::start`]
/// runs it with [`Echo::GREETING`] and [`Echo::PREFIX`]; other settings go
/// through [`Echo::each_session`]:
///
/// ```no_run
/// use wsauth::{Config, Echo, Server, TokenStore};
/// let tokens = TokenStore::new(vec![]);
/// let quiet = Echo::each_session("", "you said: ");
/// let server = Server::start_with_handler("127.0.0.1:0", Config::default(), tokens, quiet)?;
/// # Ok::<(), wsauth::Error>(())
/// ```
///
/// [`Server::start`]: crate::Server::start
pub struct Echo {
    /// Dropped once sent: an idle session keeps no copy.
    greeting: Option<String>,
    /// Shared by every session.
    prefix: Arc<str>,
}

impl Echo {
    /// The greeting [`Server::start`](crate::Server::start) sends.
    pub const GREETING: &'static str = "Hello {user}";
    /// What [`Server::start`](crate::Server::start) puts before each echoed text.
    pub const PREFIX: &'static str = "Message text was: ";

    /// What makes each session's echo, for
    /// [`Server::start_with_handler`](crate::Server::start_with_handler):
    /// `greeting` (with `{user}` replaced; empty sends none) and `prefix`
    /// before each echoed text.
    pub fn each_session(
        greeting: &str,
        prefix: &str,
    ) -> impl Fn(&SessionInfo) -> Echo + Send + Sync + 'static {
        let greeting = greeting.to_string();
        let prefix: Arc<str> = prefix.into();
        move |info| Echo::new(&info.identity.user, &greeting, prefix.clone())
    }

    /// An echo for `user`: `greeting` with `{user}` replaced (empty sends
    /// none), and `prefix` before each echoed text.
    ///
    /// ```
    /// let echo = wsauth::Echo::new("alice", "Hello {user}", "you said: ".into());
    /// ```
    pub fn new(user: &str, greeting: &str, prefix: Arc<str>) -> Self {
        Echo {
            greeting: (!greeting.is_empty()).then(|| greeting.replace("{user}", user)),
            prefix,
        }
    }
}

impl Handler for Echo {
    fn on_open(&mut self, reply: &mut Reply<'_>) {
        // A failed send ends the session: nothing is left to do about it.
        if let Some(greeting) = self.greeting.take() {
            let _ = reply.text(greeting);
        }
    }

    fn on_text(&mut self, text: &str, reply: &mut Reply<'_>) {
        let _ = reply.text_of(&self.prefix, text);
    }

    fn on_binary(&mut self, data: &[u8], reply: &mut Reply<'_>) {
        let _ = reply.binary(data);
    }
}
