//! Two `wsauth` binaries behind nginx and HAProxy, run with the very files
//! in `deploy/`: every token source, the refusals keep their status, the
//! throttle and the logs see each client's own IP (clients bound to
//! 127.0.0.2 and 127.0.0.3), a rolling restart loses no upgrade, and a
//! revoked token closes its sessions on both instances.
//!
//! These need nginx and HAProxy; where either is missing they print
//! `SKIPPED` and pass, unless `WSAUTH_PROXY_TESTS=required` (as in `.ci/run`).

mod common;

use common::process::{TempFile, Wsauth};
use common::proxies::{Proxy, ProxyKind};
use common::{ALICE, BOB, PATIENCE, connect_from_ip, get, next_text, status};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tungstenite::Message;

const CLIENT_A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const CLIENT_B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// One wsauth binary on `listen`, reading `tokens`, with `extra` flags.
fn instance(listen: &str, tokens: &TempFile, extra: &[&str]) -> (Wsauth, SocketAddr) {
    let mut args = vec![
        "--listen",
        listen,
        "--tokens-file",
        tokens.path(),
        "--trusted-proxy",
        "127.0.0.1",
        "--max-auth-failures",
        "2",
    ];
    args.extend_from_slice(extra);
    let mut wsauth = Wsauth::spawn(&args, &[]);
    let addr = wsauth.listen_addr();
    (wsauth, addr)
}

struct Deployment {
    proxy: Proxy,
    instances: Vec<(Wsauth, SocketAddr)>,
    tokens: TempFile,
}

/// Two instances reading one tokens file, and `kind` in front of them.
fn deploy(kind: ProxyKind, test: &str, extra: &[&str]) -> Option<Deployment> {
    let tokens = TempFile::new(
        &format!("deploy-{test}-{kind:?}"),
        format!("alice:{ALICE}\nbob:{BOB}\n").as_bytes(),
    );
    let instances = vec![
        instance("127.0.0.1:0", &tokens, extra),
        instance("127.0.0.1:0", &tokens, extra),
    ];
    let upstreams = [instances[0].1, instances[1].1];
    let proxy = Proxy::start(kind, upstreams, &format!("{test} ({kind:?})"))?;
    Some(Deployment {
        proxy,
        instances,
        tokens,
    })
}

impl Deployment {
    /// Stops both instances; returns their stderr, joined.
    fn stop(self) -> String {
        self.stop_each().concat()
    }

    /// Stops both instances; returns the stderr of each.
    fn stop_each(self) -> Vec<String> {
        self.instances
            .into_iter()
            .map(|(wsauth, _)| wsauth.stop().1)
            .collect()
    }
}

/// An upgrade from `client` through the proxy: the greeting, or the status.
fn attempt(
    client: Ipv4Addr,
    proxy: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> Result<String, u16> {
    match connect_from_ip(client, proxy, target, headers) {
        Ok((mut ws, _)) => {
            let greeting = next_text(&mut ws);
            let _ = ws.close(None);
            while ws.read().is_ok() {}
            Ok(greeting)
        }
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("upgrade through the proxy failed: {e}"),
    }
}

fn every_token_source_and_refusal_through(kind: ProxyKind) {
    let Some(deployment) = deploy(kind, "sources", &["--first-message-auth"]) else {
        return;
    };
    let proxy = deployment.proxy.addr();
    let page = get(proxy, "/", &["Connection: close"]);
    assert_eq!(status(&page), 200, "{page}");
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
    let wrong = [("Authorization", "Bearer wrong")];
    let mut statuses = Vec::new();
    while statuses.len() < 5 && statuses.last() != Some(&429) {
        statuses.push(attempt(CLIENT_A, proxy, "/ws", &wrong).unwrap_err());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == 401));
    // Client B, behind the same proxy, is never throttled by A's failures.
    for _ in 0..4 {
        assert_eq!(
            attempt(CLIENT_B, proxy, "/ws", &[("Authorization", &bearer)]),
            hello
        );
    }
    let logs = deployment.stop();
    assert!(logs.contains("127.0.0.2:"), "{logs}");
    assert!(logs.contains("127.0.0.3:"), "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("127.0.0.2:") && l.contains("rejected: invalid token")),
        "{logs}"
    );
    for line in logs
        .lines()
        .filter(|l| l.contains("session opened") || l.contains("rejected"))
    {
        assert!(
            !line.contains(" 127.0.0.1:"),
            "the proxy's address in {line}"
        );
    }
    assert!(!logs.contains(ALICE), "a token in the logs");
}

#[test]
fn every_token_source_and_refusal_through_nginx() {
    every_token_source_and_refusal_through(ProxyKind::Nginx);
}

#[test]
fn every_token_source_and_refusal_through_haproxy() {
    every_token_source_and_refusal_through(ProxyKind::Haproxy);
}

/// What a client opening sessions through the proxy saw.
#[derive(Default)]
struct Tally {
    attempts: AtomicU64,
    /// The upgrade itself failed: no 101, or no greeting after it.
    failures: AtomicU64,
    /// Upgraded on an instance that was just stopping: closed with 1001
    /// before the greeting, as any session there is; the client goes on.
    closed_1001: AtomicU64,
    first_failures: std::sync::Mutex<Vec<String>>,
}

