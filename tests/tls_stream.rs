//! The TLS layer on its own: certificates, sniffing the first bytes, the
//! handshake and its deadline, and a stream read by one thread while others
//! write. Certificates are made here with rcgen (ECDSA P-256).
#![cfg(feature = "tls")]

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use wsauth::tls::{FirstBytes, TlsError, TlsSettings, TlsStream, sniff};

/// How long a test waits for anything before failing, generous for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(10);

type Client = StreamOwned<ClientConnection, TcpStream>;

/// A fresh folder holding `cert.pem` and `key.pem`.
struct Pair {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pair {
    fn new() -> (Pair, CertificateDer<'static>) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wsauth-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pair = Pair {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
        };
        let der = pair.rewrite();
        (pair, der)
    }

    /// Writes a new self-signed certificate for `localhost` and its key.
    fn rewrite(&self) -> CertificateDer<'static> {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(&self.cert, made.cert.pem()).unwrap();
        std::fs::write(&self.key, made.signing_key.serialize_pem()).unwrap();
        made.cert.der().clone()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn settings() -> (TlsSettings, Pair, CertificateDer<'static>) {
    let (pair, der) = Pair::new();
    let settings = TlsSettings::load(&pair.cert, &pair.key).expect("pair loads");
    (settings, pair, der)
}

fn soon() -> Instant {
    Instant::now() + PATIENCE
}

/// Accepts one connection and runs the TLS handshake on it.
fn serve_one(
    settings: &TlsSettings,
    deadline: Duration,
) -> (SocketAddr, JoinHandle<io::Result<TlsStream>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = settings.current();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept()?;
        TlsStream::accept(tcp, config, Instant::now() + deadline)
    });
    (addr, handle)
}

fn client_config(
    versions: &[&'static rustls::SupportedProtocolVersion],
    root: &CertificateDer<'static>,
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A client that has completed its handshake.
fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> Client {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config, name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut client = StreamOwned::new(conn, tcp);
    while client.conn.is_handshaking() {
        client.conn.complete_io(&mut client.sock).unwrap();
    }
    client
}

/// A client and the server's end of the same connection, TLS 1.3.
fn connected() -> (Client, TlsStream, CertificateDer<'static>) {
    let (settings, _pair, der) = settings();
    let (addr, server) = serve_one(&settings, PATIENCE);
    let client = connect(addr, client_config(&[&rustls::version::TLS13], &der));
    (client, server.join().unwrap().unwrap(), der)
}

/// The bytes a real client opens with: its ClientHello record.
fn client_hello(der: &CertificateDer<'static>) -> Vec<u8> {
    let config = client_config(&[&rustls::version::TLS13], der);
    let mut conn =
        ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

fn read_exactly(stream: &TlsStream, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = stream.read(&mut out[got..]).unwrap();
        assert!(n > 0, "closed after {got} of {len} bytes");
        got += n;
    }
    out
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

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

/// A ClientHello that offers TLS 1.1 only (no supported_versions extension),
/// otherwise acceptable: cipher suites, groups and signature schemes that
/// the server has.
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

#[test]
fn a_read_timeout_is_a_timeout_and_the_stream_stays_usable() {
    let (mut client, server, _) = connected();
    server
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let e = server.read(&mut [0u8; 16]).unwrap_err();
    assert!(is_timeout(&e), "got {e:?}");
    // Half a record, a timeout in the middle of it, then the rest.
    client.conn.writer().write_all(b"split record").unwrap();
    let mut record = Vec::new();
    client.conn.write_tls(&mut record).unwrap();
    let half = record.len() / 2;
    client.sock.write_all(&record[..half]).unwrap();
    let e = server.read(&mut [0u8; 16]).unwrap_err();
    assert!(is_timeout(&e), "got {e:?}");
    client.sock.write_all(&record[half..]).unwrap();
    assert_eq!(read_exactly(&server, 12), b"split record");
    server.write_all(b"still here", soon()).unwrap();
    let mut buf = [0u8; 10];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here");
}

#[test]
fn a_forged_record_fails_the_read_and_the_peer_gets_an_alert() {
    let (mut client, server, _) = connected();
    client.sock.write_all(b"\x17\x03\x03\x00\x20").unwrap();
    client.sock.write_all(&[0x55; 32]).unwrap();
    let e = server.read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    drop(server);
    let e = client.read(&mut [0u8; 16]).unwrap_err();
    assert!(e.to_string().contains("alert"), "{e}");
}

#[test]
fn a_200_kib_write_arrives_whole_from_one_call() {
    let (mut client, server, _) = connected();
    let big: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    let expected = big.clone();
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; expected.len()];
        client.read_exact(&mut got).unwrap();
        assert!(got == expected, "the bytes differ");
    });
    server.write_all(&big, soon()).unwrap();
    reader.join().unwrap();
}

