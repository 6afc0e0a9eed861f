//! Two `wsauth` binaries behind nginx and HAProxy, run with the very files
//! in `deploy/`: every token source, the refusals keep their status, the
//! throttle and the logs see each client's own IP (clients bound to
//! 127.0.0.2 and 127.0.0.3), and a revoked token closes its sessions on
//! both instances. The rolling restart is in `tests/deploy_rolling.rs`.
//!
//! These need nginx and HAProxy; where either is missing they print
//! `SKIPPED` and pass, unless `WSAUTH_PROXY_TESTS=required` (as in `.ci/run`).

mod common;

use common::deploy::*;
use common::proxies::ProxyKind;
use common::{ALICE, BOB, PATIENCE, connect_from_ip, get, next_text, status};
use std::net::SocketAddr;
use tungstenite::Message;

/// The header, the subprotocol, the query and the first message, each
/// through the proxy from client A.
fn every_token_source_opens_a_session(proxy: SocketAddr) {
    let bearer = format!("Bearer {ALICE}");
    let hello = Ok("Hello alice".to_string());
    assert_eq!(
        attempt(CLIENT_A, proxy, "/ws", &[("Authorization", &bearer)]),
        hello
    );
    let offer = format!("chat, bearer.{ALICE}");
    let (mut ws, response) = connect_from_ip(
        CLIENT_A,
        proxy,
        "/ws",
        &[("Sec-WebSocket-Protocol", &offer)],
    )
    .unwrap();
    assert_eq!(response.headers()["Sec-WebSocket-Protocol"], "chat");
    assert_eq!(next_text(&mut ws), "Hello alice");
    drop(ws);
    assert_eq!(
        attempt(CLIENT_A, proxy, &format!("/ws?token={ALICE}"), &[]),
        hello
    );
    let (mut ws, _) = connect_from_ip(CLIENT_A, proxy, "/ws", &[]).unwrap();
    ws.send(Message::text(ALICE)).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    drop(ws);
}

/// The clients' own addresses in the log, never the proxy's, and no token.
fn assert_logs_name_the_clients(logs: &str) {
    assert!(logs.contains("127.0.0.2:"), "{logs}");
    assert!(logs.contains("127.0.0.3:"), "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("127.0.0.2:") && l.contains("rejected: invalid token")),
        "{logs}"
    );
    assert_no_proxy_address(logs);
    assert!(!logs.contains(ALICE), "a token in the logs");
}

/// No session or rejection line names the proxy's address instead of a client's.
fn assert_no_proxy_address(logs: &str) {
    for line in logs
        .lines()
        .filter(|l| l.contains("session opened") || l.contains("rejected"))
    {
        assert!(
            !line.contains(" 127.0.0.1:"),
            "the proxy's address in {line}"
        );
    }
}

/// Wrong tokens from client A until a 429 (five at most): each status.
fn fail_until_429(proxy: SocketAddr) -> Vec<u16> {
    let wrong = [("Authorization", "Bearer wrong")];
    let mut statuses = Vec::new();
    while statuses.len() < 5 && statuses.last() != Some(&429) {
        statuses.push(attempt(CLIENT_A, proxy, "/ws", &wrong).unwrap_err());
    }
    statuses
}

fn every_token_source_and_refusal_through(kind: ProxyKind) {
    let Some(deployment) = deploy(kind, "sources", &["--first-message-auth"]) else {
        return;
    };
    let proxy = deployment.proxy.addr();
    let page = get(proxy, "/", &["Connection: close"]);
    assert_eq!(status(&page), 200, "{page}");
    every_token_source_opens_a_session(proxy);
    let bearer = format!("Bearer {ALICE}");
    let hello = Ok("Hello alice".to_string());
    // The page's own origin is the public address the client used.
    let own = format!("http://{proxy}");
    let with_origin = [("Authorization", bearer.as_str()), ("Origin", own.as_str())];
    assert_eq!(attempt(CLIENT_A, proxy, "/ws", &with_origin), hello);
    let foreign = [
        ("Authorization", bearer.as_str()),
        ("Origin", "http://evil.example"),
    ];
    assert_eq!(attempt(CLIENT_A, proxy, "/ws", &foreign), Err(403));
    // Client A fails until 429: the throttle is per instance (2 each).
    let statuses = fail_until_429(proxy);
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == 401));
    // Client B, behind the same proxy, is never throttled by A's failures.
    for _ in 0..4 {
        assert_eq!(
            attempt(CLIENT_B, proxy, "/ws", &[("Authorization", &bearer)]),
            hello
        );
    }
    assert_logs_name_the_clients(&deployment.stop());
}

#[test]
fn every_token_source_and_refusal_through_nginx() {
    every_token_source_and_refusal_through(ProxyKind::Nginx);
}

#[test]
fn every_token_source_and_refusal_through_haproxy() {
    every_token_source_and_refusal_through(ProxyKind::Haproxy);
}

fn a_revoked_token_closes_its_sessions_on_both(kind: ProxyKind) {
    let Some(deployment) = deploy(kind, "revoke", &[]) else {
        return;
    };
    let mut sessions: Vec<common::Client> =
        (0..4).map(|_| held_session(&deployment.proxy)).collect();
    deployment.tokens.rewrite(format!("bob:{BOB}\n").as_bytes());
    for ws in &mut sessions {
        ws.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
        let (code, reason) = common::expect_close(ws);
        assert_eq!((code, reason.as_str()), (1008, "token revoked"));
    }
    let logs = deployment.stop_each();
    let revoked: Vec<usize> = logs
        .iter()
        .map(|l| l.matches("token revoked").count())
        .collect();
    assert_eq!(revoked.iter().sum::<usize>(), 4, "{logs:?}");
    assert!(
        revoked.iter().all(|n| *n > 0),
        "sessions on both instances: {revoked:?}"
    );
}

#[test]
fn a_revoked_token_closes_its_sessions_behind_nginx() {
    a_revoked_token_closes_its_sessions_on_both(ProxyKind::Nginx);
}

#[test]
fn a_revoked_token_closes_its_sessions_behind_haproxy() {
    a_revoked_token_closes_its_sessions_on_both(ProxyKind::Haproxy);
}

#[test]
fn haproxy_with_proxy_protocol_names_the_client() {
    let Some(deployment) = deploy(ProxyKind::HaproxyProxyProtocol, "pp", &["--proxy-protocol"])
    else {
        return;
    };
    let proxy = deployment.proxy.addr();
    let page = get(proxy, "/", &[]);
    assert_eq!(status(&page), 200, "{page}");
    let bearer = format!("Bearer {ALICE}");
    let hello = Ok("Hello alice".to_string());
    assert_eq!(
        attempt(CLIENT_A, proxy, "/ws", &[("Authorization", &bearer)]),
        hello
    );
    let statuses = fail_until_429(proxy);
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert_eq!(
        attempt(CLIENT_B, proxy, "/ws", &[("Authorization", &bearer)]),
        hello
    );
    let logs = deployment.stop();
    assert!(
        logs.contains("127.0.0.2:") && logs.contains("127.0.0.3:"),
        "{logs}"
    );
    assert_no_proxy_address(&logs);
}
