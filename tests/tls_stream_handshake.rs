//! The TLS layer on its own: the handshake and its deadline and the versions
//! served. (Sniffing the first bytes is tested in `src/tls/sniff/tests.rs`.)
#![cfg(feature = "tls")]

mod common;

use common::PATIENCE;
use common::tls::{client_config, tls11_client_hello};
use common::tls_stream::*;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn tls13_handshake_completes_with_alpn_http11() {
    let (mut client, server, _) = connected();
    assert_eq!(
        client.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(client.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    client.write_all(b"ping").unwrap();
    assert_eq!(read_exactly(&server, 4), b"ping");
    server.write_all(b"pong", soon()).unwrap();
    let mut buf = [0u8; 4];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
}

#[test]
fn tls12_handshake_completes() {
    let (settings, _pair, der) = settings();
    let (addr, server) = serve_one(&settings, PATIENCE);
    let mut client = connect(addr, client_config(&[&rustls::version::TLS12], &der));
    let server = server.join().unwrap().unwrap();
    assert_eq!(
        client.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    server.write_all(b"over 1.2", soon()).unwrap();
    let mut buf = [0u8; 8];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"over 1.2");
}

#[test]
fn tls11_client_is_refused_with_an_alert() {
    let (settings, _pair, _) = settings();
    let (addr, server) = serve_one(&settings, PATIENCE);
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    tcp.write_all(&tls11_client_hello()).unwrap();
    let refused = server.join().unwrap();
    let e = refused.expect_err("a TLS 1.1 handshake must fail");
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    // An alert record (protocol_version, 70) and no ServerHello, then the close.
    assert_eq!(answer.first(), Some(&0x15), "got {answer:02x?}");
    assert_eq!(answer.last(), Some(&70), "got {answer:02x?}");
}

#[test]
fn half_a_client_hello_is_dropped_at_the_deadline() {
    let (settings, _pair, der) = settings();
    let (addr, server) = serve_one(&settings, Duration::from_millis(300));
    let mut tcp = TcpStream::connect(addr).unwrap();
    let hello = client_hello(&der);
    let started = Instant::now();
    tcp.write_all(&hello[..hello.len() / 2]).unwrap();
    let e = server
        .join()
        .unwrap()
        .expect_err("a stalled handshake must fail");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// One `openssl s_client` run against a server that accepts one connection:
/// whether the handshake succeeded (and the line it sent arrived).
fn openssl_client_gets_through(version_flag: &str) -> Option<bool> {
    use std::process::{Command, Stdio};
    let (settings, _pair, _) = settings();
    let (addr, server) = serve_one(&settings, PATIENCE);
    let addr = addr.to_string();
    let args = [
        "s_client",
        "-connect",
        &addr,
        version_flag,
        "-cipher",
        "DEFAULT@SECLEVEL=0",
        "-servername",
        "localhost",
    ];
    let spawned = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = spawned else {
        return None;
    };
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(b"hello\n");
    let through = match server.join().unwrap() {
        Ok(stream) => {
            assert_eq!(read_exactly(&stream, 6), b"hello\n");
            true
        }
        Err(e) => {
            // Refused on what it offered, not merely closed: the hello arrived.
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{version_flag}: {e}");
            false
        }
    };
    drop(stdin);
    let _ = child.wait();
    Some(through)
}

#[test]
fn openssl_clients_get_through_with_tls13_and_tls12_but_not_tls11() {
    let Some(tls13) = openssl_client_gets_through("-tls1_3") else {
        eprintln!("openssl not installed: interoperability not tried");
        return;
    };
    assert!(tls13, "TLS 1.3");
    assert_eq!(
        openssl_client_gets_through("-tls1_2"),
        Some(true),
        "TLS 1.2"
    );
    assert_eq!(
        openssl_client_gets_through("-tls1_1"),
        Some(false),
        "TLS 1.1"
    );
}
