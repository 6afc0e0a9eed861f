//! At the thread ceiling, an answer and never silence: the binary runs in a
//! cgroup of its own whose `pids.max` lets it hold only a few dozen threads
//! (the host's limits are not touched). Sessions past it get 503 with
//! `Retry-After` at once, the health check too; the sessions already open
//! go on; service resumes as soon as some end; one log line a second at
//! most; `reason="no_thread"` counts them; the start warns that
//! `--max-connections` is past the limit.
//!
//! Needs a writable cgroup `pids` controller (v1, as root), which Linux CI
//! machines have; elsewhere `SKIPPED`, a failure with
//! `WSAUTH_CGROUP_TESTS=required`.

mod common;

use common::process::Wsauth;
use common::{ALICE, Client, PATIENCE, connect_bearer, eventually, get, header, next_text, status};
use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;
use tungstenite::Message;

/// Tasks the server's cgroup may hold: its main, tick and signal threads,
/// and a few dozen connection threads.
const PIDS_MAX: usize = 40;

/// A pids cgroup of this test's own, removed when dropped (after the
/// server in it has ended).
struct Cgroup(PathBuf);

impl Cgroup {
    fn create(name: &str, max: usize) -> Option<Cgroup> {
        let base = PathBuf::from("/sys/fs/cgroup/pids");
        let dir = base.join(format!("wsauth-{name}-{}", std::process::id()));
        let made = fs::create_dir(&dir).map(|()| Cgroup(dir.clone()));
        let limited = made.and_then(|cgroup| {
            fs::write(dir.join("pids.max"), max.to_string())?;
            Ok(cgroup)
        });
        let why = match limited {
            Ok(cgroup) => return Some(cgroup),
            Err(e) => format!("cannot make a pids cgroup under {}: {e}", base.display()),
        };
        if std::env::var("WSAUTH_CGROUP_TESTS").as_deref() == Ok("required") {
            panic!("{why}");
        }
        eprintln!("SKIPPED: cgroup test: {why}; set WSAUTH_CGROUP_TESTS=required to fail instead");
        None
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = eventually(PATIENCE, || fs::remove_dir(&self.0).is_ok());
    }
}

/// The binary, started inside `cgroup` (sh joins it, then execs wsauth),
/// with `extra` flags; its address once it listens on `scheme`.
fn serve_in(cgroup: &Cgroup, extra: &[&str], scheme: &str) -> (Wsauth, SocketAddr) {
    let join = format!(
        "echo $$ > {}/cgroup.procs && exec \"$0\" \"$@\"",
        cgroup.0.display()
    );
    let token = format!("alice:{ALICE}");
    let mut args = vec![
        "-c",
        &join,
        env!("CARGO_BIN_EXE_wsauth"),
        "--listen",
        "127.0.0.1:0",
        "--token",
        &token,
        "--metrics",
        "--max-connections",
        "1000",
    ];
    args.extend_from_slice(extra);
    let mut wsauth = Wsauth::spawn_program("/bin/sh".as_ref(), &args, &[]);
    let addr = wsauth.listen_addr_of(scheme);
    (wsauth, addr)
}

/// Sessions until the OS refuses a thread, every upgrade answered: the
/// sessions and the count of 503s.
fn fill_to_the_ceiling(addr: SocketAddr) -> (Vec<Client>, usize) {
    let mut sessions = Vec::new();
    let mut refused = 0;
    for _ in 0..PIDS_MAX + 10 {
        match connect_bearer(addr, ALICE) {
            Ok((mut ws, _)) => {
                assert_eq!(next_text(&mut ws), "Hello alice");
                sessions.push(ws);
            }
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 503);
                assert!(response.headers().contains_key("retry-after"));
                refused += 1;
            }
            Err(e) => panic!("an upgrade at the ceiling got no answer: {e}"),
        }
    }
    (sessions, refused)
}

