//! The Redis bus (feature `redis`) when things go wrong, against a real
//! `redis-server`: Redis down at start, killed and started again, silent, a
//! bus connection gone dead, the library's publisher meanwhile; and the
//! password never shown.
#![cfg(feature = "redis")]

mod common;

use common::bus::*;
use common::redis::{Redis, Relay, Silent, free_port};
use common::{ALICE, PATIENCE, body, connect_bearer, eventually, header};
use common::{next_text, status};
use std::time::{Duration, Instant};
use tungstenite::Message;

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
