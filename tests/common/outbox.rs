//! The outbox tests' helpers: numbered messages, a reader thread, the
//! push metrics and what a stalled client finds once it reads.

use super::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;
use tungstenite::{Message, WebSocket};
use wsauth::{Config, Server, Sessions};

/// 60 KB messages, as in the measurement.
pub const BIG: usize = 60_000;

pub fn quiet_config() -> Config {
    let mut config = Config::default();
    config.metrics = true;
    // Long, so that a fan-out waiting on a stalled session would show.
    config.write_timeout = Duration::from_secs(30);
    config
}

/// Opens a session and waits until the server lists `listed` sessions.
pub fn open(server: &Server, token: &str, listed: usize) -> Client {
    let bearer = format!("Bearer {token}");
    let (ws, _) = connect(server.local_addr(), "/ws", &[("Authorization", &bearer)])
        .expect("the session opens");
    let sessions = server.sessions();
    assert!(eventually(PATIENCE, || sessions.list().len() >= listed));
    ws
}

/// A numbered message of `len` bytes: its number in the first 8.
pub fn numbered(n: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![(n % 251) as u8; len.max(8)];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes
}

pub fn number_of(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"))
}

/// Reads `count` binary messages on a thread; sends their numbers back.
pub fn reader<S: Read + Write + Send + 'static>(
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
pub fn push_metrics(addr: SocketAddr) -> BTreeMap<String, f64> {
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
pub fn read_what_was_kept(ws: &mut Client) -> (u64, Option<(u16, String)>) {
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
pub const WINDOW: u64 = 10;

/// Before sending message `n`: waits until the healthy reader has message
/// `n - WINDOW` (checking the order).
pub fn keep_within_window(got: &mpsc::Receiver<Result<u64, String>>, n: u64) {
    if n >= WINDOW {
        let number = got.recv_timeout(PATIENCE).expect("the reader reads on");
        assert_eq!(number, Ok(n - WINDOW));
    }
}

pub fn has_alice(sessions: &Sessions) -> bool {
    sessions
        .list()
        .iter()
        .any(|session| session.user == "alice")
}
