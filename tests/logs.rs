//! What the binary logs on stderr: a line per session open and close, a line
//! per rejection, at info; never a token, at any level; and which level
//! `--log-level` and `RUST_LOG` choose.

mod common;

use common::process::Wsauth;
use common::*;
use std::net::SocketAddr;
use tungstenite::Message;

/// A token no test ever configures: it must never show up anywhere.
const WRONG: &str = "wrong-Zq8vK2";

#[test]
fn a_session_logs_its_opening_and_its_end_with_counts_and_close_code() {
    let (server, addr) = Wsauth::serve(&["--token", "alice:log-test-token"], &[]);
    let (mut ws, _) = connect(addr, "/ws?token=log-test-token", &[]).unwrap();
    let local = ws.get_ref().local_addr().unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    for text in ["one", "two"] {
        ws.send(Message::text(text)).unwrap();
        next_text(&mut ws);
    }
    ws.close(Some(tungstenite::protocol::CloseFrame {
        code: 4321.into(),
        reason: "done".into(),
    }))
    .unwrap();
    while ws.read().is_ok() {}

    let (_, stderr) = server.stop();
    let opened = stderr
        .lines()
        .find(|l| l.contains("session opened"))
        .expect("an open line");
    assert!(
        opened.contains("INFO") && opened.contains(&local.to_string()) && opened.contains("alice"),
        "{opened}"
    );
    let closed = stderr
        .lines()
        .find(|l| l.contains("session closed"))
        .expect("a close line");
    assert!(
        closed.contains("alice") && closed.contains("2 in, 3 out") && closed.contains("close 4321"),
        "{closed}"
    );
}

#[test]
fn a_rejection_logs_the_peer_and_the_reason_at_info() {
    let (server, addr) = Wsauth::serve(&["--token", "alice:log-test-token"], &[]);
    assert_eq!(
        refused_status(connect(addr, "/ws?token=not-the-token", &[])),
        401
    );
    let (_, stderr) = server.stop();
    let line = stderr
        .lines()
        .find(|l| l.contains("rejected"))
        .expect("a rejection line");
    assert!(
        line.contains("INFO") && line.contains("127.0.0.1:") && line.contains("invalid token"),
        "{line}"
    );
    assert!(!stderr.contains("not-the-token"));
}

// ---- no token in any log ----

/// Everything that can bring a token near a log line: wrong and right tokens
/// in each source, a first-message token, and the same on a plain path.
fn exercise_every_token_source(addr: SocketAddr, right: &str) {
    let hostile = [
        format!("/ws?token={WRONG}"),
        format!("/ws?a=1&token={WRONG}&token={right}"),
    ];
    for target in &hostile {
        let answer = raw_upgrade(addr, &upgrade_request(addr, target, &[]));
        assert_eq!(status(&answer), 401, "{answer}");
    }
    let answer = raw_upgrade(
        addr,
        &upgrade_request(addr, "/ws", &[&format!("Authorization: Bearer {WRONG}")]),
    );
    assert_eq!(status(&answer), 401, "{answer}");
    let answer = raw_upgrade(
        addr,
        &upgrade_request(
            addr,
            "/ws",
            &[&format!("Sec-WebSocket-Protocol: chat, bearer.{WRONG}")],
        ),
    );
    assert_eq!(status(&answer), 401, "{answer}");
    let answer = get(addr, &format!("/nope?token={right}"), &[]);
    assert_eq!(status(&answer), 404);

    let bearer = format!("Bearer {right}");
    assert_eq!(
        greeting_with(addr, "/ws", &[("Authorization", &bearer)]),
        "Hello alice"
    );
    let subprotocols = format!("chat, bearer.{right}");
    assert_eq!(
        greeting_with(addr, "/ws", &[("Sec-WebSocket-Protocol", &subprotocols)]),
        "Hello alice"
    );
    assert_eq!(
        greeting_with(addr, &format!("/ws?token={right}"), &[]),
        "Hello alice"
    );

    // First-message authentication: the token travels in a frame.
    let (mut ws, _) = connect(addr, "/ws", &[]).expect("an upgrade without a token");
    ws.send(Message::text(right)).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(next_text(&mut ws), "Message text was: hi");
    let _ = ws.close(None);
    while ws.read().is_ok() {}
    let (mut ws, _) = connect(addr, "/ws", &[]).expect("an upgrade without a token");
    ws.send(Message::text(WRONG)).unwrap();
    assert_eq!(expect_close(&mut ws).0, 1008);
}

