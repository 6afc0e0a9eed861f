//! A session after the upgrade: optional first-message authentication, the
//! greeting, the echo loop, and every way a session can end.

use crate::auth::{Identity, is_valid_token, unix_now};
use crate::handshake::Admission;
use crate::http::{close_gracefully, is_timeout};
use crate::registry::{Member, Wake};
use crate::server::Shared;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::{Error, Message, WebSocket};

/// How long we wait for the peer's answer to a close frame we sent.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How a session ended, for the log.
struct End {
    /// The close code sent, or `None` when no close frame was exchanged.
    code: Option<u16>,
    /// A few words on why.
    why: &'static str,
}

/// What one read produced.
enum Event {
    Message(Message),
    /// The read timed out: a deadline may have come.
    Tick,
    Ended(End),
}

struct Session<'a> {
    /// Declared (so dropped) before `ws`: the session leaves the registry
    /// before its socket is closed, as the registry requires.
    member: Member<'a>,
    ws: WebSocket<TcpStream>,
    shared: &'a Shared,
    peer: SocketAddr,
    /// The close code the peer sent, once it sent one.
    peer_close: Option<Option<u16>>,
    expires: Option<u64>,
    token: String,
    received: u64,
    sent: u64,
    /// The read timeout the socket has now, to set it only when it changes.
    read_timeout: Option<Option<Duration>>,
}

/// A connection that passed the upgrade, ready for its session.
pub struct Upgraded {
    /// The WebSocket, the 101 already sent.
    pub ws: WebSocket<TcpStream>,
    /// How the client was admitted.
    pub admission: Admission,
    /// The client's address.
    pub peer: SocketAddr,
}

/// Runs a session to its end, then logs how it went.
pub fn run(upgraded: Upgraded, shared: &Shared) {
    let Upgraded {
        ws,
        admission,
        peer,
    } = upgraded;
    let Some(member) = shared.registry.join(ws.get_ref()) else {
        write_close_frame(ws.get_ref(), CloseCode::Away, "server shutting down");
        return;
    };
    let mut session = Session {
        ws,
        shared,
        member,
        peer,
        peer_close: None,
        expires: None,
        token: String::new(),
        received: 0,
        sent: 0,
        read_timeout: None,
    };
    let identity = match admission {
        Admission::Authenticated { identity, token } => {
            session.token = token;
            identity
        }
        Admission::AwaitingToken => match session.await_token() {
            Ok(identity) => identity,
            Err(_) => return,
        },
    };
    session.expires = identity.expires;
    session.member.set_token(&session.token, identity.expires);
    log::info!("{peer}: session opened for {}", identity.user);
    let started = Instant::now();
    let end = session.greet_and_echo(&identity.user);
    let code = end.code.map_or("none".to_string(), |c| c.to_string());
    log::info!(
        "{peer}: session closed for {}: {:.1}s, {} in, {} out, close {code} ({})",
        identity.user,
        started.elapsed().as_secs_f64(),
        session.received,
        session.sent,
        end.why
    );
}

