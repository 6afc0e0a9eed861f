//! `--exec`: a program per session, lines both ways, its end and ours.

mod common;

use common::process::Wsauth;
use common::*;
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsauth::exec::Exec;
use wsauth::{Config, Server, TokenStore};

fn exec_server(command: &str, config: Config) -> Server {
    let exec = Exec::new(command, config.max_message_bytes);
    let store = TokenStore::new(vec![grant("alice", ALICE, None), grant("bob", BOB, None)]);
    Server::start_with_handler("127.0.0.1:0", config, store, move |info| exec.start(info))
        .expect("server starts")
}

fn connect_as(server: &Server, token: &str, extra: &[(&str, &str)]) -> Client {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    connect(server.local_addr(), "/ws", &headers)
        .expect("the session opens")
        .0
}

/// Reads text messages until the server's close; returns them and the close.
fn read_to_close(ws: &mut Client) -> (Vec<Message>, (u16, String)) {
    let mut messages = Vec::new();
    loop {
        match ws.read().expect("a message or the close") {
            Message::Close(Some(frame)) => {
                return (messages, (frame.code.into(), frame.reason.to_string()));
            }
            Message::Close(None) => return (messages, (1005, String::new())),
            Message::Ping(_) | Message::Pong(_) => {}
            other => messages.push(other),
        }
    }
}

fn texts(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m.to_text().expect("text").to_string())
        .collect()
}

#[test]
fn text_goes_to_stdin_as_a_line_and_each_stdout_line_comes_back() {
    let server = exec_server(
        "while read -r l; do echo \"got $l\"; done",
        Config::default(),
    );
    let mut ws = connect_as(&server, ALICE, &[]);
    for text in ["one", "two words", ""] {
        ws.send(Message::text(text)).unwrap();
        assert_eq!(next_text(&mut ws), format!("got {text}"));
    }
}

#[test]
fn the_program_learns_user_address_and_subprotocol_but_never_the_token() {
    let server = exec_server(
        "echo \"$WSAUTH_USER $REMOTE_ADDR $REMOTE_PORT $WSAUTH_SUBPROTOCOL\"; env; echo \"$0 $*\"",
        Config::default(),
    );
    let mut ws = connect_as(&server, ALICE, &[("Sec-WebSocket-Protocol", "chat")]);
    let port = ws.get_ref().local_addr().unwrap().port();
    let (messages, close) = read_to_close(&mut ws);
    let lines = texts(&messages);
    assert_eq!(lines[0], format!("alice 127.0.0.1 {port} chat"));
    assert!(lines.iter().any(|l| l == "WSAUTH_USER=alice"));
    assert!(lines.iter().all(|l| !l.contains(ALICE)), "{lines:?}");
    assert_eq!(close.0, 1000);
}

#[test]
fn without_a_subprotocol_the_variable_is_unset() {
    let server = exec_server("echo \"[${WSAUTH_SUBPROTOCOL-unset}]\"", Config::default());
    let mut ws = connect_as(&server, ALICE, &[]);
    assert_eq!(next_text(&mut ws), "[unset]");
}

