//! `rediss://` (features `redis` and `tls`): the bus over TLS to a
//! `redis-server` with TLS on, its certificate verified against the roots
//! the process trusts (here `SSL_CERT_FILE`, as rustls-native-certs reads it).
#![cfg(all(feature = "redis", feature = "tls"))]

mod common;

use common::process::{TempFile, Wsauth};
use common::redis::Redis;
use common::tls::Pair;
use common::{ALICE, PATIENCE, body, connect_bearer, eventually, next_text, raw, status};
use std::net::SocketAddr;

const KEY: &str = "bus-tls-publish-key-0123456789abcdef0123";

fn publish(addr: SocketAddr, text: &str) -> String {
    let request = format!(
        "POST /publish?user=alice HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Length: {}\r\n\r\n{text}",
        text.len()
    );
    raw(addr, request.as_bytes())
}

#[test]
fn the_bus_runs_over_rediss_and_verifies_the_certificate() {
    let pair = Pair::new();
    let Some(redis) = Redis::start_tls("tls", pair.cert.clone(), pair.key.clone()) else {
        return;
    };
    let key = TempFile::new("bus-tls-key", format!("{KEY}\n").as_bytes());
    let url = format!("rediss://127.0.0.1:{}/0", redis.port());
    let alice = format!("alice:{ALICE}");
    let args = [
        "--token",
        &alice,
        "--publish-key-file",
        key.path(),
        "--redis",
        &url,
    ];
    // Trusting the certificate: the bus joins, and a publish reaches alice.
    let (trusting, addr) = Wsauth::serve(&args, &[("SSL_CERT_FILE", pair.cert_arg())]);
    let (mut ws, _) = connect_bearer(addr, ALICE).expect("alice connects");
    ws.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    let published = || body(&publish(addr, "over tls")) == "published\n";
    if !eventually(PATIENCE, published) {
        panic!(
            "the bus over TLS took no publish: {}\n{}",
            trusting.stop().1,
            redis.log()
        );
    }
    assert_eq!(next_text(&mut ws), "over tls");
    // Not trusting it (an empty root file): no bus, and publishes are refused.
    let empty = TempFile::new("bus-tls-no-roots", b"");
    let (doubting, doubting_addr) = Wsauth::serve(&args, &[("SSL_CERT_FILE", empty.path())]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(status(&publish(doubting_addr, "never")), 503);
    drop(ws);
    let (_, log) = trusting.stop();
    assert!(log.contains(&format!("bus: subscribed on {url}")), "{log}");
    let (_, doubting_log) = doubting.stop();
    assert!(
        doubting_log.contains(&format!("bus: cannot reach {url}")),
        "{doubting_log}"
    );
}
