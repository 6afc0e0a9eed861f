//! wsauth behind nginx and HAProxy, run with the very files in `deploy/`
//! (see `common::proxies`): the page and a WebSocket session pass through,
//! and a refused instance is skipped. Raw listeners in wsauth's place check
//! what the proxies forward; `tests/deploy.rs` and `tests/proxy_hostile.rs`
//! check what the server itself makes of it.
//!
//! These need nginx and HAProxy (`apt-get install -y nginx haproxy`). Where
//! either is missing they print `SKIPPED` on stderr and pass, unless
//! `WSAUTH_PROXY_TESTS=required` (as in `.ci/run`).

mod common;

use common::proxies::{Proxy, ProxyKind};
use common::{
    ALICE, PATIENCE, body, connect, connect_from, eventually, get, next_text, start, status,
};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsauth::{Config, Server};

/// A GET that asks the proxy, which keeps client connections alive, to close.
fn get_closing(proxy: &Proxy, path: &str) -> String {
    get(proxy.addr(), path, &["Connection: close"])
}

/// Two plain servers and `kind` in front of them; `None` when skipped.
fn behind(kind: ProxyKind, test: &str) -> Option<(Proxy, [Server; 2])> {
    let servers = [start(Config::default()), start(Config::default())];
    let upstreams = [servers[0].local_addr(), servers[1].local_addr()];
    let proxy = Proxy::start(kind, upstreams, &format!("{test} ({kind:?})"))?;
    Some((proxy, servers))
}

fn the_page_comes_through(kind: ProxyKind) {
    let Some((proxy, _servers)) = behind(kind, "the_page_comes_through") else {
        return;
    };
    let answer = get_closing(&proxy, "/");
    assert_eq!(status(&answer), 200, "{answer}\n{}", proxy.log());
    assert!(
        body(&answer).contains("<title>wsauth test page</title>"),
        "{answer}"
    );
}

fn a_session_through_greets_and_echoes(kind: ProxyKind) {
    let Some((proxy, _servers)) = behind(kind, "a_session_through_greets_and_echoes") else {
        return;
    };
    let bearer = format!("Bearer {ALICE}");
    let (mut ws, response) = connect(proxy.addr(), "/ws", &[("Authorization", &bearer)])
        .unwrap_or_else(|e| panic!("upgrade through {kind:?}: {e}\n{}", proxy.log()));
    assert_eq!(response.status(), 101);
    assert_eq!(next_text(&mut ws), "Hello alice");
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(next_text(&mut ws), "Message text was: hi");
    ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![1, 2, 3]));
    ws.close(None).unwrap();
}

fn a_missing_token_is_refused_through(kind: ProxyKind) {
    let Some((proxy, _servers)) = behind(kind, "a_missing_token_is_refused_through") else {
        return;
    };
    let refused = common::refused_status(connect(proxy.addr(), "/ws", &[]));
    assert_eq!(refused, 401, "{}", proxy.log());
}

fn a_stopped_instance_is_skipped(kind: ProxyKind) {
    let Some((proxy, [one, two])) = behind(kind, "a_stopped_instance_is_skipped") else {
        return;
    };
    one.stop();
    // Every request finds the running instance: a refused connect goes to the other.
    for _ in 0..4 {
        let answer = get_closing(&proxy, "/healthz");
        assert_eq!(status(&answer), 200, "{answer}\n{}", proxy.log());
    }
    assert!(
        eventually(PATIENCE, || two.open_connections() == 0),
        "the running instance served and closed them"
    );
}

#[test]
fn the_page_comes_through_nginx() {
    the_page_comes_through(ProxyKind::Nginx);
}

#[test]
fn the_page_comes_through_haproxy() {
    the_page_comes_through(ProxyKind::Haproxy);
}

#[test]
fn a_session_through_nginx_greets_and_echoes() {
    a_session_through_greets_and_echoes(ProxyKind::Nginx);
}

#[test]
fn a_session_through_haproxy_greets_and_echoes() {
    a_session_through_greets_and_echoes(ProxyKind::Haproxy);
}

#[test]
fn a_missing_token_is_refused_through_nginx() {
    a_missing_token_is_refused_through(ProxyKind::Nginx);
}

#[test]
fn a_missing_token_is_refused_through_haproxy() {
    a_missing_token_is_refused_through(ProxyKind::Haproxy);
}

#[test]
fn a_stopped_instance_is_skipped_by_nginx() {
    a_stopped_instance_is_skipped(ProxyKind::Nginx);
}

