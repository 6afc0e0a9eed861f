//! `--metrics`: `GET /metrics` in the Prometheus text format; each refusal
//! moves exactly one `wsauth_rejections_total` reason; messages, bytes and
//! closes are counted; the gauges return to 0.

mod common;

use common::{
    ALICE, PATIENCE, connect, connect_alice, eventually, get, head_of_len, header, raw,
    raw_upgrade, refused_status, start, status, upgrade_request,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use wsauth::{Config, Server};

fn with_metrics(change: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config::default();
    config.metrics = true;
    change(&mut config);
    start(config)
}

/// Every sample of `GET /metrics`, by its name and labels.
fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let answer = get(addr, "/metrics", &[]);
    assert_eq!(status(&answer), 200, "{answer}");
    common::body(&answer)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Every `reason` of `wsauth_rejections_total`, as the metrics document them.
const REJECTION_REASONS: [&str; 12] = [
    "missing_token",
    "invalid_token",
    "throttled",
    "origin",
    "subprotocol",
    "busy",
    "bad_request",
    "head_too_large",
    "timeout",
    "pending_per_ip",
    "evicted",
    "no_thread",
];

fn rejections(addr: SocketAddr) -> BTreeMap<&'static str, f64> {
    let all = scrape(addr);
    REJECTION_REASONS
        .iter()
        .map(|&reason| {
            let key = format!("wsauth_rejections_total{{reason=\"{reason}\"}}");
            (reason, all[&key])
        })
        .collect()
}

/// Runs `refuse` and checks that exactly `reason` moved, by one.
fn moves_only(addr: SocketAddr, reason: &str, refuse: impl FnOnce()) {
    let before = rejections(addr);
    refuse();
    let mut after = rejections(addr);
    // A refusal may be counted just after its answer left: wait for it.
    eventually(PATIENCE, || {
        after = rejections(addr);
        after[reason] > before[reason]
    });
    for (name, value) in &after {
        let expected = before[name] + if *name == reason { 1.0 } else { 0.0 };
        assert_eq!(*value, expected, "{name} after a {reason} refusal");
    }
}

#[test]
fn without_the_flag_metrics_is_a_404() {
    let server = start(Config::default());
    assert_eq!(status(&get(server.local_addr(), "/metrics", &[])), 404);
}

#[test]
fn metrics_are_prometheus_text() {
    let server = with_metrics(|_| {});
    let answer = get(server.local_addr(), "/metrics", &[]);
    assert_eq!(status(&answer), 200);
    assert_eq!(
        header(&answer, "Content-Type"),
        Some("text/plain; version=0.0.4")
    );
    common::assert_well_framed(&answer);
    for name in [
        "wsauth_connections_open",
        "wsauth_sessions_open",
        "wsauth_sessions_total",
        "wsauth_messages_received_total",
        "process_cpu_seconds_total",
    ] {
        assert!(
            answer.contains(&format!("# TYPE {name} ")),
            "{name} in {answer}"
        );
    }
    let post = raw(
        server.local_addr(),
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status(&post), 405);
}

#[test]
fn each_refusal_moves_exactly_one_reason() {
    let server = with_metrics(|c| {
        c.max_auth_failures = 3;
        c.handshake_timeout = Duration::from_secs(1);
    });
    let addr = server.local_addr();
    let upgrade = |headers: &[&str]| raw_upgrade(addr, &upgrade_request(addr, "/ws", headers));
    moves_only(addr, "missing_token", || {
        assert_eq!(status(&upgrade(&[])), 401)
    });
    moves_only(addr, "invalid_token", || {
        assert_eq!(status(&upgrade(&["Authorization: Bearer nope"])), 401)
    });
    moves_only(addr, "origin", || {
        let answer = upgrade(&["Authorization: Bearer nope", "Origin: http://evil.example"]);
        assert_eq!(status(&answer), 403)
    });
    moves_only(addr, "subprotocol", || {
        assert_eq!(status(&upgrade(&["Sec-WebSocket-Protocol: bearer.x"])), 400)
    });
    moves_only(addr, "bad_request", || {
        assert_eq!(status(&raw(addr, b"NOT HTTP AT ALL\r\n\r\n")), 400)
    });
    moves_only(addr, "bad_request", || {
        let answer = raw_upgrade(
            addr,
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        );
        assert_eq!(status(&answer), 400)
    });
    moves_only(addr, "head_too_large", || {
        assert_eq!(status(&raw(addr, &head_of_len(9000, true))), 431)
    });
    moves_only(addr, "timeout", || {
        assert_eq!(raw(addr, b"GET / HTTP/1.1\r\n"), "")
    });
    moves_only(addr, "invalid_token", || {
        assert_eq!(status(&upgrade(&["Authorization: Bearer nope"])), 401)
    });
    moves_only(addr, "throttled", || {
        assert_eq!(status(&upgrade(&["Authorization: Bearer nope"])), 429)
    });
}

