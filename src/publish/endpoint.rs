//! `POST /publish` and `POST /disconnect`: the checks in SPEC order (405,
//! 429, 403, 401, then the request itself), the body read under the
//! connection's deadline, and the answer.

use super::{Action, Endpoint, publish};
use crate::credentials::{bearer_of, percent_decode};
use crate::error::PublishError;
use crate::http::method_not_allowed;
use crate::http::{Answer, ReadError, RequestHead, header_lines, read_body};
use crate::message::Message;
use crate::metrics::PublishResult;
use crate::publish_key::PublishKey;
use crate::state::Shared;
use crate::transport::Transport;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Why a publish request was refused; each variant is one HTTP answer.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Not a `POST`: 405.
    Method,
    /// Too many failed authentications from this IP in the last minute: 429.
    Throttled { retry_after: u64 },
    /// An `Origin` header, as a browser sends: 403.
    Origin,
    /// No key: 401.
    MissingKey,
    /// A wrong key: 401 `invalid_token`.
    InvalidKey,
    /// Not exactly one of `user=NAME` and `all`, or a bad name: 400.
    Query,
    /// A `Transfer-Encoding` (chunked bodies are not taken): 400.
    TransferEncoding,
    /// No `Content-Length` on a publish: 411.
    LengthRequired,
    /// A `Content-Length` that is not one number: 400.
    BadLength,
    /// A body over `--max-message-bytes`: 413.
    TooLarge,
    /// A body on `/disconnect`: 400.
    DisconnectBody,
    /// Text (no `application/octet-stream`) that is not UTF-8: 400.
    NotUtf8,
}

impl Refusal {
    fn answer(&self) -> Answer {
        let bad = |line| Answer::text(400, line);
        match self {
            Refusal::Method => method_not_allowed("POST"),
            Refusal::Throttled { retry_after } => {
                Answer::text(429, "too many failed authentications; try again later\n")
                    .with_header("Retry-After", retry_after.to_string())
            }
            Refusal::Origin => Answer::text(403, "publishing is for backends, not browsers\n"),
            Refusal::MissingKey => Answer::text(401, "missing publish key\n")
                .with_header("WWW-Authenticate", r#"Bearer realm="wsauth-publish""#),
            Refusal::InvalidKey => Answer::text(401, "invalid publish key\n").with_header(
                "WWW-Authenticate",
                r#"Bearer realm="wsauth-publish", error="invalid_token""#,
            ),
            Refusal::Query => bad("give exactly one of ?user=NAME and ?all\n"),
            Refusal::TransferEncoding => bad("Transfer-Encoding is not supported\n"),
            Refusal::LengthRequired => Answer::text(411, "Content-Length required\n"),
            Refusal::BadLength => bad("malformed Content-Length\n"),
            Refusal::TooLarge => Answer::text(413, "message too large\n"),
            Refusal::DisconnectBody => bad("/disconnect takes no body\n"),
            Refusal::NotUtf8 => {
                bad("a text message must be UTF-8 (or send application/octet-stream)\n")
            }
        }
    }

    /// Its metric, and a few words for the log.
    fn counted(&self) -> (PublishResult, &'static str) {
        use PublishResult::{BadRequest, Forbidden, Throttled, TooLarge, Unauthorized};
        match self {
            Refusal::Method => (BadRequest, "method not allowed"),
            Refusal::Throttled { .. } => (Throttled, "too many failed authentications"),
            Refusal::Origin => (Forbidden, "Origin header"),
            Refusal::MissingKey => (Unauthorized, "missing key"),
            Refusal::InvalidKey => (Unauthorized, "invalid key"),
            Refusal::Query => (BadRequest, "bad query"),
            Refusal::TransferEncoding => (BadRequest, "Transfer-Encoding"),
            Refusal::LengthRequired => (BadRequest, "no Content-Length"),
            Refusal::BadLength => (BadRequest, "malformed Content-Length"),
            Refusal::TooLarge => (TooLarge, "body too large"),
            Refusal::DisconnectBody => (BadRequest, "a body on /disconnect"),
            Refusal::NotUtf8 => (BadRequest, "text body not UTF-8"),
        }
    }
}

/// Whom a request is for.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    User(String),
    All,
}

/// A request that passed the checks, its body not yet read.
#[derive(Debug)]
struct Admitted {
    target: Target,
    length: usize,
    binary: bool,
}

