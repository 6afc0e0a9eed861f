//! What the publish API delivers: `/disconnect`, order, `--exec` sessions,
//! the metrics, the key's reload, the pending cap, and `Publisher`, the
//! same from the library.

mod common;

use common::process::TempFile;
use common::publish::*;
use common::{
    ALICE, BOB, PATIENCE, body, connect_alice, connect_bearer, expect_close, next_text, raw,
    read_to_close, start, status,
};
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use tungstenite::Message;
use wsauth::{Config, PublishError, PublishKey, Server};

#[test]
fn disconnect_closes_every_session_of_the_user_with_1008_and_the_token_stays_valid() {
    let (server, _key) = server_with("disconnect", |_| {});
    let addr = server.local_addr();
    let (mut alice1, mut alice2) = (connect_alice(addr), connect_alice(addr));
    let (mut bob, _) = connect_bearer(addr, BOB).expect("bob connects");
    assert_eq!(next_text(&mut bob), "Hello bob");
    assert_eq!(
        post_ok(addr, "/disconnect?user=alice", b""),
        "disconnected 2\n"
    );
    for alice in [&mut alice1, &mut alice2] {
        assert_eq!(expect_close(alice), (1008, "disconnected".to_string()));
    }
    assert_eq!(
        post_ok(addr, "/publish?user=bob", b"still here"),
        "delivered 1\n"
    );
    assert_eq!(next_text(&mut bob), "still here");
    let _again = connect_alice(addr);
    assert_eq!(
        post_ok(addr, "/disconnect?user=carol", b""),
        "disconnected 0\n"
    );
}

