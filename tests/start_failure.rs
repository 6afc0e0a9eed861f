//! A start that fails part-way leaves no thread behind and the port free.
//! Alone in its file: it runs itself again as a child process in which no
//! thread with the default stack size can be made (`RUST_MIN_STACK` past
//! what the address space holds), so the server's connection thread (which
//! sets its own stack size) starts and its tick thread cannot.

mod common;

use common::*;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use wsauth::Config;

/// Set in the child process.
const CHILD: &str = "WSAUTH_START_FAILURE_CHILD";
/// 2^47 bytes: more than a process's whole address space on x86-64 and
/// aarch64 Linux, so no mapping of that size can succeed.
const NO_STACK_FITS: &str = "140737488355328";

#[test]
fn a_start_whose_tick_thread_cannot_start_leaves_no_thread_and_the_port_free() {
    if std::env::var_os(CHILD).is_some() {
        return start_that_fails();
    }
    let me = std::env::current_exe().unwrap();
    let run = Command::new(me)
        .args([
            "a_start_whose_tick_thread_cannot_start_leaves_no_thread_and_the_port_free",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("RUST_MIN_STACK", NO_STACK_FITS)
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success() && stdout.contains("1 passed"),
        "the child failed: {stdout}\n{stderr}"
    );
}

/// In the child: the start fails, and nothing of it is left.
fn start_that_fails() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let started = wsauth::Server::start(addr, Config::default(), wsauth::TokenStore::new(vec![]));
    let error = started.err().expect("no tick thread, no server");
    eprintln!("the start failed as it should: {error}");
    assert!(
        eventually(PATIENCE, || threads_named("wsauth-conn") == 0),
        "{} connection threads left",
        threads_named("wsauth-conn")
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "someone still accepts on {addr}"
    );
    TcpListener::bind(addr).expect("the port is free again");
}
