//! Who the client is, without a real proxy in front: `--trusted-proxy` with
//! forwarding headers written by the test, and `--proxy-protocol` with PROXY
//! headers written by the test. The session's peer (REMOTE_ADDR and
//! REMOTE_PORT under --exec), the throttle and the origin check all follow it.

mod common;

use common::{
    ALICE, PATIENCE, grant, head_of_len, raw, raw_upgrade, read_to_close, status, upgrade_request,
};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver};
use wsauth::{Config, Handler, Reply, Server, TokenStore};

/// A handler that does nothing; its server reports each session's peer.
struct Quiet;

impl Handler for Quiet {
    fn on_text(&mut self, _text: &str, _reply: &mut Reply<'_>) {}
}

/// A server that sends each session's peer address to the receiver.
fn reporting(config: Config) -> (Server, Receiver<SocketAddr>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let store = TokenStore::new(vec![grant("alice", ALICE, None)]);
    let server = Server::start_with_handler("127.0.0.1:0", config, store, move |info| {
        let _ = tx.lock().unwrap().send(info.peer);
        Quiet
    })
    .expect("server starts");
    (server, rx)
}

fn trusting_loopback() -> Config {
    let mut config = Config::default();
    config.trusted_proxies.add("127.0.0.1").unwrap();
    config
}

fn upgrade_head(addr: SocketAddr, extra: &[&str]) -> String {
    upgrade_request(addr, "/ws", extra)
}

/// Sends `bytes` and returns the status of the answer, keeping the stream
/// open for a 101 (the session's peer is reported first).
fn send(addr: SocketAddr, bytes: &[u8]) -> (u16, TcpStream) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match std::io::Read::read(&mut stream, &mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    (status(&String::from_utf8_lossy(&head)), stream)
}

const BEARER: &str = "Authorization: Bearer alice-s3cret";

#[test]
fn a_trusted_proxys_x_forwarded_for_names_the_session_peer() {
    let (server, peers) = reporting(trusting_loopback());
    let addr = server.local_addr();
    let request = upgrade_head(addr, &[BEARER, "X-Forwarded-For: 10.9.9.9, 203.0.113.9"]);
    let (code, stream) = send(addr, request.as_bytes());
    assert_eq!(code, 101);
    let peer = peers.recv_timeout(PATIENCE).unwrap();
    assert_eq!(peer.ip().to_string(), "203.0.113.9");
    // REMOTE_PORT: without a PROXY header, the TCP peer's port.
    assert_eq!(peer.port(), stream.local_addr().unwrap().port());
}

#[test]
fn forwarded_wins_over_x_forwarded_for() {
    let (server, peers) = reporting(trusting_loopback());
    let addr = server.local_addr();
    let request = upgrade_head(
        addr,
        &[
            BEARER,
            "X-Forwarded-For: 198.51.100.1",
            "Forwarded: for=\"[2001:db8::7]:4711\"",
        ],
    );
    let (code, _stream) = send(addr, request.as_bytes());
    assert_eq!(code, 101);
    assert_eq!(
        peers.recv_timeout(PATIENCE).unwrap().ip().to_string(),
        "2001:db8::7"
    );
}

#[test]
fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let (server, peers) = reporting(Config::default());
    let addr = server.local_addr();
    let request = upgrade_head(
        addr,
        &[
            BEARER,
            "X-Forwarded-For: 203.0.113.9",
            "Forwarded: for=192.0.2.1",
        ],
    );
    let (code, _stream) = send(addr, request.as_bytes());
    assert_eq!(code, 101);
    assert_eq!(
        peers.recv_timeout(PATIENCE).unwrap().ip().to_string(),
        "127.0.0.1"
    );
}

#[test]
fn the_throttle_counts_the_forwarded_client_not_the_proxy() {
    let mut config = trusting_loopback();
    config.max_auth_failures = 2;
    let (server, _peers) = reporting(config);
    let addr = server.local_addr();
    let from = |client: &str, token: &str| {
        let request = upgrade_head(
            addr,
            &[
                &format!("Authorization: Bearer {token}"),
                &format!("X-Forwarded-For: {client}"),
            ],
        );
        status(&raw_upgrade(addr, &request))
    };
    assert_eq!(from("198.51.100.1", "wrong"), 401);
    assert_eq!(from("198.51.100.1", "wrong"), 401);
    assert_eq!(from("198.51.100.1", ALICE), 429);
    // Another client behind the same proxy is untouched.
    assert_eq!(from("198.51.100.2", ALICE), 101);
}

#[test]
fn a_trusted_x_forwarded_host_stands_for_host_in_the_origin_check() {
    let (server, _peers) = reporting(trusting_loopback());
    let addr = server.local_addr();
    let public = [
        BEARER,
        "Origin: https://chat.example",
        "X-Forwarded-Host: chat.example",
    ];
    assert_eq!(
        status(&raw_upgrade(addr, &upgrade_head(addr, &public))),
        101
    );
    let forwarded = [
        BEARER,
        "Origin: https://chat.example",
        "Forwarded: for=192.0.2.1;host=chat.example",
    ];
    assert_eq!(
        status(&raw_upgrade(addr, &upgrade_head(addr, &forwarded))),
        101
    );
    // The same from a peer that is not trusted: Host decides, and it differs.
    let (plain, _peers) = reporting(Config::default());
    let addr = plain.local_addr();
    assert_eq!(
        status(&raw_upgrade(addr, &upgrade_head(addr, &public))),
        403
    );
}

