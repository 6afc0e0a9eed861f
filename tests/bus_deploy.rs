//! The broadcast chat across instances (feature `redis`): two instances of
//! `examples/broadcast.rs` on one Redis, behind nginx with `deploy/`'s file;
//! alice lands on one, bob on the other, and each sees the other's lines.
#![cfg(feature = "redis")]

mod common;

use common::process::{Wsauth, example};
use common::proxies::{Proxy, ProxyKind};
use common::redis::Redis;
use common::{ALICE, BOB, Client, PATIENCE, connect_bearer, eventually, next_text};
use std::net::SocketAddr;
use std::time::Duration;
use tungstenite::Message;

/// A chat instance on the bus, with its metrics (to tell where a session is).
fn chat(url: &str) -> (Wsauth, SocketAddr) {
    let (alice, bob) = (format!("alice:{ALICE}"), format!("bob:{BOB}"));
    let args = [
        "--token",
        &alice,
        "--token",
        &bob,
        "--redis",
        url,
        "--metrics",
    ];
    Wsauth::serve_program(&example("broadcast"), &args, &[])
}

/// A session through `proxy`.
fn join(proxy: SocketAddr, token: &str) -> Client {
    let (ws, _) = connect_bearer(proxy, token).expect("an upgrade through nginx");
    ws.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
    ws
}

/// The sessions open on an instance, from its metrics.
fn sessions_on(addr: SocketAddr) -> usize {
    let answer = common::get(addr, "/metrics", &[]);
    common::body(&answer)
        .lines()
        .find_map(|l| l.strip_prefix("wsauth_sessions_open ")?.parse().ok())
        .expect("wsauth_sessions_open")
}

#[test]
fn alice_and_bob_on_different_instances_behind_nginx_see_each_others_lines() {
    let Some(redis) = Redis::start("chat", &[]) else {
        return;
    };
    let (_a, a) = chat(&redis.url());
    let (_b, b) = chat(&redis.url());
    let Some(nginx) = Proxy::start(ProxyKind::Nginx, [a, b], "bus_chat") else {
        return;
    };
    let mut alice = join(nginx.addr(), ALICE);
    // Round robin: bob lands on the other instance within a few tries.
    let apart = || sessions_on(a) == 1 && sessions_on(b) == 1;
    let mut bob = None;
    for _ in 0..8 {
        let ws = join(nginx.addr(), BOB);
        if eventually(Duration::from_secs(1), apart) {
            bob = Some(ws);
            break;
        }
    }
    let mut bob = bob.expect("bob lands on the other instance");
    // The bus may still be joining: say it until it is heard.
    bob.get_ref()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let heard = eventually(PATIENCE, || {
        alice.send(Message::text("hi bob")).unwrap();
        matches!(bob.read(), Ok(Message::Text(t)) if t.as_str() == "alice: hi bob")
    });
    assert!(heard, "bob on another instance hears alice");
    bob.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
    bob.send(Message::text("hi alice")).unwrap();
    loop {
        let line = next_text(&mut alice);
        if line == "bob: hi alice" {
            break;
        }
        assert_eq!(line, "alice: hi bob", "only alice's own lines come first");
    }
}
