//! The `wsauth` binary and its signals: SIGTERM and SIGINT shut it down
//! cleanly, SIGHUP re-reads the tokens file.

mod common;

use common::process::*;
use common::*;
use std::time::{Duration, Instant};

/// Asserts that `signal` closes a live session with 1001 and ends the run
/// with exit 0 within 5 s.
fn shutdown_on(signal: libc::c_int) {
    let (mut wsauth, addr) = Wsauth::serve(&["--token", "alice:Sekrit42"], &[]);
    let (mut ws, _) = connect(addr, "/ws", &[("Authorization", "Bearer Sekrit42")]).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    let signalled = Instant::now();
    wsauth.signal(signal);
    assert_eq!(expect_close(&mut ws), (1001, "server shutting down".into()));
    let status = wsauth
        .wait_exit(Duration::from_secs(5))
        .expect("exited within 5 s");
    assert!(status.success(), "exit status {status}");
    assert!(signalled.elapsed() <= Duration::from_secs(5));
}

#[test]
fn sigterm_closes_sessions_with_1001_and_exits_0_within_5_seconds() {
    shutdown_on(libc::SIGTERM);
}

#[test]
fn sigint_closes_sessions_with_1001_and_exits_0_within_5_seconds() {
    shutdown_on(libc::SIGINT);
}

#[test]
fn an_idle_server_exits_0_on_sigterm_at_once() {
    let (mut wsauth, _) = Wsauth::serve(&["--token", "alice:Sekrit42"], &[]);
    let signalled = Instant::now();
    wsauth.signal(libc::SIGTERM);
    let status = wsauth.wait_exit(Duration::from_secs(5)).expect("exited");
    assert!(status.success(), "exit status {status}");
    assert!(signalled.elapsed() < Duration::from_secs(5));
}

#[test]
fn sighup_rereads_the_tokens_file_even_when_its_time_did_not_change() {
    let file = TempFile::new("sighup", b"bob:Hup-bob-1\ncarol:Hup-carol-1\n");
    let path = file.0.to_str().unwrap().to_string();
    let (wsauth, addr) = Wsauth::serve(&["--tokens-file", &path], &[]);
    let (mut bob, _) = connect(addr, "/ws", &[("Authorization", "Bearer Hup-bob-1")]).unwrap();
    assert_eq!(next_text(&mut bob), "Hello bob");
    // Same length, same modification time: only SIGHUP can notice.
    let modified = std::fs::metadata(&file.0).unwrap().modified().unwrap();
    std::fs::write(&file.0, b"dan:Hup-dan-11\ncarol:Hup-carol-1\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file.0)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    wsauth.signal(libc::SIGHUP);
    assert_eq!(expect_close(&mut bob), (1008, "token revoked".into()));
    let (mut dan, _) = connect(addr, "/ws", &[("Authorization", "Bearer Hup-dan-11")]).unwrap();
    assert_eq!(next_text(&mut dan), "Hello dan");
}