#[test]
fn a_thousand_publishes_to_one_session_arrive_in_order() {
    let (server, _key) = server_with("order-1000", |_| {});
    let addr = server.local_addr();
    let mut alice = connect_alice(addr);
    let reader =
        std::thread::spawn(move || (0..1000).map(|_| next_text(&mut alice)).collect::<Vec<_>>());
    for i in 0..1000 {
        assert_eq!(
            post_ok(addr, "/publish?user=alice", format!("m{i}").as_bytes()),
            "delivered 1\n"
        );
    }
    let got = reader.join().expect("alice reads them all");
    let expected: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_publish_reaches_an_exec_sessions_client_not_its_program() {
    let file = TempFile::new("exec", format!("{KEY}\n").as_bytes());
    let mut config = Config::default();
    config.publish_key = Some(Arc::new(
        PublishKey::load(file.path()).expect("the key loads"),
    ));
    let store = wsauth::TokenStore::new(vec![common::grant("alice", ALICE, None)]);
    // `cat` echoes every line it gets: a publish that reached it would come back.
    let exec = wsauth::exec::Exec::new("cat", config.max_message_bytes);
    let server =
        Server::start_with_handler("127.0.0.1:0", config, store, move |info| exec.start(info))
            .expect("server starts");
    let addr = server.local_addr();
    let (mut alice, _) = connect_bearer(addr, ALICE).expect("alice connects");
    assert_eq!(
        post_ok(addr, "/publish?user=alice", b"pushed"),
        "delivered 1\n"
    );
    assert_eq!(next_text(&mut alice), "pushed");
    alice.send(Message::Text("typed".into())).unwrap();
    assert_eq!(next_text(&mut alice), "typed");
}

#[test]
fn the_metrics_count_each_request_once_and_each_message_handed_on() {
    let (server, _key) = server_with("metrics", |config| config.max_message_bytes = 10);
    let addr = server.local_addr();
    let (_alice1, _alice2) = (connect_alice(addr), connect_alice(addr));
    let bearer = format!("Authorization: Bearer {KEY}");
    post_ok(addr, "/publish?user=alice", b"1");
    post_ok(addr, "/publish?all", b"2");
    post_ok(addr, "/disconnect?user=nobody", b"");
    raw(addr, &request_bytes("POST", "/publish?all", &[], b"x"));
    raw(
        addr,
        &request_bytes(
            "POST",
            "/publish?all",
            &["Authorization: Bearer wrong"],
            b"x",
        ),
    );
    raw(
        addr,
        &request_bytes("POST", "/publish?all", &["Origin: http://x"], b"x"),
    );
    raw(addr, &request_bytes("GET", "/publish?all", &[], b""));
    raw(addr, &request_bytes("POST", "/publish", &[&bearer], b"x"));
    raw(
        addr,
        format!("POST /publish?all HTTP/1.1\r\n{bearer}\r\n\r\n").as_bytes(),
    );
    raw(
        addr,
        &request_bytes("POST", "/publish?all", &[&bearer], &[b'x'; 11]),
    );
    let metrics = publish_metrics(addr);
    let expected = [
        ("ok", 3.0),
        ("unauthorized", 2.0),
        ("forbidden", 1.0),
        ("throttled", 0.0),
        ("bad_request", 3.0),
        ("too_large", 1.0),
        ("unavailable", 0.0),
    ];
    for (result, count) in expected {
        assert_eq!(requests(&metrics, result), count, "{result}: {metrics:?}");
    }
    assert_eq!(metrics["wsauth_push_messages_total"], 4.0, "{metrics:?}");
}

#[test]
fn the_library_publisher_reaches_users_and_all_and_disconnects() {
    let server = start(Config::default());
    let addr = server.local_addr();
    let publisher = server.publisher();
    let (mut alice, mut other_alice) = (connect_alice(addr), connect_alice(addr));
    let (mut bob, _) = connect_bearer(addr, BOB).expect("bob connects");
    assert_eq!(next_text(&mut bob), "Hello bob");
    let from_a_thread = publisher.clone();
    let sent = std::thread::spawn(move || from_a_thread.to_user("alice", "for alice"));
    assert_eq!(sent.join().expect("no panic"), Ok(2));
    assert_eq!(next_text(&mut alice), "for alice");
    assert_eq!(publisher.to_all(vec![1u8, 2]), Ok(3));
    assert_eq!(next_message(&mut bob), Message::Binary(vec![1u8, 2].into()));
    assert_eq!(
        next_message(&mut alice),
        Message::Binary(vec![1u8, 2].into())
    );
    assert_eq!(publisher.disconnect_user("alice"), Ok(2));
    assert_eq!(expect_close(&mut alice), (1008, "disconnected".to_string()));
    assert_eq!(expect_close(&mut other_alice).0, 1008);
    server.stop();
    assert_eq!(publisher.to_all("too late"), Err(PublishError::Stopped));
    assert_eq!(publisher.disconnect_user("bob"), Err(PublishError::Stopped));
}

#[test]
fn a_changed_key_file_is_reloaded_and_a_broken_one_keeps_the_key() {
    // Polling with the new key fails until the reload: no throttle here.
    let (server, file) = server_with("reload", |config| config.max_auth_failures = 0);
    let addr = server.local_addr();
    let new_key = "the-second-publish-key-abcdefghijklmnopq";
    let with = |key: &str| {
        let bearer = format!("Authorization: Bearer {key}");
        status(&raw(
            addr,
            &request_bytes("POST", "/publish?all", &[&bearer], b"x"),
        ))
    };
    file.rewrite(format!("{new_key}\n").as_bytes());
    assert!(
        common::eventually(PATIENCE, || with(new_key) == 200),
        "the new key works"
    );
    assert_eq!(with(KEY), 401, "the old key is gone");
    // Too short: the file fails to load, the key in force stays.
    file.rewrite(b"short\n");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(with(new_key), 200);
    assert_eq!(with("short"), 401);
    // Server::reload (SIGHUP) reads it at once, mtime or not.
    std::fs::write(&file.0, format!("{KEY}\n")).unwrap();
    server.reload();
    assert_eq!(with(KEY), 200);
}

#[test]
fn a_publish_counts_toward_the_pending_cap_until_it_is_answered() {
    let (server, _key) = server_with("publish-pending-cap", |c| {
        c.max_pending_per_ip = 2;
        c.handshake_timeout = Duration::from_secs(60);
    });
    let addr = server.local_addr();
    let bearer = format!("Authorization: Bearer {KEY}");
    let whole = request_bytes("POST", "/publish?all", &[&bearer], b"held");
    let (head, rest) = whole.split_at(whole.len() - 4);
    // Two publishes whose bodies are still on their way take both places.
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).expect("connect");
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            stream.write_all(head).expect("the head");
            stream
        })
        .collect();
    // A third from the same address is closed without an answer.
    assert!(
        common::eventually(PATIENCE, || attempt(addr, &whole).is_empty()),
        "a publish past the cap is closed unanswered"
    );
    // Once answered, a publish gives its place back.
    held[0].write_all(rest).expect("the body");
    let answer = read_to_close(&mut held[0]);
    assert_eq!(body(&answer), "delivered 0\n", "{answer}");
    assert!(
        common::eventually(PATIENCE, || status(&attempt(addr, &whole)) == 200),
        "a place is free again"
    );
    held[1].write_all(rest).expect("the body");
    assert_eq!(status(&read_to_close(&mut held[1])), 200);
}
