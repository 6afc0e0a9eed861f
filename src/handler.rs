//! Your own session logic: a [`Handler`] made per session decides what to
//! say; the server keeps every rule (limits, idle ping and close, expiry,
//! revocation, shutdown, logs) whatever the handler does.

use crate::auth::Identity;
use crate::link::{Link, SendError};
use crate::push::{SessionHandle, Sessions};
use std::net::SocketAddr;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// A data message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The message as one whole frame, ready to write.
    pub(crate) fn to_frame(&self) -> Vec<u8> {
        match self {
            Message::Text(text) => data_frame(Data::Text, text.as_bytes()),
            Message::Binary(data) => data_frame(Data::Binary, data),
        }
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::Text(text.to_string())
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::Text(text)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Message::Binary(data)
    }
}

/// One unfragmented, unmasked data frame (what a server sends).
pub(crate) fn data_frame(kind: Data, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        opcode: OpCode::Data(kind),
        ..FrameHeader::default()
    };
    let length = payload.len() as u64;
    let mut frame = Vec::with_capacity(header.len(length) + payload.len());
    // Formatting into a Vec cannot fail.
    let _ = header.format(length, &mut frame);
    frame.extend_from_slice(payload);
    frame
}

/// What a handler learns when its session opens.
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
/// [`SessionInfo::handle`] to send later from another thread.
///
/// ```
/// use wsauth::{Handler, Reply};
///
/// /// Answers every text message with its length.
/// struct Length;
/// impl Handler for Length {
///     fn on_text(&mut self, text: &str, reply: &mut Reply<'_>) {
///         reply.text(text.len().to_string());
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
pub struct Reply<'a> {
    link: &'a Link,
    pub(crate) close: Option<(u16, String)>,
    pub(crate) failed: Option<SendError>,
}

impl<'a> Reply<'a> {
    pub(crate) fn new(link: &'a Link) -> Self {
        Reply {
            link,
            close: None,
            failed: None,
        }
    }

    /// Sends a text message now. After a close or a failed send it does nothing.
    pub fn text(&mut self, text: impl AsRef<str>) {
        self.send_frame(&data_frame(Data::Text, text.as_ref().as_bytes()));
    }

    /// Sends a binary message now. After a close or a failed send it does nothing.
    pub fn binary(&mut self, data: impl AsRef<[u8]>) {
        self.send_frame(&data_frame(Data::Binary, data.as_ref()));
    }

    /// Sends a message now.
    pub fn send(&mut self, message: &Message) {
        self.send_frame(&message.to_frame());
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

    fn send_frame(&mut self, frame: &[u8]) {
        if self.close.is_some() || self.failed.is_some() {
            return;
        }
        match self.link.write_frames(frame, true) {
            Ok(()) => self.link.count_sent(frame),
            Err(e) => self.failed = Some(e),
        }
    }
}

/// A close code a server may send; others become 1011.
pub(crate) fn sendable_code(code: u16) -> u16 {
    match code {
        1000..=1003 | 1007..=1014 | 3000..=4999 => code,
        _ => 1011,
    }
}

/// A close reason cut to the 123 bytes a close frame has room for.
pub(crate) fn short_reason(mut reason: String) -> String {
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

/// The default handler: a greeting, then every text message back with a
/// prefix and every binary message back unchanged.
pub struct Echo {
    greeting: String,
    prefix: String,
}

impl Echo {
    /// An echo for `user`: `greeting` with `{user}` replaced (empty sends
    /// none), and `prefix` before each echoed text.
    pub fn new(user: &str, greeting: &str, prefix: &str) -> Self {
        Echo {
            greeting: greeting.replace("{user}", user),
            prefix: prefix.to_string(),
        }
    }
}

impl Handler for Echo {
    fn on_open(&mut self, reply: &mut Reply<'_>) {
        if !self.greeting.is_empty() {
            reply.text(&self.greeting);
        }
    }

    fn on_text(&mut self, text: &str, reply: &mut Reply<'_>) {
        if self.prefix.is_empty() {
            reply.text(text);
        } else {
            let mut answer = String::with_capacity(self.prefix.len() + text.len());
            answer.push_str(&self.prefix);
            answer.push_str(text);
            reply.text(answer);
        }
    }

    fn on_binary(&mut self, data: &[u8], reply: &mut Reply<'_>) {
        reply.binary(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_that_may_not_be_sent_become_1011() {
        assert_eq!(sendable_code(1000), 1000);
        assert_eq!(sendable_code(4000), 4000);
        for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert_eq!(sendable_code(code), 1011, "{code}");
        }
    }

    #[test]
    fn reasons_are_cut_on_a_character_boundary() {
        let reason = short_reason("é".repeat(100));
        assert!(reason.len() <= 123);
        assert_eq!(reason.chars().count(), 61);
    }

    #[test]
    fn data_frames_carry_their_length() {
        assert_eq!(data_frame(Data::Text, b"hi"), [0x81, 2, b'h', b'i']);
        let long = data_frame(Data::Binary, &[7u8; 300]);
        assert_eq!(&long[..4], &[0x82, 126, 1, 44]);
        assert_eq!(long.len(), 304);
    }
}