#[test]
fn a_stopped_instance_is_skipped_by_haproxy() {
    a_stopped_instance_is_skipped(ProxyKind::Haproxy);
}

#[test]
fn the_placeholders_are_all_that_the_tests_change() {
    let listen = "127.0.0.1:1".parse().unwrap();
    let upstreams = [
        "127.0.0.1:2".parse().unwrap(),
        "127.0.0.1:3".parse().unwrap(),
    ];
    for file in [
        "deploy/nginx/wsauth.conf",
        "deploy/haproxy/haproxy.cfg",
        "deploy/haproxy/haproxy-proxy-protocol.cfg",
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let template = std::fs::read_to_string(path).unwrap();
        let filled = common::proxies::fill_placeholders(&template, listen, upstreams);
        assert!(
            !filled.contains("@LISTEN@") && !filled.contains("@UPSTREAM"),
            "{file}"
        );
        let unfilled = filled
            .replace("127.0.0.1:1", "@LISTEN@")
            .replace("127.0.0.1:2", "@UPSTREAM1@")
            .replace("127.0.0.1:3", "@UPSTREAM2@");
        assert_eq!(unfilled, template, "{file}");
    }
}

#[test]
fn haproxy_sends_a_proxy_v2_header_that_the_reader_takes_exactly() {
    // Raw listeners in wsauth's place read what HAProxy sends, by the
    // protocol's own layout (tests/proxy_hostile.rs runs wsauth itself).
    let upstreams = [bind(), bind()];
    let addrs = [
        upstreams[0].local_addr().unwrap(),
        upstreams[1].local_addr().unwrap(),
    ];
    let test = "haproxy_sends_a_proxy_v2_header_that_the_reader_takes_exactly";
    let Some(proxy) = Proxy::start(ProxyKind::HaproxyProxyProtocol, addrs, test) else {
        return;
    };
    let mut client = TcpStream::connect(proxy.addr()).unwrap();
    let request = b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
    client.write_all(request).unwrap();
    let deadline = Instant::now() + PATIENCE;
    // Health checks arrive too, with a LOCAL header (no source), and so does
    // the helper's readiness probe, from another port: pass them by.
    let mut stream = loop {
        assert!(
            Instant::now() < deadline,
            "no proxied connection\n{}",
            proxy.log()
        );
        let Some(mut stream) = upstreams
            .iter()
            .find_map(|l| l.accept().ok().map(|(s, _)| s))
        else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        match proxy_v2_source(&mut stream) {
            Ok(Some(source)) if source == client.local_addr().unwrap() => break stream,
            Ok(_) => continue,
            Err(e) => panic!("{e}\n{}", proxy.log()),
        }
    };
    let mut rest = vec![0; request.len()];
    stream.read_exact(&mut rest).unwrap();
    assert_eq!(
        rest, request,
        "the bytes behind the header are the client's, whole"
    );
}

/// Reads a PROXY protocol v2 header by its layout: the source address of a
/// PROXY command over TCP/IPv4 or IPv6, `None` for anything else (LOCAL).
fn proxy_v2_source(stream: &mut TcpStream) -> std::io::Result<Option<SocketAddr>> {
    const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
    let mut fixed = [0u8; 16];
    stream.read_exact(&mut fixed)?;
    assert_eq!(&fixed[..12], SIGNATURE, "a v2 header's signature");
    let mut payload = vec![0; usize::from(u16::from_be_bytes([fixed[14], fixed[15]]))];
    stream.read_exact(&mut payload)?;
    let port = |at: usize| u16::from_be_bytes([payload[at], payload[at + 1]]);
    Ok(match (fixed[12], fixed[13]) {
        (0x21, 0x11) => {
            let ip: [u8; 4] = payload[..4].try_into().unwrap();
            Some(SocketAddr::from((ip, port(8))))
        }
        (0x21, 0x21) => {
            let ip: [u8; 16] = payload[..16].try_into().unwrap();
            Some(SocketAddr::from((ip, port(32))))
        }
        _ => None,
    })
}

/// A loopback listener that does not block in `accept`.
fn bind() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    listener
}

