//! A session after the upgrade: optional first-message authentication, then
//! the handler's calls, and every way a session can end.

use crate::auth::unix_now;
use crate::handler::{Handler, Reply, SessionInfo};
use crate::handshake::Upgraded;
use crate::http::{close_gracefully, is_timeout};
use crate::link::{Link, SessionStream, Wake, close_frame_bytes};
use crate::push::{SessionHandle, Sessions};
use crate::state::Shared;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Error, Message as WsMessage, WebSocket};

mod first_message;

/// A millisecond: the least read timeout, and the slack a kept one may have.
const MS: Duration = Duration::from_millis(1);
/// How long we wait for the peer's answer to a close frame we sent.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// A session quiet this long gives back, once per quiet spell, the stack
/// pages its thread touched deeper down (the handshake's) and its inbox:
/// an idle session pays one wake-up for it, a chatty one none.
const QUIET_AFTER: Duration = Duration::from_secs(1);
/// Until the first release (the handshake's pages) the spell is shorter, so
/// that in a storm of reconnects the peak stays near the settled figure.
const FIRST_QUIET_AFTER: Duration = Duration::from_millis(100);

/// How a session ended, for the log and the handler.
struct End {
    /// The close code sent, or `None` when no close frame was exchanged.
    code: Option<u16>,
    /// A few words on why.
    why: Cow<'static, str>,
}

impl End {
    fn new(code: Option<u16>, why: impl Into<Cow<'static, str>>) -> End {
        let why = why.into();
        End { code, why }
    }

    fn lost() -> End {
        End::new(None, "connection lost")
    }
}

/// What one read produced.
enum Event {
    Message(WsMessage),
    /// The read timed out: a deadline may have come.
    Tick,
    Ended(End),
}

struct Session<'a> {
    ws: Box<WebSocket<SessionStream>>,
    link: Arc<Link>,
    shared: &'a Shared,
    peer: SocketAddr,
    /// The close code the peer sent, once it sent one.
    peer_close: Option<Option<u16>>,
    received: u64,
    /// The read timeout the socket has now, to set it only when it changes.
    read_timeout: Option<Option<Duration>>,
}

/// Runs a session to its end, then logs how it went. `authenticated` is
/// called once the client is authenticated (at once, or after its
/// first-message token): from then on it is a session, no longer pending.
pub fn run(upgraded: Upgraded, shared: &Shared, authenticated: impl FnOnce()) {
    let link = upgraded.link;
    let peer = link.peer();
    let _open = shared.metrics.session_opened();
    // Declared before the handler, so dropped after it: a handler's cleanup
    // (an --exec program's end) still counts as a live session at shutdown.
    let Some(member) = shared.registry.join(link.clone()) else {
        let _ = link.write_frames(&close_frame_bytes(1001, "server shutting down"), true);
        shared.metrics.session_ended(Some(1001));
        return;
    };
    let mut session = Session {
        ws: upgraded.ws,
        link,
        shared,
        peer,
        peer_close: None,
        received: 0,
        read_timeout: None,
    };
    let (identity, token) = match session.identify(upgraded.admission) {
        Ok(found) => found,
        Err(end) => {
            shared.metrics.session_ended(end.code);
            return;
        }
    };
    authenticated();
    session.link.set_token(token, identity.expires);
    member.authenticated(&identity.user, identity.expires);
    log::info!("{peer}: session opened for {}", identity.user);
    let started = Instant::now();
    let info = SessionInfo {
        identity: identity.clone(),
        peer,
        subprotocol: upgraded.subprotocol,
        handle: SessionHandle::new(&session.link),
        sessions: Sessions::new(shared.registry.clone()),
    };
    let mut handler = (shared.make_handler)(&info);
    let end = session.read_loop(handler.as_mut());
    session.link.finish();
    shared.metrics.session_ended(end.code);
    session.log_closed(&identity.user, started, &end);
    handler.on_close(end.code);
    drop(handler);
    drop(member);
}

