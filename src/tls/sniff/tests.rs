//! The first bytes told apart: by `classify` alone, and by `sniff` on
//! real sockets, the handshake following a sniff untouched.

use super::*;
use crate::socket::write_all_before;
use crate::tls::{TlsSettings, TlsStream};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

const PATIENCE: Duration = Duration::from_secs(10);

fn soon() -> Instant {
    Instant::now() + PATIENCE
}

/// A client configuration for TLS 1.3 trusting `root` (or nothing).
fn client_config(root: Option<&CertificateDer<'static>>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    if let Some(root) = root {
        roots.add(root.clone()).expect("a root");
    }
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("a name")
}

/// The bytes a real client opens with: its ClientHello record.
fn client_hello() -> Vec<u8> {
    let mut conn = ClientConnection::new(client_config(None), localhost()).expect("a client");
    let mut out = Vec::new();
    conn.write_tls(&mut out).expect("a hello");
    out
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
    assert_eq!(
        sniffed(&client_hello(), PATIENCE).0.unwrap(),
        FirstBytes::Tls
    );
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
    write_all_before(&server, plain_http_refusal(), soon()).unwrap();
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
    let dir = std::env::temp_dir().join(format!("wsauth-sniff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let settings = TlsSettings::load(&cert, &key).expect("the pair loads");
    let _ = std::fs::remove_dir_all(&dir);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = settings.current();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept()?;
        assert_eq!(sniff(&tcp, soon())?, FirstBytes::Tls);
        TlsStream::accept(tcp, config, soon())
    });
    let conn = ClientConnection::new(client_config(Some(made.cert.der())), localhost()).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut client = StreamOwned::new(conn, tcp);
    while client.conn.is_handshaking() {
        client.conn.complete_io(&mut client.sock).unwrap();
    }
    let server = server.join().unwrap().unwrap();
    client.write_all(b"after sniff").unwrap();
    let mut got = [0u8; 11];
    let mut have = 0;
    while have < got.len() {
        let n = server.read(&mut got[have..]).unwrap();
        assert!(n > 0, "closed after {have} bytes");
        have += n;
    }
    assert_eq!(&got, b"after sniff");
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

#[test]
fn a_tls_record_is_told_by_two_bytes() {
    assert_eq!(classify(&[0x16]), None);
    assert_eq!(classify(&[0x16, 0x03]), Some(FirstBytes::Tls));
    assert_eq!(classify(&[0x16, 0x02]), Some(FirstBytes::Other));
}

#[test]
fn a_method_and_a_space_is_plain_http() {
    assert_eq!(classify(b"G"), None);
    assert_eq!(classify(b"GET"), None);
    assert_eq!(classify(b"GET "), Some(FirstBytes::PlainHttp));
    assert_eq!(classify(b"OPTIONS /"), Some(FirstBytes::PlainHttp));
    assert_eq!(classify(b"GET/"), Some(FirstBytes::Other));
}

#[test]
fn junk_is_told_by_its_first_byte() {
    assert_eq!(classify(b"\x00"), Some(FirstBytes::Other));
    assert_eq!(classify(b" GET"), Some(FirstBytes::Other));
    assert_eq!(classify(&[0x80]), Some(FirstBytes::Other));
}

#[test]
fn a_method_name_too_long_is_not_http() {
    let long = [b'A'; MAX_METHOD_LEN + 1];
    assert_eq!(classify(&long), Some(FirstBytes::Other));
    assert_eq!(classify(&long[..MAX_METHOD_LEN]), None);
}

#[test]
fn the_refusal_has_a_correct_content_length() {
    let text = std::str::from_utf8(plain_http_refusal()).expect("the refusal is text");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
    assert!(body.contains("https://"));
}
