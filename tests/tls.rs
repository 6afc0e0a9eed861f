//! https and wss end to end: every HTTP answer and every session rule holds
//! over TLS; TLS versions; what is not TLS on the TLS port; the one deadline
//! for the TLS handshake and the head; the connection limit.
#![cfg(feature = "tls")]

mod common;

use common::tls::*;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsauth::auth::unix_now;
use wsauth::{Config, Server, TokenStore};

fn next_wss_text(ws: &mut WssClient) -> String {
    loop {
        match ws.read().expect("a message") {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

fn expect_wss_close(ws: &mut WssClient) -> (u16, String) {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => {
                return (frame.code.into(), frame.reason.to_string());
            }
            Ok(Message::Close(None)) => return (1005, String::new()),
            Ok(_) => continue,
            Err(e) => panic!("expected a close frame, got error {e}"),
        }
    }
}

/// Alice over wss with the Authorization header, greeting read.
fn wss_alice(server: &Server, pair: &Pair) -> WssClient {
    let bearer = format!("Bearer {ALICE}");
    let (mut ws, _) = wss_connect(
        server.local_addr(),
        &pair.der,
        "/ws",
        &[("Authorization", &bearer)],
    )
    .expect("alice connects over wss");
    assert_eq!(next_wss_text(&mut ws), "Hello alice");
    ws
}

fn echo(ws: &mut WssClient, text: &str) {
    ws.send(Message::text(text)).unwrap();
    assert_eq!(next_wss_text(ws), format!("Message text was: {text}"));
}

fn refused(result: WssConnected) -> String {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            let mut text = format!("{}\r\n", response.status().as_u16());
            for (name, value) in response.headers() {
                text.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
            }
            text + "\r\n" + &String::from_utf8_lossy(&body)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, got a session"),
    }
}

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
    echo(&mut header, "by header");
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
    assert_eq!(next_wss_text(&mut by_subprotocol), "Hello bob");
    let (mut by_query, _) =
        wss_connect(addr, &pair.der, &format!("/ws?token={ALICE}"), &[]).unwrap();
    assert_eq!(next_wss_text(&mut by_query), "Hello alice");
    echo(&mut by_query, "by query");

    let mut config = Config::default();
    config.first_message_auth = true;
    let first = start_tls(config, &pair);
    let (mut by_message, _) = wss_connect(first.local_addr(), &pair.der, "/ws", &[]).unwrap();
    by_message.send(Message::text(BOB)).unwrap();
    assert_eq!(next_wss_text(&mut by_message), "Hello bob");
    echo(&mut by_message, "by first message");
}

#[test]
fn refusals_are_https_answers_with_their_headers() {
    let pair = Pair::new();
    let mut config = Config::default();
    config.max_auth_failures = 2;
    let server = start_tls(config, &pair);
    let addr = server.local_addr();
    let missing = refused(wss_connect(addr, &pair.der, "/ws", &[]));
    assert!(missing.starts_with("401"), "{missing}");
    assert!(
        missing.contains(r#"www-authenticate: Bearer realm="wsauth""#),
        "{missing}"
    );
    let origin = refused(wss_connect(
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
    assert_eq!(next_wss_text(&mut same_origin), "Hello alice");
    let wrong = refused(wss_connect(addr, &pair.der, "/ws?token=wrong-token", &[]));
    assert!(wrong.starts_with("401"), "{wrong}");
    assert!(wrong.contains(r#"error="invalid_token""#), "{wrong}");
    assert!(!wrong.contains("wrong-token"), "{wrong}");
    let throttled = refused(wss_connect(
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
    assert_eq!(next_wss_text(&mut erin), "Hello erin");
    assert_eq!(expect_wss_close(&mut erin), (1008, "token expired".into()));
    assert_eq!(next_wss_text(&mut bob), "Hello bob");
    std::fs::write(&file, "carol:carol-token\n").unwrap();
    server.reload();
    assert_eq!(expect_wss_close(&mut bob), (1008, "token revoked".into()));
    assert_eq!(next_wss_text(&mut carol), "Hello carol");
    echo(&mut carol, "still here");
    let stopping = std::thread::spawn(move || server.stop());
    assert_eq!(
        expect_wss_close(&mut carol),
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
    let mut config = Config::default();
    config.greeting = String::new();
    let server = start_tls(config, &pair);
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
        let text = next_wss_text(&mut alice);
        if text == format!("push {pushes}") {
            pushes += 1;
        } else {
            assert_eq!(text, format!("Message text was: echo {echoes}"));
            echoes += 1;
        }
    }
    let handle = pusher.join().unwrap();
    assert_eq!(sessions.broadcast("to all"), 1);
    assert_eq!(next_wss_text(&mut alice), "to all");
    handle.close(4000, "bye").unwrap();
    assert_eq!(expect_wss_close(&mut alice), (4000, "bye".into()));
}

#[test]
fn tls_13_and_12_are_served_and_11_is_refused() {
    let pair = Pair::new();
    let server = start_tls(Config::default(), &pair);
    let addr = server.local_addr();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut client = try_tls_connect(addr, &pair.der, &[version]).unwrap();
        assert_eq!(client.conn.protocol_version(), Some(version.version));
        client
            .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .unwrap();
        assert_eq!(body(&read_to_close(&mut client)), "ok\n");
    }
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    tcp.write_all(&tls11_client_hello()).unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    // An alert record (protocol_version, 70), no ServerHello, then the close.
    assert_eq!(answer.first(), Some(&0x15), "got {answer:02x?}");
    assert_eq!(answer.last(), Some(&70), "got {answer:02x?}");
}

/// A ClientHello that offers TLS 1.1 only, otherwise acceptable.
fn tls11_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02];
    hello.extend([0x42; 32]);
    hello.push(0);
    hello.extend([0x00, 0x06, 0xc0, 0x2b, 0xc0, 0x09, 0xc0, 0x13]);
    hello.extend([0x01, 0x00]);
    let extensions = [
        &[0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04][..],
        &[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x1d],
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00],
    ]
    .concat();
    hello.extend([0x00, extensions.len() as u8]);
    hello.extend(extensions);
    let mut handshake = vec![0x01, 0x00, 0x00, hello.len() as u8];
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8];
    record.extend(handshake);
    record
}

#[test]
fn plain_http_gets_the_400_and_junk_is_closed_at_once_while_a_session_goes_on() {
    let pair = Pair::new();
    let mut config = Config::default();
    config.handshake_timeout = Duration::from_secs(60);
    let server = start_tls(config, &pair);
    let addr = server.local_addr();
    let mut alice = wss_alice(&server, &pair);
    let plain = get(addr, "/", &[]);
    assert_eq!(status(&plain), 400, "{plain}");
    assert!(body(&plain).contains("https://"), "{plain}");
    assert_well_framed(&plain);
    echo(&mut alice, "after plain http");
    for junk in [
        &b"\x00\x01\x02"[..],
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\x16\x02\x00",
    ] {
        let began = Instant::now();
        let answer = raw(addr, junk);
        assert_eq!(answer, "", "junk {junk:?} got an answer");
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{:?}",
            began.elapsed()
        );
        echo(&mut alice, "after junk");
    }
}

#[test]
fn a_stalled_tls_handshake_is_dropped_on_time_without_holding_up_others() {
    let pair = Pair::new();
    let mut config = Config::default();
    config.handshake_timeout = Duration::from_secs(2);
    let server = start_tls(config, &pair);
    let addr = server.local_addr();
    // Half a ClientHello, then nothing.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.set_read_timeout(Some(PATIENCE)).unwrap();
    let began = Instant::now();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00])
        .unwrap();
    // Meanwhile others are served at once.
    let health = https_get(addr, &pair.der, "/healthz", &[]);
    assert_eq!(body(&health), "ok\n");
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    let mut sink = [0u8; 64];
    let n = stalled.read(&mut sink).unwrap_or(0);
    let took = began.elapsed();
    assert_eq!(n, 0, "the stalled client got bytes");
    assert!(
        took >= Duration::from_millis(1900),
        "closed early, after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "closed late, after {took:?}");
}

