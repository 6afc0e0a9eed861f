//! `--publish-key-file` on the command line: a key file that cannot be used
//! stops the start with one line naming the file; SIGHUP re-reads it; the
//! key and the body never appear in the log, whose line says who published
//! to whom, how much and to how many.

mod common;

use common::process::{TempFile, Wsauth, finish};
use common::{ALICE, connect_bearer, next_text, raw, status};
use std::net::SocketAddr;

/// The key of the binary's tests.
const KEY: &str = "cli-publish-key-9f8e7d6c5b4a39281706";
/// A wrong key, never configured: it must not show up either.
const WRONG: &str = "wrong-publish-key-Zq8vK2-000000000000";

fn post(addr: SocketAddr, key: &str, target: &str, body: &str) -> String {
    let request = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(addr, request.as_bytes())
}

#[test]
fn a_short_or_missing_key_file_exits_1_with_one_line_naming_the_file() {
    let short = TempFile::new("cli-short-key", b"only-31-bytes-of-key-0123456789\n");
    let missing = format!("{}.missing", short.path());
    for path in [short.path(), missing.as_str()] {
        let run = finish(&["--listen", "127.0.0.1:0", "--publish-key-file", path]);
        assert_eq!(run.code, Some(1), "{path}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains(path), "{}", run.stderr);
        assert!(!run.stderr.contains("only-31"), "{}", run.stderr);
    }
}

#[test]
fn the_key_and_the_body_never_appear_in_the_log_and_sighup_rereads_the_key() {
    let file = TempFile::new("cli-key", format!("{KEY}\n").as_bytes());
    let token = format!("alice:{ALICE}");
    let args = [
        "--token",
        &token,
        "--publish-key-file",
        file.path(),
        "--log-level",
        "trace",
    ];
    let (wsauth, addr) = Wsauth::serve(&args, &[]);
    let (mut alice, _) = connect_bearer(addr, ALICE).expect("alice connects");
    assert_eq!(next_text(&mut alice), "Hello alice");
    let answer = post(addr, KEY, "/publish?user=alice", "secret-body-text");
    assert_eq!(common::body(&answer), "delivered 1\n", "{answer}");
    assert_eq!(next_text(&mut alice), "secret-body-text");
    assert_eq!(status(&post(addr, WRONG, "/publish?all", "x")), 401);
    // Same length and, written at once, perhaps the same mtime: SIGHUP reads it.
    let second = "cli-publish-key-0000000000second00000";
    std::fs::write(&file.0, format!("{second}\n")).unwrap();
    wsauth.signal(libc::SIGHUP);
    assert!(
        common::eventually(common::PATIENCE, || status(&post(
            addr,
            second,
            "/publish?all",
            "y"
        )) == 200),
        "the key read on SIGHUP works"
    );
    assert_eq!(status(&post(addr, KEY, "/publish?all", "x")), 401);
    drop(alice);
    let (_, stderr) = wsauth.stop();
    for secret in [KEY, WRONG, second, "secret-body-text"] {
        assert!(!stderr.contains(secret), "{secret} in the log:\n{stderr}");
    }
    let line = stderr
        .lines()
        .find(|l| l.contains("published to user alice"))
        .unwrap_or_else(|| panic!("a publish line in:\n{stderr}"));
    assert!(
        line.contains("INFO") && line.contains("127.0.0.1"),
        "{line}"
    );
    assert!(
        line.contains("16 bytes") && line.contains("delivered to 1"),
        "{line}"
    );
    assert!(stderr.contains("publish refused: invalid key"), "{stderr}");
}
