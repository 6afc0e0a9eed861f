//! The TLS port's own limits, end to end: the TLS versions served; what is
//! not TLS on the TLS port; the one deadline for the TLS handshake and the
//! head; the connection limit; large messages and the ways a session ends.
#![cfg(feature = "tls")]

mod common;

use common::tls::*;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsauth::Config;

#[test]
fn tls_13_and_12_are_served_and_11_is_refused_https() {
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
    wss_echo(&mut alice, "after plain http");
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
        wss_echo(&mut alice, "after junk");
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
fn a_request_record_trickled_after_the_tls_handshake_is_cut_at_the_deadline() {
    let pair = Pair::new();
    let mut config = Config::default();
    config.handshake_timeout = Duration::from_secs(2);
    let server = start_tls(config, &pair);
    let began = Instant::now();
    let mut client = tls_connect(server.local_addr(), &pair.der);
    client
        .conn
        .writer()
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut record = Vec::new();
    client.conn.write_tls(&mut record).unwrap();
    // One byte every 200 ms: the record alone would take seconds past the deadline.
    for byte in record {
        if client.sock.write_all(&[byte]).is_err() || began.elapsed() > 3 * PATIENCE {
            break;
        }
        client
            .sock
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match client.sock.read(&mut [0u8; 64]) {
            Ok(0) => break,
            // Session tickets, sent after the handshake: not an answer.
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(_) => {}
        }
    }
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "closed early: {took:?}"
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
    wss_echo(&mut alice, "still served");
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
    assert_eq!(expect_close(&mut alice).0, 1009);
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
        wss_echo(&mut alice, "before the end");
        assert!(eventually(PATIENCE, || server.live_sessions() == 1));
        end(alice.get_mut());
        drop(alice);
        assert!(eventually(PATIENCE, || server.live_sessions() == 0));
        assert!(eventually(PATIENCE, || server.open_connections() == 0));
    }
    // And the server serves on.
    let mut bob = wss_alice(&server, &pair);
    wss_echo(&mut bob, "after");
}
