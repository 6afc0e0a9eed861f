//! What a server sends: data messages as whole frames, and the close codes
//! and reasons it may put in a close frame.

use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// A data message to send: text from a `String` or `&str`, binary from a
/// `Vec<u8>`.
///
/// ```
/// use wsauth::Message;
/// assert_eq!(Message::from("hi"), Message::Text("hi".into()));
/// assert_eq!(Message::from(vec![1u8]), Message::Binary(vec![1]));
/// ```
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
    data_frame_of(kind, &[payload])
}

/// One data frame whose payload is `parts` one after the other, written
/// into the frame directly (an echo's prefix and text: one copy, not two).
pub(crate) fn data_frame_of(kind: Data, parts: &[&[u8]]) -> Vec<u8> {
    let header = FrameHeader {
        opcode: OpCode::Data(kind),
        ..FrameHeader::default()
    };
    let length: usize = parts.iter().map(|p| p.len()).sum();
    let mut frame = Vec::with_capacity(header.len(length as u64) + length);
    // Formatting into a Vec cannot fail.
    let _ = header.format(length as u64, &mut frame);
    for part in parts {
        frame.extend_from_slice(part);
    }
    frame
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
    reason.truncate(reason_end(&reason));
    reason
}

/// Where a close reason is cut: at the 123 bytes a close frame has room
/// for, or the character boundary before.
pub(crate) fn reason_end(reason: &str) -> usize {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    end
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
