//! The failed-authentication throttle under concurrency and over IPv6: a
//! burst of guesses gets no more answers than `--max-auth-failures`.

mod common;

use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use tungstenite::Message;
use wsauth::{Config, Server, TokenStore};

/// Sends one upgrade request per thread, all released together, and returns
/// the status of each answer.
fn concurrent_upgrades(addr: SocketAddr, requests: Vec<String>) -> Vec<u16> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let threads: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                barrier.wait();
                stream.write_all(request.as_bytes()).unwrap();
                status(&read_to_close(&mut stream))
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn throttled_config(limit: usize) -> Config {
    let mut config = Config::default();
    config.max_auth_failures = limit;
    // Every attempt of the burst is let in; only the throttle decides.
    config.max_pending_per_ip = 0;
    config
}

#[test]
fn concurrent_wrong_tokens_get_at_most_the_limit_of_401s() {
    // A few rounds, each on a fresh server: a race has more than one chance.
    for _ in 0..40 {
        let server = start(throttled_config(3));
        let addr = server.local_addr();
        let wrong = upgrade_request(addr, "/ws", &["Authorization: Bearer wrong"]);
        let statuses = concurrent_upgrades(addr, vec![wrong; 32]);
        let unauthorized = statuses.iter().filter(|s| **s == 401).count();
        let throttled = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!((unauthorized, throttled), (3, 29), "{statuses:?}");
    }
}

#[test]
fn an_ipv6_client_is_throttled_over_ipv6() {
    let store = TokenStore::new(vec![grant("alice", ALICE, None)]);
    let Ok(server) = Server::start("[::1]:0", throttled_config(2), store) else {
        eprintln!("no IPv6 loopback here: the /64 keys are covered by unit tests");
        return;
    };
    let addr = server.local_addr();
    let wrong = upgrade_request(addr, "/ws", &["Authorization: Bearer wrong"]);
    assert_eq!(status(&raw_upgrade(addr, &wrong)), 401);
    assert_eq!(status(&raw_upgrade(addr, &wrong)), 401);
    let answer = raw_upgrade(addr, &wrong);
    assert_eq!(status(&answer), 429, "{answer}");
    let retry: u64 = header(&answer, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

#[test]
fn a_right_first_message_token_past_the_limit_is_refused_like_a_wrong_one() {
    // Upgrades already open when the limit is reached must not tell the
    // client which of their guesses was right.
    let mut config = throttled_config(3);
    config.first_message_auth = true;
    let server = start(config);
    let addr = server.local_addr();
    let mut sockets: Vec<_> = (0..4)
        .map(|_| connect(addr, "/ws", &[]).expect("the upgrade succeeds").0)
        .collect();
    for ws in &mut sockets[..3] {
        ws.send(Message::text("wrong")).unwrap();
        assert_eq!(expect_close(ws), (1008, "invalid token".to_string()));
    }
    sockets[3].send(Message::text(ALICE)).unwrap();
    let answer = sockets[3].read().expect("an answer");
    let Message::Close(Some(frame)) = &answer else {
        panic!("expected a close, got {answer:?}");
    };
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (1008, "invalid token")
    );
}
