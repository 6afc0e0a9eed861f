//! Your own session logic: what a handler learns and can do, and the rules
//! the server keeps whatever the handler does.

mod common;

use common::*;
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsauth::{Config, Handler, Reply, SendError, Server, SessionInfo, TokenStore};

/// What the test handlers report back to the test.
#[derive(Debug, PartialEq)]
enum Seen {
    Opened {
        user: String,
        expires: Option<u64>,
        peer_port: u16,
        subprotocol: Option<String>,
    },
    Closed(Option<u16>),
}

/// Answers `twice X` with two messages, `close` with a close of its own,
/// `sleep` by blocking for 3 s, anything else not at all.
struct Scripted {
    events: Sender<Seen>,
}

impl Handler for Scripted {
    fn on_open(&mut self, reply: &mut Reply<'_>) {
        reply
            .text("ready")
            .expect("a fresh session takes a message");
    }

    fn on_text(&mut self, text: &str, reply: &mut Reply<'_>) {
        if let Some(rest) = text.strip_prefix("twice ") {
            reply.text(rest).expect("the client reads");
            reply.binary(rest.as_bytes()).expect("the client reads");
        } else if text == "close" {
            reply.close(4001, "as you wish");
            // After a close nothing more goes out, and the handler is told.
            assert_eq!(reply.text("never sent"), Err(SendError::Closed));
        } else if text == "bad close" {
            reply.close(1005, "not a code to send");
        } else if text == "sleep" {
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    fn on_close(&mut self, code: Option<u16>) {
        let _ = self.events.send(Seen::Closed(code));
    }
}

fn scripted_server(config: Config, store: TokenStore) -> (Server, Receiver<Seen>) {
    let (events, seen) = mpsc::channel();
    let events = Mutex::new(events);
    let server = Server::start_with_handler("127.0.0.1:0", config, store, move |info| {
        let events = events.lock().unwrap().clone();
        let _ = events.send(Seen::Opened {
            user: info.identity.user.clone(),
            expires: info.identity.expires,
            peer_port: info.peer.port(),
            subprotocol: info.subprotocol.clone(),
        });
        Scripted { events }
    })
    .expect("server starts");
    (server, seen)
}

fn alice_store() -> TokenStore {
    TokenStore::new(vec![grant("alice", ALICE, Some(4_000_000_000))])
}

fn connect_scripted(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> (Client, u16) {
    let (mut ws, _) = connect(addr, "/ws", headers).expect("alice connects");
    let port = ws.get_ref().local_addr().unwrap().port();
    assert_eq!(next_text(&mut ws), "ready");
    (ws, port)
}

fn bearer() -> String {
    format!("Bearer {ALICE}")
}

#[test]
fn a_handler_learns_identity_peer_and_subprotocol_when_its_session_opens() {
    let (server, seen) = scripted_server(Config::default(), alice_store());
    let auth = bearer();
    let (_ws, port) = connect_scripted(
        server.local_addr(),
        &[("Authorization", &auth), ("Sec-WebSocket-Protocol", "chat")],
    );
    assert_eq!(
        seen.recv_timeout(PATIENCE).unwrap(),
        Seen::Opened {
            user: "alice".into(),
            expires: Some(4_000_000_000),
            peer_port: port,
            subprotocol: Some("chat".into()),
        }
    );
}

#[test]
fn a_handler_answers_with_any_number_of_messages() {
    let (server, _seen) = scripted_server(Config::default(), alice_store());
    let (mut ws, _) = connect_scripted(server.local_addr(), &[("Authorization", &bearer())]);
    ws.send(Message::text("twice hi")).unwrap();
    assert_eq!(next_text(&mut ws), "hi");
    assert_eq!(ws.read().unwrap(), Message::binary(b"hi".to_vec()));
}

#[test]
fn a_handler_closes_with_its_own_code_and_reason_and_is_told_the_end() {
    let (server, seen) = scripted_server(Config::default(), alice_store());
    let (mut ws, _) = connect_scripted(server.local_addr(), &[("Authorization", &bearer())]);
    ws.send(Message::text("close")).unwrap();
    assert_eq!(expect_close(&mut ws), (4001, "as you wish".into()));
    let _ = seen.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        seen.recv_timeout(PATIENCE).unwrap(),
        Seen::Closed(Some(4001))
    );
}

#[test]
fn a_close_code_that_may_not_be_sent_becomes_1011() {
    let (server, _seen) = scripted_server(Config::default(), alice_store());
    let (mut ws, _) = connect_scripted(server.local_addr(), &[("Authorization", &bearer())]);
    ws.send(Message::text("bad close")).unwrap();
    assert_eq!(expect_close(&mut ws).0, 1011);
}

#[test]
fn a_handler_is_told_the_peers_close_code_or_none() {
    let (server, seen) = scripted_server(Config::default(), alice_store());
    let (mut ws, _) = connect_scripted(server.local_addr(), &[("Authorization", &bearer())]);
    ws.close(Some(tungstenite::protocol::CloseFrame {
        code: 4321.into(),
        reason: "".into(),
    }))
    .unwrap();
    let _ = seen.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        seen.recv_timeout(PATIENCE).unwrap(),
        Seen::Closed(Some(4321))
    );

    let (ws, _) = connect_scripted(server.local_addr(), &[("Authorization", &bearer())]);
    drop(ws);
    let _ = seen.recv_timeout(PATIENCE).unwrap();
    assert_eq!(seen.recv_timeout(PATIENCE).unwrap(), Seen::Closed(None));
}

#[test]
fn the_default_binary_answer_of_a_handler_is_1003() {
    let (server, _seen) = scripted_server(Config::default(), alice_store());
    let (mut ws, _) = connect_scripted(server.local_addr(), &[("Authorization", &bearer())]);
    ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(expect_close(&mut ws).0, 1003);
}

#[test]
fn any_handler_keeps_the_message_size_limit_and_utf8_rule() {
    let mut config = Config::default();
    config.max_message_bytes = 1000;
    let (server, _seen) = scripted_server(config, alice_store());
    let (mut ws, _) = connect_scripted(server.local_addr(), &[("Authorization", &bearer())]);
    ws.send(Message::text("x".repeat(2000))).unwrap();
    assert_eq!(expect_close(&mut ws).0, 1009);

    let addr = server.local_addr();
    let request = upgrade_request(addr, "/ws", &[&format!("Authorization: {}", bearer())]);
    let mut raw = frames::raw_session(addr, &request);
    let (_, opcode, payload) = frames::read_frame(&mut raw).expect("the open message");
    assert_eq!((opcode, payload.as_slice()), (frames::TEXT, &b"ready"[..]));
    use std::io::Write;
    raw.write_all(&frames::frame(true, frames::TEXT, &[0xff, 0xfe]))
        .unwrap();
    assert_eq!(frames::read_close(&mut raw).0, 1007);
}

#[test]
fn any_handler_gets_the_idle_ping_and_close() {
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_millis(1500));
    let (server, seen) = scripted_server(config, alice_store());
    let addr = server.local_addr();
    let request = upgrade_request(addr, "/ws", &[&format!("Authorization: {}", bearer())]);
    let started = Instant::now();
    // A raw client that never answers the ping.
    let mut raw = frames::raw_session(addr, &request);
    let (_, opcode, _) = frames::read_frame(&mut raw).expect("the open message");
    assert_eq!(opcode, frames::TEXT);
    let (_, opcode, _) = frames::read_frame(&mut raw).expect("a ping");
    assert_eq!(opcode, frames::PING);
    assert_eq!(
        frames::read_close(&mut raw),
        (1001, b"idle timeout".to_vec())
    );
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let _ = seen.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        seen.recv_timeout(PATIENCE).unwrap(),
        Seen::Closed(Some(1001))
    );
}