fn the_forwarded_headers_name_the_client_and_defeat_spoofing(kind: ProxyKind) {
    // Raw listeners in wsauth's place see what the proxy forwards.
    let upstreams = [bind(), bind()];
    let addrs = [
        upstreams[0].local_addr().unwrap(),
        upstreams[1].local_addr().unwrap(),
    ];
    let test = format!("the_forwarded_headers_name_the_client_and_defeat_spoofing ({kind:?})");
    let Some(proxy) = Proxy::start(kind, addrs, &test) else {
        return;
    };
    // The client is 127.0.0.2, the proxy 127.0.0.1: only the proxy is trusted.
    let mut client = connect_from(Ipv4Addr::new(127, 0, 0, 2), proxy.addr());
    let host = format!("public.example:{}", proxy.addr().port());
    let request = format!(
        "GET /probe HTTP/1.1\r\nHost: {host}\r\nForwarded: for=6.6.6.6;host=evil\r\n\
         X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nConnection: close\r\n\r\n"
    );
    client.write_all(request.as_bytes()).unwrap();
    let (peer, head) = next_request(&upstreams, "/probe", &proxy);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed.parse(&head).unwrap();
    let text = String::from_utf8_lossy(&head);
    assert_eq!(
        peer,
        IpAddr::from([127, 0, 0, 1]),
        "the proxy connects from itself"
    );
    // No header that names the client holds any text the client sent: no
    // Forwarded at all, one X-Forwarded-For with the address the proxy saw.
    let lines_of = |name: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    };
    assert_eq!(lines_of("forwarded"), Vec::<String>::new(), "{text}");
    assert_eq!(lines_of("x-forwarded-for"), ["127.0.0.2"], "{text}");
    assert_eq!(lines_of("x-forwarded-host"), [host.as_str()], "{text}");
}

#[test]
fn nginx_forwards_headers_that_name_the_client_and_defeat_spoofing() {
    the_forwarded_headers_name_the_client_and_defeat_spoofing(ProxyKind::Nginx);
}

#[test]
fn haproxy_forwards_headers_that_name_the_client_and_defeat_spoofing() {
    the_forwarded_headers_name_the_client_and_defeat_spoofing(ProxyKind::Haproxy);
}

/// The next request for `path` to reach either upstream (health checks are
/// answered and passed by): the proxy's address and the raw head.
fn next_request(upstreams: &[TcpListener], path: &str, proxy: &Proxy) -> (IpAddr, Vec<u8>) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(
            Instant::now() < deadline,
            "no {path} upstream\n{}",
            proxy.log()
        );
        let Some((mut stream, peer)) = upstreams.iter().find_map(|l| l.accept().ok()) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let head = read_head(&mut stream);
        let _ =
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        if head.starts_with(format!("GET {path} ").as_bytes()) {
            return (peer.ip(), head);
        }
    }
}

/// Reads up to and including the blank line that ends a request head.
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && matches!(stream.read(&mut byte), Ok(1)) {
        head.push(byte[0]);
    }
    head
}

/// `/metrics`, `/publish` and `/disconnect` are for the operator's own
/// network: from outside, the proxies answer 404 though the instances
/// serve all three.
fn the_private_paths_are_404_from_outside(kind: ProxyKind) {
    const KEY: &str = "proxies-publish-key-0123456789abcdefghij";
    let file = common::process::TempFile::new("proxies-key", KEY.as_bytes());
    let private = || {
        let mut config = Config::default();
        config.metrics = true;
        let key = wsauth::PublishKey::load(file.path()).expect("the key loads");
        config.publish_key = Some(std::sync::Arc::new(key));
        start(config)
    };
    let servers = [private(), private()];
    let upstreams = [servers[0].local_addr(), servers[1].local_addr()];
    let test = format!("the_private_paths_are_404_from_outside ({kind:?})");
    let Some(proxy) = Proxy::start(kind, upstreams, &test) else {
        return;
    };
    let post = |addr, target: &str| {
        let request = format!(
            "POST {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        common::raw(addr, request.as_bytes())
    };
    // Each instance itself serves them...
    assert_eq!(status(&post(upstreams[0], "/publish?all")), 200);
    assert_eq!(status(&get(upstreams[0], "/metrics", &[])), 200);
    // ...the proxy does not, whatever the method or query.
    assert_eq!(status(&get_closing(&proxy, "/metrics")), 404);
    for target in [
        "/publish?all",
        "/publish?user=alice",
        "/publish",
        "/disconnect?user=alice",
    ] {
        let answer = post(proxy.addr(), target);
        assert_eq!(status(&answer), 404, "{target}: {answer}\n{}", proxy.log());
        assert_eq!(status(&get_closing(&proxy, target)), 404, "GET {target}");
    }
}

#[test]
fn the_private_paths_are_404_through_nginx() {
    the_private_paths_are_404_from_outside(ProxyKind::Nginx);
}

#[test]
fn the_private_paths_are_404_through_haproxy() {
    the_private_paths_are_404_from_outside(ProxyKind::Haproxy);
}