impl Session<'_> {
    /// With `first_message_auth`: the first message must be a valid token.
    fn await_token(&mut self) -> Result<Identity, End> {
        let deadline = Instant::now() + self.shared.config.handshake_timeout;
        let failure = loop {
            match self.next_event(Some(deadline)) {
                Event::Message(Message::Text(text)) if is_valid_token(&text) => {
                    match self.shared.auth.authenticate(&text) {
                        Some(identity) => {
                            self.token = text.to_string();
                            return Ok(identity);
                        }
                        None => break "wrong token",
                    }
                }
                Event::Message(Message::Text(_)) => break "wrong token",
                Event::Message(Message::Binary(_)) => break "binary first message",
                Event::Message(_) => continue,
                // A read timeout is only a hint; the deadline decides.
                Event::Tick if Instant::now() < deadline => continue,
                Event::Tick => break "no token message in time",
                Event::Ended(end) => return Err(end),
            }
        };
        log::info!(
            "{}: rejected: first-message authentication failed: {failure}",
            self.peer
        );
        self.shared.throttle.record_failure(self.peer.ip());
        Err(self.close(CloseCode::Policy, "invalid token"))
    }

    fn greet_and_echo(&mut self, user: &str) -> End {
        let greeting = &self.shared.config.greeting;
        if !greeting.is_empty() {
            if let Err(e) = self
                .ws
                .send(Message::text(greeting.replace("{user}", user)))
            {
                return self.on_error(e);
            }
            self.sent += 1;
        }
        let idle = self.shared.config.idle_timeout;
        let mut last_heard = Instant::now();
        let mut pinged = false;
        loop {
            let idle_at = idle.map(|t| last_heard + t);
            let ping_at = idle.filter(|_| !pinged).map(|t| last_heard + t / 2);
            let expires_at = self.expires.map(instant_of);
            let deadline = [idle_at, ping_at, expires_at].into_iter().flatten().min();
            match self.next_event(deadline) {
                Event::Message(message) => {
                    last_heard = Instant::now();
                    pinged = false;
                    if let Err(e) = self.answer(message) {
                        return self.on_error(e);
                    }
                }
                Event::Tick => {
                    let now = Instant::now();
                    if expires_at.is_some_and(|t| now >= t) && self.has_expired() {
                        return self.close(CloseCode::Policy, "token expired");
                    }
                    if idle_at.is_some_and(|t| now >= t) {
                        return self.close(CloseCode::Away, "idle timeout");
                    }
                    if ping_at.is_some_and(|t| now >= t) {
                        pinged = true;
                        if let Err(e) = self.ws.send(Message::Ping(Default::default())) {
                            return self.on_error(e);
                        }
                    }
                }
                Event::Ended(end) => return end,
            }
        }
    }

    /// Echoes data messages; notes the peer's close (tungstenite answers it).
    fn answer(&mut self, message: Message) -> Result<(), Error> {
        let reply = match message {
            Message::Text(text) => {
                let prefix = &self.shared.config.echo_prefix;
                if prefix.is_empty() {
                    Message::Text(text)
                } else {
                    let mut reply = String::with_capacity(prefix.len() + text.len());
                    reply.push_str(prefix);
                    reply.push_str(&text);
                    Message::text(reply)
                }
            }
            Message::Binary(data) => Message::Binary(data),
            Message::Close(frame) => {
                self.peer_close = Some(frame.map(|f| close_reply_code(f.code)));
                return Ok(());
            }
            _ => return Ok(()),
        };
        self.received += 1;
        self.ws.send(reply)?;
        self.sent += 1;
        Ok(())
    }

    /// Whether the token has expired, asking the authenticator again in case
    /// its expiry moved.
    fn has_expired(&mut self) -> bool {
        if self.expires.is_none_or(|e| unix_now() < e) {
            return false;
        }
        match self.shared.auth.authenticate(&self.token) {
            Some(identity) if identity.expires != self.expires => {
                self.expires = identity.expires;
                false
            }
            _ => true,
        }
    }

    /// Reads one message, waiting until `deadline` at most.
    fn next_event(&mut self, deadline: Option<Instant>) -> Event {
        // A zero timeout is refused by the OS; a millisecond is the least.
        let timeout = deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        // Keep the socket's timeout while it is not later than this deadline
        // and not much earlier: no setsockopt per message (an early timeout
        // is only a Tick that finds nothing due).
        let keep = match (self.read_timeout, timeout) {
            (Some(Some(current)), Some(wanted)) => current <= wanted && current >= wanted / 2,
            (Some(None), None) => true,
            _ => false,
        };
        if !keep {
            if self.ws.get_ref().set_read_timeout(timeout).is_err() {
                return Event::Ended(End {
                    code: None,
                    why: "connection lost",
                });
            }
            self.read_timeout = Some(timeout);
        }
        match self.ws.read() {
            Ok(message) => Event::Message(message),
            Err(Error::Io(e)) if is_timeout(&e) => Event::Tick,
            Err(e) => Event::Ended(self.on_error(e)),
        }
    }

    /// Turns a read or write error into the right ending.
    fn on_error(&mut self, error: Error) -> End {
        if let Some(wake) = self.member.woken() {
            return self.close_woken(wake);
        }
        match error {
            Error::ConnectionClosed => match self.peer_close {
                Some(code) => End {
                    code,
                    why: "closed by peer",
                },
                None => End {
                    code: None,
                    why: "closed",
                },
            },
            Error::Capacity(_) => self.close(CloseCode::Size, "message too big"),
            Error::Utf8(_) => self.close(CloseCode::Invalid, "invalid UTF-8"),
            Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)
            | Error::Io(_)
            | Error::AlreadyClosed => End {
                code: None,
                why: "connection lost",
            },
            Error::Protocol(_) => self.close(CloseCode::Protocol, "protocol error"),
            _ => self.close(CloseCode::Error, "internal error"),
        }
    }

    /// Sends a close frame and waits briefly for the peer's answer. After a
    /// 1009 tungstenite repeats the error on every read, so the wait ends at
    /// once and the stream is dropped instead of hanging the client.
    fn close(&mut self, code: CloseCode, reason: &'static str) -> End {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if self.ws.close(Some(frame)).is_ok() {
            let deadline = Instant::now() + CLOSE_GRACE;
            let _ = self.ws.get_ref().set_read_timeout(Some(CLOSE_GRACE));
            self.read_timeout = Some(Some(CLOSE_GRACE));
            while Instant::now() < deadline {
                match self.ws.read() {
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
        }
        close_gracefully(self.ws.get_mut());
        End {
            code: Some(code.into()),
            why: reason,
        }
    }

    /// Closes a session woken from outside. Its read half is already shut, so
    /// tungstenite would refuse to write: the close frame goes to the socket.
    fn close_woken(&mut self, wake: Wake) -> End {
        let reason = match wake {
            Wake::Shutdown => "server shutting down",
            Wake::Revoked if self.expires.is_some_and(|e| unix_now() >= e) => "token expired",
            Wake::Revoked => "token revoked",
        };
        let code = if wake == Wake::Shutdown {
            CloseCode::Away
        } else {
            CloseCode::Policy
        };
        write_close_frame(self.ws.get_ref(), code, reason);
        End {
            code: Some(code.into()),
            why: reason,
        }
    }
}

/// Writes a close frame straight to the socket and ends our side of it.
fn write_close_frame(mut stream: &TcpStream, code: CloseCode, reason: &'static str) {
    let mut bytes = Vec::with_capacity(2 + 2 + reason.len());
    if Frame::close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
    .format(&mut bytes)
    .is_ok()
    {
        let _ = stream.write_all(&bytes);
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// The code tungstenite answers a peer's close with: the same one, or 1002
/// for a code that may not be sent.
fn close_reply_code(code: CloseCode) -> u16 {
    if code.is_allowed() { code.into() } else { 1002 }
}

/// The `Instant` at which a Unix time (in seconds) is reached.
fn instant_of(unix_seconds: u64) -> Instant {
    let at = UNIX_EPOCH + Duration::from_secs(unix_seconds);
    let now = Instant::now();
    match at.duration_since(SystemTime::now()) {
        Ok(left) => now + left,
        Err(_) => now,
    }
}
