//! The Redis bus (feature `redis`) against a real `redis-server`: two
//! instances and users on both, `redis-cli PUBLISH`, `/disconnect` across
//! instances, binary kept binary, order kept, the ACL user and the prefix.
//! `tests/bus_faults.rs` has Redis down, killed, silent and the password;
//! `tests/bus_deploy.rs` the chat behind nginx.
#![cfg(feature = "redis")]

mod common;

use common::bus::*;
use common::redis::Redis;
use common::{ALICE, BOB, PATIENCE, body, expect_close};
use common::{Client, next_text, status};
use std::net::SocketAddr;
use std::time::Duration;
use tungstenite::Message;

#[test]
fn a_publish_anywhere_reaches_the_users_sessions_on_every_instance() {
    let Some(redis) = Redis::start("everywhere", &[]) else {
        return;
    };
    let key = key_file("bus-everywhere");
    let (a_server, a) = instance(&redis.url(), &key, &[]);
    let (b_server, b) = instance(&redis.url(), &key, &[]);
    assert!(wait_connected(a, PATIENCE) && wait_connected(b, PATIENCE));
    let mut alice_a = session(a, ALICE);
    let mut alice_b = session(b, ALICE);
    let mut bob_b = session(b, BOB);

    // To a user: on A, to alice on both; answered once Redis has it.
    let answer = post(a, "/publish?user=alice", &[], b"your order shipped");
    assert_eq!(
        (status(&answer), body(&answer)),
        (200, "published\n"),
        "{answer}"
    );
    for alice in [&mut alice_a, &mut alice_b] {
        assert_eq!(next_text(alice), "your order shipped");
    }
    every_form_reaches_everyone(&redis, b, [&mut alice_a, &mut alice_b, &mut bob_b]);
    // One publisher's messages keep their order on the other instance.
    for n in 0..200 {
        let answer = post(a, "/publish?user=alice", &[], format!("#{n}").as_bytes());
        assert_eq!(body(&answer), "published\n", "{answer}");
    }
    for n in 0..200 {
        assert_eq!(next_text(&mut alice_b), format!("#{n}"));
        assert_eq!(next_text(&mut alice_a), format!("#{n}"));
    }
    // /disconnect on B closes alice's sessions on both; bob stays.
    let answer = post(b, "/disconnect?user=alice", &[], b"");
    assert_eq!(
        (status(&answer), body(&answer)),
        (200, "published\n"),
        "{answer}"
    );
    for alice in [&mut alice_a, &mut alice_b] {
        assert_eq!(expect_close(alice), (1008, "disconnected".to_string()));
    }
    post(a, "/publish?user=bob", &[], b"still here");
    assert_eq!(next_text(&mut bob_b), "still here");
    assert!(metric(b, "wsauth_bus_messages_received_total") >= 206.0);
    assert_eq!(metric(a, "wsauth_bus_publish_failures_total"), 0.0);
    drop((alice_a, alice_b, bob_b));
    let (_, log) = a_server.stop();
    assert!(
        log.contains("published 18 bytes to user alice on the bus"),
        "{log}"
    );
    assert!(!log.contains(KEY), "{log}");
    b_server.stop();
}

