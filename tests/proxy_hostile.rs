//! A client that sends a hostile `Host` through the shipped proxy files
//! cannot choose its own IP: with wsauth behind nginx, HAProxy and HAProxy
//! with a PROXY header (the very files in `deploy/`), the throttle, the logs
//! and `REMOTE_ADDR` still see the real client. The values are those of
//! issue 17: one closes the quoted `host=` and adds a `for=` to the same
//! `Forwarded` element, the other adds a whole new rightmost element.
//!
//! These need nginx and HAProxy; where either is missing they print
//! `SKIPPED` and pass, unless `WSAUTH_PROXY_TESTS=required` (as in `.ci/run`).

mod common;

use common::process::{TempFile, Wsauth};
use common::proxies::{Proxy, ProxyKind};
use common::{ALICE, PATIENCE, connect_from, next_text, status};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use tungstenite::WebSocket;
use tungstenite::protocol::Role;

/// The address each hostile `Host` tries to pass for the client's.
const FORGED: &str = "198.51.100.7";

/// The two hostile `Host` values of issue 17.
const HOSTILE_HOSTS: [&str; 2] = ["a\";for=198.51.100.7;x=\"", "a\",for=198.51.100.7;host=\"b"];

/// The real clients, one per hostile value, and one that never fails: none
/// of them is the proxy (127.0.0.1), so falling back to the proxy's address
/// would show too.
const CLIENTS: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 4)];
const BYSTANDER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// Failed authentications before the 429.
const LIMIT: usize = 3;

/// wsauth behind `kind`, the one instance at both upstream places (so one
/// throttle counts every attempt); each session runs `echo $REMOTE_ADDR`.
fn deploy(kind: ProxyKind, test: &str) -> Option<(Proxy, Wsauth, TempFile)> {
    let tokens = TempFile::new(
        &format!("hostile-{kind:?}"),
        format!("alice:{ALICE}\n").as_bytes(),
    );
    let limit = LIMIT.to_string();
    let mut args = vec![
        "--tokens-file",
        tokens.path(),
        "--trusted-proxy",
        "127.0.0.1",
        "--max-auth-failures",
        &limit,
        "--exec",
        "echo $REMOTE_ADDR",
    ];
    if kind == ProxyKind::HaproxyProxyProtocol {
        args.push("--proxy-protocol");
    }
    let (wsauth, addr) = Wsauth::serve(&args, &[]);
    let proxy = Proxy::start(kind, [addr, addr], &format!("{test} ({kind:?})"))?;
    Some((proxy, wsauth, tokens))
}

