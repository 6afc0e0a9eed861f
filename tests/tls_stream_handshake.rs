//! The TLS layer on its own: the handshake and its deadline, the versions
//! served, and sniffing the first bytes of a connection.
#![cfg(feature = "tls")]

mod common;

use common::PATIENCE;
use common::tls::{client_config, tls11_client_hello};
use common::tls_stream::*;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};
use wsauth::tls::{FirstBytes, TlsStream, sniff};

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

/// Connects, sends `bytes`, and sniffs the server's end.
fn sniffed(bytes: &[u8], deadline: Duration) -> (io::Result<FirstBytes>, TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.write_all(bytes).unwrap();
    let (server, _) = listener.accept().unwrap();
    let kind = sniff(&server, Instant::now() + deadline);
    (kind, client, server)
}

#[test]
fn sniff_tells_tls_plain_http_and_junk_apart() {
    let (_settings, _pair, der) = settings();
    let hello = client_hello(&der);
    assert_eq!(sniffed(&hello, PATIENCE).0.unwrap(), FirstBytes::Tls);
    let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(sniffed(http, PATIENCE).0.unwrap(), FirstBytes::PlainHttp);
    assert_eq!(sniffed(b"\x00junk", PATIENCE).0.unwrap(), FirstBytes::Other);
    assert_eq!(
        sniffed(b"SSH-2.0-x\r\n", PATIENCE).0.unwrap(),
        FirstBytes::Other
    );
}

#[test]
fn a_plain_http_request_gets_the_refusal() {
    let (kind, mut client, server) = sniffed(b"GET / HTTP/1.1\r\n\r\n", PATIENCE);
    assert_eq!(kind.unwrap(), FirstBytes::PlainHttp);
    let refusal = wsauth::tls::plain_http_refusal();
    wsauth::tls::write_all_before(&server, refusal, soon()).unwrap();
    // Read the request, so closing sends a FIN, not a reset that could eat the answer.
    let _ = (&server).read(&mut [0u8; 64]).unwrap();
    drop(server);
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("https://"), "{answer}");
}

#[test]
fn sniff_consumes_nothing_so_the_handshake_follows() {
    let (settings, _pair, der) = settings();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = settings.current();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept()?;
        assert_eq!(sniff(&tcp, soon())?, FirstBytes::Tls);
        TlsStream::accept(tcp, config, soon())
    });
    let mut client = connect(addr, client_config(&[&rustls::version::TLS13], &der));
    let server = server.join().unwrap().unwrap();
    client.write_all(b"after sniff").unwrap();
    assert_eq!(read_exactly(&server, 11), b"after sniff");
}

#[test]
fn sniff_waits_for_the_bytes_that_decide() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.write_all(b"GE").unwrap();
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        client.write_all(b"T / HTTP/1.1\r\n").unwrap();
        client
    });
    let started = Instant::now();
    assert_eq!(sniff(&server, soon()).unwrap(), FirstBytes::PlainHttp);
    assert!(started.elapsed() >= Duration::from_millis(150));
    drop(sender.join());
}

#[test]
fn sniff_gives_up_at_the_deadline_or_the_close() {
    let (kind, _client, _server) = sniffed(b"GE", Duration::from_millis(200));
    assert_eq!(kind.unwrap_err().kind(), io::ErrorKind::TimedOut);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.write_all(b"\x16").unwrap();
    drop(client);
    let (server, _) = listener.accept().unwrap();
    let e = sniff(&server, soon()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
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