#[test]
fn an_acl_user_limited_to_the_prefix_channels_is_enough_and_holds_to_its_prefix() {
    let Some(redis) = Redis::start("acl", &[]) else {
        return;
    };
    // The ACL line in docs/deploying.md.
    let acl = ["ACL", "SETUSER", "wsauth", "on", ">acl-pass-0123456789"];
    let rules = [
        "resetchannels",
        "&wsauth:*",
        "+subscribe",
        "+psubscribe",
        "+publish",
        "+ping",
    ];
    assert_eq!(redis.cli(&[&acl[..], &rules[..]].concat()).trim(), "OK");
    let key = key_file("bus-acl");
    let url = format!(
        "redis://wsauth:acl-pass-0123456789@127.0.0.1:{}/0",
        redis.port()
    );
    let (server, addr) = instance(&url, &key, &[]);
    assert!(wait_connected(addr, PATIENCE));
    let mut alice = session(addr, ALICE);
    assert_eq!(
        body(&post(addr, "/publish?user=alice", &[], b"acl")),
        "published\n"
    );
    assert_eq!(next_text(&mut alice), "acl");
    // Another prefix is outside what the user may subscribe to: no bus.
    let (other, other_addr) = instance(&url, &key, &["--redis-prefix", "other"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&post(other_addr, "/publish?all", &[], b"x")), 503);
    drop(alice);
    server.stop();
    let (_, log) = other.stop();
    assert!(
        log.contains("bus: cannot subscribe on redis://***@"),
        "{log}"
    );
    assert!(!log.contains("acl-pass"), "{log}");
}

#[test]
fn a_prefix_of_its_own_and_binary_to_one_user() {
    let Some(redis) = Redis::start("prefix", &[]) else {
        return;
    };
    let key = key_file("bus-prefix");
    let (server, addr) = instance(&redis.url(), &key, &["--redis-prefix", "shop"]);
    assert!(wait_connected(addr, PATIENCE));
    let mut alice = session(addr, ALICE);
    // Another prefix's channels are not this instance's.
    redis.cli(&["PUBLISH", "wsauth:user:alice", "not for this instance"]);
    redis.cli(&["PUBLISH", "shop:user:alice", "for shop"]);
    assert_eq!(next_text(&mut alice), "for shop");
    let octets = ["Content-Type: application/octet-stream"];
    let answer = post(addr, "/publish?user=alice", &octets, b"bytes");
    assert_eq!(body(&answer), "published\n", "{answer}");
    assert_eq!(next_message(&mut alice), Message::binary(b"bytes".to_vec()));
    redis.cli(&["PUBLISH", "shop:bin:user:alice", "raw"]);
    assert_eq!(next_message(&mut alice), Message::binary(b"raw".to_vec()));
    drop(alice);
    server.stop();
}

/// Published on `b` and by `redis-cli`, binary stays binary and text text
/// on every instance; `everyone` is alice on both, then bob.
fn every_form_reaches_everyone(redis: &Redis, b: SocketAddr, everyone: [&mut Client; 3]) {
    let [alice_a, alice_b, bob_b] = everyone;
    // Binary stays binary on every instance, UTF-8 or not.
    let octets = ["Content-Type: application/octet-stream"];
    for bytes in [&[0xff, 0x00, 0x80][..], b"utf-8 but binary"] {
        let answer = post(b, "/publish?all", &octets, bytes);
        assert_eq!(body(&answer), "published\n", "{answer}");
        for ws in [&mut *alice_a, &mut *alice_b, &mut *bob_b] {
            assert_eq!(next_message(ws), Message::binary(bytes.to_vec()));
        }
    }
    // Any Redis client publishes: UTF-8 goes out as text.
    assert_eq!(
        redis
            .cli(&["PUBLISH", "wsauth:user:alice", "from redis-cli"])
            .trim(),
        "2"
    );
    for alice in [&mut *alice_a, &mut *alice_b] {
        assert_eq!(next_text(alice), "from redis-cli");
    }
    // Not UTF-8 on a text channel: it goes out as binary.
    redis.cli_with_last(&["PUBLISH", "wsauth:all"], &[0xc3, 0x28]);
    for ws in [&mut *alice_a, &mut *alice_b, &mut *bob_b] {
        assert_eq!(next_message(ws), Message::binary(vec![0xc3, 0x28]));
    }
    redis.cli(&["PUBLISH", "wsauth:all", "to everyone"]);
    for ws in [&mut *alice_a, &mut *alice_b, &mut *bob_b] {
        assert_eq!(next_text(ws), "to everyone");
    }
}
