//! The Redis bus (feature `redis`) against a real `redis-server`: two
//! instances and users on both, `redis-cli PUBLISH`, `/disconnect` across
//! instances, binary kept binary, order kept; Redis down at start, killed
//! and started again, silent, and a bus connection gone dead; the password
//! never shown. `tests/bus_deploy.rs` has the chat behind nginx.
#![cfg(feature = "redis")]

mod common;

use common::process::{TempFile, Wsauth};
use common::redis::{Redis, Relay, Silent, free_port};
use common::{
    ALICE, BOB, Client, PATIENCE, body, connect_bearer, eventually, expect_close, header,
};
use common::{next_text, raw, status};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// The publish key of every instance here.
const KEY: &str = "bus-publish-key-0123456789abcdef0123456789";

/// An instance on the bus at `url`, knowing alice and bob, with the publish
/// API and metrics; `extra` flags after.
fn instance(url: &str, key: &TempFile, extra: &[&str]) -> (Wsauth, SocketAddr) {
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

fn key_file(test: &str) -> TempFile {
    TempFile::new(test, format!("{KEY}\n").as_bytes())
}

/// `POST target` with the key, `body` and any `headers`; the whole answer.
fn post(addr: SocketAddr, target: &str, headers: &[&str], body: &[u8]) -> String {
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
fn session(addr: SocketAddr, token: &str) -> Client {
    let (mut ws, _) = connect_bearer(addr, token).expect("the upgrade");
    ws.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
    assert!(next_text(&mut ws).starts_with("Hello"));
    ws
}

/// The next data message.
fn next_message(ws: &mut Client) -> Message {
    loop {
        match ws.read().expect("a message") {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

/// One metric's value from `GET /metrics`.
fn metric(addr: SocketAddr, name: &str) -> f64 {
    let answer = common::get(addr, "/metrics", &[]);
    body(&answer)
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {answer}"))
}

/// Waits until the instance's subscription is up.
fn wait_connected(addr: SocketAddr, within: Duration) -> bool {
    eventually(within, || metric(addr, "wsauth_bus_connected") == 1.0)
}

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
    // Binary stays binary on every instance, UTF-8 or not.
    let octets = ["Content-Type: application/octet-stream"];
    for bytes in [&[0xff, 0x00, 0x80][..], b"utf-8 but binary"] {
        let answer = post(b, "/publish?all", &octets, bytes);
        assert_eq!(body(&answer), "published\n", "{answer}");
        for ws in [&mut alice_a, &mut alice_b, &mut bob_b] {
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
    for alice in [&mut alice_a, &mut alice_b] {
        assert_eq!(next_text(alice), "from redis-cli");
    }
    // Not UTF-8 on a text channel: it goes out as binary.
    redis.cli_with_last(&["PUBLISH", "wsauth:all"], &[0xc3, 0x28]);
    for ws in [&mut alice_a, &mut alice_b, &mut bob_b] {
        assert_eq!(next_message(ws), Message::binary(vec![0xc3, 0x28]));
    }
    redis.cli(&["PUBLISH", "wsauth:all", "to everyone"]);
    for ws in [&mut alice_a, &mut alice_b, &mut bob_b] {
        assert_eq!(next_text(ws), "to everyone");
    }
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
fn redis_down_at_start_serves_everything_else_refuses_publishes_then_joins() {
    let Some(mut redis) = Redis::start("down-at-start", &[]) else {
        return;
    };
    let port = redis.port();
    redis.kill();
    let key = key_file("bus-down-at-start");
    let (server, addr) = instance(&format!("redis://127.0.0.1:{port}/0"), &key, &[]);
    // Sessions, the page and the metrics work without Redis.
    let mut alice = session(addr, ALICE);
    assert_eq!(status(&common::get(addr, "/", &[])), 200);
    assert_eq!(metric(addr, "wsauth_bus_connected"), 0.0);
    let refused = post(addr, "/publish?user=alice", &[], b"lost");
    assert_eq!(status(&refused), 503, "{refused}");
    assert_eq!(header(&refused, "Retry-After"), Some("1"));
    // Retries for more than a second (several of them) cost one warning.
    std::thread::sleep(Duration::from_millis(1500));
    redis.restart();
    let up = Instant::now();
    assert!(wait_connected(addr, PATIENCE));
    let joined = up.elapsed();
    assert!(
        joined < Duration::from_secs(4),
        "joined {joined:?} after Redis answered"
    );
    let answer = post(addr, "/publish?user=alice", &[], b"now");
    assert_eq!(body(&answer), "published\n", "{answer}");
    assert_eq!(next_text(&mut alice), "now");
    drop(alice);
    let (_, log) = server.stop();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains(&format!("bus: cannot reach redis://127.0.0.1:{port}/0")));
    assert!(log.contains("bus: subscribed on"), "{log}");
    eprintln!("the bus joined {joined:?} after Redis answered");
}

#[test]
fn redis_killed_mid_run_refuses_publishes_while_down_and_resumes() {
    let Some(mut redis) = Redis::start("killed", &[]) else {
        return;
    };
    let key = key_file("bus-killed");
    let (a_server, a) = instance(&redis.url(), &key, &[]);
    let (_b_server, b) = instance(&redis.url(), &key, &[]);
    assert!(wait_connected(a, PATIENCE) && wait_connected(b, PATIENCE));
    let mut alice = session(b, ALICE);
    assert_eq!(
        body(&post(a, "/publish?user=alice", &[], b"before")),
        "published\n"
    );
    assert_eq!(next_text(&mut alice), "before");

    redis.kill();
    let killed = Instant::now();
    assert!(wait_connected_is(a, 0.0) && wait_connected_is(b, 0.0));
    let noticed = killed.elapsed();
    // While it is down nothing is claimed: every publish is a 503.
    for n in 0..5 {
        let answer = post(
            a,
            "/publish?user=alice",
            &[],
            format!("during {n}").as_bytes(),
        );
        assert_eq!(status(&answer), 503, "{answer}");
        assert_eq!(header(&answer, "Retry-After"), Some("1"));
    }
    redis.restart();
    let back = Instant::now();
    assert!(wait_connected(a, PATIENCE) && wait_connected(b, PATIENCE));
    let resumed = back.elapsed();
    assert!(
        resumed < Duration::from_secs(4),
        "resubscribed {resumed:?} after Redis answered"
    );
    assert_eq!(
        body(&post(a, "/publish?user=alice", &[], b"after")),
        "published\n"
    );
    // The next thing alice gets is what was published after: nothing lost was claimed.
    assert_eq!(next_text(&mut alice), "after");
    assert_eq!(metric(a, "wsauth_bus_reconnects_total"), 1.0);
    assert!(metric(a, "wsauth_bus_publish_failures_total") >= 5.0);
    let unavailable = r#"wsauth_publish_requests_total{result="unavailable"}"#;
    assert!(metric(a, unavailable) >= 5.0);
    drop(alice);
    let (_, log) = a_server.stop();
    assert!(log.contains("bus: lost redis://127.0.0.1:"), "{log}");
    assert!(
        log.contains("after") && log.contains("bus: back on"),
        "{log}"
    );
    eprintln!("loss noticed in {noticed:?}; subscriptions back {resumed:?} after Redis answered");
}

/// Waits until `wsauth_bus_connected` is `value`.
fn wait_connected_is(addr: SocketAddr, value: f64) -> bool {
    eventually(PATIENCE, || metric(addr, "wsauth_bus_connected") == value)
}

#[test]
fn a_redis_that_accepts_and_never_answers_is_no_bus() {
    if Redis::start("silent", &[]).is_none() {
        return;
    }
    let silent = Silent::start();
    let key = key_file("bus-silent");
    let url = format!("redis://127.0.0.1:{}/0", silent.addr.port());
    let (server, addr) = instance(&url, &key, &[]);
    assert!(eventually(PATIENCE, || silent.accepted() >= 1));
    let answer = post(addr, "/publish?all", &[], b"x");
    assert_eq!(status(&answer), 503, "{answer}");
    // It gives up on each attempt and tries again.
    assert!(eventually(PATIENCE, || silent.accepted() >= 2));
    let mut alice = session(addr, ALICE);
    assert_eq!(server_sessions(addr), 1.0);
    alice.close(None).ok();
    let (_, log) = server.stop();
    assert_eq!(log.matches("WARN").count(), 1, "{log}");
    assert!(log.contains("bus: cannot reach"), "{log}");
}

fn server_sessions(addr: SocketAddr) -> f64 {
    metric(addr, "wsauth_sessions_open")
}

#[test]
fn a_bus_connection_gone_silent_is_noticed_within_3_s_and_replaced() {
    let Some(redis) = Redis::start("dead-link", &[]) else {
        return;
    };
    let relay = Relay::start(redis.port());
    let key = key_file("bus-dead-link");
    let (server, addr) = instance(&relay.url(), &key, &[]);
    assert!(wait_connected(addr, PATIENCE));
    let mut alice = session(addr, ALICE);
    assert_eq!(
        body(&post(addr, "/publish?user=alice", &[], b"one")),
        "published\n"
    );
    assert_eq!(next_text(&mut alice), "one");
    // The link dies without a FIN or a reset: only a ping can tell.
    relay.freeze();
    let froze = Instant::now();
    assert!(wait_connected_is(addr, 0.0));
    let noticed = froze.elapsed();
    eprintln!("a silent bus connection noticed after {noticed:?}");
    // 3 s by SPEC; a little more on a loaded machine, never the 10 s of a stuck read.
    assert!(noticed < Duration::from_millis(4500), "{noticed:?}");
    assert_eq!(
        status(&post(addr, "/publish?user=alice", &[], b"lost")),
        503
    );
    relay.thaw();
    assert!(wait_connected(addr, PATIENCE));
    assert_eq!(
        body(&post(addr, "/publish?user=alice", &[], b"two")),
        "published\n"
    );
    assert_eq!(next_text(&mut alice), "two");
    drop(alice);
    let (_, log) = server.stop();
    assert!(log.contains("bus: lost"), "{log}");
    assert!(log.contains("bus: back on"), "{log}");
}

#[test]
fn the_password_never_shows_in_logs_metrics_errors_or_a_programs_environment() {
    const PASSWORD: &str = "redis-Pa55word-7f3a9c";
    let Some(redis) = Redis::start("password", &["--requirepass", PASSWORD]) else {
        return;
    };
    let key = key_file("bus-password");
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", redis.port());
    let (server, addr) = instance(&url, &key, &["--log-level", "debug", "--exec", "env"]);
    assert!(wait_connected(addr, PATIENCE));
    let (mut alice, _) = connect_bearer(addr, ALICE).expect("the upgrade");
    alice.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
    let mut environment = String::new();
    loop {
        match alice.read() {
            Ok(Message::Text(line)) => environment.push_str(&format!("{line}\n")),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    assert!(environment.contains("WSAUTH_USER=alice"), "{environment}");
    assert!(!environment.contains(PASSWORD), "{environment}");
    assert!(!environment.contains("redis://"), "{environment}");
    let metrics = common::get(addr, "/metrics", &[]);
    assert!(!metrics.contains(PASSWORD));
    // A wrong password: refused by Redis, said once, never shown.
    let wrong = format!("redis://:not-{PASSWORD}@127.0.0.1:{}/0", redis.port());
    let (refused, refused_addr) = instance(&wrong, &key, &[]);
    assert_eq!(status(&post(refused_addr, "/publish?all", &[], b"x")), 503);
    // A URL that does not parse: exit 2, the URL not repeated.
    let bad = common::process::finish(&["--redis", &format!("redis://:{PASSWORD}@[::1")]);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("--redis"), "{}", bad.stderr);
    let (_, refused_log) = refused.stop();
    let (_, log) = server.stop();
    for text in [&log, &refused_log, &bad.stderr] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
    let shown = format!("redis://***@127.0.0.1:{}/0", redis.port());
    assert!(
        log.contains(&format!("bus: subscribed on {shown}")),
        "{log}"
    );
    assert!(
        refused_log.contains(&format!("bus: cannot reach {shown}"))
            || refused_log.contains(&format!("bus: cannot subscribe on {shown}")),
        "{refused_log}"
    );
}

#[test]
fn the_library_publisher_errs_while_the_bus_is_down_and_sessions_stay_local() {
    if Redis::start("library", &[]).is_none() {
        return;
    }
    let mut config = wsauth::Config::default();
    let url = format!("redis://127.0.0.1:{}/0", free_port());
    config.bus = Some(wsauth::bus::BusSettings::new(&url, "wsauth").unwrap());
    let server = common::start(config);
    let mut alice = session(server.local_addr(), ALICE);
    let publisher = server.publisher();
    assert_eq!(publisher.to_all("x"), Err(wsauth::PublishError::BusDown));
    assert_eq!(
        publisher.to_user("alice", "x"),
        Err(wsauth::PublishError::BusDown)
    );
    assert_eq!(
        publisher.disconnect_user("alice"),
        Err(wsauth::PublishError::BusDown)
    );
    // The local view works whatever the bus does.
    assert_eq!(server.sessions().broadcast("local"), 1);
    assert_eq!(next_text(&mut alice), "local");
    assert_eq!(
        wsauth::bus::BusSettings::new("http://x", "wsauth").unwrap_err(),
        wsauth::bus::BusError::Url
    );
    assert_eq!(
        wsauth::bus::BusSettings::new("redis://127.0.0.1", "a:b").unwrap_err(),
        wsauth::bus::BusError::Prefix
    );
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
