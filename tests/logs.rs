//! What the binary logs on stderr: a line per session open and close, a line
//! per rejection, at info.

mod common;

use common::process::Wsauth;
use common::*;
use tungstenite::Message;

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
