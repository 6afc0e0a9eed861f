//! Deadlines are absolute: the `--first-message-auth` deadline is not
//! extended by fragments of a message, pings or pongs sent before the token.
//! (The deadline before the session, over TLS, is in `tls_limits.rs`.)

mod common;

use common::frames::*;
use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use wsauth::{Config, Server};

/// The first-message deadline these tests run with.
const DEADLINE: Duration = Duration::from_secs(2);
/// How often the client sends something that is not the token.
const TRICKLE: Duration = Duration::from_millis(400);

fn first_message_server() -> Server {
    let mut config = Config::default();
    config.first_message_auth = true;
    config.handshake_timeout = DEADLINE;
    config.max_auth_failures = 1;
    start(config)
}

/// An upgraded session without a token, awaiting its first message.
fn tokenless(addr: SocketAddr) -> TcpStream {
    raw_session(addr, &upgrade_request(addr, "/ws", &[]))
}

/// Sends the next frame every `TRICKLE` until the server closes (or
/// patience runs out); returns the close and when it came, from `began`.
fn trickle_until_closed(
    stream: &mut TcpStream,
    began: Instant,
    mut next: impl FnMut() -> Vec<u8>,
) -> (Option<(u16, Vec<u8>)>, Duration) {
    while began.elapsed() < 3 * PATIENCE {
        if stream.write_all(&next()).is_err() {
            break;
        }
        // Wait a trickle's time for something from the server.
        stream.set_read_timeout(Some(TRICKLE)).unwrap();
        let waiting = stream.peek(&mut [0u8; 1]);
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        match waiting {
            Ok(0) => break,
            Ok(_) => match read_frame(stream) {
                Some((_, CLOSE, payload)) => {
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    return (Some((code, payload[2..].to_vec())), began.elapsed());
                }
                // A pong answering our ping: keep going.
                Some(_) => {}
                None => break,
            },
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    (None, began.elapsed())
}

fn assert_invalid_token_at_the_deadline(close: Option<(u16, Vec<u8>)>, took: Duration) {
    assert_eq!(
        close,
        Some((1008, b"invalid token".to_vec())),
        "after {took:?}"
    );
    assert!(took >= DEADLINE - Duration::from_millis(100), "{took:?}");
    // The deadline, plus a loaded machine's delay: never a trickle's worth more.
    assert!(took < DEADLINE + Duration::from_secs(3), "{took:?}");
}

#[test]
fn an_unfinished_message_at_the_first_message_deadline_gets_1008_and_counts_as_a_failure() {
    let server = first_message_server();
    let addr = server.local_addr();
    let mut stream = tokenless(addr);
    let began = Instant::now();
    let mut first = true;
    let (close, took) = trickle_until_closed(&mut stream, began, || {
        // A text frame without FIN, then empty continuations, never the last.
        let opcode = if first { TEXT } else { CONTINUATION };
        first = false;
        frame(false, opcode, if opcode == TEXT { b"al" } else { b"" })
    });
    assert_invalid_token_at_the_deadline(close, took);
    // A failed authentication: with a limit of one, the next upgrade gets 429.
    assert_eq!(
        status(&raw_upgrade(addr, &upgrade_request(addr, "/ws", &[]))),
        429
    );
}

#[test]
fn pings_before_the_token_do_not_extend_the_first_message_deadline() {
    let server = first_message_server();
    let mut stream = tokenless(server.local_addr());
    let began = Instant::now();
    let (close, took) = trickle_until_closed(&mut stream, began, || frame(true, PING, b"hi"));
    assert_invalid_token_at_the_deadline(close, took);
}

#[test]
fn pongs_before_the_token_do_not_extend_the_first_message_deadline() {
    let server = first_message_server();
    let mut stream = tokenless(server.local_addr());
    let began = Instant::now();
    let (close, took) = trickle_until_closed(&mut stream, began, || frame(true, PONG, b""));
    assert_invalid_token_at_the_deadline(close, took);
}

#[test]
fn a_token_sent_in_fragments_before_the_deadline_still_opens_the_session() {
    let server = first_message_server();
    let mut stream = tokenless(server.local_addr());
    let (head, tail) = ALICE.split_at(4);
    stream
        .write_all(&frame(false, TEXT, head.as_bytes()))
        .unwrap();
    stream.write_all(&frame(true, PING, b"")).unwrap();
    stream
        .write_all(&frame(true, CONTINUATION, tail.as_bytes()))
        .unwrap();
    let mut greeting = None;
    while let Some((_, opcode, payload)) = read_frame(&mut stream) {
        if opcode == TEXT {
            greeting = Some(payload);
            break;
        }
    }
    assert_eq!(greeting.as_deref(), Some(&b"Hello alice"[..]));
}

#[test]
fn one_deadline_covers_a_trickled_proxy_header_and_the_head_after_it() {
    let mut config = Config::default();
    config.proxy_protocol = true;
    config.handshake_timeout = DEADLINE;
    let server = start(config);
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    let began = Instant::now();
    let bytes = b"PROXY TCP4 192.0.2.7 127.0.0.1 4000 80\r\nGET /healthz HTTP/1.1\r\n\r\n";
    // One byte every 100 ms: about 6.5 s in all, past the one deadline.
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    for byte in bytes {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        match stream.read(&mut [0u8; 64]) {
            Ok(0) => break,
            Ok(n) => panic!("answered with {n} bytes"),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(_) => {}
        }
    }
    let took = began.elapsed();
    assert!(took >= DEADLINE - Duration::from_millis(100), "{took:?}");
    assert!(took < DEADLINE + Duration::from_secs(3), "{took:?}");
}
