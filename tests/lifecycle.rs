//! How long a session lives: token expiry and revocation, idle timeout,
//! shutdown, and first-message authentication.

mod common;

use common::frames::*;
use common::process::TempFile;
use common::*;
use std::io::Write;
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsauth::auth::unix_now;
use wsauth::{Config, Server, TokenStore};

/// A tokens file of its own for each test, removed afterwards.
struct TokensFile(TempFile);

impl TokensFile {
    fn new(name: &str, text: &str) -> Self {
        TokensFile(TempFile::new(&format!("{name}.tokens"), text.as_bytes()))
    }

    fn rewrite(&self, text: &str) {
        self.0.rewrite(text.as_bytes());
    }

    fn server(&self, config: Config) -> Server {
        let store = TokenStore::new(Vec::new()).with_file(&self.0.0).unwrap();
        Server::start("127.0.0.1:0", config, store).unwrap()
    }
}

fn connect_with(server: &Server, token: &str) -> Client {
    let (ws, _) = connect(
        server.local_addr(),
        "/ws",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .unwrap();
    ws
}

#[test]
fn a_session_closes_with_1008_token_expired_within_a_second_of_expiry() {
    let expires = unix_now() + 2;
    let file = TokensFile::new("expiry", &format!("erin:erin-token:{expires}\n"));
    let server = file.server(Config::default());
    let mut ws = connect_with(&server, "erin-token");
    assert_eq!(next_text(&mut ws), "Hello erin");
    assert_eq!(expect_close(&mut ws), (1008, "token expired".to_string()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        now >= expires as f64 && now < expires as f64 + 1.0,
        "closed at {now}, expiry {expires}"
    );
    // And the token no longer opens a session.
    assert_eq!(
        refused_status(connect(server.local_addr(), "/ws?token=erin-token", &[])),
        401
    );
}

#[test]
fn a_removed_token_closes_its_session_with_1008_token_revoked_within_2_seconds() {
    let file = TokensFile::new("revoke", "alice:alice-token\nbob:bob-token\n");
    let server = file.server(Config::default());
    let mut alice = connect_with(&server, "alice-token");
    let mut bob = connect_with(&server, "bob-token");
    assert_eq!(next_text(&mut bob), "Hello bob");
    file.rewrite("alice:alice-token\n");
    let changed = Instant::now();
    assert_eq!(expect_close(&mut bob), (1008, "token revoked".to_string()));
    assert!(
        changed.elapsed() < Duration::from_secs(2),
        "{:?}",
        changed.elapsed()
    );
    // Alice's session goes on.
    assert_eq!(next_text(&mut alice), "Hello alice");
    alice.send(Message::text("still")).unwrap();
    assert_eq!(next_text(&mut alice), "Message text was: still");
}

#[test]
fn reload_revokes_at_once_as_sighup_does() {
    let file = TokensFile::new("reload", "bob:bob-token\n");
    let server = file.server(Config::default());
    let mut bob = connect_with(&server, "bob-token");
    assert_eq!(next_text(&mut bob), "Hello bob");
    file.rewrite("carol:carol-token\n");
    server.reload();
    assert_eq!(expect_close(&mut bob), (1008, "token revoked".to_string()));
    let mut carol = connect_with(&server, "carol-token");
    assert_eq!(next_text(&mut carol), "Hello carol");
}

#[test]
fn a_malformed_tokens_file_keeps_the_previous_tokens() {
    let file = TokensFile::new("typo", "bob:bob-token\n");
    let server = file.server(Config::default());
    let mut bob = connect_with(&server, "bob-token");
    assert_eq!(next_text(&mut bob), "Hello bob");
    file.rewrite("bob:bob-token:not-a-time\n");
    server.reload();
    bob.send(Message::text("still in")).unwrap();
    assert_eq!(next_text(&mut bob), "Message text was: still in");
    let mut again = connect_with(&server, "bob-token");
    assert_eq!(next_text(&mut again), "Hello bob");
}

#[test]
fn a_silent_peer_is_pinged_at_half_the_idle_timeout_then_closed_with_1001() {
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_millis(800));
    let server = start(config);
    let mut stream = raw_alice(server.local_addr());
    let started = Instant::now();
    let (_, opcode, _) = read_frame(&mut stream).unwrap();
    assert_eq!(opcode, PING);
    let pinged = started.elapsed();
    assert!(pinged >= Duration::from_millis(350), "{pinged:?}");
    let (code, reason) = read_close(&mut stream);
    assert_eq!((code, reason.as_slice()), (1001, &b"idle timeout"[..]));
    assert!(
        started.elapsed() >= Duration::from_millis(750),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_peer_that_answers_pings_stays_connected() {
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_millis(400));
    let server = start(config);
    let mut stream = raw_alice(server.local_addr());
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let (_, opcode, payload) = read_frame(&mut stream).unwrap();
        assert_eq!(
            opcode, PING,
            "only pings arrive while the peer answers them"
        );
        stream.write_all(&frame(true, PONG, &payload)).unwrap();
    }
    stream.write_all(&frame(true, TEXT, b"alive")).unwrap();
    loop {
        let (_, opcode, payload) = read_frame(&mut stream).unwrap();
        if opcode == TEXT {
            assert_eq!(payload, b"Message text was: alive");
            break;
        }
    }
}

#[test]
fn zero_idle_timeout_disables_pings_and_closing() {
    let mut config = Config::default();
    config.idle_timeout = None;
    let server = start(config);
    let mut stream = raw_alice(server.local_addr());
    stream
        .set_read_timeout(Some(Duration::from_millis(1200)))
        .unwrap();
    let mut byte = [0u8; 1];
    let quiet = std::io::Read::read(&mut stream, &mut byte);
    assert!(quiet.is_err(), "nothing arrives: {quiet:?}");
}

#[test]
fn stop_closes_every_session_with_1001_server_shutting_down() {
    let server = start(Config::default());
    let addr = server.local_addr();
    let mut first = connect_alice(addr);
    let mut second = connect_alice(addr);
    let started = Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(5));
    for ws in [&mut first, &mut second] {
        assert_eq!(expect_close(ws), (1001, "server shutting down".to_string()));
    }
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no longer accepting"
    );
}

