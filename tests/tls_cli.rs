//! The `wsauth` binary with `--tls-cert` and `--tls-key`: what stdout says,
//! the exit codes of bad flags and files, and certificate reloads (SIGHUP,
//! a changed file, a broken one) under a live session.
#![cfg(feature = "tls")]

mod common;

use common::process::*;
use common::tls::*;
use common::*;
use tungstenite::Message;

fn assert_exits_with_one_line(args: &[&str], code: i32) -> String {
    let run = finish(args);
    assert_eq!(run.code, Some(code), "{args:?}: stderr {:?}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {:?}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{:?}", run.stderr);
    assert_eq!(run.stdout, "", "{args:?}");
    run.stderr
}

#[test]
fn stdout_says_https_and_the_demo_token_works_over_wss() {
    let pair = Pair::new();
    let mut wsauth = Wsauth::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            pair.cert_arg(),
            "--tls-key",
            pair.key_arg(),
        ],
        &[],
    );
    let addr = wsauth.listen_addr_of("https");
    let line = wsauth.next_line().expect("the demo line");
    let token = line
        .strip_prefix(&format!("open https://{addr}/#token="))
        .and_then(|rest| rest.strip_suffix(" in a browser"))
        .unwrap_or_else(|| panic!("unexpected second line {line:?}"));
    let (mut ws, _) = wss_connect(addr, &pair.der, &format!("/ws?token={token}"), &[]).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("Hello demo"));
}

#[test]
fn one_tls_flag_without_the_other_exits_2_with_one_line() {
    let pair = Pair::new();
    let line = assert_exits_with_one_line(&["--tls-cert", pair.cert_arg()], 2);
    assert!(line.contains("--tls-key"), "{line}");
    let line = assert_exits_with_one_line(&["--tls-key", pair.key_arg()], 2);
    assert!(line.contains("--tls-cert"), "{line}");
}

#[test]
fn an_unreadable_or_invalid_pair_exits_1_naming_the_file() {
    let pair = Pair::new();
    let other = Pair::new();
    let missing = std::env::temp_dir().join("wsauth-no-such-cert.pem");
    let missing = missing.to_str().unwrap();
    let cases = [
        (missing, pair.key_arg(), missing),
        (pair.cert_arg(), missing, missing),
        // A certificate where the key should be, and the other way round.
        (pair.cert_arg(), pair.cert_arg(), pair.cert_arg()),
        (pair.key_arg(), pair.key_arg(), pair.key_arg()),
        // A key that does not belong to the certificate.
        (pair.cert_arg(), other.key_arg(), other.key_arg()),
    ];
    for (cert, key, named) in cases {
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--token",
            "alice:s3cret",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ];
        let line = assert_exits_with_one_line(&args, 1);
        assert!(line.contains(named), "{args:?}: {line}");
        assert!(!line.contains("PRIVATE KEY-----"), "{line}");
    }
}

/// A TLS server binary for alice, and alice's session on it, echoing.
fn serve_with_session(pair: &Pair) -> (Wsauth, std::net::SocketAddr, WssClient) {
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--token",
        &format!("alice:{ALICE}"),
        "--tls-cert",
        pair.cert_arg(),
        "--tls-key",
        pair.key_arg(),
    ];
    let mut wsauth = Wsauth::spawn(&args, &[]);
    let addr = wsauth.listen_addr_of("https");
    let (mut ws, _) = wss_connect(addr, &pair.der, &format!("/ws?token={ALICE}"), &[]).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("Hello alice"));
    (wsauth, addr, ws)
}

fn echoes(ws: &mut WssClient, text: &str) {
    ws.send(Message::text(text)).unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::text(format!("Message text was: {text}"))
    );
}

#[test]
fn sighup_loads_a_new_certificate_for_new_connections_and_the_session_goes_on() {
    let mut pair = Pair::new();
    let (wsauth, addr, mut ws) = serve_with_session(&pair);
    let old = pair.der.clone();
    pair.rewrite_keeping_times();
    assert_eq!(served_certificate(addr), old);
    wsauth.signal(libc::SIGHUP);
    assert!(eventually(PATIENCE, || served_certificate(addr) == pair.der));
    echoes(&mut ws, "through the reload");
    let (mut fresh, _) = wss_connect(addr, &pair.der, &format!("/ws?token={ALICE}"), &[]).unwrap();
    assert_eq!(fresh.read().unwrap(), Message::text("Hello alice"));
    let (_, stderr) = wsauth.stop();
    assert!(stderr.contains("TLS certificate reloaded"), "{stderr}");
}

#[test]
fn a_changed_file_is_picked_up_and_a_broken_one_keeps_the_old_pair_with_one_error() {
    let mut pair = Pair::new();
    let (wsauth, addr, mut ws) = serve_with_session(&pair);
    pair.rewrite();
    assert!(eventually(PATIENCE, || served_certificate(addr) == pair.der));
    echoes(&mut ws, "through the change");
    let good = pair.der.clone();
    std::fs::write(&pair.cert, "not a certificate\n").unwrap();
    wsauth.signal(libc::SIGHUP);
    // The broken file is noticed by the signal and by its time; one error in all.
    for _ in 0..3 {
        assert_eq!(served_certificate(addr), good);
        echoes(&mut ws, "while broken");
    }
    let (_, stderr) = wsauth.stop();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(!errors.is_empty(), "{stderr}");
    assert!(
        errors.iter().all(|l| l.contains(pair.cert_arg())),
        "{stderr}"
    );
}
