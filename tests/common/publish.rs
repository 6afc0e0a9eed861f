//! The publish API tests' server, raw requests and metrics, for
//! `tests/publish.rs` and `tests/publish_delivery.rs`.

use super::process::TempFile;
use super::{PATIENCE, assert_well_framed, raw, read_to_close, start, status};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use tungstenite::Message;
use wsauth::{Config, PublishKey, Server};

/// The key every test server here takes.
pub const KEY: &str = "publish-key-0123456789-abcdefghijklmnop";

/// A server that knows alice and bob, with the publish key file `name`.
pub fn server_with(name: &str, change: impl FnOnce(&mut Config)) -> (Server, TempFile) {
    let file = TempFile::new(name, format!("{KEY}\n").as_bytes());
    let mut config = Config::default();
    config.metrics = true;
    config.publish_key = Some(Arc::new(
        PublishKey::load(file.path()).expect("the key loads"),
    ));
    change(&mut config);
    (start(config), file)
}

/// The raw bytes of a request with `headers` (each a whole line) and `body`,
/// with a `Content-Length` for it.
pub fn request_bytes(method: &str, target: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `POST target` with the right key and `body`; the whole answer.
pub fn post(addr: SocketAddr, target: &str, body: &[u8]) -> String {
    let bearer = format!("Authorization: Bearer {KEY}");
    raw(addr, &request_bytes("POST", target, &[&bearer], body))
}

/// Like [`post`], checking the answer is a well-framed 200 and returning its body.
pub fn post_ok(addr: SocketAddr, target: &str, body: &[u8]) -> String {
    let answer = post(addr, target, body);
    assert_eq!(status(&answer), 200, "{answer}");
    assert_well_framed(&answer);
    super::body(&answer).to_string()
}

/// The next data message, pings skipped.
pub fn next_message<S: Read + Write>(ws: &mut tungstenite::WebSocket<S>) -> Message {
    loop {
        match ws.read().expect("a message") {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

/// Every `wsauth_publish_requests_total` and `wsauth_push_messages_total` sample.
pub fn publish_metrics(addr: SocketAddr) -> BTreeMap<String, f64> {
    let answer = super::get(addr, "/metrics", &[]);
    super::body(&answer)
        .lines()
        .filter(|line| line.starts_with("wsauth_publish") || line.starts_with("wsauth_push"))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

pub fn requests(metrics: &BTreeMap<String, f64>, result: &str) -> f64 {
    metrics[&format!("wsauth_publish_requests_total{{result=\"{result}\"}}")]
}

/// Sends `request` on a connection of its own and reads what comes back
/// until the close; a write the server refused by closing is no error.
pub fn attempt(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = stream.write_all(request);
    read_to_close(&mut stream)
}
