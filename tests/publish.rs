//! `--publish-key-file`: `POST /publish?user=NAME|all` and `POST
//! /disconnect?user=NAME` over raw HTTP: the checks in their documented
//! order, the answers, and the body under the head's deadline
//! (`tests/publish_delivery.rs`: what is delivered, the metrics, the key's
//! reload, and `Publisher`).

mod common;

use common::publish::*;
use common::{
    ALICE, BOB, PATIENCE, assert_well_framed, body, connect_alice, connect_bearer, header,
    next_text, raw, read_to_close, start, status,
};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsauth::Config;

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
fn bad_queries_get_400() {
    let (server, _key) = server_with("queries", |config| config.max_message_bytes = 1000);
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
}

#[test]
fn bad_bodies_get_400_411_and_413() {
    let (server, _key) = server_with("bodies", |config| config.max_message_bytes = 1000);
    let addr = server.local_addr();
    let bearer = format!("Authorization: Bearer {KEY}");
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
