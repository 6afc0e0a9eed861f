//! Shared by the integration tests: start a server on port 0, talk to it raw
//! or through tungstenite's client.
#![allow(dead_code)]

pub mod bus;
pub mod deploy;
pub mod frames;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod outbox;
pub mod process;
pub mod proxies;
pub mod publish;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tls")]
pub mod tls_stream;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocket;
use tungstenite::{Message, http};
use wsauth::{Config, Grant, Server, TokenStore};

/// The token every test server accepts for `alice`.
pub const ALICE: &str = "alice-s3cret";
/// The token every test server accepts for `bob`.
pub const BOB: &str = "bob-hunter2";
/// How long a test waits for anything before failing, generous for a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn grant(user: &str, token: &str, expires: Option<u64>) -> Grant {
    Grant {
        user: user.into(),
        token: token.into(),
        expires,
    }
}

/// A server on 127.0.0.1:0 that knows alice and bob.
pub fn start(config: Config) -> Server {
    start_echo(config, wsauth::Echo::GREETING, wsauth::Echo::PREFIX)
}

/// Like [`start`], with the echo's greeting and prefix of a test's choice.
pub fn start_echo(config: Config, greeting: &str, prefix: &str) -> Server {
    let store = TokenStore::new(vec![grant("alice", ALICE, None), grant("bob", BOB, None)]);
    let echo = wsauth::Echo::each_session(greeting, prefix);
    Server::start_with_handler("127.0.0.1:0", config, store, echo).expect("server starts")
}

/// Like [`start`], with an echo that neither greets nor prefixes: what a
/// client reads is exactly what it or a push sent.
pub fn start_quiet(config: Config) -> Server {
    start_echo(config, "", "")
}

/// A server whose head timeout is far beyond any test's patience, so that an
/// answer that arrives was decided by something else.
pub fn patient_server() -> Server {
    let mut config = Config::default();
    config.handshake_timeout = Duration::from_secs(60);
    start(config)
}

/// Sends raw bytes, then reads the whole answer until the server closes.
pub fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request).unwrap();
    read_to_close(&mut stream)
}

/// Reads until the peer closes (or a reset, after which what arrived counts).
pub fn read_to_close(stream: &mut impl Read) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "reading the answer: {e} (got so far: {:?})",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A GET request for a path, with extra header lines.
pub fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> String {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    raw(addr, request.as_bytes())
}

/// A request for `path` with `method`, and nothing else but `Host`.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> String {
    raw(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
}

/// A `GET /healthz` head of exactly `len` bytes, padded in one header; without
/// its final blank line when `complete` is false.
pub fn head_of_len(len: usize, complete: bool) -> Vec<u8> {
    let start = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    let end = if complete { "\r\n\r\n" } else { "\r\n" };
    let pad = len - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
}

/// The raw upgrade request for `/ws` plus extra headers and query.
pub fn upgrade_request(addr: SocketAddr, target: &str, headers: &[&str]) -> String {
    let mut request = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request
}

/// The status code of a raw HTTP answer.
pub fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A header's value in a raw HTTP answer (name matched ignoring case).
pub fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The body of a raw HTTP answer.
pub fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

pub type Client = WebSocket<TcpStream>;

/// What connecting gives: a session and its 101, or tungstenite's error.
pub type Connected = Upgraded<TcpStream>;

/// What a client handshake over a stream of type `S` gives.
pub type Upgraded<S> = Result<(WebSocket<S>, http::Response<Option<Vec<u8>>>), tungstenite::Error>;

/// The client side of the upgrade to `url` with extra headers, over `stream`.
pub fn handshake<S: Read + Write>(url: &str, headers: &[(&str, &str)], stream: S) -> Upgraded<S> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    tungstenite::client(request, stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => panic!("handshake interrupted"),
    })
}