/// One writer's message: `<writer>:<number>:` then a body of that writer's
/// letter, its length varying, then a newline.
fn message(writer: usize, number: usize) -> Vec<u8> {
    let mut out = format!("{writer}:{number}:").into_bytes();
    let len = (number * 997 + writer * 131) % 20_000;
    out.extend(std::iter::repeat_n(b'a' + writer as u8, len));
    out.push(b'\n');
    out
}

#[test]
fn writers_on_many_threads_never_interleave_while_the_owner_reads() {
    const WRITERS: usize = 4;
    const MESSAGES: usize = 60;
    let (mut client, server, _) = connected();
    let server = Arc::new(server);
    let owner = {
        let server = Arc::clone(&server);
        thread::spawn(move || read_exactly(&server, 3))
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                for m in 0..MESSAGES {
                    server.write_all(&message(w, m), soon()).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0usize; WRITERS];
    let mut lines = io::BufReader::new(&mut client);
    for _ in 0..WRITERS * MESSAGES {
        let mut line = Vec::new();
        io::BufRead::read_until(&mut lines, b'\n', &mut line).unwrap();
        let text = String::from_utf8(line).unwrap();
        let mut parts = text.splitn(3, ':');
        let w: usize = parts.next().unwrap().parse().unwrap();
        let m: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(m, next[w], "writer {w}'s messages out of order");
        assert_eq!(text.as_bytes(), message(w, m), "message {w}:{m} damaged");
        next[w] += 1;
    }
    for writer in writers {
        writer.join().unwrap();
    }
    drop(lines);
    client.write_all(b"bye").unwrap();
    assert_eq!(owner.join().unwrap(), b"bye");
}

#[test]
fn a_client_key_update_is_answered_and_pushes_follow_under_the_new_keys() {
    let (mut client, server, _) = connected();
    let server = Arc::new(server);
    let owner = {
        let server = Arc::clone(&server);
        thread::spawn(move || {
            let first = read_exactly(&server, 6);
            let second = read_exactly(&server, 5);
            (first, second)
        })
    };
    client.conn.refresh_traffic_keys().unwrap();
    client.write_all(b"update").unwrap();
    client.flush().unwrap();
    for i in 0..10 {
        let server = Arc::clone(&server);
        thread::spawn(move || server.write_all(format!("push{i}").as_bytes(), soon()))
            .join()
            .unwrap()
            .unwrap();
    }
    let mut buf = [0u8; 50];
    client.read_exact(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf).starts_with("push0push1"));
    client.conn.refresh_traffic_keys().unwrap();
    client.write_all(b"again").unwrap();
    assert_eq!(
        owner.join().unwrap(),
        (b"update".to_vec(), b"again".to_vec())
    );
    server.write_all(b"last", soon()).unwrap();
    let mut last = [0u8; 4];
    client.read_exact(&mut last).unwrap();
    assert_eq!(&last, b"last");
}

#[test]
fn close_notify_from_the_client_ends_reading() {
    let (mut client, server, _) = connected();
    client.write_all(b"end").unwrap();
    client.conn.send_close_notify();
    client.flush().unwrap();
    assert_eq!(read_exactly(&server, 3), b"end");
    assert_eq!(server.read(&mut [0u8; 8]).unwrap(), 0);
}