/// `wsauth_rejections_total{reason="no_thread"}` as `/metrics` has it.
fn no_thread_count(addr: SocketAddr) -> usize {
    let metrics = get(addr, "/metrics", &[]);
    let line = metrics
        .lines()
        .find(|l| l.starts_with("wsauth_rejections_total{reason=\"no_thread\"}"))
        .expect("the no_thread count");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn at_the_thread_ceiling_newcomers_get_503_sessions_go_on_and_service_resumes() {
    let Some(cgroup) = Cgroup::create("ceiling", PIDS_MAX) else {
        return;
    };
    let (wsauth, addr) = serve_in(&cgroup, &[], "http");
    let started = Instant::now();
    let (mut sessions, refused) = fill_to_the_ceiling(addr);
    assert!(
        refused >= 10,
        "{} sessions, {refused} refused",
        sessions.len()
    );
    assert!(
        sessions.len() >= PIDS_MAX / 2,
        "{} sessions",
        sessions.len()
    );
    // The health check gets its answer too, at once.
    let answer = get(addr, "/healthz", &[]);
    assert_eq!(status(&answer), 503, "{answer}");
    assert!(header(&answer, "Retry-After").is_some(), "{answer}");
    // The sessions go on.
    for ws in sessions.iter_mut().take(3) {
        ws.send(Message::text("still here")).expect("sent");
        assert_eq!(next_text(ws), "Message text was: still here");
    }
    // A few end: their threads serve newcomers again.
    for mut ws in sessions.drain(..5) {
        let _ = ws.close(None);
        while ws.read().is_ok() {}
    }
    let resumed = eventually(PATIENCE, || connect_bearer(addr, ALICE).is_ok());
    assert!(resumed, "no session after five ended");
    let counted = no_thread_count(addr);
    assert!(
        counted > refused,
        "{counted} counted, {refused} refused upgrades and /healthz"
    );
    drop(sessions);
    let (_, stderr) = wsauth.stop();
    let seconds = started.elapsed().as_secs() as usize;
    assert_refusals_logged(&stderr, seconds);
}

/// One warning at start naming the cgroup's limit, and the refusals in
/// summary lines, at most one a second (and the first at once).
fn assert_refusals_logged(stderr: &str, seconds: usize) {
    let start = stderr
        .lines()
        .filter(|l| l.contains("--max-connections 1000 is past "))
        .collect::<Vec<_>>();
    assert_eq!(start.len(), 1, "{stderr}");
    assert!(
        start[0].contains(&format!("pids.max: {PIDS_MAX} threads")),
        "{stderr}"
    );
    let summaries = stderr
        .lines()
        .filter(|l| l.contains("connection(s): no thread"))
        .count();
    assert!(
        summaries >= 1 && summaries <= seconds + 2,
        "{summaries} lines in {seconds} s:\n{stderr}"
    );
    assert!(
        stderr.contains("answered 503 to 1 connection(s)"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_limit_of_threads_below_max_connections_is_not_warned_of_when_it_fits() {
    let Some(cgroup) = Cgroup::create("roomy", 5000) else {
        return;
    };
    let (wsauth, addr) = serve_in(&cgroup, &[], "http");
    assert_eq!(status(&get(addr, "/healthz", &[])), 200);
    let (_, stderr) = wsauth.stop();
    assert!(!stderr.contains("is past "), "{stderr}");
}

#[cfg(feature = "tls")]
#[test]
fn at_the_thread_ceiling_a_tls_newcomer_is_closed_at_once() {
    use common::handshake;
    use common::tls::{BOTH, Pair, try_tls_connect};
    let Some(cgroup) = Cgroup::create("ceiling-tls", PIDS_MAX) else {
        return;
    };
    let pair = Pair::new();
    let tls = ["--tls-cert", pair.cert_arg(), "--tls-key", pair.key_arg()];
    let (wsauth, addr) = serve_in(&cgroup, &tls, "https");
    let bearer = format!("Bearer {ALICE}");
    let headers = [("Authorization", bearer.as_str())];
    let url = format!("wss://{addr}/ws");
    let mut sessions = Vec::new();
    let mut refused = 0;
    for _ in 0..PIDS_MAX + 10 {
        let asked = Instant::now();
        match try_tls_connect(addr, &pair.der, BOTH) {
            Ok(tls) => {
                let (mut ws, _) = handshake(&url, &headers, tls).expect("a session");
                assert_eq!(next_text(&mut ws), "Hello alice");
                sessions.push(ws);
            }
            // Closed before any TLS byte: no plain answer to a TLS client.
            Err(e) => {
                let waited = asked.elapsed();
                assert!(waited < PATIENCE / 2, "closed only after {waited:?}: {e}");
                refused += 1;
            }
        }
    }
    assert!(
        refused >= 10,
        "{} sessions, {refused} refused",
        sessions.len()
    );
    for mut ws in sessions.drain(..5) {
        let _ = ws.close(None);
        while ws.read().is_ok() {}
    }
    let resumed = eventually(PATIENCE, || try_tls_connect(addr, &pair.der, BOTH).is_ok());
    assert!(resumed, "no TLS handshake after five sessions ended");
    drop(sessions);
    let (_, stderr) = wsauth.stop();
    assert!(stderr.contains("connection(s): no thread"), "{stderr}");
}