/// Answers one publish API request at `endpoint` for the client at `peer`;
/// returns the answer, or `None` to close without one (a body that did
/// not arrive whole by `deadline`, the head's deadline).
pub(crate) fn answer(
    endpoint: Endpoint,
    stream: &Transport,
    head: &RequestHead,
    shared: &Shared,
    peer: SocketAddr,
    deadline: Instant,
) -> Option<Answer> {
    let key = shared.config.publish_key.as_deref()?;
    let max = shared.config.max_message_bytes;
    let admitted = match admit(endpoint, head, key, peer.ip(), shared, max) {
        Ok(admitted) => admitted,
        Err(refusal) => return Some(refused(shared, peer, &refusal, head)),
    };
    let body = match read_body(stream, &head.rest, admitted.length, deadline) {
        Ok(body) => body,
        Err(e) => {
            shared.metrics.publish_request(PublishResult::BadRequest);
            match e {
                ReadError::TimedOut => {
                    log::info!("{peer}: closed: publish body not complete within the deadline");
                }
                ReadError::Closed => log::info!("{peer}: closed: publish body cut short"),
                ReadError::Io(e) => log::debug!("{peer}: reading the publish body failed: {e}"),
            }
            return None;
        }
    };
    let size = body.len();
    let message = match message_of(body, admitted.binary) {
        Ok(message) => message,
        Err(refusal) => return Some(refused(shared, peer, &refusal, head)),
    };
    let answer = carry_out(endpoint, admitted.target, message, size, shared, peer);
    Some(answer)
}

/// Hands the publication on, logs it and answers.
fn carry_out(
    endpoint: Endpoint,
    target: Target,
    message: Message,
    size: usize,
    shared: &Shared,
    peer: SocketAddr,
) -> Answer {
    let whom = match &target {
        Target::User(name) => format!("user {name}"),
        Target::All => "all".to_string(),
    };
    let action = match (endpoint, &target) {
        (Endpoint::Disconnect, Target::User(name)) => Action::Disconnect(name),
        (_, Target::User(name)) => Action::ToUser(name, message),
        (_, Target::All) => Action::ToAll(message),
    };
    #[cfg(feature = "redis")]
    let through_bus = shared.bus.get().is_some();
    #[cfg(not(feature = "redis"))]
    let through_bus = false;
    match publish(shared, action) {
        Ok(count) => {
            shared.metrics.publish_request(PublishResult::Ok);
            let line = if through_bus {
                let what = match endpoint {
                    Endpoint::Disconnect => "disconnect of".to_string(),
                    Endpoint::Publish => format!("{size} bytes to"),
                };
                log::info!("{peer}: published {what} {whom} on the bus: {count} instances");
                "published\n".to_string()
            } else if endpoint == Endpoint::Disconnect {
                log::info!("{peer}: disconnected {whom}: {count} sessions closed");
                format!("disconnected {count}\n")
            } else {
                log::info!("{peer}: published to {whom}: {size} bytes, delivered to {count}");
                format!("delivered {count}\n")
            };
            Answer::text(200, "").with_body(line)
        }
        Err(e) => {
            shared.metrics.publish_request(PublishResult::Unavailable);
            let (why, body) = match e {
                PublishError::Stopped => (
                    "the server is stopping",
                    "server stopping; try again later\n",
                ),
                PublishError::BusDown => (
                    "the bus is down",
                    "the bus to the other instances is down; try again later\n",
                ),
            };
            log::info!("{peer}: publish to {whom} refused: {why}");
            Answer::text(503, body).with_header("Retry-After", "1")
        }
    }
}

/// Logs and counts a refusal; its answer (no body to a `HEAD`).
fn refused(shared: &Shared, peer: SocketAddr, refusal: &Refusal, head: &RequestHead) -> Answer {
    let (result, reason) = refusal.counted();
    log::info!("{peer}: publish refused: {reason}");
    shared.metrics.publish_request(result);
    let mut answer = refusal.answer();
    answer.send_body = head.method != "HEAD";
    answer
}