#[test]
fn a_tcp_close_without_close_notify_ends_reading_too() {
    let (client, server, _) = connected();
    client.sock.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(server.read(&mut [0u8; 8]).unwrap(), 0);
}

#[test]
fn a_read_shutdown_from_another_thread_wakes_the_reader() {
    let (_client, server, _) = connected();
    let server = Arc::new(server);
    let owner = {
        let server = Arc::clone(&server);
        thread::spawn(move || server.read(&mut [0u8; 8]))
    };
    thread::sleep(Duration::from_millis(100));
    server.tcp().shutdown(std::net::Shutdown::Read).unwrap();
    assert_eq!(owner.join().unwrap().unwrap(), 0);
}

#[test]
fn the_server_close_notify_reaches_the_client() {
    let (mut client, server, _) = connected();
    server.send_close_notify(soon()).unwrap();
    let mut rest = Vec::new();
    assert_eq!(client.read_to_end(&mut rest).unwrap(), 0);
}

#[test]
fn a_write_to_a_peer_that_never_reads_ends_at_its_deadline() {
    let (_client, server, _) = connected();
    let big = vec![7u8; 32 << 20];
    let started = Instant::now();
    let e = server
        .write_all(&big, Instant::now() + Duration::from_millis(300))
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_plain_write_ends_at_its_deadline_too() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let started = Instant::now();
    let e = wsauth::tls::write_all_before(
        &server,
        &vec![7u8; 32 << 20],
        Instant::now() + Duration::from_millis(300),
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Keeps every log line, so a test can count the errors about its own files.
struct Captured(Mutex<Vec<(log::Level, String)>>);

impl log::Log for Captured {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let line = record.args().to_string();
        self.0.lock().unwrap().push((record.level(), line));
    }
    fn flush(&self) {}
}

fn captured() -> &'static Captured {
    static LOGGER: OnceLock<&'static Captured> = OnceLock::new();
    LOGGER.get_or_init(|| {
        let logger: &'static Captured = Box::leak(Box::new(Captured(Mutex::new(Vec::new()))));
        log::set_logger(logger).unwrap();
        log::set_max_level(log::LevelFilter::Info);
        logger
    })
}

fn errors_naming(path: &std::path::Path) -> usize {
    let name = path.display().to_string();
    let lines = captured().0.lock().unwrap();
    lines
        .iter()
        .filter(|(level, line)| *level == log::Level::Error && line.contains(&name))
        .count()
}

/// The certificate a fresh client is shown.
fn served_certificate(
    settings: &TlsSettings,
    root: &CertificateDer<'static>,
) -> CertificateDer<'static> {
    let (addr, server) = serve_one(settings, PATIENCE);
    let client = connect(addr, client_config(&[&rustls::version::TLS13], root));
    let _ = server.join();
    client.conn.peer_certificates().unwrap()[0].clone()
}

/// Moves a file's modification time, as a rewrite a second later would.
fn touch(path: &std::path::Path, seconds_later: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    let time = std::time::SystemTime::now() + Duration::from_secs(seconds_later);
    file.set_modified(time).unwrap();
}

#[test]
fn a_rewritten_pair_is_served_to_new_connections_and_live_ones_go_on() {
    let (settings, pair, old) = settings();
    assert!(!settings.refresh(false), "nothing changed yet");
    let (mut live, live_server, _) = {
        let (addr, server) = serve_one(&settings, PATIENCE);
        let client = connect(addr, client_config(&[&rustls::version::TLS13], &old));
        (client, server.join().unwrap().unwrap(), ())
    };
    let new = pair.rewrite();
    touch(&pair.cert, 5);
    touch(&pair.key, 5);
    assert!(settings.refresh(false), "changed files are reloaded");
    assert!(!settings.refresh(false), "and only once");
    assert_eq!(served_certificate(&settings, &new), new);
    live_server.write_all(b"old cert", soon()).unwrap();
    let mut buf = [0u8; 8];
    live.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"old cert");
}

