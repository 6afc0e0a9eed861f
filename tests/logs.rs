//! What the binary logs on stderr: a line per session open and close, a line
//! per rejection, at info.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;
use tungstenite::Message;

/// The binary, killed when dropped; its stderr lines arrive on a channel.
struct Wsauth {
    child: Child,
    addr: SocketAddr,
    stderr: Receiver<String>,
}

impl Wsauth {
    fn start(args: &[&str]) -> Wsauth {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsauth"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .trim_start_matches("wsauth listening on http://")
            .trim_end_matches('/');
        let (lines, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        Wsauth {
            child,
            addr: addr.parse().unwrap(),
            stderr,
        }
    }

    /// The next stderr line containing `needle`, within the test's patience.
    fn line_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!("no log line with {needle:?}"),
            }
        }
    }
}

impl Drop for Wsauth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_session_logs_its_opening_and_its_end_with_counts_and_close_code() {
    let server = Wsauth::start(&["--token", "alice:log-test-token"]);
    let (mut ws, _) = connect(server.addr, "/ws?token=log-test-token", &[]).unwrap();
    let local = ws.get_ref().local_addr().unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    for text in ["one", "two"] {
        ws.send(Message::text(text)).unwrap();
        next_text(&mut ws);
    }
    ws.close(None).unwrap();
    while ws.read().is_ok() {}

    let opened = server.line_with("session opened");
    assert!(
        opened.contains("INFO") && opened.contains(&local.to_string()) && opened.contains("alice"),
        "{opened}"
    );
    let closed = server.line_with("session closed");
    assert!(
        closed.contains("alice") && closed.contains("2 in, 3 out") && closed.contains("close none"),
        "{closed}"
    );
}

#[test]
fn a_rejection_logs_the_peer_and_the_reason_at_info() {
    let server = Wsauth::start(&["--token", "alice:log-test-token"]);
    let result = connect(server.addr, "/ws?token=not-the-token", &[]);
    assert_eq!(refused_status(result), 401);
    let line = server.line_with("rejected");
    assert!(
        line.contains("INFO") && line.contains("127.0.0.1:") && line.contains("invalid token"),
        "{line}"
    );
    assert!(!line.contains("not-the-token"));
}