/// Opens sessions through `proxy` one after another until told to stop.
fn keep_opening(
    proxy: SocketAddr,
    stop: Arc<AtomicBool>,
) -> (Arc<Tally>, std::thread::JoinHandle<()>) {
    let tally = Arc::new(Tally::default());
    let counts = tally.clone();
    let thread = std::thread::spawn(move || {
        let bearer = format!("Bearer {ALICE}");
        while !stop.load(Ordering::SeqCst) {
            counts.attempts.fetch_add(1, Ordering::SeqCst);
            let failure =
                match connect_from_ip(CLIENT_A, proxy, "/ws", &[("Authorization", &bearer)]) {
                    Ok((mut ws, _)) => {
                        let first = ws.read();
                        let _ = ws.close(None);
                        while ws.read().is_ok() {}
                        match first {
                            Ok(Message::Text(t)) if t.as_str() == "Hello alice" => None,
                            Ok(Message::Close(Some(frame))) if u16::from(frame.code) == 1001 => {
                                counts.closed_1001.fetch_add(1, Ordering::SeqCst);
                                None
                            }
                            other => Some(format!("after the 101: {other:?}")),
                        }
                    }
                    Err(e) => Some(format!("upgrade: {e}")),
                };
            if let Some(failure) = failure {
                counts.failures.fetch_add(1, Ordering::SeqCst);
                let mut first = counts.first_failures.lock().unwrap();
                if first.len() < 5 {
                    first.push(failure);
                }
            }
        }
    });
    (tally, thread)
}

/// A session through the proxy, from client B.
fn held_session(proxy: &Proxy) -> common::Client {
    let bearer = format!("Bearer {ALICE}");
    let (mut ws, _) = connect_from_ip(CLIENT_B, proxy.addr(), "/ws", &[("Authorization", &bearer)])
        .unwrap_or_else(|e| panic!("a held session: {e}\n{}", proxy.log()));
    assert_eq!(next_text(&mut ws), "Hello alice");
    ws
}

fn a_rolling_restart_loses_no_upgrade(kind: ProxyKind) {
    let Some(mut deployment) = deploy(kind, "rolling", &[]) else {
        return;
    };
    let proxy = deployment.proxy.addr();
    // Sessions held across the restart: with two instances, four spread over both.
    let mut held: Vec<common::Client> = (0..4).map(|_| held_session(&deployment.proxy)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (tally, client) = keep_opening(proxy, stop.clone());
    let started = Instant::now();
    let mut closed_1001 = 0;
    for index in 0..2 {
        let (wsauth, addr) = deployment.instances.remove(index);
        let (_, log) = wsauth.stop();
        assert!(log.contains("shutting down"), "{log}");
        // Every held session on the stopped instance got 1001, and reconnects.
        held.retain_mut(|ws| {
            ws.get_ref().set_nonblocking(false).ok();
            ws.get_ref()
                .set_read_timeout(Some(Duration::from_millis(300)))
                .ok();
            match ws.read() {
                Ok(Message::Close(Some(frame))) => {
                    assert_eq!(u16::from(frame.code), 1001);
                    closed_1001 += 1;
                    false
                }
                _ => true,
            }
        });
        while held.len() < 4 {
            held.push(held_session(&deployment.proxy));
        }
        let restarted = instance(&addr.to_string(), &deployment.tokens, &[]);
        assert_eq!(restarted.1, addr);
        deployment.instances.insert(index, restarted);
        // Let the proxy notice it is back before stopping the other.
        std::thread::sleep(Duration::from_secs(3));
    }
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();
    let attempts = tally.attempts.load(Ordering::SeqCst);
    let failures = tally.failures.load(Ordering::SeqCst);
    let new_closed = tally.closed_1001.load(Ordering::SeqCst);
    eprintln!(
        "rolling restart through {kind:?}: {attempts} upgrades attempted, {failures} failed, \
         {new_closed} new sessions closed with 1001 by the restart, {closed_1001} held \
         sessions closed with 1001, in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(attempts > 20, "{attempts} attempts");
    assert_eq!(
        failures,
        0,
        "{failures} of {attempts} upgrades failed: {:?}\nthe proxy's log, but for the 101s:\n{}",
        tally.first_failures.lock().unwrap(),
        deployment
            .proxy
            .log()
            .lines()
            .filter(|line| !line.contains(" 101 "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(closed_1001 >= 2, "{closed_1001} sessions got 1001");
}

#[test]
fn a_rolling_restart_behind_nginx_loses_no_upgrade() {
    a_rolling_restart_loses_no_upgrade(ProxyKind::Nginx);
}

#[test]
fn a_rolling_restart_behind_haproxy_loses_no_upgrade() {
    a_rolling_restart_loses_no_upgrade(ProxyKind::Haproxy);
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
    let wrong = [("Authorization", "Bearer wrong")];
    let mut statuses = Vec::new();
    while statuses.len() < 5 && statuses.last() != Some(&429) {
        statuses.push(attempt(CLIENT_A, proxy, "/ws", &wrong).unwrap_err());
    }
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