fn proxy_protocol(trusted: Option<&str>) -> (Server, Receiver<SocketAddr>) {
    let mut config = Config::default();
    config.proxy_protocol = true;
    if let Some(trusted) = trusted {
        config.trusted_proxies.add(trusted).unwrap();
    }
    reporting(config)
}

#[test]
fn a_proxy_v1_header_names_the_client_address_and_port() {
    let (server, peers) = proxy_protocol(None);
    let addr = server.local_addr();
    let bytes = format!(
        "PROXY TCP4 198.51.100.7 127.0.0.1 40000 {}\r\n{}",
        addr.port(),
        upgrade_head(addr, &[BEARER])
    );
    let (code, _stream) = send(addr, bytes.as_bytes());
    assert_eq!(code, 101);
    assert_eq!(
        peers.recv_timeout(PATIENCE).unwrap().to_string(),
        "198.51.100.7:40000"
    );
}

#[test]
fn a_proxy_v2_header_names_the_client() {
    let (server, peers) = proxy_protocol(Some("127.0.0.0/8"));
    let addr = server.local_addr();
    let mut bytes = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    bytes.extend_from_slice(&[0x21, 0x11, 0, 12]);
    bytes.extend_from_slice(&[192, 0, 2, 44, 127, 0, 0, 1]);
    bytes.extend_from_slice(&5555u16.to_be_bytes());
    bytes.extend_from_slice(&addr.port().to_be_bytes());
    bytes.extend_from_slice(upgrade_head(addr, &[BEARER]).as_bytes());
    let (code, _stream) = send(addr, &bytes);
    assert_eq!(code, 101);
    assert_eq!(
        peers.recv_timeout(PATIENCE).unwrap().to_string(),
        "192.0.2.44:5555"
    );
}

#[test]
fn without_a_proxy_header_the_connection_is_closed_unanswered() {
    let (server, _peers) = proxy_protocol(None);
    let addr = server.local_addr();
    assert_eq!(raw(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), "");
    // A valid header then works on the same server.
    let answer = raw(
        addr,
        b"PROXY UNKNOWN\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(status(&answer), 200, "{answer}");
}

#[test]
fn a_proxy_header_from_an_untrusted_peer_is_not_believed() {
    let (server, peers) = proxy_protocol(Some("10.0.0.0/8"));
    let addr = server.local_addr();
    let bytes = format!(
        "PROXY TCP4 198.51.100.7 127.0.0.1 40000 {}\r\n{}",
        addr.port(),
        upgrade_head(addr, &[BEARER])
    );
    let (code, stream) = send(addr, bytes.as_bytes());
    assert_eq!(code, 101);
    let peer = peers.recv_timeout(PATIENCE).unwrap();
    assert_eq!(peer, stream.local_addr().unwrap());
}

#[test]
fn the_proxy_header_counts_against_the_head_budget() {
    let (server, _peers) = proxy_protocol(None);
    let addr = server.local_addr();
    let header = b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\n";
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(header).unwrap();
    // A head that alone would fit, but not after the header.
    stream
        .write_all(&head_of_len(8192 - header.len() + 1, false))
        .unwrap();
    assert_eq!(status(&read_to_close(&mut stream)), 431);
}

#[test]
fn exec_sees_the_forwarded_client_in_remote_addr_and_the_proxy_header_port() {
    use common::process::Wsauth;
    let token = format!("alice:{ALICE}");
    let program = "echo \"$REMOTE_ADDR $REMOTE_PORT\"";
    let bearer = format!("Bearer {ALICE}");
    let (_behind_http, addr) = Wsauth::serve(
        &[
            "--token",
            &token,
            "--trusted-proxy",
            "127.0.0.1",
            "--exec",
            program,
        ],
        &[],
    );
    let (mut ws, _) = common::connect(
        addr,
        "/ws",
        &[
            ("Authorization", &bearer),
            ("X-Forwarded-For", "203.0.113.9"),
        ],
    )
    .unwrap();
    let port = ws.get_ref().local_addr().unwrap().port();
    assert_eq!(common::next_text(&mut ws), format!("203.0.113.9 {port}"));
    let (_behind_proxy_protocol, addr) = Wsauth::serve(
        &["--token", &token, "--proxy-protocol", "--exec", program],
        &[],
    );
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\n")
        .unwrap();
    let request = format!("ws://{addr}/ws");
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(request).unwrap();
    request
        .headers_mut()
        .insert("Authorization", bearer.parse().unwrap());
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let (mut ws, _) = tungstenite::client(request, stream).unwrap();
    assert_eq!(common::next_text(&mut ws), "198.51.100.7 40000");
}
