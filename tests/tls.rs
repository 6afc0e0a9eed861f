//! https and wss end to end: every HTTP answer and every session rule holds
//! over TLS (`tests/tls_limits.rs` has the TLS port's own limits).
#![cfg(feature = "tls")]

mod common;

use common::tls::*;
use common::*;
use tungstenite::Message;
use wsauth::auth::unix_now;
use wsauth::{Config, Server, TokenStore};

#[test]
fn the_page_health_check_and_plain_answers_go_over_https() {
    let pair = Pair::new();
    let server = start_tls(Config::default(), &pair);
    let addr = server.local_addr();
    let page = https_get(addr, &pair.der, "/", &[]);
    assert_eq!(status(&page), 200, "{page}");
    assert_eq!(
        header(&page, "Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_well_framed(&page);
    let health = https_get(addr, &pair.der, "/healthz", &[]);
    assert_eq!((status(&health), body(&health)), (200, "ok\n"));
    assert_eq!(status(&https_get(addr, &pair.der, "/nowhere", &[])), 404);
    let plain_ws = https_get(addr, &pair.der, "/ws", &[]);
    assert_eq!(status(&plain_ws), 426);
    assert_eq!(header(&plain_ws, "Upgrade"), Some("websocket"));
    let head = https_raw(
        addr,
        &pair.der,
        "GET / HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n",
    );
    assert_eq!(status(&head), 400);
    let too_large = String::from_utf8(head_of_len(8193, true)).unwrap();
    assert_eq!(status(&https_raw(addr, &pair.der, &too_large)), 431);
}

#[test]
fn every_token_source_opens_a_session_over_wss() {
    let pair = Pair::new();
    let server = start_tls(Config::default(), &pair);
    let addr = server.local_addr();
    let mut header = wss_alice(&server, &pair);
    wss_echo(&mut header, "by header");
    let offer = format!("chat, bearer.{BOB}");
    let (mut by_subprotocol, response) = wss_connect(
        addr,
        &pair.der,
        "/ws",
        &[("Sec-WebSocket-Protocol", &offer)],
    )
    .unwrap();
    assert_eq!(
        response.headers().get("Sec-WebSocket-Protocol").unwrap(),
        "chat"
    );
    assert_eq!(next_text(&mut by_subprotocol), "Hello bob");
    let (mut by_query, _) =
        wss_connect(addr, &pair.der, &format!("/ws?token={ALICE}"), &[]).unwrap();
    assert_eq!(next_text(&mut by_query), "Hello alice");
    wss_echo(&mut by_query, "by query");

    let mut config = Config::default();
    config.first_message_auth = true;
    let first = start_tls(config, &pair);
    let (mut by_message, _) = wss_connect(first.local_addr(), &pair.der, "/ws", &[]).unwrap();
    by_message.send(Message::text(BOB)).unwrap();
    assert_eq!(next_text(&mut by_message), "Hello bob");
    wss_echo(&mut by_message, "by first message");
}

#[test]
fn refusals_are_https_answers_with_their_headers() {
    let pair = Pair::new();
    let mut config = Config::default();
    config.max_auth_failures = 2;
    let server = start_tls(config, &pair);
    let addr = server.local_addr();
    let missing = refused_https(wss_connect(addr, &pair.der, "/ws", &[]));
    assert!(missing.starts_with("401"), "{missing}");
    assert!(
        missing.contains(r#"www-authenticate: Bearer realm="wsauth""#),
        "{missing}"
    );
    let origin = refused_https(wss_connect(
        addr,
        &pair.der,
        &format!("/ws?token={ALICE}"),
        &[("Origin", "https://elsewhere.example")],
    ));
    assert!(origin.starts_with("403"), "{origin}");
    let own = format!("https://{addr}");
    let (mut same_origin, _) = wss_connect(
        addr,
        &pair.der,
        &format!("/ws?token={ALICE}"),
        &[("Origin", &own)],
    )
    .expect("the server's own https origin is allowed");
    assert_eq!(next_text(&mut same_origin), "Hello alice");
    let wrong = refused_https(wss_connect(addr, &pair.der, "/ws?token=wrong-token", &[]));
    assert!(wrong.starts_with("401"), "{wrong}");
    assert!(wrong.contains(r#"error="invalid_token""#), "{wrong}");
    assert!(!wrong.contains("wrong-token"), "{wrong}");
    let throttled = refused_https(wss_connect(
        addr,
        &pair.der,
        &format!("/ws?token={ALICE}"),
        &[],
    ));
    assert!(throttled.starts_with("429"), "{throttled}");
    assert!(throttled.contains("retry-after: "), "{throttled}");
}

#[test]
fn expiry_revocation_and_shutdown_close_frames_arrive_whole_over_tls() {
    let pair = Pair::new();
    let expires = unix_now() + 2;
    let file = std::env::temp_dir().join(format!("wsauth-tls-{}.tokens", std::process::id()));
    std::fs::write(
        &file,
        format!("erin:erin-token:{expires}\nbob:bob-token\ncarol:carol-token\n"),
    )
    .unwrap();
    let mut config = Config::default();
    config.tls = Some(pair.settings());
    let store = TokenStore::new(Vec::new()).with_file(&file).unwrap();
    let server = Server::start("127.0.0.1:0", config, store).unwrap();
    let addr = server.local_addr();
    let open = |token: &str| {
        let (ws, _) = wss_connect(addr, &pair.der, &format!("/ws?token={token}"), &[]).unwrap();
        ws
    };
    let (mut erin, mut bob, mut carol) =
        (open("erin-token"), open("bob-token"), open("carol-token"));
    assert_eq!(next_text(&mut erin), "Hello erin");
    assert_eq!(expect_close(&mut erin), (1008, "token expired".into()));
    assert_eq!(next_text(&mut bob), "Hello bob");
    std::fs::write(&file, "carol:carol-token\n").unwrap();
    server.reload();
    assert_eq!(expect_close(&mut bob), (1008, "token revoked".into()));
    assert_eq!(next_text(&mut carol), "Hello carol");
    wss_echo(&mut carol, "still here");
    let stopping = std::thread::spawn(move || server.stop());
    assert_eq!(
        expect_close(&mut carol),
        (1001, "server shutting down".into())
    );
    // Then the TLS close_notify: a clean end, not a truncation.
    assert!(matches!(
        carol.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    stopping.join().unwrap();
    let _ = std::fs::remove_file(&file);
}

#[test]
fn pushes_from_other_threads_arrive_over_tls() {
    let pair = Pair::new();
    let server = start_tls_echo(Config::default(), &pair, "", wsauth::Echo::PREFIX);
    let bearer = format!("Bearer {ALICE}");
    let (mut alice, _) = wss_connect(
        server.local_addr(),
        &pair.der,
        "/ws",
        &[("Authorization", &bearer)],
    )
    .unwrap();
    let sessions = server.sessions();
    assert!(eventually(PATIENCE, || sessions.list().len() == 1));
    let handle = sessions.list().remove(0).handle;
    let pusher = std::thread::spawn(move || {
        for i in 0..50 {
            handle.send(format!("push {i}")).unwrap();
        }
        handle
    });
    for i in 0..50 {
        alice.send(Message::text(format!("echo {i}"))).unwrap();
    }
    let (mut pushes, mut echoes) = (0, 0);
    while pushes < 50 || echoes < 50 {
        let text = next_text(&mut alice);
        if text == format!("push {pushes}") {
            pushes += 1;
        } else {
            assert_eq!(text, format!("Message text was: echo {echoes}"));
            echoes += 1;
        }
    }
    let handle = pusher.join().unwrap();
    assert_eq!(sessions.broadcast("to all"), 1);
    assert_eq!(next_text(&mut alice), "to all");
    handle.close(4000, "bye").unwrap();
    assert_eq!(expect_close(&mut alice), (4000, "bye".into()));
}
