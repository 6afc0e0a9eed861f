//! The backend examples of docs/your-own-logic.md, run for real: `examples/backend/publish.py`
//! (Python `requests`) and `examples/backend/publish.mjs` (Node's `fetch`)
//! publish to alice's open session on the binary, which reads the message.
//!
//! Without `python3` and `requests`, or `node`, a test prints `SKIPPED`,
//! unless `WSAUTH_BACKEND_TESTS=required` (as in `.ci/run`) makes it a
//! failure: `apt-get install -y python3-requests nodejs`.

mod common;

use common::process::{TempFile, Wsauth};
use common::{ALICE, PATIENCE, connect_bearer, next_text};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

const KEY: &str = "backend-publish-key-0123456789abcdef0123";

/// Runs `program args`, killed if it takes longer than [`PATIENCE`];
/// `None` (after `SKIPPED`, unless required) when `probe` shows it cannot run.
fn run(program: &str, probe: &[&str], args: &[&str], test: &str) -> Option<Output> {
    let usable = Command::new(program)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        let why = format!("`{program} {}` fails", probe.join(" "));
        if std::env::var("WSAUTH_BACKEND_TESTS").as_deref() == Ok("required") {
            panic!("WSAUTH_BACKEND_TESTS=required, but {why}");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {test}: {why} (apt-get install -y python3-requests nodejs); \
             set WSAUTH_BACKEND_TESTS=required to fail instead"
        );
        return None;
    }
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("waiting for the example").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some(child.wait_with_output().expect("the example's output"))
}

/// Publishes "your order shipped" to alice with the example `script` run by
/// `program`, and checks both ends.
fn publishes_to_alice(program: &str, probe: &[&str], script: &str, test: &str) {
    let key = TempFile::new(test, format!("{KEY}\n").as_bytes());
    let token = format!("alice:{ALICE}");
    let (wsauth, addr) = Wsauth::serve(&["--token", &token, "--publish-key-file", key.path()], &[]);
    let (mut alice, _) = connect_bearer(addr, ALICE).expect("alice connects");
    assert_eq!(next_text(&mut alice), "Hello alice");
    let script = format!("{}/examples/backend/{script}", env!("CARGO_MANIFEST_DIR"));
    let base = format!("http://{addr}");
    let args = [
        script.as_str(),
        &base,
        key.path(),
        "alice",
        "your order shipped",
    ];
    let Some(output) = run(program, probe, &args, test) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout, "delivered 1\n");
    assert_eq!(next_text(&mut alice), "your order shipped");
    drop(alice);
    let (_, log) = wsauth.stop();
    assert!(!log.contains(KEY), "{log}");
}

#[test]
fn the_python_requests_example_publishes() {
    publishes_to_alice(
        "python3",
        &["-c", "import requests"],
        "publish.py",
        "the_python_requests_example_publishes",
    );
}

#[test]
fn the_node_fetch_example_publishes() {
    publishes_to_alice(
        "node",
        &["-e", "if (typeof fetch !== 'function') process.exit(1)"],
        "publish.mjs",
        "the_node_fetch_example_publishes",
    );
}
