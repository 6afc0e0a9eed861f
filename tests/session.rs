//! Inside a session: greeting, echo, pings, the close handshake, and the
//! answers to oversized, malformed and invalid input.

mod common;

use common::frames::*;
use common::*;
use std::io::Write;
use tungstenite::Message;
use wsauth::{Config, Echo};

#[test]
fn greeting_names_the_user() {
    let server = start(Config::default());
    let (mut ws, _) = connect(server.local_addr(), &format!("/ws?token={BOB}"), &[]).unwrap();
    assert_eq!(next_text(&mut ws), "Hello bob");
}

#[test]
fn custom_greeting_replaces_user_and_empty_greeting_sends_none() {
    let server = start_echo(Config::default(), "Welcome, {user}!", Echo::PREFIX);
    let (mut ws, _) = connect(server.local_addr(), &format!("/ws?token={BOB}"), &[]).unwrap();
    assert_eq!(next_text(&mut ws), "Welcome, bob!");

    let server = start_echo(Config::default(), "", Echo::PREFIX);
    let (mut ws, _) = connect(server.local_addr(), &format!("/ws?token={BOB}"), &[]).unwrap();
    ws.send(Message::text("first")).unwrap();
    assert_eq!(next_text(&mut ws), "Message text was: first");
}

#[test]
fn text_is_echoed_with_the_prefix() {
    let server = start(Config::default());
    let mut ws = connect_alice(server.local_addr());
    for text in ["hi", "", "ünïcødé ✓"] {
        ws.send(Message::text(text)).unwrap();
        assert_eq!(next_text(&mut ws), format!("Message text was: {text}"));
    }
}

#[test]
fn empty_prefix_gives_a_pure_echo() {
    let server = start_echo(Config::default(), Echo::GREETING, "");
    let mut ws = connect_alice(server.local_addr());
    ws.send(Message::text("same")).unwrap();
    assert_eq!(next_text(&mut ws), "same");
}

#[test]
fn binary_is_echoed_unchanged() {
    let server = start(Config::default());
    let mut ws = connect_alice(server.local_addr());
    let data: Vec<u8> = (0..=255).collect();
    ws.send(Message::binary(data.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(data));
}

#[test]
fn ping_is_answered_with_a_pong_carrying_the_same_payload() {
    let server = start(Config::default());
    let mut stream = raw_alice(server.local_addr());
    stream
        .write_all(&frame(true, PING, b"are you there"))
        .unwrap();
    assert_eq!(
        read_frame(&mut stream),
        Some((true, PONG, b"are you there".to_vec()))
    );
}

#[test]
fn fragmented_messages_are_reassembled() {
    let server = start(Config::default());
    let mut stream = raw_alice(server.local_addr());
    stream.write_all(&frame(false, TEXT, b"one ")).unwrap();
    stream.write_all(&frame(true, PING, b"")).unwrap();
    stream
        .write_all(&frame(true, CONTINUATION, b"two"))
        .unwrap();
    assert_eq!(read_frame(&mut stream).unwrap().1, PONG);
    assert_eq!(
        read_frame(&mut stream),
        Some((true, TEXT, b"Message text was: one two".to_vec()))
    );
}

#[test]
fn close_with_a_valid_code_is_answered_with_the_same_code() {
    let server = start(Config::default());
    for code in [1000, 1001, 3000, 4999] {
        let mut stream = raw_alice(server.local_addr());
        stream
            .write_all(&frame(true, CLOSE, &close_payload(code, b"bye")))
            .unwrap();
        assert_eq!(read_close(&mut stream).0, code);
        assert_eq!(
            read_frame(&mut stream),
            None,
            "the server closes the TCP connection"
        );
    }
}

#[test]
fn empty_close_is_answered_with_an_empty_close() {
    let server = start(Config::default());
    let mut stream = raw_alice(server.local_addr());
    stream.write_all(&frame(true, CLOSE, b"")).unwrap();
    assert_eq!(read_frame(&mut stream), Some((true, CLOSE, Vec::new())));
}

#[test]
fn invalid_close_code_or_one_byte_payload_gets_1002() {
    let server = start(Config::default());
    for payload in [
        close_payload(999, b""),
        close_payload(1005, b""),
        close_payload(1006, b""),
        close_payload(2999, b""),
        vec![3],
    ] {
        let mut stream = raw_alice(server.local_addr());
        stream.write_all(&frame(true, CLOSE, &payload)).unwrap();
        assert_eq!(read_close(&mut stream).0, 1002, "{payload:?}");
    }
}

#[test]
fn close_reason_that_is_not_utf8_gets_1007() {
    let server = start(Config::default());
    let mut stream = raw_alice(server.local_addr());
    stream
        .write_all(&frame(true, CLOSE, &close_payload(1000, &[0xff, 0xfe])))
        .unwrap();
    assert_eq!(read_close(&mut stream).0, 1007);
}

#[test]
fn text_that_is_not_utf8_gets_1007() {
    let server = start(Config::default());
    let mut stream = raw_alice(server.local_addr());
    stream
        .write_all(&frame(true, TEXT, &[b'a', 0xc3, 0x28]))
        .unwrap();
    assert_eq!(read_close(&mut stream).0, 1007);
}

#[test]
fn protocol_violations_get_1002() {
    let server = start(Config::default());
    let unmasked = vec![0x81, 0x02, b'h', b'i'];
    let reserved_bits = {
        let mut f = frame(true, TEXT, b"hi");
        f[0] |= 0x40;
        f
    };
    let cases = [
        ("unmasked frame", unmasked),
        ("reserved bits", reserved_bits),
        ("reserved opcode", frame(true, 0x3, b"x")),
        (
            "continuation without start",
            frame(true, CONTINUATION, b"x"),
        ),
        ("fragmented ping", frame(false, PING, b"x")),
        (
            "new message inside a fragmented one",
            [frame(false, TEXT, b"a"), frame(true, TEXT, b"b")].concat(),
        ),
    ];
    for (what, bytes) in cases {
        let mut stream = raw_alice(server.local_addr());
        stream.write_all(&bytes).unwrap();
        assert_eq!(read_close(&mut stream).0, 1002, "{what}");
    }
}

#[test]
fn a_frame_over_the_limit_gets_1009_from_its_header_alone() {
    let mut config = Config::default();
    config.max_message_bytes = 1024;
    let server = start(config);
    let mut stream = raw_alice(server.local_addr());
    // Only the header: the server must not wait for a megabyte that never comes.
    stream.write_all(&header_only(BINARY, 1 << 20)).unwrap();
    assert_eq!(read_close(&mut stream).0, 1009);
    assert_eq!(
        read_frame(&mut stream),
        None,
        "the server drops the connection after 1009"
    );
}

#[test]
fn a_message_at_the_limit_is_echoed_and_one_byte_more_gets_1009() {
    let mut config = Config::default();
    config.max_message_bytes = 1024;
    let server = start_echo(config, Echo::GREETING, "");
    let mut ws = connect_alice(server.local_addr());
    ws.send(Message::binary(vec![7u8; 1024])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![7u8; 1024]));
    let mut stream = raw_alice(server.local_addr());
    stream
        .write_all(&frame(true, BINARY, &[7u8; 1025]))
        .unwrap();
    assert_eq!(read_close(&mut stream).0, 1009);
}