/// The checks in SPEC order, before any byte of the body is read: 405, 429,
/// 403, 401 (counted as a failed authentication in one step with the
/// throttle's check), then the query and the body's framing.
fn admit(
    endpoint: Endpoint,
    head: &RequestHead,
    key: &PublishKey,
    ip: IpAddr,
    shared: &Shared,
    max: usize,
) -> Result<Admitted, Refusal> {
    if head.method != "POST" {
        return Err(Refusal::Method);
    }
    if let Some(retry_after) = shared.throttle.retry_after(ip) {
        return Err(Refusal::Throttled { retry_after });
    }
    let headers = header_lines(&head.raw);
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    if named("origin").next().is_some() {
        return Err(Refusal::Origin);
    }
    let failure = match bearer(named("authorization")) {
        None => Some(Refusal::MissingKey),
        Some(presented) if !key.matches(presented) => Some(Refusal::InvalidKey),
        Some(_) => None,
    };
    let retry_after = match failure {
        Some(_) => shared.throttle.record_failure(ip),
        // A right key from a client at the limit by now: 429 too, as for tokens.
        None => shared.throttle.retry_after(ip),
    };
    if let Some(retry_after) = retry_after {
        return Err(Refusal::Throttled { retry_after });
    }
    if let Some(refusal) = failure {
        return Err(refusal);
    }
    let target = target(endpoint, &head.target)?;
    if named("transfer-encoding").next().is_some() {
        return Err(Refusal::TransferEncoding);
    }
    let length = content_length(named("content-length"))?;
    let length = match (endpoint, length) {
        (Endpoint::Disconnect, None | Some(0)) => 0,
        (Endpoint::Disconnect, Some(_)) => return Err(Refusal::DisconnectBody),
        (Endpoint::Publish, None) => return Err(Refusal::LengthRequired),
        (Endpoint::Publish, Some(n)) if n > max as u64 => return Err(Refusal::TooLarge),
        (Endpoint::Publish, Some(n)) => n as usize,
    };
    let binary = named("content-type").next().is_some_and(is_octet_stream);
    Ok(Admitted {
        target,
        length,
        binary,
    })
}

/// The key of the first `Authorization: Bearer KEY` (scheme matched
/// ignoring case); `None` when there is none, or it is empty.
fn bearer<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    let key = values.find_map(bearer_of)?.trim_ascii();
    (!key.is_empty()).then_some(key)
}

/// `?user=NAME` (percent-decoded) or, for `/publish`, `?all`: exactly one
/// of them, once.
fn target(endpoint: Endpoint, request_target: &str) -> Result<Target, Refusal> {
    let query = request_target
        .split('#')
        .next()
        .and_then(|t| t.split_once('?'))
        .map_or("", |(_, query)| query);
    let (mut user, mut all) = (None, false);
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("user", value)) if user.is_none() => user = Some(value),
            None if pair == "all" && !all => all = true,
            _ => return Err(Refusal::Query),
        }
    }
    match (endpoint, user, all) {
        (_, Some(raw), false) => {
            let name = percent_decode(raw).ok_or(Refusal::Query)?;
            if is_user_name(&name) {
                Ok(Target::User(name))
            } else {
                Err(Refusal::Query)
            }
        }
        (Endpoint::Publish, None, true) => Ok(Target::All),
        _ => Err(Refusal::Query),
    }
}

/// A name a session can have: not empty, no spaces, controls or `:`.
fn is_user_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':')
}

/// The `Content-Length`: `None` without one; every line must be the same
/// number (a number past `u64` is saturated: over any limit anyway).
fn content_length<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<Option<u64>, Refusal> {
    let mut length = None;
    for value in values {
        let value = value.trim_ascii();
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(Refusal::BadLength);
        }
        let n = value.iter().fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        if length.is_some_and(|before| before != n) {
            return Err(Refusal::BadLength);
        }
        length = Some(n);
    }
    Ok(length)
}

/// `application/octet-stream`, parameters aside, ignoring case.
fn is_octet_stream(value: &[u8]) -> bool {
    let media_type = value.split(|&b| b == b';').next().unwrap_or_default();
    media_type
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/octet-stream")
}

/// The body as the message: binary as it is, otherwise text that must be UTF-8.
fn message_of(body: Vec<u8>, binary: bool) -> Result<Message, Refusal> {
    if binary {
        return Ok(Message::Binary(body));
    }
    String::from_utf8(body)
        .map(Message::Text)
        .map_err(|_| Refusal::NotUtf8)
}

#[cfg(test)]
mod tests;