impl Session<'_> {
    /// The one line a session's end logs.
    fn log_closed(&self, user: &str, started: Instant, end: &End) {
        let code = end.code.map_or("none".to_string(), |c| c.to_string());
        // Whole numbers only: float formatting is large in a small binary.
        let lasted = started.elapsed();
        log::info!(
            "{}: session closed for {user}: {}.{}s, {} in, {} out, close {code} ({})",
            self.peer,
            lasted.as_secs(),
            lasted.subsec_millis() / 100,
            self.received,
            self.link.messages_sent(),
            end.why
        );
    }

    /// Calls the handler for each message until the session ends, keeping
    /// the idle ping and close and the token's expiry.
    fn read_loop(&mut self, handler: &mut dyn Handler) -> End {
        if let Some(end) = self.call(|reply| handler.on_open(reply)) {
            return end;
        }
        let idle = self.shared.config.idle_timeout;
        let mut last_heard = Instant::now();
        let (mut pinged, mut quiet) = (false, false);
        let mut quiet_after = FIRST_QUIET_AFTER;
        loop {
            let idle_at = idle.map(|t| last_heard + t);
            let ping_at = idle.filter(|_| !pinged).map(|t| last_heard + t / 2);
            let expires_at = self.link.expires().map(instant_of);
            let quiet_at = (!quiet).then(|| last_heard + quiet_after);
            let deadline = [idle_at, ping_at, expires_at, quiet_at]
                .into_iter()
                .flatten()
                .min();
            let end = match self.next_event(deadline) {
                Event::Message(message) => {
                    last_heard = Instant::now();
                    (pinged, quiet) = (false, false);
                    self.dispatch(message, handler)
                }
                Event::Tick => {
                    let now = Instant::now();
                    if expires_at.is_some_and(|t| now >= t) && self.has_expired() {
                        Some(self.close(CloseCode::Policy.into(), "token expired".into()))
                    } else if idle_at.is_some_and(|t| now >= t) {
                        Some(self.close(CloseCode::Away.into(), "idle timeout".into()))
                    } else if ping_at.is_some_and(|t| now >= t) {
                        pinged = true;
                        self.ws
                            .send(WsMessage::Ping(Default::default()))
                            .err()
                            .map(|e| self.on_error(e))
                    } else if quiet_at.is_some_and(|t| now >= t) {
                        (quiet, quiet_after) = (true, QUIET_AFTER);
                        crate::sys::release_unused_stack();
                        self.ws.get_mut().release_inbox();
                        None
                    } else {
                        None
                    }
                }
                Event::Ended(end) => Some(end),
            };
            if let Some(end) = end {
                return end;
            }
        }
    }

    /// Hands a data message to the handler; notes the peer's close
    /// (tungstenite answers it, and the next read reports the end).
    fn dispatch(&mut self, message: WsMessage, handler: &mut dyn Handler) -> Option<End> {
        match message {
            WsMessage::Text(text) => {
                self.received += 1;
                self.shared.metrics.message_received(text.len());
                self.call(|reply| handler.on_text(&text, reply))
            }
            WsMessage::Binary(data) => {
                self.received += 1;
                self.shared.metrics.message_received(data.len());
                self.call(|reply| handler.on_binary(&data, reply))
            }
            WsMessage::Close(frame) => {
                self.peer_close = Some(frame.map(|f| close_reply_code(f.code)));
                None
            }
            _ => None,
        }
    }

    /// Runs one handler call and acts on what it asked for.
    fn call(&mut self, f: impl FnOnce(&mut Reply<'_>)) -> Option<End> {
        // Called on a message just heard (or at the open): idle from now.
        let idle_at = self.shared.config.idle_timeout.map(|t| Instant::now() + t);
        let mut reply = Reply::new(&self.link, idle_at);
        f(&mut reply);
        let (close, failed) = (reply.close.take(), reply.failed.take());
        if let Some(wake) = self.link.woken() {
            return Some(self.close_woken(wake));
        }
        if failed.is_some() {
            return Some(End::lost());
        }
        close.map(|(code, reason)| self.close(code, reason.into()))
    }

    /// Whether the token has expired, asking the authenticator again in case
    /// its expiry moved.
    fn has_expired(&mut self) -> bool {
        let expires = self.link.expires();
        if expires.is_none_or(|e| unix_now() < e) {
            return false;
        }
        let token = self.link.token().unwrap_or_default();
        match self.shared.auth.authenticate(token) {
            Some(identity) if identity.expires != expires => {
                self.link.set_expires(identity.expires);
                false
            }
            _ => true,
        }
    }

    /// Reads one message, waiting until `deadline` at most.
    fn next_event(&mut self, deadline: Option<Instant>) -> Event {
        // A zero timeout is refused by the OS; a millisecond is the least.
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()).max(MS));
        // Keep the socket's timeout while it is at most a millisecond later
        // than this deadline and not much earlier: no setsockopt per message
        // (an early timeout is only a Tick that finds nothing due).
        let keep = match (self.read_timeout, timeout) {
            (Some(Some(current)), Some(wanted)) => current <= wanted + MS && current >= wanted / 2,
            (Some(None), None) => true,
            _ => false,
        };
        if !keep {
            if self.link.stream().set_read_timeout(timeout).is_err() {
                return Event::Ended(End::lost());
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
        if let Some(wake) = self.link.woken() {
            return self.close_woken(wake);
        }
        match error {
            Error::ConnectionClosed => match self.peer_close {
                Some(code) => End::new(code, "closed by peer"),
                None => End::new(None, "closed"),
            },
            Error::Capacity(_) => self.close(CloseCode::Size.into(), "message too big".into()),
            Error::Utf8(_) => self.close(CloseCode::Invalid.into(), "invalid UTF-8".into()),
            Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)
            | Error::Io(_)
            | Error::AlreadyClosed => End::lost(),
            Error::Protocol(_) => self.close(CloseCode::Protocol.into(), "protocol error".into()),
            _ => self.close(CloseCode::Error.into(), "internal error".into()),
        }
    }

    /// Sends a close frame and waits briefly for the peer's answer. After a
    /// 1009 tungstenite repeats the error on every read, so the wait ends at
    /// once and the stream is dropped instead of hanging the client.
    fn close(&mut self, code: u16, reason: Cow<'static, str>) -> End {
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.to_string().into(),
        };
        if self.ws.close(Some(frame)).is_ok() {
            let deadline = Instant::now() + CLOSE_GRACE;
            let _ = self.link.stream().set_read_timeout(Some(CLOSE_GRACE));
            self.read_timeout = Some(Some(CLOSE_GRACE));
            while Instant::now() < deadline && self.ws.read().is_ok() {}
        }
        close_gracefully(self.link.transport());
        End::new(Some(code), reason)
    }

    /// Closes a session woken from outside. Its read half is already shut, so
    /// tungstenite would refuse to write: the close frame goes to the link.
    fn close_woken(&mut self, wake: Wake) -> End {
        let (code, why): (u16, Cow<'static, str>) = match wake {
            Wake::Shutdown => (1001, "server shutting down".into()),
            Wake::Revoked if self.link.expires().is_some_and(|e| unix_now() >= e) => {
                (1008, "token expired".into())
            }
            Wake::Revoked => (1008, "token revoked".into()),
            Wake::Closed => match self.link.closed_by_handle() {
                Some((code, reason)) if !reason.is_empty() => (code, reason.into()),
                sent => (
                    sent.map_or(1000, |(code, _)| code),
                    "closed by the server".into(),
                ),
            },
        };
        // A handle's close went to the link already, and may still wait in
        // the outbox: `finish` writes it out before the FIN.
        if wake != Wake::Closed {
            let _ = self.link.write_frames(&close_frame_bytes(code, &why), true);
        }
        self.link.finish();
        End::new(Some(code), why)
    }
}

/// The code tungstenite answers a peer's close with: the same one, or 1002
/// for a code that may not be sent.
fn close_reply_code(code: CloseCode) -> u16 {
    if code.is_allowed() { code.into() } else { 1002 }
}

/// The `Instant` at which a Unix time (in seconds) is reached; a time too far
/// off to represent (a tokens file may say anything) is a year from now.
fn instant_of(unix_seconds: u64) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let now = Instant::now();
    let left = UNIX_EPOCH
        .checked_add(Duration::from_secs(unix_seconds))
        .map_or(FAR, |at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
    now + left.min(FAR)
}

#[cfg(test)]
mod tests;