#[test]
fn the_deadline_covers_the_tls_handshake_and_the_head_together() {
    let pair = Pair::new();
    let mut config = Config::default();
    config.handshake_timeout = Duration::from_secs(2);
    let server = start_tls(config, &pair);
    let began = Instant::now();
    let mut client = tls_connect(server.local_addr(), &pair.der);
    client.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    // The head never ends: the close (no answer, no close_notify) comes at the one deadline.
    let mut buf = [0u8; 64];
    match client.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        other => panic!("expected the close, got {other:?}"),
    }
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "closed early, after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "closed late, after {took:?}");
}

#[test]
fn a_full_tls_server_closes_new_connections_without_a_plain_503() {
    let pair = Pair::new();
    let mut config = Config::default();
    config.max_connections = 1;
    let server = start_tls(config, &pair);
    let addr = server.local_addr();
    let mut alice = wss_alice(&server, &pair);
    assert_eq!(server.open_connections(), 1);
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    assert!(got.is_empty(), "got {:?}", String::from_utf8_lossy(&got));
    assert!(try_tls_connect(addr, &pair.der, BOTH).is_err());
    echo(&mut alice, "still served");
    alice.close(None).unwrap();
    while alice.read().is_ok() {}
    assert!(eventually(PATIENCE, || server.open_connections() == 0));
    assert_eq!(body(&https_get(addr, &pair.der, "/healthz", &[])), "ok\n");
}

#[test]
fn a_large_message_and_a_1009_close_over_tls() {
    let pair = Pair::new();
    let mut config = Config::default();
    config.max_message_bytes = 200 * 1024;
    let server = start_tls(config, &pair);
    let mut alice = wss_alice(&server, &pair);
    let big = vec![7u8; 150 * 1024];
    alice.send(Message::binary(big.clone())).unwrap();
    assert_eq!(alice.read().unwrap(), Message::binary(big));
    alice.send(Message::binary(vec![1u8; 201 * 1024])).unwrap();
    assert_eq!(expect_wss_close(&mut alice).0, 1009);
}

/// Sets `SO_LINGER` to zero, so that closing sends a reset.
fn reset_on_close(tcp: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid descriptor and a linger struct of the size given.
    let done = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(done, 0);
}

#[test]
fn close_notify_a_reset_and_a_forged_record_each_end_a_session_like_a_closed_socket() {
    let pair = Pair::new();
    let server = start_tls(Config::default(), &pair);
    let endings: [fn(&mut TlsClient); 3] = [
        |tls| {
            tls.conn.send_close_notify();
            tls.conn.write_tls(&mut tls.sock).unwrap();
        },
        |tls| reset_on_close(&tls.sock),
        |tls| {
            tls.sock
                .write_all(&[0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5])
                .unwrap()
        },
    ];
    for end in endings {
        let mut alice = wss_alice(&server, &pair);
        echo(&mut alice, "before the end");
        assert!(eventually(PATIENCE, || server.live_sessions() == 1));
        end(alice.get_mut());
        drop(alice);
        assert!(eventually(PATIENCE, || server.live_sessions() == 0));
        assert!(eventually(PATIENCE, || server.open_connections() == 0));
    }
    // And the server serves on.
    let mut bob = wss_alice(&server, &pair);
    echo(&mut bob, "after");
}
