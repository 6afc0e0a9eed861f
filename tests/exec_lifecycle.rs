//! `--exec` programs end with their session, descendants included, and the
//! session keeps its rules while its program stalls. The tests take turns:
//! one of them counts this process's threads, which the others would change.

mod common;

use common::*;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsauth::exec::Exec;
use wsauth::{Config, Server, TokenStore};

/// Held by each test for its whole run.
static TURN: Mutex<()> = Mutex::new(());

fn my_turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn exec_server(command: &str, config: Config) -> Server {
    let exec = Exec::new(command, config.max_message_bytes);
    let store = TokenStore::new(vec![grant("alice", ALICE, None)]);
    Server::start_with_handler("127.0.0.1:0", config, store, move |info| exec.start(info))
        .expect("server starts")
}

fn connect_alice_to(server: &Server) -> Client {
    connect_bearer(server.local_addr(), ALICE)
        .expect("the session opens")
        .0
}

/// Whether a live (not a zombie) process runs exactly `args`. Each test's
/// `sleep` has its own duration, which finds it among every other process.
fn running(args: &[&str]) -> bool {
    let wanted: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let dir = entry.path();
        let live = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|stat| Some(stat.rsplit_once(") ")?.1.starts_with(['R', 'S', 'D', 'T'])))
            .unwrap_or(false);
        live && std::fs::read(dir.join("cmdline")).is_ok_and(|c| c == wanted)
    })
}

/// The next frame that is not a ping or pong: a text or the close.
fn next_text_or_close(ws: &mut Client) -> Message {
    loop {
        match ws.read().expect("a message or the close") {
            Message::Ping(_) | Message::Pong(_) => {}
            other => return other,
        }
    }
}

fn close_of(message: Message) -> (u16, String) {
    match message {
        Message::Close(Some(frame)) => (frame.code.into(), frame.reason.to_string()),
        other => panic!("expected the close, got {other:?}"),
    }
}

#[test]
fn a_program_that_exits_closes_the_session_at_once_and_its_background_child_ends() {
    let _turn = my_turn();
    let server = exec_server("sleep 61.101 & echo started", Config::default());
    let mut ws = connect_alice_to(&server);
    let started = Instant::now();
    assert_eq!(next_text(&mut ws), "started");
    // The sleep still holds stdout: the close must not wait for it.
    assert_eq!(close_of(next_text_or_close(&mut ws)), (1000, String::new()));
    assert!(started.elapsed() < PATIENCE, "{:?}", started.elapsed());
    let closed = Instant::now();
    assert!(eventually(PATIENCE, || !running(&["sleep", "61.101"])));
    assert!(closed.elapsed() < Duration::from_secs(2) + PATIENCE);
}

#[test]
fn a_failing_program_with_a_lingering_child_closes_with_1011() {
    let _turn = my_turn();
    let server = exec_server("sleep 61.102 & echo started; exit 3", Config::default());
    let mut ws = connect_alice_to(&server);
    assert_eq!(next_text(&mut ws), "started");
    assert_eq!(
        close_of(next_text_or_close(&mut ws)),
        (1011, "program failed".into())
    );
    assert!(eventually(PATIENCE, || !running(&["sleep", "61.102"])));
}

#[test]
fn a_child_holding_stderr_leaves_no_thread_behind() {
    let _turn = my_turn();
    let before = threads_named("wsauth-exec");
    let server = exec_server("sleep 61.103 >/dev/null & echo started", Config::default());
    let mut ws = connect_alice_to(&server);
    assert_eq!(next_text(&mut ws), "started");
    assert_eq!(close_of(next_text_or_close(&mut ws)), (1000, String::new()));
    assert!(
        eventually(PATIENCE, || threads_named("wsauth-exec") <= before),
        "{} pipe threads, {before} before the session",
        threads_named("wsauth-exec")
    );
    assert!(eventually(PATIENCE, || !running(&["sleep", "61.103"])));
}

#[test]
fn when_the_client_leaves_the_programs_children_end_too() {
    let _turn = my_turn();
    let before = threads_named("wsauth-exec");
    let server = exec_server("sleep 61.104 & echo started; exec cat", Config::default());
    let mut ws = connect_alice_to(&server);
    assert_eq!(next_text(&mut ws), "started");
    ws.close(None).unwrap();
    assert!(eventually(PATIENCE, || !running(&["sleep", "61.104"])));
    assert!(eventually(PATIENCE, || threads_named("wsauth-exec") <= before));
}

/// Sends far more than a pipe holds to a program that never reads; returns
/// once the frames are out (the socket buffers take what the pipe does not).
fn flood(ws: &mut Client) {
    let line = "z".repeat(32 * 1024);
    for _ in 0..4 {
        ws.send(Message::text(line.clone()))
            .expect("the flood is sent");
    }
}

#[test]
fn a_client_that_leaves_a_stalled_program_frees_its_connection() {
    let _turn = my_turn();
    let mut config = Config::default();
    config.max_connections = 2;
    let server = exec_server("echo ready; exec sleep 61.105", config);
    for _ in 0..2 {
        let mut ws = connect_alice_to(&server);
        assert_eq!(next_text(&mut ws), "ready");
        flood(&mut ws);
        drop(ws);
    }
    // Each session ends with its client; each program within 2 + 2 s.
    let left = Instant::now();
    assert!(
        eventually(PATIENCE, || server.open_connections() == 0),
        "{} connections still open",
        server.open_connections()
    );
    assert!(eventually(PATIENCE, || !running(&["sleep", "61.105"])));
    assert!(left.elapsed() < Duration::from_secs(4) + PATIENCE);
    let mut third = connect_alice_to(&server);
    assert_eq!(next_text(&mut third), "ready");
}

#[test]
fn a_silent_client_of_a_stalled_program_gets_the_idle_timeout() {
    let _turn = my_turn();
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_secs(2));
    let server = exec_server("echo ready; exec sleep 61.106", config);
    let mut ws = connect_alice_to(&server);
    assert_eq!(next_text(&mut ws), "ready");
    let flooded = Instant::now();
    flood(&mut ws);
    assert_eq!(
        close_of(next_text_or_close(&mut ws)),
        (1001, "idle timeout".into())
    );
    assert!(flooded.elapsed() >= Duration::from_millis(1500));
    assert!(eventually(PATIENCE, || !running(&["sleep", "61.106"])));
}

#[test]
fn a_process_that_left_the_group_holds_no_thread_after_the_session() {
    let _turn = my_turn();
    let before = threads_named("wsauth-exec");
    // setsid puts the sleep out of the program's group: no group signal
    // reaches it, yet it holds stdout and stderr.
    let server = exec_server("setsid sleep 61.107 & echo $!", Config::default());
    let mut ws = connect_alice_to(&server);
    let escaped: i32 = next_text(&mut ws).parse().expect("a pid");
    assert_eq!(close_of(next_text_or_close(&mut ws)), (1000, String::new()));
    let threads_gone = eventually(PATIENCE, || threads_named("wsauth-exec") <= before);
    // SAFETY: a pid this test's program just started and printed.
    unsafe { libc::kill(escaped, libc::SIGKILL) };
    assert!(
        threads_gone,
        "{} pipe threads, {before} before",
        threads_named("wsauth-exec")
    );
}
