//! The bus tests' instances, requests and metrics, for `tests/bus.rs` and
//! `tests/bus_faults.rs`.

use super::process::{TempFile, Wsauth};
use super::{ALICE, BOB, Client, PATIENCE, body, connect_bearer, eventually, next_text, raw};
use std::net::SocketAddr;
use std::time::Duration;
use tungstenite::Message;

/// The publish key of every instance here.
pub const KEY: &str = "bus-publish-key-0123456789abcdef0123456789";

/// An instance on the bus at `url`, knowing alice and bob, with the publish
/// API and metrics; `extra` flags after.
pub fn instance(url: &str, key: &TempFile, extra: &[&str]) -> (Wsauth, SocketAddr) {
    let (alice, bob) = (format!("alice:{ALICE}"), format!("bob:{BOB}"));
    let mut args = vec![
        "--token",
        &alice,
        "--token",
        &bob,
        "--publish-key-file",
        key.path(),
        "--metrics",
        "--redis",
        url,
    ];
    args.extend_from_slice(extra);
    Wsauth::serve(&args, &[])
}

pub fn key_file(test: &str) -> TempFile {
    TempFile::new(test, format!("{KEY}\n").as_bytes())
}

/// `POST target` with the key, `body` and any `headers`; the whole answer.
pub fn post(addr: SocketAddr, target: &str, headers: &[&str], body: &[u8]) -> String {
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes)
}

/// A greeted session of `token`'s user, with the test's patience.
pub fn session(addr: SocketAddr, token: &str) -> Client {
    let (mut ws, _) = connect_bearer(addr, token).expect("the upgrade");
    ws.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
    assert!(next_text(&mut ws).starts_with("Hello"));
    ws
}

/// The next data message.
pub fn next_message(ws: &mut Client) -> Message {
    loop {
        match ws.read().expect("a message") {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

/// One metric's value from `GET /metrics`.
pub fn metric(addr: SocketAddr, name: &str) -> f64 {
    let answer = super::get(addr, "/metrics", &[]);
    body(&answer)
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {answer}"))
}

/// Waits until the instance's subscription is up.
pub fn wait_connected(addr: SocketAddr, within: Duration) -> bool {
    eventually(within, || metric(addr, "wsauth_bus_connected") == 1.0)
}

/// Waits until `wsauth_bus_connected` is `value`.
pub fn wait_connected_is(addr: SocketAddr, value: f64) -> bool {
    eventually(PATIENCE, || metric(addr, "wsauth_bus_connected") == value)
}

/// Sessions open on the instance at `addr`, from its metrics.
pub fn server_sessions(addr: SocketAddr) -> f64 {
    metric(addr, "wsauth_sessions_open")
}