/// Sends an upgrade for `/ws` from `client` with this `Host` and extra header
/// lines; returns the status and the connection, positioned after the head.
fn upgrade(client: Ipv4Addr, proxy: &Proxy, host: &str, extra: &[&str]) -> (u16, TcpStream) {
    let mut stream = connect_from(client, proxy.addr());
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut request = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for line in extra {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && matches!(stream.read(&mut byte), Ok(1)) {
        head.push(byte[0]);
    }
    let code = status(&String::from_utf8_lossy(&head));
    assert_ne!(
        code,
        0,
        "no answer through {:?}\n{}",
        proxy.kind(),
        proxy.log()
    );
    (code, stream)
}

const WRONG: &str = "Authorization: Bearer wrong";

fn bearer() -> String {
    format!("Authorization: Bearer {ALICE}")
}

/// What the session's program saw as `REMOTE_ADDR`, or the status that
/// refused the upgrade.
fn remote_addr(client: Ipv4Addr, proxy: &Proxy, host: &str) -> Result<String, u16> {
    let (code, stream) = upgrade(client, proxy, host, &[&bearer()]);
    if code != 101 {
        return Err(code);
    }
    let mut ws = WebSocket::from_raw_socket(stream, Role::Client, None);
    Ok(next_text(&mut ws))
}

/// Fails from `client` with `host` until a 429, at most `LIMIT + 1` times;
/// `false` when the proxy itself refused the value (400: wsauth never saw it).
fn fail_until_throttled(client: Ipv4Addr, proxy: &Proxy, host: &str) -> bool {
    let mut statuses = Vec::new();
    while statuses.len() <= LIMIT && statuses.last() != Some(&429) {
        statuses.push(upgrade(client, proxy, host, &[WRONG]).0);
    }
    if statuses.iter().all(|s| *s == 400) {
        return false;
    }
    let mut expected = vec![401; LIMIT];
    expected.push(429);
    assert_eq!(
        statuses,
        expected,
        "{client} with Host {host:?} through {:?}: the throttle counts the real client",
        proxy.kind()
    );
    true
}

/// After the 429, nothing the client sends gets it out: its own Host, the
/// other hostile value, or forwarding headers of its own.
fn the_429_holds(client: Ipv4Addr, proxy: &Proxy, hosts: &[&str]) {
    let own = proxy.addr().to_string();
    let forged = format!("Forwarded: for={FORGED}");
    let forged_xff = format!("X-Forwarded-For: {FORGED}");
    for host in hosts.iter().copied().chain([own.as_str()]) {
        let (code, _) = upgrade(client, proxy, host, &[&bearer(), &forged, &forged_xff]);
        assert!(
            code == 429 || (code == 400 && host != own),
            "{client} with Host {host:?} through {:?} got {code}, not the 429",
            proxy.kind()
        );
    }
}

fn a_hostile_host_does_not_choose_the_client_ip(kind: ProxyKind) {
    let test = "a_hostile_host_does_not_choose_the_client_ip";
    let Some((proxy, wsauth, _tokens)) = deploy(kind, test) else {
        return;
    };
    let mut reached = Vec::new();
    for (host, client) in HOSTILE_HOSTS.into_iter().zip(CLIENTS) {
        match remote_addr(client, &proxy, host) {
            Ok(seen) => assert_eq!(seen, client.to_string(), "REMOTE_ADDR with Host {host:?}"),
            Err(400) => continue,
            Err(code) => panic!("Host {host:?} through {kind:?}: {code}\n{}", proxy.log()),
        }
        assert!(fail_until_throttled(client, &proxy, host), "{host:?}");
        the_429_holds(client, &proxy, &HOSTILE_HOSTS);
        reached.push(host);
    }
    assert!(
        reached.contains(&HOSTILE_HOSTS[0]),
        "the first hostile Host must reach wsauth through {kind:?}: {reached:?}\n{}",
        proxy.log()
    );
    // The throttle is on those clients, not on the proxy or on everyone.
    let own = proxy.addr().to_string();
    assert_eq!(
        remote_addr(BYSTANDER, &proxy, &own),
        Ok(BYSTANDER.to_string())
    );
    let (_, logs) = wsauth.stop();
    assert!(
        !logs.contains(FORGED),
        "the forged address in the logs:\n{logs}"
    );
    let rejected: Vec<&str> = logs.lines().filter(|l| l.contains("rejected")).collect();
    for client in CLIENTS.iter().take(reached.len()) {
        let named = format!("{client}:");
        assert!(
            rejected.iter().any(|l| l.contains(&named)),
            "no rejection names {client}:\n{logs}"
        );
    }
    assert!(
        rejected
            .iter()
            .all(|l| CLIENTS.iter().any(|c| l.contains(&format!("{c}:")))),
        "a rejection that names someone else:\n{logs}"
    );
}

#[test]
fn a_hostile_host_through_nginx_does_not_choose_the_client_ip() {
    a_hostile_host_does_not_choose_the_client_ip(ProxyKind::Nginx);
}

#[test]
fn a_hostile_host_through_haproxy_does_not_choose_the_client_ip() {
    a_hostile_host_does_not_choose_the_client_ip(ProxyKind::Haproxy);
}

#[test]
fn a_hostile_host_through_haproxy_with_proxy_protocol_does_not_choose_the_client_ip() {
    a_hostile_host_does_not_choose_the_client_ip(ProxyKind::HaproxyProxyProtocol);
}