#[test]
fn a_busy_handler_still_ends_with_its_expired_token() {
    let expires = wsauth::auth::unix_now() + 2;
    let store = TokenStore::new(vec![grant("alice", ALICE, Some(expires))]);
    let (server, _seen) = scripted_server(Config::default(), store);
    let (mut ws, _) = connect_scripted(server.local_addr(), &[("Authorization", &bearer())]);
    ws.send(Message::text("sleep")).unwrap();
    let (code, reason) = expect_close(&mut ws);
    assert_eq!((code, reason.as_str()), (1008, "token expired"));
    // The close may wait for the handler's call to return (at most 3 s here).
    assert!(wsauth::auth::unix_now() <= expires + 3);
}

#[test]
fn any_handler_is_closed_when_its_token_is_revoked_and_at_shutdown() {
    let dir = std::env::temp_dir().join(format!("wsauth-handler-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens");
    std::fs::write(&file, format!("alice:{ALICE}\nbob:{BOB}\n")).unwrap();
    let store = TokenStore::new(vec![]).with_file(&file).unwrap();
    let (server, _seen) = scripted_server(Config::default(), store);
    let addr = server.local_addr();
    let (mut alice, _) = connect_scripted(addr, &[("Authorization", &bearer())]);
    let (mut bob, _) = connect_scripted(addr, &[("Authorization", &format!("Bearer {BOB}"))]);
    std::fs::write(&file, format!("bob:{BOB}\n")).unwrap();
    server.reload();
    assert_eq!(expect_close(&mut alice), (1008, "token revoked".into()));
    let stopping = Instant::now();
    std::thread::spawn(move || server.stop());
    assert_eq!(
        expect_close(&mut bob),
        (1001, "server shutting down".into())
    );
    assert!(stopping.elapsed() < Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_handle_kept_from_open_sends_from_another_thread_and_fails_once_closed() {
    let handles: Arc<Mutex<Vec<wsauth::SessionHandle>>> = Arc::default();
    let kept = handles.clone();
    let server = Server::start_with_handler(
        "127.0.0.1:0",
        Config::default(),
        alice_store(),
        move |info: &SessionInfo| {
            kept.lock().unwrap().push(info.handle.clone());
            wsauth::Echo::new(&info.identity.user, "", "".into())
        },
    )
    .unwrap();
    let (mut ws, _) = connect(server.local_addr(), "/ws", &[("Authorization", &bearer())]).unwrap();
    assert!(eventually(PATIENCE, || !handles.lock().unwrap().is_empty()));
    let handle = handles.lock().unwrap()[0].clone();
    let pusher = std::thread::spawn(move || {
        handle.send("pushed").unwrap();
        handle.send(vec![9u8, 8]).unwrap();
        handle
    });
    assert_eq!(next_text(&mut ws), "pushed");
    assert_eq!(ws.read().unwrap(), Message::binary(vec![9u8, 8]));
    let handle = pusher.join().unwrap();
    assert!(handle.is_open());
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    assert!(eventually(PATIENCE, || !handle.is_open()));
    assert_eq!(handle.send("late"), Err(wsauth::SendError::Closed));
    drop(TcpStream::connect(server.local_addr()));
}
