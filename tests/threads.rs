//! The connection threads: each session runs on the thread that accepted
//! it, threads are reused from one connection to the next, and stopping the
//! server ends every one of them. Alone in its file: it counts the threads of
//! the test process, which other tests' servers would change.

mod common;

use common::*;
use tungstenite::Message;
use wsauth::Config;

#[test]
fn sessions_run_on_their_accepting_threads_which_are_reused_and_end_with_the_server() {
    let server = start(Config::default());
    let addr = server.local_addr();

    // One after another: the same few threads serve them all.
    for i in 0..30 {
        let mut ws = connect_alice(addr);
        ws.send(Message::text(format!("n{i}"))).unwrap();
        assert_eq!(next_text(&mut ws), format!("Message text was: n{i}"));
        ws.close(None).unwrap();
        while ws.read().is_ok() {}
        // The session's thread goes back to `accept` a moment after the
        // client sees the close; on a loaded machine the next connection
        // would otherwise find no one else waiting and start a thread.
        assert!(eventually(PATIENCE, || {
            let threads = threads_named("wsauth-conn");
            threads > 0 && threads_accepting("wsauth-conn") == threads
        }));
    }
    assert!(
        threads_named("wsauth-conn") <= 6,
        "30 sessions in a row took {} threads",
        threads_named("wsauth-conn")
    );

    // At once: a thread each, and one more waiting for the next connection.
    let mut live: Vec<_> = (0..20).map(|_| connect_alice(addr)).collect();
    for (i, ws) in live.iter_mut().enumerate() {
        ws.send(Message::text(format!("c{i}"))).unwrap();
        assert_eq!(next_text(ws), format!("Message text was: c{i}"));
    }
    assert!(
        eventually(PATIENCE, || threads_named("wsauth-conn") >= 21),
        "20 live sessions and a waiting thread: {} threads",
        threads_named("wsauth-conn")
    );

    // Stopping closes the sessions and returns once every thread is done
    // (the OS may list one for a moment longer, while it exits).
    server.stop();
    assert!(
        eventually(PATIENCE, || threads_named("wsauth-conn") == 0),
        "{} threads left after stop()",
        threads_named("wsauth-conn")
    );
    for ws in &mut live {
        assert_eq!(expect_close(ws).0, 1001);
    }
    // The port is free again.
    std::net::TcpListener::bind(addr).expect("the port is released by stop()");
}

/// How many of this process's threads named `prefix...` are blocked in
/// `accept4` right now (`/proc/self/task/TID/syscall` starts with the
/// number of the call a blocked thread is in).
fn threads_accepting(prefix: &str) -> usize {
    let accept4 = libc::SYS_accept4.to_string();
    std::fs::read_dir("/proc/self/task")
        .expect("Linux: /proc/self/task")
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            let call = std::fs::read_to_string(path.join("syscall")).ok()?;
            Some((name, call))
        })
        .filter(|(name, call)| {
            name.trim_end().starts_with(prefix)
                && call.split_whitespace().next() == Some(accept4.as_str())
        })
        .count()
}
