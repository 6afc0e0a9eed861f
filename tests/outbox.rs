//! Slow clients never hold a push up: a fan-out never waits for one
//! session, what a socket cannot take waits in that session's bounded
//! outbox, in order, and a session whose outbox overflows is closed as too
//! slow (SPEC "Slow clients never hold a push up"). In process; the binary
//! and TLS are in `outbox_binary.rs`.

mod common;

use common::outbox::*;
use common::*;
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsauth::Sessions;

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
