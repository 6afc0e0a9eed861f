//! `--publish-key-file`: `POST /publish?user=NAME|all` and `POST
//! /disconnect?user=NAME` over raw HTTP, the checks in SPEC order, the body
//! under the head's deadline, the answers and metrics; and `Publisher`,
//! the same from the library.

mod common;

use common::process::TempFile;
use common::{
    ALICE, BOB, PATIENCE, assert_well_framed, body, connect_alice, connect_bearer, expect_close,
    header, next_text, raw, read_to_close, start, status,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsauth::{Config, PublishError, PublishKey, Server};

/// The key every test server here takes.
const KEY: &str = "publish-key-0123456789-abcdefghijklmnop";

/// A server that knows alice and bob, with the publish key file `name`.
fn server_with(name: &str, change: impl FnOnce(&mut Config)) -> (Server, TempFile) {
    let file = TempFile::new(name, format!("{KEY}\n").as_bytes());
    let mut config = Config::default();
    config.metrics = true;
    config.publish_key = Some(Arc::new(
        PublishKey::load(file.path()).expect("the key loads"),
    ));
    change(&mut config);
    (start(config), file)
}

/// The raw bytes of a request with `headers` (each a whole line) and `body`,
/// with a `Content-Length` for it.
fn request_bytes(method: &str, target: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `POST target` with the right key and `body`; the whole answer.
fn post(addr: SocketAddr, target: &str, body: &[u8]) -> String {
    let bearer = format!("Authorization: Bearer {KEY}");
    raw(addr, &request_bytes("POST", target, &[&bearer], body))
}

/// Like [`post`], checking the answer is a well-framed 200 and returning its body.
fn post_ok(addr: SocketAddr, target: &str, body: &[u8]) -> String {
    let answer = post(addr, target, body);
    assert_eq!(status(&answer), 200, "{answer}");
    assert_well_framed(&answer);
    common::body(&answer).to_string()
}

/// The next data message, pings skipped.
fn next_message<S: Read + Write>(ws: &mut tungstenite::WebSocket<S>) -> Message {
    loop {
        match ws.read().expect("a message") {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

/// Every `wsauth_publish_requests_total` and `wsauth_push_messages_total` sample.
fn publish_metrics(addr: SocketAddr) -> BTreeMap<String, f64> {
    let answer = common::get(addr, "/metrics", &[]);
    body(&answer)
        .lines()
        .filter(|line| line.starts_with("wsauth_publish") || line.starts_with("wsauth_push"))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn requests(metrics: &BTreeMap<String, f64>, result: &str) -> f64 {
    metrics[&format!("wsauth_publish_requests_total{{result=\"{result}\"}}")]
}

#[test]
fn without_the_flag_publish_and_disconnect_are_404() {
    let server = start(Config::default());
    for target in [
        "/publish?user=alice",
        "/publish?all",
        "/disconnect?user=alice",
    ] {
        assert_eq!(
            status(&post(server.local_addr(), target, b"hi")),
            404,
            "{target}"
        );
    }
}

#[test]
fn a_publish_to_a_user_reaches_each_of_their_sessions_and_counts_them() {
    let (server, _key) = server_with("to-user", |_| {});
    let addr = server.local_addr();
    let (mut alice1, mut alice2) = (connect_alice(addr), connect_alice(addr));
    let (mut bob, _) = connect_bearer(addr, BOB).expect("bob connects");
    assert_eq!(next_text(&mut bob), "Hello bob");
    assert_eq!(
        post_ok(addr, "/publish?user=alice", b"your order shipped"),
        "delivered 2\n"
    );
    assert_eq!(next_text(&mut alice1), "your order shipped");
    assert_eq!(next_text(&mut alice2), "your order shipped");
    // Bob got nothing: the next thing he sees is what went to all.
    assert_eq!(
        post_ok(addr, "/publish?all", b"to everyone"),
        "delivered 3\n"
    );
    assert_eq!(next_text(&mut bob), "to everyone");
    assert_eq!(next_text(&mut alice1), "to everyone");
    assert_eq!(
        post_ok(addr, "/publish?user=carol", b"nobody"),
        "delivered 0\n"
    );
    // A percent-encoded name is decoded.
    assert_eq!(
        post_ok(addr, "/publish?user=%61lice", b"x"),
        "delivered 2\n"
    );
}

#[test]
fn octet_stream_is_one_binary_message_anything_else_one_text_message() {
    let (server, _key) = server_with("kinds", |_| {});
    let addr = server.local_addr();
    let mut alice = connect_alice(addr);
    let bearer = format!("Authorization: Bearer {KEY}");
    let binary = [0u8, 0xff, 0xfe, b'\n'];
    let octets = "Content-Type: application/octet-stream";
    let answer = raw(
        addr,
        &request_bytes("POST", "/publish?user=alice", &[&bearer, octets], &binary),
    );
    assert_eq!(body(&answer), "delivered 1\n");
    assert_eq!(
        next_message(&mut alice),
        Message::Binary(binary.to_vec().into())
    );
    // UTF-8 even under octet-stream stays binary.
    raw(
        addr,
        &request_bytes("POST", "/publish?user=alice", &[&bearer, octets], b"abc"),
    );
    assert_eq!(
        next_message(&mut alice),
        Message::Binary(b"abc".to_vec().into())
    );
    let json = "Content-Type: application/json";
    raw(
        addr,
        &request_bytes(
            "POST",
            "/publish?user=alice",
            &[&bearer, json],
            "{\"é\":1}".as_bytes(),
        ),
    );
    assert_eq!(next_message(&mut alice), Message::Text("{\"é\":1}".into()));
    assert_eq!(post_ok(addr, "/publish?user=alice", b""), "delivered 1\n");
    assert_eq!(next_message(&mut alice), Message::Text("".into()));
    // Text that is not UTF-8 is refused, and nothing is sent.
    let answer = post(addr, "/publish?user=alice", &binary);
    assert_eq!(status(&answer), 400, "{answer}");
    assert_well_framed(&answer);
    post_ok(addr, "/publish?user=alice", b"after");
    assert_eq!(next_text(&mut alice), "after");
}

#[test]
fn the_checks_run_in_spec_order() {
    let (server, _key) = server_with("order", |config| config.max_auth_failures = 2);
    let addr = server.local_addr();
    let bearer = format!("Authorization: Bearer {KEY}");
    let wrong = "Authorization: Bearer not-the-publish-key-but-long-enough-000";
    let origin = "Origin: http://x";
    let ask = |method: &str, target: &str, headers: &[&str]| {
        let answer = raw(addr, &request_bytes(method, target, headers, b"hi"));
        if method != "HEAD" {
            assert_well_framed(&answer);
        }
        answer
    };
    // 405 first, for any method but POST, whatever else is wrong.
    for method in ["GET", "PUT", "DELETE"] {
        for path in ["/publish?bad", "/disconnect?user=alice"] {
            let answer = ask(method, path, &[origin]);
            assert_eq!(status(&answer), 405, "{method} {path}: {answer}");
            assert_eq!(header(&answer, "Allow"), Some("POST"));
        }
    }
    let head = ask("HEAD", "/publish?all", &[]);
    assert_eq!((status(&head), body(&head)), (405, ""), "{head}");
    // 403 for any Origin, before the key is looked at (the right one too).
    for headers in [&[origin][..], &[origin, &bearer], &["Origin: null", wrong]] {
        let answer = ask("POST", "/publish?all", headers);
        assert_eq!(status(&answer), 403, "{headers:?}: {answer}");
    }
    // 401 before the query is looked at.
    let missing = ask("POST", "/publish?nonsense", &[]);
    assert_eq!(status(&missing), 401, "{missing}");
    assert_eq!(
        header(&missing, "WWW-Authenticate"),
        Some(r#"Bearer realm="wsauth-publish""#)
    );
    let invalid = ask("POST", "/publish?nonsense", &[wrong]);
    assert_eq!(status(&invalid), 401, "{invalid}");
    assert_eq!(
        header(&invalid, "WWW-Authenticate"),
        Some(r#"Bearer realm="wsauth-publish", error="invalid_token""#)
    );
    // Two failures: the limit. Now 429 comes before 403 and 401, even with the right key...
    for headers in [&[origin][..], &[wrong], &[&bearer]] {
        let answer = ask("POST", "/publish?all", headers);
        assert_eq!(status(&answer), 429, "{headers:?}: {answer}");
        let retry: u64 = header(&answer, "Retry-After")
            .expect("Retry-After")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&retry), "{answer}");
    }
    // ...but after 405.
    assert_eq!(status(&ask("GET", "/publish?all", &[])), 405);
    // The same throttle as the upgrade's: the client IP is locked out there too.
    assert_eq!(common::refused_status(connect_bearer(addr, ALICE)), 429);
}

#[test]
fn a_session_token_is_no_publish_key_and_a_publish_key_opens_no_session() {
    let (server, _key) = server_with("separate", |_| {});
    let addr = server.local_addr();
    let as_key = format!("Authorization: Bearer {ALICE}");
    let answer = raw(
        addr,
        &request_bytes("POST", "/publish?all", &[&as_key], b"x"),
    );
    assert_eq!(status(&answer), 401, "{answer}");
    assert!(answer.contains("invalid_token"), "{answer}");
    assert_eq!(common::refused_status(connect_bearer(addr, KEY)), 401);
}

#[test]
fn bad_queries_and_bodies_get_400_411_and_413() {
    let (server, _key) = server_with("framing", |config| config.max_message_bytes = 1000);
    let addr = server.local_addr();
    let bearer = format!("Authorization: Bearer {KEY}");
    for target in [
        "/publish",
        "/publish?user=",
        "/publish?user=alice&user=alice",
        "/publish?user=alice&user=bob",
        "/publish?user=alice&all",
        "/publish?everyone",
        "/disconnect",
        "/disconnect?all",
        "/disconnect?user=",
    ] {
        let answer = raw(addr, &request_bytes("POST", target, &[&bearer], b""));
        assert_eq!(status(&answer), 400, "{target}: {answer}");
        assert_well_framed(&answer);
    }
    let head_only = |extra: &str, target: &str| {
        let request = format!("POST {target} HTTP/1.1\r\nHost: x\r\n{bearer}\r\n{extra}\r\n");
        raw(addr, request.as_bytes())
    };
    let chunked = head_only("Transfer-Encoding: chunked\r\n", "/publish?all");
    assert_eq!(status(&chunked), 400, "{chunked}");
    let chunked = head_only(
        "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n",
        "/publish?all",
    );
    assert_eq!(status(&chunked), 400, "{chunked}");
    let no_length = head_only("", "/publish?all");
    assert_eq!(status(&no_length), 411, "{no_length}");
    assert_well_framed(&no_length);
    for bad in [
        "Content-Length: x\r\n",
        "Content-Length: 1\r\nContent-Length: 2\r\n",
    ] {
        assert_eq!(status(&head_only(bad, "/publish?all")), 400, "{bad}");
    }
    // /disconnect takes no body: none, or 0, is fine; more is 400.
    assert_eq!(status(&head_only("", "/disconnect?user=alice")), 200);
    assert_eq!(
        status(&head_only(
            "Content-Length: 0\r\n",
            "/disconnect?user=alice"
        )),
        200
    );
    let with_body = raw(
        addr,
        &request_bytes("POST", "/disconnect?user=alice", &[&bearer], b"x"),
    );
    assert_eq!(status(&with_body), 400, "{with_body}");
    // At the limit is fine; one byte past it is 413.
    assert_eq!(
        post_ok(addr, "/publish?all", &[b'a'; 1000]),
        "delivered 0\n"
    );
    let too_large = post(addr, "/publish?all", &[b'a'; 1001]);
    assert_eq!(status(&too_large), 413, "{too_large}");
    assert_well_framed(&too_large);
}

#[test]
fn a_413_is_decided_from_the_content_length_before_any_byte_of_the_body() {
    let (server, _key) = server_with("early-413", |config| {
        config.handshake_timeout = Duration::from_secs(60);
    });
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let head = format!(
        "POST /publish?all HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Length: 1000000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let answer = read_to_close(&mut stream);
    assert_eq!(status(&answer), 413, "{answer}");
    assert_well_framed(&answer);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_body_that_arrives_with_its_head_or_after_it_is_read_whole() {
    let (server, _key) = server_with("whole-body", |_| {});
    let addr = server.local_addr();
    let mut alice = connect_alice(addr);
    let text: String = (0..60_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    // All in one write: the head reader holds the first part of the body.
    assert_eq!(
        post_ok(addr, "/publish?user=alice", text.as_bytes()),
        "delivered 1\n"
    );
    assert_eq!(next_text(&mut alice), text);
    // The head, then the body in parts.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = request_bytes(
        "POST",
        "/publish?user=alice",
        &[&format!("Authorization: Bearer {KEY}")],
        b"in three parts",
    );
    let split = request.len() - 14;
    stream.write_all(&request[..split + 3]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stream.write_all(&request[split + 3..split + 8]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stream.write_all(&request[split + 8..]).unwrap();
    assert_eq!(body(&read_to_close(&mut stream)), "delivered 1\n");
    assert_eq!(next_text(&mut alice), "in three parts");
}

#[test]
fn a_body_not_whole_by_the_heads_deadline_closes_unanswered_and_sends_nothing() {
    let (server, _key) = server_with("deadline", |config| {
        config.handshake_timeout = Duration::from_secs(1);
    });
    let addr = server.local_addr();
    let mut alice = connect_alice(addr);
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = request_bytes(
        "POST",
        "/publish?user=alice",
        &[&format!("Authorization: Bearer {KEY}")],
        b"0123456789",
    );
    // The head arrives slowly too: the deadline counts from the connection.
    let (head, body_bytes) = request.split_at(request.len() - 10);
    for chunk in head.chunks(head.len() / 4 + 1) {
        stream.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let trickler = stream.try_clone().unwrap();
    let body_bytes = body_bytes.to_vec();
    let trickle = std::thread::spawn(move || {
        let mut trickler = trickler;
        for byte in body_bytes {
            if trickler.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let answer = read_to_close(&mut stream);
    let elapsed = started.elapsed();
    assert_eq!(answer, "", "closed without an answer");
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(2300),
        "closed after {elapsed:?}"
    );
    let _ = trickle.join();
    // Nothing was sent: the next message alice sees is this one.
    assert_eq!(
        post_ok(addr, "/publish?user=alice", b"marker"),
        "delivered 1\n"
    );
    assert_eq!(next_text(&mut alice), "marker");
    let metrics = publish_metrics(addr);
    assert_eq!(requests(&metrics, "bad_request"), 1.0, "{metrics:?}");
}

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

/// Sends `request` on a connection of its own and reads what comes back
/// until the close; a write the server refused by closing is no error.
fn attempt(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = stream.write_all(request);
    read_to_close(&mut stream)
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