/// Opens a WebSocket to `target` (e.g. `/ws?token=...`) with extra headers.
pub fn connect(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Connected {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    handshake(&format!("ws://{addr}{target}"), headers, stream)
}

/// Opens a WebSocket to `/ws` with `Authorization: Bearer TOKEN`.
pub fn connect_bearer(addr: SocketAddr, token: &str) -> Connected {
    connect(
        addr,
        "/ws",
        &[("Authorization", &format!("Bearer {token}"))],
    )
}

/// Connects as alice with the Authorization header and reads the greeting.
pub fn connect_alice(addr: SocketAddr) -> Client {
    let (mut ws, _) = connect(
        addr,
        "/ws",
        &[("Authorization", &format!("Bearer {ALICE}"))],
    )
    .expect("alice connects");
    assert_eq!(next_text(&mut ws), "Hello alice");
    ws
}

/// A WebSocket to `target` with extra headers; its greeting, after which it closes.
pub fn greeting_with(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> String {
    let (mut ws, _) = connect(addr, target, headers).expect("the upgrade succeeds");
    let greeting = next_text(&mut ws);
    let _ = ws.close(None);
    while ws.read().is_ok() {}
    greeting
}

/// The next text message; panics on anything else.
pub fn next_text<S: Read + Write>(ws: &mut WebSocket<S>) -> String {
    loop {
        match ws.read().expect("a message") {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame; returns its code and reason.
pub fn expect_close<S: Read + Write>(ws: &mut WebSocket<S>) -> (u16, String) {
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

/// The status of a refused upgrade, from tungstenite's client error.
pub fn refused_status(result: Connected) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, got a session"),
    }
}

/// Sends an upgrade request; returns the answer: for a 101 only its head (the
/// session stays open until the socket drops), otherwise all of it.
pub fn raw_upgrade(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    if status(&head) == 101 {
        head
    } else {
        head + &read_to_close(&mut stream)
    }
}

/// Every value of a header in a raw HTTP answer, in order (name matched ignoring case).
pub fn header_values<'a>(answer: &'a str, name: &str) -> Vec<&'a str> {
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .skip(1)
        .filter_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

/// Asserts that an answer to anything but `HEAD` is framed as SPEC says: one
/// `Content-Length` equal to the body's length, and one `Connection: close`.
pub fn assert_well_framed(answer: &str) {
    assert!(
        answer.contains("\r\n\r\n"),
        "no complete head in {answer:?}"
    );
    let lengths = header_values(answer, "Content-Length");
    assert_eq!(
        lengths,
        [body(answer).len().to_string()],
        "Content-Length against the body in {answer:?}"
    );
    assert_eq!(
        header_values(answer, "Connection"),
        ["close"],
        "Connection in {answer:?}"
    );
}

/// Polls `condition` until it holds or `within` has passed; returns whether it held.
pub fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A connection to `to` from the loopback address `local` (std cannot bind
/// before connecting).
pub fn connect_from(local: Ipv4Addr, to: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to) = to else {
        panic!("an IPv4 proxy address")
    };
    let address = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let (from, to) = (address(local, 0), address(*to.ip(), to.port()));
    let length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, bound and connected with valid sockaddr_in
    // values; its descriptor is handed to the TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let bound = libc::bind(fd, (&raw const from).cast(), length);
        assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
        let connected = libc::connect(fd, (&raw const to).cast(), length);
        assert_eq!(connected, 0, "connect: {}", std::io::Error::last_os_error());
        stream
    }
}

/// A WebSocket from the loopback address `local` to `target` at `addr`.
pub fn connect_from_ip(
    local: Ipv4Addr,
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> Connected {
    let stream = connect_from(local, addr);
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    handshake(&format!("ws://{addr}{target}"), headers, stream)
}

/// Threads of this process whose name starts with `prefix` (wsauth names
/// its threads `wsauth-conn`, `wsauth-exec-io`, ...).
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("Linux: /proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(prefix))
        .count()
}

/// Whether a read ended at its timeout (`WouldBlock` or `TimedOut`, by platform).
pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
