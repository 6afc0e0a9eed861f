//! Who gets a session: token sources, the 401 answers, origins, the throttle,
//! and the order of the checks.

mod common;

use common::*;
use std::net::SocketAddr;
use wsauth::{Authenticator, Config, Identity, Server, TokenStore};

fn upgrade(addr: SocketAddr, target: &str, headers: &[&str]) -> String {
    raw_upgrade(addr, &upgrade_request(addr, target, headers))
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

#[test]
fn bearer_header_opens_a_session() {
    let server = start(Config::default());
    let (mut ws, _) = connect(
        server.local_addr(),
        "/ws",
        &[("Authorization", &format!("Bearer {ALICE}"))],
    )
    .unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
}

#[test]
fn bearer_scheme_is_case_insensitive() {
    let server = start(Config::default());
    let answer = upgrade(
        server.local_addr(),
        "/ws",
        &[&format!("Authorization: bEaReR {BOB}")],
    );
    assert_eq!(status(&answer), 101, "{answer}");
}

#[test]
fn subprotocol_token_opens_a_session_and_another_protocol_is_selected() {
    let server = start(Config::default());
    let offer = format!("bearer.{ALICE}, chat, echo");
    let (mut ws, response) = connect(
        server.local_addr(),
        "/ws",
        &[("Sec-WebSocket-Protocol", &offer)],
    )
    .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    assert_eq!(next_text(&mut ws), "Hello alice");
}

#[test]
fn subprotocols_are_read_from_every_header_line_in_order() {
    let server = start(Config::default());
    let answer = upgrade(
        server.local_addr(),
        "/ws",
        &[
            "Sec-WebSocket-Protocol: one",
            &format!("Sec-WebSocket-Protocol: bearer.{ALICE}, two"),
        ],
    );
    assert_eq!(status(&answer), 101, "{answer}");
    assert_eq!(header(&answer, "sec-websocket-protocol"), Some("one"));
}

#[test]
fn only_a_token_subprotocol_gets_400_and_is_not_a_failed_authentication() {
    let mut config = Config::default();
    config.max_auth_failures = 1;
    let server = start(config);
    let addr = server.local_addr();
    for token in [ALICE, "wrong"] {
        let answer = upgrade(
            addr,
            "/ws",
            &[&format!("Sec-WebSocket-Protocol: bearer.{token}")],
        );
        assert_eq!(status(&answer), 400, "{answer}");
        assert!(!answer.contains(token));
    }
    // Two 400s did not use up the single allowed failure.
    assert_eq!(status(&upgrade(addr, "/ws", &[&bearer(ALICE)])), 101);
}

#[test]
fn query_token_is_percent_decoded_and_plus_stays_plus() {
    let store = TokenStore::new(vec![grant("carol", "a+b/c=d", None)]);
    let server = Server::start("127.0.0.1:0", Config::default(), store).unwrap();
    let addr = server.local_addr();
    assert_eq!(status(&upgrade(addr, "/ws?token=a%2Bb%2Fc%3Dd", &[])), 101);
    assert_eq!(status(&upgrade(addr, "/ws?token=a+b/c=d", &[])), 101);
    assert_eq!(
        status(&upgrade(
            addr,
            "/ws?x=1&token=a%2bb%2fc%3dd&token=nope",
            &[]
        )),
        101
    );
}

#[test]
fn the_header_wins_over_subprotocol_and_query() {
    let server = start(Config::default());
    let addr = server.local_addr();
    let subprotocol = "Sec-WebSocket-Protocol: chat, bearer.wrong";
    assert_eq!(
        status(&upgrade(
            addr,
            "/ws?token=wrong",
            &[&bearer(ALICE), subprotocol]
        )),
        101
    );
    assert_eq!(
        status(&upgrade(
            addr,
            &format!("/ws?token={ALICE}"),
            &[&bearer("wrong")]
        )),
        401
    );
    let answer = upgrade(
        addr,
        "/ws?token=wrong",
        &[&format!("Sec-WebSocket-Protocol: chat, bearer.{BOB}")],
    );
    assert_eq!(status(&answer), 101);
}

#[test]
fn empty_values_and_other_schemes_fall_through_to_the_next_source() {
    let server = start(Config::default());
    let addr = server.local_addr();
    let query = format!("/ws?token={ALICE}");
    assert_eq!(
        status(&upgrade(addr, &query, &["Authorization: Bearer "])),
        101
    );
    assert_eq!(
        status(&upgrade(
            addr,
            &query,
            &["Authorization: Basic YWxpY2U6eA=="]
        )),
        101
    );
    assert_eq!(
        status(&upgrade(
            addr,
            &query,
            &["Sec-WebSocket-Protocol: chat, bearer."]
        )),
        101
    );
}

#[test]
fn missing_token_gets_401_with_bearer_challenge() {
    let server = start(Config::default());
    let answer = upgrade(server.local_addr(), "/ws", &[]);
    assert_eq!(status(&answer), 401);
    assert_eq!(
        header(&answer, "www-authenticate"),
        Some(r#"Bearer realm="wsauth""#)
    );
    assert_eq!(header(&answer, "connection"), Some("close"));
    assert_eq!(
        header(&answer, "content-length"),
        Some(body(&answer).len().to_string().as_str())
    );
    assert_eq!(body(&answer).lines().count(), 1);
}

#[test]
fn wrong_token_gets_401_invalid_token_without_echoing_it() {
    let server = start(Config::default());
    let attempt = "guess-ABCDEF123";
    let answer = upgrade(server.local_addr(), &format!("/ws?token={attempt}"), &[]);
    assert_eq!(status(&answer), 401);
    assert_eq!(
        header(&answer, "www-authenticate"),
        Some(r#"Bearer realm="wsauth", error="invalid_token""#)
    );
    assert_eq!(
        header(&answer, "content-length"),
        Some(body(&answer).len().to_string().as_str())
    );
    assert!(!answer.contains(attempt));
}

#[test]
fn a_value_that_is_not_a_valid_token_is_an_unknown_token() {
    let server = start(Config::default());
    let addr = server.local_addr();
    for target in [
        "/ws?token=%zz",
        "/ws?token=a%20b",
        "/ws?token=a%3Ab",
        "/ws?token=%FF",
    ] {
        let answer = upgrade(addr, target, &[]);
        assert_eq!(status(&answer), 401, "{target}");
        assert!(answer.contains("invalid_token"), "{target}");
    }
}

#[test]
fn expired_token_gets_401_invalid_token() {
    let store = TokenStore::new(vec![grant(
        "old",
        "old-token",
        Some(wsauth::auth::unix_now() - 1),
    )]);
    let server = Server::start("127.0.0.1:0", Config::default(), store).unwrap();
    let answer = upgrade(server.local_addr(), "/ws", &[&bearer("old-token")]);
    assert_eq!(status(&answer), 401);
    assert!(answer.contains("invalid_token"));
}

#[test]
fn own_origin_is_allowed_ignoring_case_and_scheme() {
    let server = start(Config::default());
    let addr = server.local_addr();
    for origin in [format!("http://{addr}"), format!("HTTPS://{addr}")] {
        let answer = upgrade(addr, "/ws", &[&bearer(ALICE), &format!("Origin: {origin}")]);
        assert_eq!(status(&answer), 101, "{origin}");
    }
}

#[test]
fn foreign_origin_gets_403_even_with_a_valid_token() {
    let server = start(Config::default());
    let addr = server.local_addr();
    for origin in [
        "http://evil.example",
        "null",
        &format!("http://{addr}.evil"),
    ] {
        let answer = upgrade(addr, "/ws", &[&bearer(ALICE), &format!("Origin: {origin}")]);
        assert_eq!(status(&answer), 403, "{origin}");
        assert_eq!(
            header(&answer, "content-length"),
            Some(body(&answer).len().to_string().as_str())
        );
    }
}

#[test]
fn allowed_origins_must_match_exactly_and_star_allows_all() {
    let mut config = Config::default();
    config.allowed_origins = vec!["http://app.example".into()];
    let server = start(config);
    let addr = server.local_addr();
    assert_eq!(
        status(&upgrade(
            addr,
            "/ws",
            &[&bearer(ALICE), "Origin: http://app.example"]
        )),
        101
    );
    assert_eq!(
        status(&upgrade(
            addr,
            "/ws",
            &[&bearer(ALICE), "Origin: http://APP.example"]
        )),
        403
    );

    let mut config = Config::default();
    config.allowed_origins = vec!["*".into()];
    let server = start(config);
    let addr = server.local_addr();
    assert_eq!(
        status(&upgrade(addr, "/ws", &[&bearer(ALICE), "Origin: null"])),
        101
    );
}

#[test]
fn origin_is_checked_before_the_token() {
    let server = start(Config::default());
    let answer = upgrade(server.local_addr(), "/ws", &["Origin: http://evil.example"]);
    assert_eq!(status(&answer), 403);
}

#[test]
fn too_many_failures_get_429_with_retry_after_whatever_the_token() {
    let mut config = Config::default();
    config.max_auth_failures = 3;
    let server = start(config);
    let addr = server.local_addr();
    assert_eq!(status(&upgrade(addr, "/ws", &[])), 401);
    assert_eq!(status(&upgrade(addr, "/ws", &[&bearer("wrong")])), 401);
    // A 403 is not a failed authentication.
    assert_eq!(
        status(&upgrade(
            addr,
            "/ws",
            &[&bearer("wrong"), "Origin: http://evil.example"]
        )),
        403
    );
    assert_eq!(status(&upgrade(addr, "/ws?token=wrong", &[])), 401);
    let answer = upgrade(addr, "/ws", &[&bearer(ALICE)]);
    assert_eq!(status(&answer), 429, "{answer}");
    let retry: u64 = header(&answer, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // 429 comes before 403.
    assert_eq!(
        status(&upgrade(
            addr,
            "/ws",
            &[&bearer(ALICE), "Origin: http://evil.example"]
        )),
        429
    );
}

#[test]
fn zero_max_auth_failures_disables_the_throttle() {
    let mut config = Config::default();
    config.max_auth_failures = 0;
    let server = start(config);
    let addr = server.local_addr();
    for _ in 0..30 {
        assert_eq!(status(&upgrade(addr, "/ws", &[&bearer("wrong")])), 401);
    }
    assert_eq!(status(&upgrade(addr, "/ws", &[&bearer(ALICE)])), 101);
}

struct EvenLengthTokens;

impl Authenticator for EvenLengthTokens {
    fn authenticate(&self, token: &str) -> Option<Identity> {
        token.len().is_multiple_of(2).then(|| Identity {
            user: format!("len{}", token.len()),
            expires: None,
        })
    }
}

#[test]
fn an_embedding_program_can_supply_its_own_authenticator() {
    let server = Server::start("127.0.0.1:0", Config::default(), EvenLengthTokens).unwrap();
    let addr = server.local_addr();
    let (mut ws, _) = connect(addr, "/ws?token=abcd", &[]).unwrap();
    assert_eq!(next_text(&mut ws), "Hello len4");
    assert_eq!(refused_status(connect(addr, "/ws?token=abc", &[])), 401);
}

struct PanicsOnBoom;

impl Authenticator for PanicsOnBoom {
    fn authenticate(&self, token: &str) -> Option<Identity> {
        assert_ne!(token, "boom", "the authenticator blew up");
        Some(Identity {
            user: "anyone".into(),
            expires: None,
        })
    }
}

#[test]
fn a_panic_in_one_connection_does_not_take_the_server_down() {
    let server = Server::start("127.0.0.1:0", Config::default(), PanicsOnBoom).unwrap();
    let addr = server.local_addr();
    let answer = upgrade(addr, "/ws?token=boom", &[]);
    assert_eq!(
        status(&answer),
        0,
        "no answer, the connection just ends: {answer}"
    );
    let (mut ws, _) = connect(addr, "/ws?token=fine", &[]).unwrap();
    assert_eq!(next_text(&mut ws), "Hello anyone");
    // The panicked connection gave its place back (its thread may still be unwinding).
    let deadline = std::time::Instant::now() + PATIENCE;
    while server.open_connections() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} open",
            server.open_connections()
        );
        std::thread::yield_now();
    }
}