#[test]
fn a_broken_pair_keeps_the_old_one_and_logs_one_error() {
    let _ = captured();
    let (settings, pair, old) = settings();
    std::fs::write(&pair.cert, "not a certificate\n").unwrap();
    touch(&pair.cert, 5);
    assert!(!settings.refresh(false));
    assert!(
        !settings.refresh(false),
        "the same broken files are not retried"
    );
    assert_eq!(errors_naming(&pair.cert), 1);
    assert_eq!(served_certificate(&settings, &old), old);
    assert!(!settings.refresh(true), "still broken when forced");
    assert_eq!(errors_naming(&pair.cert), 2);
}

#[test]
fn load_errors_name_the_file_on_one_line() {
    let (pair, _) = Pair::new();
    let missing = pair.dir.join("missing.pem");
    let e = TlsSettings::load(&missing, &pair.key).unwrap_err();
    assert!(
        matches!(&e, TlsError::File { path, .. } if *path == missing),
        "{e}"
    );
    assert!(e.to_string().contains("missing.pem"), "{e}");
    let e = TlsSettings::load(&pair.key, &pair.key).unwrap_err();
    assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    let e = TlsSettings::load(&pair.cert, &pair.cert).unwrap_err();
    assert!(e.to_string().contains("no PRIVATE KEY"), "{e}");
    let (other, _) = Pair::new();
    let e = TlsSettings::load(&pair.cert, &other.key).unwrap_err();
    assert!(
        matches!(&e, TlsError::Pair { key, .. } if *key == other.key),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'), "{e}");
}

/// Runs `openssl` with `args` in `dir`; `false` when it is not installed.
fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    match std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => {
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
            true
        }
        Err(_) => false,
    }
}

#[test]
fn sec1_and_pkcs1_keys_load() {
    let (pair, _) = Pair::new();
    let dir = &pair.dir;
    if !openssl(dir, &["ec", "-in", "key.pem", "-out", "sec1.pem"]) {
        eprintln!("openssl not installed: SEC1 and PKCS#1 keys not tried");
        return;
    }
    let sec1 = std::fs::read_to_string(dir.join("sec1.pem")).unwrap();
    assert!(sec1.contains("BEGIN EC PRIVATE KEY"));
    TlsSettings::load(&pair.cert, &dir.join("sec1.pem")).expect("SEC1 key loads");
    let made = openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "rsa8.pem",
            "-out",
            "rsa.pem",
            "-subj",
            "/CN=localhost",
            "-days",
            "1",
        ],
    ) && openssl(
        dir,
        &["rsa", "-in", "rsa8.pem", "-traditional", "-out", "rsa1.pem"],
    );
    assert!(made);
    let pkcs1 = std::fs::read_to_string(dir.join("rsa1.pem")).unwrap();
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"));
    TlsSettings::load(&dir.join("rsa.pem"), &dir.join("rsa1.pem")).expect("PKCS#1 key loads");
}

/// What the session layer will hand tungstenite: reads from the owner,
/// writes that end by a deadline.
struct Wss(Arc<TlsStream>);

impl Read for Wss {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Wss {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf, soon())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn tungstenite_upgrades_and_echoes_over_tls() {
    let (settings, _pair, der) = settings();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = settings.current();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let tls = Arc::new(TlsStream::accept(tcp, config, soon()).unwrap());
        let mut ws = tungstenite::accept(Wss(tls)).unwrap();
        let message = ws.read().unwrap();
        ws.send(message).unwrap();
        let _ = ws.read();
    });
    let name = ServerName::try_from("localhost").unwrap();
    let conn =
        ClientConnection::new(client_config(&[&rustls::version::TLS13], &der), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let (mut ws, response) =
        tungstenite::client("wss://localhost/ws", StreamOwned::new(conn, tcp)).unwrap();
    assert_eq!(response.status(), 101);
    ws.send(tungstenite::Message::text("over wss")).unwrap();
    assert_eq!(ws.read().unwrap(), tungstenite::Message::text("over wss"));
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    server.join().unwrap();
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
