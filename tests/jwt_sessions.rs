//! Sessions opened with JWTs: they end with the token (expiry, a changed key
//! file), and every token source and the throttle work with JWTs too.
#![cfg(feature = "jwt")]

mod common;

use common::jwt::*;
use common::process::TempFile;
use common::*;
use jsonwebtoken::Algorithm;
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tungstenite::Message;
use wsauth::auth::unix_now;
use wsauth::{Authenticator, Chain, Config, JwtKeys, Server, TokenStore};

fn server_with(keys: JwtKeys) -> Server {
    let chain = Chain::new()
        .with(keys)
        .with(TokenStore::new(vec![grant("bob", BOB, None)]));
    Server::start("127.0.0.1:0", Config::default(), chain).unwrap()
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn a_jwt_session_closes_with_1008_token_expired_within_a_second_of_exp_plus_leeway() {
    let leeway = 2;
    let server = server_with(with_secret().leeway(leeway));
    // Seconds enough to connect on a loaded machine, few enough for a quick test.
    let exp = unix_now() + 2;
    let token = hs256(json!({ "sub": "alice", "exp": exp }));
    let (mut ws, _) = connect_bearer(server.local_addr(), &token).expect("a session");
    assert_eq!(next_text(&mut ws), "Hello alice");
    assert_eq!(expect_close(&mut ws), (1008, "token expired".to_string()));
    let closed = now_secs();
    let last_valid = (exp + leeway) as f64;
    assert!(
        closed >= last_valid + 1.0 && closed < last_valid + 2.0,
        "closed at {closed}, exp + leeway = {last_valid}"
    );
    assert_eq!(
        refused_status(connect_bearer(server.local_addr(), &token)),
        401
    );
}

#[test]
fn a_changed_key_file_closes_sessions_whose_token_no_longer_verifies_within_2_seconds() {
    let file = TempFile::new("rotate.secret", &fixture_bytes("hs256.secret"));
    let keys = JwtKeys::new().with_secret_file(&file.0).unwrap();
    let server = server_with(keys);
    let addr = server.local_addr();
    let (mut alice, _) = connect_bearer(addr, &hs256(claims(json!({})))).unwrap();
    assert_eq!(next_text(&mut alice), "Hello alice");
    let mut bob = connect_bearer(addr, BOB).unwrap().0;
    assert_eq!(next_text(&mut bob), "Hello bob");

    let new_secret = b"a-rotated-secret-that-is-long-enough-for-hs256";
    file.rewrite(new_secret);
    let changed = Instant::now();
    assert_eq!(
        expect_close(&mut alice),
        (1008, "token revoked".to_string())
    );
    assert!(
        changed.elapsed() < Duration::from_secs(2),
        "{:?}",
        changed.elapsed()
    );

    // The static token's session goes on; tokens under the new key open sessions.
    bob.send(Message::text("still")).unwrap();
    assert_eq!(next_text(&mut bob), "Message text was: still");
    let fresh = mint(
        Algorithm::HS256,
        &hmac(new_secret),
        None,
        claims(json!({ "sub": "carol" })),
    );
    let (mut carol, _) = connect_bearer(addr, &fresh).unwrap();
    assert_eq!(next_text(&mut carol), "Hello carol");
}

#[test]
fn a_key_file_that_fails_to_parse_keeps_the_keys_in_force() {
    let file = TempFile::new("typo.secret", &fixture_bytes("hs256.secret"));
    let server = server_with(JwtKeys::new().with_secret_file(&file.0).unwrap());
    let token = hs256(claims(json!({})));
    let (mut alice, _) = connect_bearer(server.local_addr(), &token).unwrap();
    assert_eq!(next_text(&mut alice), "Hello alice");
    file.rewrite(b"too short");
    server.reload();
    alice.send(Message::text("still in")).unwrap();
    assert_eq!(next_text(&mut alice), "Message text was: still in");
    let (mut again, _) = connect_bearer(server.local_addr(), &token).unwrap();
    assert_eq!(next_text(&mut again), "Hello alice");
}

#[test]
fn an_invalid_jwt_gets_401_invalid_token() {
    let server = server_with(with_secret());
    let answer = raw_upgrade(
        server.local_addr(),
        &upgrade_request(
            server.local_addr(),
            "/ws",
            &[&format!("Authorization: Bearer {}", pyjwt("none"))],
        ),
    );
    assert_eq!(status(&answer), 401, "{answer}");
    assert_eq!(
        header(&answer, "WWW-Authenticate"),
        Some(r#"Bearer realm="wsauth", error="invalid_token""#)
    );
    for part in pyjwt("none").split('.').filter(|p| !p.is_empty()) {
        assert!(!answer.contains(part), "the answer shows part of the token");
    }
}

#[test]
fn jwts_work_from_the_subprotocol_and_the_query_too() {
    let server = server_with(with_secret());
    let token = pyjwt("hs256");
    let (mut ws, _) = connect(server.local_addr(), &format!("/ws?token={token}"), &[]).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    let (mut ws, _) = connect(
        server.local_addr(),
        "/ws",
        &[("Sec-WebSocket-Protocol", &format!("chat, bearer.{token}"))],
    )
    .unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
}

#[test]
fn a_jwt_works_as_the_first_message_too() {
    let mut config = Config::default();
    config.first_message_auth = true;
    let chain = Chain::new().with(with_secret());
    let server = Server::start("127.0.0.1:0", config, chain).unwrap();
    let (mut ws, _) = connect(server.local_addr(), "/ws", &[]).unwrap();
    ws.send(Message::text(pyjwt("hs256"))).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
}

#[test]
fn refused_jwts_count_as_failed_authentications() {
    let mut config = Config::default();
    config.max_auth_failures = 2;
    let chain = Chain::new().with(with_secret());
    let server = Server::start("127.0.0.1:0", config, chain).unwrap();
    let addr = server.local_addr();
    let expired = hs256(json!({ "sub": "alice", "exp": unix_now() - 3600 }));
    assert_eq!(refused_status(connect_bearer(addr, &expired)), 401);
    assert_eq!(refused_status(connect_bearer(addr, &pyjwt("none"))), 401);
    assert_eq!(refused_status(connect_bearer(addr, &pyjwt("hs256"))), 429);
}

#[test]
fn absurd_exp_and_leeway_values_are_clamped_rather_than_a_crash() {
    let keys = with_secret().leeway(u64::MAX);
    let identity = keys.authenticate(&hs256(json!({ "sub": "alice", "exp": u64::MAX })));
    let expires = identity.and_then(|i| i.expires).expect("a far expiry");
    assert!(expires > unix_now() + 1_000_000_000, "{expires}");
    let server = server_with(keys);
    let token = hs256(json!({ "sub": "alice", "exp": u64::MAX }));
    let (mut ws, _) = connect_bearer(server.local_addr(), &token).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    ws.send(Message::text("fine")).unwrap();
    assert_eq!(next_text(&mut ws), "Message text was: fine");
}