#[test]
fn a_fragmented_message_over_the_limit_gets_1009_when_the_frame_that_crosses_it_arrives() {
    let mut config = Config::default();
    config.max_message_bytes = 1024;
    let server = start(config);
    let mut stream = raw_alice(server.local_addr());
    stream.write_all(&frame(false, TEXT, &[b'a'; 600])).unwrap();
    stream
        .write_all(&frame(false, CONTINUATION, &[b'b'; 600]))
        .unwrap();
    // No final frame is ever sent: the limit is judged on arrival.
    assert_eq!(read_close(&mut stream).0, 1009);
}

#[test]
fn a_client_that_vanishes_mid_session_does_not_disturb_others() {
    let server = start(Config::default());
    let addr = server.local_addr();
    let mut stream = raw_alice(addr);
    stream.write_all(&frame(false, TEXT, b"half")).unwrap();
    drop(stream);
    let mut ws = connect_alice(addr);
    ws.send(Message::text("still here")).unwrap();
    assert_eq!(next_text(&mut ws), "Message text was: still here");
}

#[test]
fn the_tungstenite_client_completes_a_normal_close() {
    let server = start(Config::default());
    let mut ws = connect_alice(server.local_addr());
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

#[test]
fn a_frame_sent_right_behind_the_upgrade_request_is_not_lost() {
    let server = start(Config::default());
    let addr = server.local_addr();
    let mut request =
        upgrade_request(addr, "/ws", &[&format!("Authorization: Bearer {ALICE}")]).into_bytes();
    request.extend(frame(true, TEXT, b"eager"));
    let mut stream = raw_session_bytes(addr, &request);
    assert_eq!(read_frame(&mut stream).unwrap().2, b"Hello alice");
    assert_eq!(
        read_frame(&mut stream).unwrap().2,
        b"Message text was: eager"
    );
}

/// Longer than a session waits before it gives back its idle memory (its
/// inbox and the stack pages below its loop): the quiet spell under test, not
/// a wait for something to happen.
const QUIET_SPELL: std::time::Duration = std::time::Duration::from_millis(1500);

#[test]
fn a_session_quiet_for_a_while_still_echoes_every_size() {
    let server = start(Config::default());
    let mut stream = raw_alice(server.local_addr());
    let big = "x".repeat(40_000);
    for text in [big.as_str(), "small", big.as_str()] {
        stream
            .write_all(&frame(true, TEXT, text.as_bytes()))
            .unwrap();
        let (_, opcode, payload) = read_frame(&mut stream).expect("the echo");
        assert_eq!(opcode, TEXT);
        assert_eq!(payload, format!("Message text was: {text}").into_bytes());
        std::thread::sleep(QUIET_SPELL);
    }
}

#[test]
fn a_frame_split_across_a_quiet_spell_is_read_whole() {
    let server = start(Config::default());
    let mut stream = raw_alice(server.local_addr());
    let text = "y".repeat(3000);
    let bytes = frame(true, TEXT, text.as_bytes());
    let (first, rest) = bytes.split_at(1234);
    stream.write_all(first).unwrap();
    std::thread::sleep(QUIET_SPELL);
    stream.write_all(rest).unwrap();
    let (_, _, payload) = read_frame(&mut stream).expect("the echo");
    assert_eq!(payload, format!("Message text was: {text}").into_bytes());
}