#[test]
fn a_line_is_sent_at_once_without_waiting_for_more_output() {
    let server = exec_server("echo first; sleep 30", Config::default());
    let mut ws = connect_as(&server, ALICE, &[]);
    let started = Instant::now();
    assert_eq!(next_text(&mut ws), "first");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn carriage_returns_are_dropped_and_a_non_utf8_line_is_binary() {
    let server = exec_server("printf 'a\\r\\nb\\n\\377\\376\\nlast'", Config::default());
    let mut ws = connect_as(&server, ALICE, &[]);
    let (messages, close) = read_to_close(&mut ws);
    assert_eq!(
        messages,
        [
            Message::text("a"),
            Message::text("b"),
            Message::binary(vec![0xff, 0xfe]),
            Message::text("last"),
        ]
    );
    assert_eq!(close.0, 1000);
}

#[test]
fn a_failing_program_ends_the_session_with_1011_after_its_output() {
    let server = exec_server("echo partial; exit 3", Config::default());
    let mut ws = connect_as(&server, ALICE, &[]);
    let (messages, close) = read_to_close(&mut ws);
    assert_eq!(texts(&messages), ["partial"]);
    assert_eq!(close, (1011, "program failed".into()));
}

#[test]
fn a_program_that_cannot_run_gets_1011() {
    let server = exec_server("/nonexistent/program", Config::default());
    let mut ws = connect_as(&server, ALICE, &[]);
    assert_eq!(read_to_close(&mut ws).1, (1011, "program failed".into()));
}

#[test]
fn an_output_line_over_the_limit_closes_with_1011_before_its_end() {
    let mut config = Config::default();
    config.max_message_bytes = 100;
    let server = exec_server("head -c 1000 /dev/zero | tr '\\0' a; sleep 30", config);
    let mut ws = connect_as(&server, ALICE, &[]);
    let started = Instant::now();
    assert_eq!(
        read_to_close(&mut ws).1,
        (1011, "program output too long".into())
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_binary_message_closes_with_1003() {
    let server = exec_server("cat", Config::default());
    let mut ws = connect_as(&server, ALICE, &[]);
    ws.send(Message::binary(vec![1, 2])).unwrap();
    assert_eq!(
        read_to_close(&mut ws).1,
        (1003, "binary messages not supported".into())
    );
}

#[test]
fn the_first_message_token_never_reaches_the_program() {
    let mut config = Config::default();
    config.first_message_auth = true;
    let server = exec_server("cat", config);
    let (mut ws, _) = connect(server.local_addr(), "/ws", &[]).unwrap();
    ws.send(Message::text(ALICE)).unwrap();
    ws.send(Message::text("after")).unwrap();
    assert_eq!(next_text(&mut ws), "after");
}

/// The pid the program printed first, and whether it is still running.
fn first_pid(ws: &mut Client) -> i32 {
    next_text(ws).trim().parse().expect("a pid")
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn when_the_client_leaves_stdin_closes_and_the_program_ends() {
    let server = exec_server("echo $$; exec cat", Config::default());
    let mut ws = connect_as(&server, ALICE, &[]);
    let pid = first_pid(&mut ws);
    ws.close(None).unwrap();
    assert!(eventually(PATIENCE, || !alive(pid)));
}

#[test]
fn a_program_that_ignores_its_end_gets_sigterm_then_sigkill_with_its_group() {
    let server = exec_server(
        "sleep 1000 & echo $!; echo $$; trap '' TERM; while :; do sleep 1; done",
        Config::default(),
    );
    let mut ws = connect_as(&server, ALICE, &[]);
    let grandchild = first_pid(&mut ws);
    let pid = first_pid(&mut ws);
    let left = Instant::now();
    drop(ws);
    // The background sleep dies with the group's SIGTERM, after 2 s.
    assert!(eventually(PATIENCE, || !alive(grandchild)));
    assert!(left.elapsed() >= Duration::from_millis(1800));
    assert!(alive(pid), "the shell ignores SIGTERM");
    // The shell ignores SIGTERM: SIGKILL 2 s later.
    assert!(eventually(PATIENCE, || !alive(pid)));
    assert!(left.elapsed() >= Duration::from_millis(3800));
    assert!(left.elapsed() < Duration::from_secs(8));
}

#[test]
fn a_program_that_stops_reading_stalls_only_its_own_session() {
    let server = exec_server(
        "if [ \"$WSAUTH_USER\" = alice ]; then echo $$; sleep 1000; else cat; fi",
        Config::default(),
    );
    let mut alice = connect_as(&server, ALICE, &[]);
    let pid = first_pid(&mut alice);
    let feeder = std::thread::spawn(move || {
        // Far more than a pipe holds: the session's writes stall.
        let line = "z".repeat(60_000);
        for _ in 0..100 {
            if alice.send(Message::text(line.clone())).is_err() {
                break;
            }
        }
        alice
    });
    let mut bob = connect_as(&server, BOB, &[]);
    for n in 0..20 {
        bob.send(Message::text(format!("bob {n}"))).unwrap();
        assert_eq!(next_text(&mut bob), format!("bob {n}"));
    }
    // Stopping still ends the stalled session and its program in time.
    let stopping = Instant::now();
    server.stop();
    assert!(stopping.elapsed() < Duration::from_secs(5));
    assert!(!alive(pid));
    drop(feeder.join().unwrap());
}

#[test]
fn exec_with_greeting_or_echo_prefix_exits_2() {
    for flag in ["--greeting", "--echo-prefix"] {
        let finished = common::process::finish(&["--exec", "cat", flag, "x"]);
        assert_eq!(finished.code, Some(2), "{flag}");
        assert!(finished.stderr.contains(flag), "{}", finished.stderr);
        assert_eq!(finished.stderr.lines().count(), 1);
    }
}

#[test]
fn stderr_lines_are_logged_and_no_program_outlives_the_server() {
    let (mut wsauth, addr) = Wsauth::serve(
        &[
            "--token",
            &format!("alice:{ALICE}"),
            "--exec",
            "echo to-the-log >&2; echo $$; trap '' TERM; while :; do sleep 1; done",
        ],
        &[],
    );
    let auth = format!("Bearer {ALICE}");
    let (mut ws, _) = connect(addr, "/ws", &[("Authorization", &auth)]).unwrap();
    let pid = first_pid(&mut ws);
    let stopping = Instant::now();
    wsauth.signal(libc::SIGTERM);
    assert!(wsauth.wait_exit(Duration::from_secs(6)).is_some());
    assert!(stopping.elapsed() < Duration::from_secs(5));
    assert!(!alive(pid), "the program outlived the server");
    let (_, stderr) = wsauth.output();
    let logged = stderr
        .lines()
        .find(|l| l.contains("program: to-the-log"))
        .unwrap_or_else(|| panic!("no stderr line in {stderr}"));
    assert!(
        logged.contains("INFO") && logged.contains("127.0.0.1:"),
        "{logged}"
    );
}
