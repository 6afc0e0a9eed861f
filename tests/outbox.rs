//! Slow clients never hold a push up: a fan-out never waits for one
//! session, what a socket cannot take waits in that session's bounded
//! outbox, in order, and a session whose outbox overflows is closed as too
//! slow (SPEC "Slow clients never hold a push up").

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};
use wsauth::{Config, Server, Sessions};

/// 60 KB messages, as in the measurement.
const BIG: usize = 60_000;

fn quiet_config() -> Config {
    let mut config = Config::default();
    config.metrics = true;
    // Long, so that a fan-out waiting on a stalled session would show.
    config.write_timeout = Duration::from_secs(30);
    config
}

/// Opens a session and waits until the server lists `listed` sessions.
fn open(server: &Server, token: &str, listed: usize) -> Client {
    let bearer = format!("Bearer {token}");
    let (ws, _) = connect(server.local_addr(), "/ws", &[("Authorization", &bearer)])
        .expect("the session opens");
    let sessions = server.sessions();
    assert!(eventually(PATIENCE, || sessions.list().len() >= listed));
    ws
}

/// A numbered message of `len` bytes: its number in the first 8.
fn numbered(n: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![(n % 251) as u8; len.max(8)];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes
}

fn number_of(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"))
}

/// Reads `count` binary messages on a thread; sends their numbers back.
fn reader<S: Read + Write + Send + 'static>(
    mut ws: WebSocket<S>,
    count: usize,
) -> mpsc::Receiver<Result<u64, String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..count {
            let got = match ws.read() {
                Ok(Message::Binary(bytes)) => Ok(number_of(&bytes)),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                other => Err(format!("{other:?}")),
            };
            let failed = got.is_err();
            if tx.send(got).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// Every sample of the slow-client and push metrics.
fn push_metrics(addr: SocketAddr) -> BTreeMap<String, f64> {
    let answer = get(addr, "/metrics", &[]);
    body(&answer)
        .lines()
        .filter(|line| {
            line.starts_with("wsauth_push") || line.starts_with("wsauth_sessions_closed")
        })
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The numbers a stalled client finds once it reads: a run from 0 with no
/// gap and no broken frame, then the end of the stream (the connection cut,
/// or a 1008 `too slow` if the socket took it).
fn read_what_was_kept(ws: &mut Client) -> (u64, Option<(u16, String)>) {
    ws.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
    let mut next = 0;
    loop {
        match ws.read() {
            Ok(Message::Binary(bytes)) => {
                assert_eq!(number_of(&bytes), next, "in order, none missing");
                next += 1;
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(Some(frame))) => {
                return (next, Some((frame.code.into(), frame.reason.to_string())));
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => panic!("no end after {next}"),
            Err(_) => return (next, None),
        }
    }
}

/// Messages the healthy reader may lag behind: 600 KB, well inside its
/// outbox however slowly a loaded machine runs its thread.
const WINDOW: u64 = 10;

/// Before sending message `n`: waits until the healthy reader has message
/// `n - WINDOW` (checking the order).
fn keep_within_window(got: &mpsc::Receiver<Result<u64, String>>, n: u64) {
    if n >= WINDOW {
        let number = got.recv_timeout(PATIENCE).expect("the reader reads on");
        assert_eq!(number, Ok(n - WINDOW));
    }
}

fn has_alice(sessions: &Sessions) -> bool {
    sessions
        .list()
        .iter()
        .any(|session| session.user == "alice")
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

#[test]
fn a_client_that_stops_reading_never_holds_up_a_broadcast() {
    let server = start_quiet(quiet_config());
    let mut stalled = open(&server, ALICE, 1);
    let bob = open(&server, BOB, 2);
    let sessions: Sessions = server.sessions();
    let count = 400; // 24 MB: more than the stalled socket's buffers and its 1 MiB outbox
    let got = reader(bob, count);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut delivered = 0;
    for n in 0..count as u64 {
        keep_within_window(&got, n);
        let began = Instant::now();
        delivered += sessions.broadcast(numbered(n, BIG));
        slowest = slowest.max(began.elapsed());
    }
    let publishing = started.elapsed();
    // The healthy reader got every message, in order, while the stalled one
    // held nothing up (a wait would be the 30 s write timeout).
    for n in count as u64 - WINDOW..count as u64 {
        let number = got.recv_timeout(PATIENCE).expect("bob reads on");
        assert_eq!(number, Ok(n));
    }
    assert!(
        slowest < Duration::from_secs(5),
        "one broadcast took {slowest:?}"
    );
    assert!(publishing < Duration::from_secs(20), "{publishing:?}");
    // The stalled session was closed once its outbox overflowed: it took
    // the messages before that, and none after.
    let metrics = push_metrics(server.local_addr());
    assert!(eventually(PATIENCE, || !has_alice(&sessions)));
    assert_eq!(
        metrics["wsauth_sessions_closed_slow_total"], 1.0,
        "{metrics:?}"
    );
    let dropped = metrics["wsauth_push_dropped_total"];
    assert!(dropped >= 1.0, "{metrics:?}");
    assert_eq!(metrics["wsauth_push_messages_total"], delivered as f64);
    assert!(delivered > count && delivered < 2 * count, "{delivered}");
    let (kept, close) = read_what_was_kept(&mut stalled);
    assert!(kept >= 1 && kept < count as u64, "{kept}");
    // Each message it took arrived, but those its outbox held when it overflowed.
    assert_eq!(
        kept as usize + count + dropped as usize - 1,
        delivered,
        "{metrics:?}"
    );
    if let Some(close) = close {
        assert_eq!(close, (1008, "too slow".to_string()));
    }
}

#[test]
fn a_thousand_pushes_to_a_session_that_reads_late_arrive_in_order() {
    let mut config = quiet_config();
    config.max_outbox_bytes = Some(64 << 20);
    let server = start_quiet(config);
    let alice = open(&server, ALICE, 1);
    let publisher = server.publisher();
    let handle = server.sessions().list().remove(0).handle;
    // Two writers at once: each one's messages keep their order, and no
    // push waits while the client reads nothing (16 MB: past its buffers).
    let count = 1000u64;
    let other = std::thread::spawn(move || {
        for n in 0..count {
            handle.send(numbered(1_000_000 + n, 100)).expect("sent");
        }
    });
    let started = Instant::now();
    for n in 0..count {
        assert_eq!(publisher.to_user("alice", numbered(n, 16_000)), Ok(1));
    }
    let publishing = started.elapsed();
    let got = reader(alice, 2 * count as usize);
    other.join().unwrap();
    let (mut next, mut next_other) = (0, 1_000_000);
    for _ in 0..2 * count {
        let number = got
            .recv_timeout(PATIENCE)
            .expect("a message")
            .expect("binary");
        if number >= 1_000_000 {
            assert_eq!(number, next_other);
            next_other += 1;
        } else {
            assert_eq!(number, next);
            next += 1;
        }
    }
    assert!(publishing < Duration::from_secs(20), "{publishing:?}");
}

#[test]
fn a_session_closed_as_too_slow_is_logged_by_the_binary() {
    let key = process::TempFile::new("outbox-key", b"k3y-for-the-outbox-test-0123456789\n");
    let (wsauth, addr) = process::Wsauth::serve(
        &[
            "--token",
            &format!("alice:{ALICE}"),
            "--token",
            &format!("bob:{BOB}"),
            "--publish-key-file",
            key.path(),
            "--max-outbox-bytes",
            "65536",
            "--greeting",
            "",
        ],
        &[],
    );
    let bearer = format!("Bearer {ALICE}");
    let (_stalled, _) = connect(addr, "/ws", &[("Authorization", &bearer)]).unwrap();
    let mut answers = Vec::new();
    let mut taken = 0;
    for _ in 0..600 {
        let answer = post(addr, "/publish?user=alice", &vec![b'x'; BIG]);
        // Until the session has joined, a publish finds no one.
        taken += usize::from(answer.ends_with("delivered 1\n"));
        let done = taken > 0 && answer.ends_with("delivered 0\n");
        answers.push(answer);
        if done {
            break;
        }
    }
    let last = answers.last().expect("published");
    assert!(
        last.ends_with("delivered 0\n"),
        "{} answers, the last: {last}",
        answers.len()
    );
    let (_, log) = wsauth.stop();
    assert!(log.contains("closing: too slow"), "{log}");
    assert!(log.contains("close 1008 (too slow)"), "{log}");
}

/// A raw `POST` with the test key.
fn post(addr: SocketAddr, target: &str, body: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y-for-the-outbox-test-0123456789\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    read_to_close(&mut stream)
}

#[test]
fn an_outbox_below_the_message_limit_exits_2() {
    let finished = process::finish(&["--max-outbox-bytes", "1000"]);
    assert_eq!(finished.code, Some(2), "{finished:?}");
    assert!(
        finished.stderr.contains("--max-outbox-bytes"),
        "{finished:?}"
    );
    let finished = process::finish(&["--max-message-bytes", "2000", "--max-outbox-bytes", "1999"]);
    assert_eq!(finished.code, Some(2), "{finished:?}");
}

#[cfg(feature = "tls")]
#[test]
fn over_tls_a_stalled_client_holds_nothing_up_and_order_is_kept() {
    use common::tls::*;
    let pair = Pair::new();
    let server = start_tls_quiet(quiet_config(), &pair);
    let wss = |token: &str| {
        let bearer = format!("Bearer {token}");
        let headers = [("Authorization", bearer.as_str())];
        wss_connect(server.local_addr(), &pair.der, "/ws", &headers).expect("connects")
    };
    let (mut stalled, _) = wss(ALICE);
    let (bob, _) = wss(BOB);
    let sessions = server.sessions();
    assert!(eventually(PATIENCE, || sessions.list().len() == 2));
    let count = 400;
    let got = reader(bob, count);
    let mut slowest = Duration::ZERO;
    for n in 0..count as u64 {
        keep_within_window(&got, n);
        let began = Instant::now();
        sessions.broadcast(numbered(n, BIG));
        slowest = slowest.max(began.elapsed());
    }
    for n in count as u64 - WINDOW..count as u64 {
        assert_eq!(got.recv_timeout(PATIENCE).expect("bob reads on"), Ok(n));
    }
    assert!(
        slowest < Duration::from_secs(5),
        "one broadcast took {slowest:?}"
    );
    assert!(eventually(PATIENCE, || !has_alice(&sessions)));
    // What the stalled client kept is whole and in order.
    stalled
        .get_ref()
        .get_ref()
        .set_read_timeout(Some(PATIENCE))
        .unwrap();
    let mut next = 0;
    loop {
        match stalled.read() {
            Ok(Message::Binary(bytes)) => {
                assert_eq!(number_of(&bytes), next);
                next += 1;
            }
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1008);
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => panic!("no end after {next}"),
            Err(_) => break,
        }
    }
    assert!(next >= 1 && next < count as u64, "{next}");
}

#[test]
fn an_outbox_that_does_not_move_for_the_write_timeout_closes_its_session() {
    let mut config = quiet_config();
    config.write_timeout = Duration::from_secs(2);
    config.max_outbox_bytes = Some(256 << 20);
    let server = start_quiet(config);
    let _stalled = open(&server, ALICE, 1);
    let sessions = server.sessions();
    // Far past the socket's buffers, far below the outbox's bound.
    let mut taken = 0;
    let started = Instant::now();
    while taken < 400 {
        taken += sessions.broadcast(numbered(taken as u64, BIG));
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // No byte moves: the background thread gives up at the write timeout.
    assert!(eventually(PATIENCE, || !has_alice(&sessions)));
    let closed_after = started.elapsed();
    assert!(
        closed_after >= Duration::from_millis(1900),
        "{closed_after:?}"
    );
    let metrics = push_metrics(server.local_addr());
    assert_eq!(
        metrics["wsauth_sessions_closed_slow_total"], 1.0,
        "{metrics:?}"
    );
}

#[test]
fn disconnecting_a_stalled_user_waits_for_none_of_their_sessions() {
    let server = start_quiet(quiet_config());
    let _stalled = open(&server, ALICE, 1);
    let mut bob = open(&server, BOB, 2);
    let sessions = server.sessions();
    // Fill alice's socket (her outbox holds the rest).
    for n in 0..200 {
        sessions.send_to_user("alice", numbered(n, BIG));
    }
    let started = Instant::now();
    let publisher = server.publisher();
    assert!(publisher.disconnect_user("alice").is_ok());
    assert_eq!(publisher.to_user("bob", numbered(7, 10)), Ok(1));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    match bob.read().expect("bob's message") {
        Message::Binary(bytes) => assert_eq!(number_of(&bytes), 7),
        other => panic!("{other:?}"),
    }
}