#[test]
fn a_failed_first_message_and_a_busy_server_are_counted() {
    let server = with_metrics(|c| {
        c.first_message_auth = true;
        c.max_connections = 2;
    });
    let addr = server.local_addr();
    moves_only(addr, "invalid_token", || {
        let (mut ws, _) = connect(addr, "/ws", &[]).unwrap();
        ws.send(Message::text("not-the-token")).unwrap();
        assert_eq!(common::expect_close(&mut ws).0, 1008);
    });
    assert!(eventually(PATIENCE, || server.open_connections() == 0));
    let _one = connect_alice(addr);
    let two = connect_alice(addr);
    assert!(eventually(PATIENCE, || server.open_connections() == 2));
    // Every connection is a session: 503. The scrape waits for room.
    let answer = raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&answer), 503);
    drop(two);
    assert!(eventually(PATIENCE, || server.open_connections() == 1));
    assert_eq!(rejections(addr)["busy"], 1.0);
}

#[test]
fn messages_bytes_and_closes_are_counted_and_gauges_return_to_zero() {
    let server = with_metrics(|_| {});
    let addr = server.local_addr();
    let bearer = format!("Bearer {ALICE}");
    let (mut ws, _) = connect(addr, "/ws", &[("Authorization", &bearer)]).unwrap();
    assert_eq!(common::next_text(&mut ws), "Hello alice");
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(common::next_text(&mut ws), "Message text was: hi");
    ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![1, 2, 3]));
    // A message is counted just after its write: the client may read it first.
    let mut during = scrape(addr);
    assert!(eventually(PATIENCE, || {
        during = scrape(addr);
        // Earlier scrapes count until the server has seen them close.
        during["wsauth_messages_sent_total"] == 3.0 && during["wsauth_connections_open"] == 2.0
    }));
    assert_eq!(during["wsauth_sessions_open"], 1.0);
    assert_eq!(during["wsauth_sessions_total"], 1.0);
    // The scrape's own connection and the session.
    assert_eq!(during["wsauth_connections_open"], 2.0);
    assert_eq!(during["wsauth_messages_received_total"], 2.0);
    assert_eq!(during["wsauth_bytes_received_total"], 5.0);
    // Greeting (11 bytes), echo (20) and binary (3).
    assert_eq!(during["wsauth_messages_sent_total"], 3.0);
    assert_eq!(during["wsauth_bytes_sent_total"], 34.0);
    ws.close(Some(CloseFrame {
        code: 1000.into(),
        reason: "".into(),
    }))
    .unwrap();
    while ws.read().is_ok() {}
    let refused = refused_status(connect(addr, "/ws", &[]));
    assert_eq!(refused, 401);
    let mut after = scrape(addr);
    assert!(eventually(PATIENCE, || {
        after = scrape(addr);
        after["wsauth_sessions_open"] == 0.0 && after["wsauth_connections_open"] == 1.0
    }));
    assert_eq!(after["wsauth_session_closes_total{code=\"1000\"}"], 1.0);
    assert_eq!(after["wsauth_sessions_total"], 1.0);
    assert!(
        !scrape(addr).keys().any(|k| k.contains("alice")),
        "no user in any label"
    );
}

/// Closes its session with 4001 when told `bye`.
struct ClosesWith4001;

impl wsauth::Handler for ClosesWith4001 {
    fn on_text(&mut self, text: &str, reply: &mut wsauth::Reply<'_>) {
        if text == "bye" {
            reply.close(4001, "as asked");
        }
    }
}

#[test]
fn application_close_codes_are_counted_by_their_number() {
    let mut config = Config::default();
    config.metrics = true;
    let store = wsauth::TokenStore::new(vec![common::grant("alice", ALICE, None)]);
    let server =
        Server::start_with_handler("127.0.0.1:0", config, store, |_| ClosesWith4001).unwrap();
    let addr = server.local_addr();
    let bearer = format!("Bearer {ALICE}");
    let (mut ws, _) = connect(addr, "/ws", &[("Authorization", &bearer)]).unwrap();
    ws.send(Message::text("bye")).unwrap();
    assert_eq!(common::expect_close(&mut ws).0, 4001);
    let key = "wsauth_session_closes_total{code=\"4001\"}";
    let mut after = scrape(addr);
    assert!(
        eventually(PATIENCE, || {
            after = scrape(addr);
            after.get(key) == Some(&1.0)
        }),
        "{after:?}"
    );
    assert_eq!(after["wsauth_session_closes_total{code=\"other\"}"], 0.0);
}
