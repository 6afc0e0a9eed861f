//! The WebSocket upgrade: the admission checks, run inside tungstenite's
//! `accept_hdr` callback so that a refused client never gets a WebSocket.

use crate::auth::Identity;
use crate::credentials::{Presented, extract_credentials, is_token_parameter};
use crate::http::{Answer, RequestHead, close_gracefully, send_answer};
use crate::link::{Link, SessionStream};
use crate::metrics::RejectionReason;
use crate::pending::Ticket;
use crate::rejection::Rejection;
use crate::state::Shared;
use crate::transport::Transport;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::HeaderValue;
use tungstenite::protocol::Role;
use tungstenite::{HandshakeError, WebSocket};

/// A client that passed the checks.
#[derive(Debug)]
pub enum Admission {
    /// It presented a valid token.
    Authenticated {
        /// Whom the token belongs to.
        identity: Identity,
        /// The token, kept to re-check the session when tokens change.
        token: String,
    },
    /// It presented none, and `first_message_auth` lets it send one as its
    /// first message.
    AwaitingToken,
}

/// A connection that passed the upgrade, ready for its session.
pub struct Upgraded {
    /// The WebSocket, the 101 already sent. Boxed: it is moved from the
    /// handshake to the session, and a session's stack stays shallow.
    pub ws: Box<WebSocket<SessionStream>>,
    /// What other threads may touch of the session.
    pub link: Arc<Link>,
    /// How the client was admitted.
    pub admission: Admission,
    /// The subprotocol selected in the 101.
    pub subprotocol: Option<String>,
}

/// The admission checks, in SPEC order: 429, 403, 400, 401, 101. Returns the
/// admission and the subprotocol to select. `ip` is the client's;
/// `forwarded_host`, a trusted proxy's `X-Forwarded-Host` (or `Forwarded`
/// `host=`), stands for `Host` in the same-origin check. A failed
/// authentication is counted here, in one step with the throttle's check.
pub fn admit(
    request: &Request,
    ip: IpAddr,
    forwarded_host: Option<&str>,
    shared: &Shared,
) -> Result<(Admission, Option<String>), Rejection> {
    if let Some(retry_after) = shared.throttle.retry_after(ip) {
        return Err(Rejection::Throttled { retry_after });
    }
    if !origin_allowed(request, forwarded_host, &shared.config.allowed_origins) {
        return Err(Rejection::ForeignOrigin);
    }
    let credentials = extract_credentials(request);
    if credentials.only_token_subprotocols {
        return Err(Rejection::OnlyTokenSubprotocols);
    }
    let decided = match credentials.token {
        Presented::Nothing if shared.config.first_message_auth => Ok(Admission::AwaitingToken),
        Presented::Nothing => Err(Rejection::MissingToken),
        Presented::Malformed => Err(Rejection::InvalidToken),
        Presented::Token(token) => match shared.auth.authenticate(&token) {
            Some(identity) => Ok(Admission::Authenticated { identity, token }),
            None => Err(Rejection::InvalidToken),
        },
    };
    let admission = throttled(decided, ip, shared)?;
    Ok((admission, credentials.subprotocol))
}

/// The throttle's last word on a decided attempt, checked and counted in one
/// step: a failed authentication is counted unless the client is at the
/// limit by now, and then gets 429 instead; a right token from a client at
/// the limit by now gets 429 too. So concurrent attempts from one client
/// never get more than `--max-auth-failures` answers that tell them anything.
fn throttled(
    decided: Result<Admission, Rejection>,
    ip: IpAddr,
    shared: &Shared,
) -> Result<Admission, Rejection> {
    let retry_after = match &decided {
        Err(rejection) if rejection.is_failed_authentication() => {
            shared.throttle.record_failure(ip)
        }
        Ok(Admission::Authenticated { .. }) => shared.throttle.retry_after(ip),
        // Nothing is revealed yet: a first-message token is judged later.
        _ => None,
    };
    match retry_after {
        Some(retry_after) => Err(Rejection::Throttled { retry_after }),
        None => decided,
    }
}

/// An `Origin` passes when absent, allowed by name (or `*`), or the server's
/// own: `http://` or `https://` followed by the request's `Host` (or the
/// host a trusted proxy forwarded).
fn origin_allowed(request: &Request, forwarded_host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = request.headers().get("origin") else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a == "*" || a == origin) {
        return true;
    }
    let host =
        forwarded_host.or_else(|| request.headers().get("host").and_then(|h| h.to_str().ok()));
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return false;
    };
    ["http://", "https://"].iter().any(|scheme| {
        origin.len() == scheme.len() + host.len()
            && origin[..scheme.len()].eq_ignore_ascii_case(scheme)
            && origin[scheme.len()..].eq_ignore_ascii_case(host)
    })
}

/// What the admission callback decided.
enum Decision {
    /// The callback has not run (the request never reached it).
    Undecided,
    /// Admitted, with the subprotocol the 101 selects.
    Admitted((Admission, Option<String>)),
    /// Refused with an HTTP answer.
    Refused,
}

