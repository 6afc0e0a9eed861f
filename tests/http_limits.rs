//! The request head's limits: malformed heads (400), its size (431), its time
//! (a silent close), and the connection limit (503).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use wsauth::Config;

/// A server that gives up on a request head after `millis`.
fn hasty_server(millis: u64) -> wsauth::Server {
    let mut config = Config::default();
    config.handshake_timeout = Duration::from_millis(millis);
    start(config)
}

/// What the server did with a connection that sent `bytes` and then waited.
enum Outcome {
    /// It answered (and closed).
    Answered(String),
    /// It closed without a byte, after this long.
    ClosedSilently(Duration),
}

/// Sends `bytes`, keeps the connection open, and waits up to [`PATIENCE`].
fn send_and_wait(addr: SocketAddr, bytes: &[u8]) -> Outcome {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(bytes).unwrap();
    let answer = read_to_close(&mut stream);
    if answer.is_empty() {
        Outcome::ClosedSilently(started.elapsed())
    } else {
        Outcome::Answered(answer)
    }
}

/// The answer; fails if the server closed without one.
fn expect_answer(outcome: Outcome) -> String {
    match outcome {
        Outcome::Answered(answer) => answer,
        Outcome::ClosedSilently(after) => panic!("closed without an answer after {after:?}"),
    }
}

// ---- malformed heads ----

