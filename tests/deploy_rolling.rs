//! Two `wsauth` binaries behind nginx and HAProxy, run with the very files
//! in `deploy/`: a rolling restart, one instance after the other, loses no
//! upgrade, and every session held on a stopped instance gets 1001.
//!
//! These need nginx and HAProxy; where either is missing they print
//! `SKIPPED` and pass, unless `WSAUTH_PROXY_TESTS=required` (as in `.ci/run`).

mod common;

use common::deploy::*;
use common::proxies::ProxyKind;
use common::{ALICE, connect_from_ip};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tungstenite::Message;

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

/// Drops the held sessions that got a 1001 (their instance stopped);
/// returns how many.
fn drop_closed_with_1001(held: &mut Vec<common::Client>) -> usize {
    let before = held.len();
    held.retain_mut(|ws| {
        ws.get_ref().set_nonblocking(false).ok();
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(300)))
            .ok();
        match ws.read() {
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1001);
                false
            }
            _ => true,
        }
    });
    before - held.len()
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
        closed_1001 += drop_closed_with_1001(&mut held);
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