fn first_message_server() -> Server {
    let mut config = Config::default();
    config.first_message_auth = true;
    config.handshake_timeout = Duration::from_millis(700);
    config.max_auth_failures = 3;
    start(config)
}

#[test]
fn first_message_auth_accepts_the_token_as_first_message_and_does_not_echo_it() {
    let server = first_message_server();
    let (mut ws, _) = connect(server.local_addr(), "/ws", &[]).unwrap();
    ws.send(Message::text(ALICE)).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    ws.send(Message::text("next")).unwrap();
    assert_eq!(next_text(&mut ws), "Message text was: next");
}

#[test]
fn first_message_auth_closes_1008_on_a_wrong_token_a_binary_message_or_silence() {
    let server = first_message_server();
    let addr = server.local_addr();
    let (mut ws, _) = connect(addr, "/ws", &[]).unwrap();
    ws.send(Message::text("wrong")).unwrap();
    assert_eq!(expect_close(&mut ws), (1008, "invalid token".to_string()));

    let (mut ws, _) = connect(addr, "/ws", &[]).unwrap();
    ws.send(Message::binary(ALICE.as_bytes().to_vec())).unwrap();
    assert_eq!(expect_close(&mut ws), (1008, "invalid token".to_string()));

    let (mut ws, _) = connect(addr, "/ws", &[]).unwrap();
    let started = Instant::now();
    assert_eq!(expect_close(&mut ws), (1008, "invalid token".to_string()));
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );

    // Those were three failed authentications: the limit is reached.
    assert_eq!(refused_status(connect(addr, "/ws", &[])), 429);
}

#[test]
fn first_message_auth_keeps_other_sources_working_and_refusing() {
    let server = first_message_server();
    let addr = server.local_addr();
    let (mut ws, _) = connect(addr, &format!("/ws?token={BOB}"), &[]).unwrap();
    assert_eq!(next_text(&mut ws), "Hello bob");
    assert_eq!(refused_status(connect(addr, "/ws?token=wrong", &[])), 401);
}

#[test]
fn absurdly_long_timeouts_mean_never_rather_than_a_crash() {
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_secs(u64::MAX));
    config.handshake_timeout = Duration::from_secs(u64::MAX);
    let server = start(config);
    let mut ws = connect_alice(server.local_addr());
    ws.send(Message::text("fine")).unwrap();
    assert_eq!(next_text(&mut ws), "Message text was: fine");
}