/// Runs the upgrade on a request head already read, for the client at
/// `peer`. Returns the session to run, or `None` when the client was
/// answered (or lost) instead.
pub fn upgrade(
    stream: Transport,
    head: &RequestHead,
    shared: &Shared,
    peer: SocketAddr,
    forwarded_host: Option<&str>,
    ticket: Option<Ticket>,
) -> Option<Upgraded> {
    let mut decision = Decision::Undecided;
    // The error type is tungstenite's, large by its design.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        log::debug!("{peer}: GET {}", redact_target(&head.target));
        let (decided, answer) = decide(request, response, peer, forwarded_host, shared);
        // No longer pending before the 101: the client's next connection may follow it.
        if let (Decision::Admitted((Admission::Authenticated { .. }, _)), Some(ticket)) =
            (&decided, ticket)
        {
            shared.pending.remove(ticket);
        }
        decision = decided;
        answer
    };
    let replay = Replay {
        head: &head.raw,
        stream: &stream,
    };
    // Reduce the error to a value at once: it borrows the callback's captures.
    let outcome = tungstenite::accept_hdr_with_config(replay, callback, Some(shared.ws_config))
        .map(drop)
        .map_err(|e| match e {
            HandshakeError::Failure(tungstenite::Error::Protocol(p)) => Some(p.to_string()),
            _ => None,
        });
    match (outcome, decision) {
        (Ok(()), Decision::Admitted(admitted)) => {
            Some(open_session(stream, head, shared, peer, admitted))
        }
        (Err(_), Decision::Refused) => {
            close_gracefully(&stream);
            None
        }
        (Err(Some(problem)), Decision::Undecided) => {
            log::info!("{peer}: rejected: bad upgrade request: {problem}");
            shared.metrics.rejected(RejectionReason::BadRequest);
            let answer = Answer::text(400, "bad WebSocket upgrade request\n");
            let _ = send_answer(&stream, &answer);
            None
        }
        _ => {
            log::info!("{peer}: connection lost during the upgrade");
            None
        }
    }
}

/// The admission checks as tungstenite's callback runs them: the 101 to
/// send (naming the subprotocol selected) or the refusal's answer.
// Out of line: inlined into tungstenite's handshake it costs the binary more.
#[allow(clippy::result_large_err)]
#[inline(never)]
fn decide(
    request: &Request,
    mut response: Response,
    peer: SocketAddr,
    forwarded_host: Option<&str>,
    shared: &Shared,
) -> (Decision, Result<Response, ErrorResponse>) {
    match admit(request, peer.ip(), forwarded_host, shared) {
        Ok((admission, subprotocol)) => {
            // Selected only if the 101 names it: the session learns what the client did.
            let selected = subprotocol.and_then(|p| {
                let value = protocol_header(&p)?;
                response
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", value);
                Some(p)
            });
            (Decision::Admitted((admission, selected)), Ok(response))
        }
        Err(rejection) => {
            // A failed authentication was counted in `admit`, before the
            // answer leaves: the client's next attempt already meets it.
            let (metric, reason) = rejection.counted();
            log::info!("{peer}: rejected: {reason}");
            shared.metrics.rejected(metric);
            (Decision::Refused, Err(error_response(&rejection.answer())))
        }
    }
}

/// The session of a connection just answered 101: its link (every write
/// goes through it) and tungstenite's WebSocket over it, fed the bytes that
/// came after the head.
fn open_session(
    stream: Transport,
    head: &RequestHead,
    shared: &Shared,
    peer: SocketAddr,
    (admission, subprotocol): (Admission, Option<String>),
) -> Upgraded {
    let link = Link::new(
        stream,
        peer,
        shared.config.write_timeout,
        shared.metrics.clone(),
        shared.flusher.clone(),
    );
    let ws = Box::new(WebSocket::from_partially_read(
        SessionStream::new(link.clone()),
        head.rest.clone(),
        Role::Server,
        Some(shared.ws_config),
    ));
    Upgraded {
        ws,
        link,
        admission,
        subprotocol,
    }
}

/// The `Sec-WebSocket-Protocol` value that selects `protocol`, if a 101 can
/// carry it as the client offered it: visible ASCII only. tungstenite writes
/// no other header value (it would drop the connection unanswered), and an
/// offer that was not UTF-8 reached us with U+FFFD in place of its bytes.
fn protocol_header(protocol: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(protocol)
        .ok()
        .filter(|value| value.to_str().is_ok())
}

/// A tungstenite error response with the headers it does not add itself.
fn error_response(answer: &Answer) -> ErrorResponse {
    let mut builder = tungstenite::http::Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        builder = builder.header(*name, value.as_ref());
    }
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    builder
        .header("Content-Length", body.len())
        .header("Connection", "close")
        .body(Some(body))
        .unwrap_or_else(|_| ErrorResponse::new(None))
}

/// The request target with the values of `token` parameters replaced by `***`.
pub fn redact_target(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    let pairs: Vec<&str> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_token_parameter(name) => "token=***",
            _ => pair,
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// Feeds tungstenite the head we already read, then the stream itself.
struct Replay<'a> {
    head: &'a [u8],
    stream: &'a Transport,
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.head.is_empty() {
            return (&mut self.stream).read(buf);
        }
        let n = self.head.len().min(buf.len());
        buf[..n].copy_from_slice(&self.head[..n]);
        self.head = &self.head[n..];
        Ok(n)
    }
}

impl Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&mut self.stream).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&mut self.stream).flush()
    }
}

#[cfg(test)]
mod tests;
