//! The examples run as a user would run them.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use tungstenite::Message;

use common::process::example;

/// Runs an example and reads the address from its first stdout line.
struct Running(Child);

impl Running {
    fn start(name: &str, args: &[&str]) -> (Running, String) {
        let mut child = Command::new(example(name))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the example starts");
        let mut first = String::new();
        let stdout = child.stdout.take().expect("its stdout");
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("its first line");
        (Running(child), first.trim().to_string())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn address_of(first_line: &str) -> SocketAddr {
    let url = first_line
        .strip_prefix("wsauth listening on http://")
        .expect("wsauth's first line");
    url.trim_end_matches('/').parse().expect("an address")
}

#[test]
fn the_broadcast_chat_sends_every_message_to_every_session() {
    let (_chat, first) = Running::start(
        "broadcast",
        &[
            "--listen",
            "127.0.0.1:0",
            "--token",
            &format!("alice:{ALICE}"),
            "--token",
            &format!("bob:{BOB}"),
        ],
    );
    let addr = address_of(&first);
    let (mut alice, _) = connect(
        addr,
        "/ws",
        &[("Authorization", &format!("Bearer {ALICE}"))],
    )
    .unwrap();
    let (mut bob, _) =
        connect(addr, "/ws", &[("Authorization", &format!("Bearer {BOB}"))]).unwrap();
    // Each is surely listed once it has heard its own message back.
    alice.send(Message::text("first")).unwrap();
    assert_eq!(next_text(&mut alice), "alice: first");
    bob.send(Message::text("here")).unwrap();
    // Bob may have been listed in time for alice's first message, or not;
    // only each sender's own order is kept, so it may come at any point.
    assert_eq!(next_text_but_first(&mut bob), "bob: here");
    assert_eq!(next_text(&mut alice), "bob: here");
    alice.send(Message::text("hello all")).unwrap();
    assert_eq!(next_text(&mut alice), "alice: hello all");
    assert_eq!(next_text_but_first(&mut bob), "alice: hello all");
}

/// The next text message other than alice's first one.
fn next_text_but_first(ws: &mut Client) -> String {
    loop {
        let text = next_text(ws);
        if text != "alice: first" {
            return text;
        }
    }
}

#[test]
fn the_broadcast_chat_refuses_a_wrong_token() {
    let (_chat, first) = Running::start(
        "broadcast",
        &["--listen", "127.0.0.1:0", "--token", "alice:right"],
    );
    let addr = address_of(&first);
    let refused = connect(addr, "/ws", &[("Authorization", "Bearer wrong")]);
    assert_eq!(refused_status(refused), 401);
}