/// Runs [`exercise_every_token_source`] at `level`; asserts that stderr shows
/// neither token; returns stderr.
fn assert_no_token_in_logs(level: &str) -> String {
    let right = "Sekrit42-right";
    let (wsauth, addr) = Wsauth::serve(
        &[
            "--token",
            &format!("alice:{right}"),
            "--first-message-auth",
            "--log-level",
            level,
        ],
        &[],
    );
    exercise_every_token_source(addr, right);
    let (stdout, stderr) = wsauth.stop();
    assert_eq!(stdout, Vec::<String>::new(), "logs went to stdout");
    assert!(stderr.contains("alice"), "no session logged: {stderr}");
    for secret in [right, WRONG] {
        let leaks: Vec<&str> = stderr.lines().filter(|l| l.contains(secret)).collect();
        assert!(
            leaks.is_empty(),
            "--log-level {level} shows a token: {leaks:#?}"
        );
    }
    stderr
}

#[test]
fn trace_logs_never_show_a_token() {
    assert_no_token_in_logs("trace");
}

#[test]
fn debug_logs_never_show_a_token_and_replace_a_query_token_with_stars() {
    let stderr = assert_no_token_in_logs("debug");
    assert!(stderr.contains("token=***"), "{stderr}");
}

#[test]
fn logs_go_to_stderr_and_never_to_stdout() {
    let (wsauth, addr) = Wsauth::serve(&["--token", "alice:Sekrit42", "--log-level", "trace"], &[]);
    assert_eq!(status(&get(addr, "/", &[])), 200);
    assert_eq!(
        status(&raw_upgrade(addr, &upgrade_request(addr, "/ws", &[]))),
        401
    );
    let (mut ws, _) = connect(addr, "/ws", &[("Authorization", "Bearer Sekrit42")]).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    drop(ws);
    let (stdout, stderr) = wsauth.stop();
    assert_eq!(stdout, Vec::<String>::new());
    assert!(stderr.contains("rejected"), "{stderr}");
}

// ---- which level ----

/// Log lines at `level` or more verbose in `stderr`.
fn lines_at<'a>(stderr: &'a str, levels: &[&str]) -> Vec<&'a str> {
    stderr
        .lines()
        .filter(|line| line.split_whitespace().any(|word| levels.contains(&word)))
        .collect()
}

/// A run that rejects a few requests, then stops; its stderr.
fn stderr_after_rejections(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["--token", "alice:Sekrit42"];
    all.extend_from_slice(args);
    let (wsauth, addr) = Wsauth::serve(&all, env);
    let missing = raw_upgrade(addr, &upgrade_request(addr, "/ws", &[]));
    assert_eq!(status(&missing), 401);
    let wrong = raw_upgrade(addr, &upgrade_request(addr, "/ws?token=nope", &[]));
    assert_eq!(status(&wrong), 401);
    assert_eq!(status(&raw(addr, b"junk\r\n\r\n")), 400);
    let (_, stderr) = wsauth.stop();
    stderr
}

#[test]
fn rejections_are_logged_at_info() {
    let stderr = stderr_after_rejections(&[], &[]);
    let rejections = lines_at(&stderr, &["INFO"])
        .into_iter()
        .filter(|l| l.contains("rejected"))
        .count();
    assert!(rejections >= 3, "{stderr}");
}

#[test]
fn a_warn_run_prints_no_rejection_lines() {
    let stderr = stderr_after_rejections(&["--log-level", "warn"], &[]);
    assert!(!stderr.contains("rejected"), "{stderr}");
    assert_eq!(
        lines_at(&stderr, &["INFO", "DEBUG", "TRACE"]),
        Vec::<&str>::new()
    );
}

#[test]
fn rust_log_sets_the_level_when_no_flag_does() {
    let stderr = stderr_after_rejections(&[], &[("RUST_LOG", "warn")]);
    assert!(!stderr.contains("rejected"), "{stderr}");
    let stderr = stderr_after_rejections(&[], &[("RUST_LOG", "debug")]);
    assert!(!lines_at(&stderr, &["DEBUG"]).is_empty(), "{stderr}");
}

#[test]
fn the_log_level_flag_wins_over_rust_log() {
    let stderr = stderr_after_rejections(&["--log-level", "warn"], &[("RUST_LOG", "trace")]);
    assert_eq!(
        lines_at(&stderr, &["INFO", "DEBUG", "TRACE"]),
        Vec::<&str>::new()
    );
    let stderr = stderr_after_rejections(&["--log-level", "info"], &[("RUST_LOG", "error")]);
    assert!(stderr.contains("rejected"), "{stderr}");
    assert!(
        lines_at(&stderr, &["DEBUG", "TRACE"]).is_empty(),
        "{stderr}"
    );
}
