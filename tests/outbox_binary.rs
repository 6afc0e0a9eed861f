//! The outbox through the binary (`--max-outbox-bytes`, the log of a
//! session closed as too slow) and over TLS.

mod common;

use common::outbox::*;
use common::publish::{KEY, post};
use common::*;
#[cfg(feature = "tls")]
use std::time::{Duration, Instant};
#[cfg(feature = "tls")]
use tungstenite::Message;

#[test]
fn a_session_closed_as_too_slow_is_logged_by_the_binary() {
    let key = process::TempFile::new("outbox-key", format!("{KEY}\n").as_bytes());
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
