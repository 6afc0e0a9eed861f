//! Unit tests of the parent module.

use super::*;

#[test]
fn close_frames_are_found_behind_other_frames() {
    let pong = [0x8A, 0x02, b'h', b'i'];
    let text = [0x81, 0x01, b'x'];
    let close = close_frame_bytes(1000, "bye");
    assert!(!carries_close_frame(&[pong.as_slice(), &text].concat()));
    assert!(carries_close_frame(&[pong.as_slice(), &close].concat()));
    assert!(carries_close_frame(&close));
    let mut long = vec![0x82, 126, 0x01, 0x00];
    long.extend(std::iter::repeat_n(0u8, 256));
    long.extend_from_slice(&close);
    assert!(carries_close_frame(&long));
    assert!(!carries_close_frame(&long[..260]));
}

#[test]
fn close_frames_are_what_tungstenite_formats() {
    use tungstenite::protocol::frame::{CloseFrame, Frame};
    for reason in ["", "too slow", &"é".repeat(70)] {
        let mut expected = Vec::new();
        let cut = &reason[..reason.len().min(123) & !1];
        let frame = Frame::close(Some(CloseFrame {
            code: 1008.into(),
            reason: cut.to_string().into(),
        }));
        frame.format(&mut expected).expect("a frame formats");
        assert_eq!(close_frame_bytes(1008, reason), expected, "{reason}");
    }
}

#[test]
fn payload_lengths_come_from_the_frame_header() {
    assert_eq!(payload_len(&[0x81, 0x02, b'h', b'i']), 2);
    assert_eq!(payload_len(&[0x82, 126, 0x01, 0x00]), 256);
    let mut huge = vec![0x82, 127];
    huge.extend_from_slice(&70000u64.to_be_bytes());
    assert_eq!(payload_len(&huge), 70000);
    assert_eq!(payload_len(&[0x81]), 0);
}