#[test]
fn malformed_heads_get_400() {
    let server = patient_server();
    let mut junk: Vec<u8> = (0u8..=255).filter(|b| *b != b'\n').collect();
    junk.extend_from_slice(b"\r\n\r\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("plain text", b"hello there\r\n\r\n".to_vec()),
        ("no target", b"GET\r\n\r\n".to_vec()),
        ("no version", b"GET /\r\n\r\n".to_vec()),
        ("unknown version", b"GET / HTTP/2.0\r\n\r\n".to_vec()),
        ("lowercase version", b"GET / http/1.1\r\n\r\n".to_vec()),
        ("space in the target", b"GET /a b HTTP/1.1\r\n\r\n".to_vec()),
        (
            "header without colon",
            b"GET / HTTP/1.1\r\nHost\r\n\r\n".to_vec(),
        ),
        (
            "space in a header name",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n".to_vec(),
        ),
        ("binary junk", junk),
        (
            "nul in the request line",
            b"GET /\0 HTTP/1.1\r\n\r\n".to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        let answer = expect_answer(send_and_wait(server.local_addr(), &bytes));
        assert_eq!(status(&answer), 400, "{what}: {answer}");
        assert_well_framed(&answer);
    }
}

/// A client speaking something else (here the start of a TLS ClientHello)
/// sends no line end; its head is already malformed at the first byte.
#[test]
fn junk_without_a_line_end_gets_400_without_waiting_for_more() {
    let server = patient_server();
    let hello = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    let answer = expect_answer(send_and_wait(server.local_addr(), &hello));
    assert_eq!(status(&answer), 400, "{answer}");
}

// ---- the head's size limit ----

#[test]
fn a_head_of_exactly_8192_bytes_is_served() {
    let server = patient_server();
    let answer = expect_answer(send_and_wait(server.local_addr(), &head_of_len(8192, true)));
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(body(&answer), "ok\n");
}

#[test]
fn a_head_of_8193_bytes_gets_431() {
    let server = patient_server();
    let answer = expect_answer(send_and_wait(server.local_addr(), &head_of_len(8193, true)));
    assert_eq!(status(&answer), 431, "{answer}");
    assert_well_framed(&answer);
}

#[test]
fn an_unfinished_head_gets_431_as_soon_as_8192_bytes_arrive() {
    // The head timeout is a minute: an answer within PATIENCE was decided by size.
    let server = patient_server();
    for len in [8192, 9000] {
        let answer = expect_answer(send_and_wait(server.local_addr(), &head_of_len(len, false)));
        assert_eq!(status(&answer), 431, "{len} bytes: {answer}");
        assert_well_framed(&answer);
    }
}

#[test]
fn an_unfinished_head_under_8192_bytes_is_waited_for() {
    let server = hasty_server(500);
    match send_and_wait(server.local_addr(), &head_of_len(8191, false)) {
        Outcome::ClosedSilently(after) => assert!(after >= Duration::from_millis(450)),
        Outcome::Answered(answer) => panic!("answered before the timeout: {answer}"),
    }
}

#[test]
fn a_client_sending_a_megabyte_header_line_still_reads_431() {
    let server = patient_server();
    let addr = server.local_addr();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    // The server stops reading the head at 8192 bytes: write from another
    // thread, so a full socket buffer cannot keep this one from reading.
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(b"GET / HTTP/1.1\r\nX-Huge: ");
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..16 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let answer = read_to_close(&mut stream);
    sending.join().unwrap();
    assert_eq!(status(&answer), 431, "{answer:?}");
    assert_well_framed(&answer);
}

// ---- the head's time limit ----

#[test]
fn a_client_that_never_finishes_its_head_is_closed_at_the_timeout() {
    let server = hasty_server(300);
    let outcome = send_and_wait(server.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert_closed_silently_after(outcome, Duration::from_millis(290));
}

#[test]
fn a_client_that_sends_nothing_is_closed_at_the_timeout() {
    let server = hasty_server(300);
    let outcome = send_and_wait(server.local_addr(), b"");
    assert_closed_silently_after(outcome, Duration::from_millis(290));
}

/// The server closed without an answer, and not before `at_least`.
fn assert_closed_silently_after(outcome: Outcome, at_least: Duration) {
    match outcome {
        Outcome::ClosedSilently(after) => assert!(after >= at_least, "closed after {after:?}"),
        Outcome::Answered(answer) => panic!("expected a silent close, got {answer}"),
    }
}

#[test]
fn a_trickling_client_is_closed_at_the_deadline_not_after_its_last_byte() {
    let server = hasty_server(500);
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    let started = Instant::now();
    // A byte every 100 ms: the whole head would need about 4 s.
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n\r\n";
    let mut buf = [0u8; 256];
    let mut sent = 0;
    let closed_after = loop {
        assert!(
            started.elapsed() < PATIENCE,
            "still open after {PATIENCE:?}"
        );
        if sent < head.len() {
            if stream.write_all(&head[sent..=sent]).is_err() {
                break started.elapsed();
            }
            sent += 1;
        }
        match stream.read(&mut buf) {
            Ok(0) => break started.elapsed(),
            Ok(n) => panic!(
                "expected a silent close, got {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) if is_timeout(&e) => {}
            Err(_) => break started.elapsed(),
        }
    };
    assert!(
        sent < head.len(),
        "the whole head went out before the close ({closed_after:?})"
    );
    assert!(
        closed_after >= Duration::from_millis(450),
        "closed after {closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_secs(3),
        "closed only after {closed_after:?}: the deadline was 500 ms"
    );
}

// ---- the connection limit ----

/// Opens a connection and waits until the server counts it as open.
fn hold_open(server: &wsauth::Server, expected_open: usize) -> TcpStream {
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    assert!(
        eventually(PATIENCE, || server.open_connections() == expected_open),
        "the server counts {} open, expected {expected_open}",
        server.open_connections()
    );
    stream
}

/// A server that serves two connections at once and waits a minute for a head.
fn limited_server() -> wsauth::Server {
    let mut config = Config::default();
    config.max_connections = 2;
    config.handshake_timeout = Duration::from_secs(60);
    start(config)
}

/// A session held open, counted by the server.
fn hold_session(server: &wsauth::Server, expected_open: usize) -> common::Client {
    let session = connect_alice(server.local_addr());
    assert!(eventually(PATIENCE, || server.open_connections() == expected_open));
    session
}

#[test]
fn past_max_connections_all_sessions_a_client_gets_503_with_retry_after_then_close() {
    let server = limited_server();
    let addr = server.local_addr();
    let _first = hold_session(&server, 1);
    let _second = hold_session(&server, 2);

    // One that sends a request, and one that only listens.
    let asking = raw(
        addr,
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    );
    let silent = expect_answer(send_and_wait(addr, b""));
    for answer in [asking, silent] {
        assert_eq!(status(&answer), 503, "{answer}");
        let retry_after = header(&answer, "Retry-After").expect("a Retry-After");
        assert!(
            retry_after.parse::<u64>().is_ok(),
            "Retry-After in seconds, got {retry_after:?}"
        );
        assert_well_framed(&answer);
    }
}

#[test]
fn once_connections_close_new_ones_are_served_again() {
    let server = limited_server();
    let addr = server.local_addr();
    let first = hold_session(&server, 1);
    let second = hold_session(&server, 2);
    assert_eq!(status(&request(addr, "GET", "/healthz")), 503);
    drop((first, second));
    for _ in 0..3 {
        // A connection is open until the server has seen it close, which is
        // after its client has read the whole answer.
        assert!(
            eventually(PATIENCE, || server.open_connections() == 0),
            "closed connections are still counted"
        );
        let answer = request(addr, "GET", "/healthz");
        assert_eq!(status(&answer), 200, "{answer}");
    }
}

#[test]
fn when_full_a_new_connection_takes_the_place_of_the_oldest_idle_one() {
    let server = limited_server();
    let addr = server.local_addr();
    let _session = hold_session(&server, 1);
    let mut idle = hold_open(&server, 2);
    assert_eq!(status(&request(addr, "GET", "/healthz")), 200);
    // The idle connection was closed without an answer.
    idle.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(common::read_to_close(&mut idle), "");
}
