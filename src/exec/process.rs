//! A program's `sh` and its process group as the OS sees them: its exit,
//! learnt without reaping it; signals to its group; the waits on its pipes.
//!
//! The `sh` leads its group (its pid is the group's id) and stays unreaped
//! until its group has been ended: a zombie keeps its pid, so the group's id
//! cannot be reused by another process while we may still signal it.

use crate::sys;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Child;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How long a program may take to exit after its stdin is closed, and its
/// group after `SIGTERM`, before the next step.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How often, at most, a program that should be exiting is checked on (the
/// first checks come sooner: most programs exit as soon as stdin closes).
const REAP_POLL: Duration = Duration::from_millis(10);
/// The same for the rest of its group, each check a read of `/proc`.
const GROUP_POLL: Duration = Duration::from_millis(50);

/// One session's `sh`: its exit for the pipe thread, its end for the session.
pub(super) struct Shell {
    state: Mutex<State>,
    /// Readable once the `sh` has exited (`pidfd_open(2)`, Linux 5.3);
    /// `None` on older kernels, where its exit is checked on a timer.
    exit_fd: Option<OwnedFd>,
}

struct State {
    child: Child,
    /// Whether it succeeded, once it has exited.
    exited: Option<bool>,
    reaped: bool,
}

impl Shell {
    /// Takes charge of a freshly spawned `sh` (leading its own group).
    pub(super) fn new(child: Child) -> Shell {
        let exit_fd = sys::pidfd_open(child.id());
        Shell {
            state: Mutex::new(State {
                child,
                exited: None,
                reaped: false,
            }),
            exit_fd,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Becomes readable when the `sh` exits, if the kernel offers that.
    pub(super) fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        self.exit_fd.as_ref().map(AsFd::as_fd)
    }

    /// Whether the `sh` succeeded, once it has exited; it stays unreaped.
    pub(super) fn exit(&self) -> Option<bool> {
        let mut state = self.state();
        if state.exited.is_none() && !state.reaped {
            state.exited = sys::peek_exit(state.child.id());
        }
        state.exited
    }

    /// Ends the program whatever state it is in, then reaps it: up to 2 s
    /// for the `sh` to exit on its own (its stdin is closed), then `SIGTERM`
    /// to its group, up to 2 s for the whole group to go, then `SIGKILL`.
    pub(super) fn end(&self, peer: std::net::SocketAddr) {
        if !wait_until(EXIT_GRACE, REAP_POLL, || self.exit().is_some()) {
            log::info!("{peer}: program did not exit; sending SIGTERM");
        }
        self.signal_group(libc::SIGTERM);
        let gone = || self.exit().is_some() && !group_has_others(self.pgid());
        if !wait_until(EXIT_GRACE, GROUP_POLL, gone) {
            log::info!("{peer}: program killed");
            self.signal_group(libc::SIGKILL);
        }
        self.reap();
    }

    /// Ends the program at once (it could not be given its pipe thread).
    pub(super) fn kill(&self) {
        self.signal_group(libc::SIGKILL);
        self.reap();
    }

    fn pgid(&self) -> libc::pid_t {
        self.state().child.id() as libc::pid_t
    }

    fn signal_group(&self, signal: libc::c_int) {
        let state = self.state();
        if !state.reaped {
            // The group our unreaped `sh` leads: its id is not reused.
            sys::kill_group(state.child.id() as libc::pid_t, signal);
        }
    }

    fn reap(&self) {
        let mut state = self.state();
        if !state.reaped {
            let status = state.child.wait();
            state.exited = Some(status.is_ok_and(|s| s.success()));
            state.reaped = true;
        }
    }
}

/// Calls `done` with growing pauses (up to `at_most`) until it holds or
/// `limit` has passed.
fn wait_until(limit: Duration, at_most: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    let mut pause = Duration::from_micros(250);
    loop {
        if done() {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(at_most);
    }
}

/// Whether a live process other than the group's leader is in group `pgid`
/// (its zombie leader aside, a group has no other trace than its members'
/// `/proc/PID/stat`). Without `/proc`, it answers yes: the group then gets
/// its `SIGKILL` after the grace.
fn group_has_others(pgid: libc::pid_t) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let pid = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::pid_t>().ok());
        pid.is_some_and(|pid| pid != pgid)
            && std::fs::read_to_string(entry.path().join("stat"))
                .is_ok_and(|stat| live_in_group(&stat, pgid))
    })
}

/// Whether a `/proc/PID/stat` line is of a process that has not exited, in
/// group `pgid`. Its name, in parentheses, may hold anything: the fields are
/// read after its last `)`.
fn live_in_group(stat: &str, pgid: libc::pid_t) -> bool {
    let Some((_, fields)) = stat.rsplit_once(')') else {
        return false;
    };
    let mut fields = fields.split_whitespace();
    let state = fields.next().unwrap_or("Z");
    let group = fields.nth(1).and_then(|g| g.parse::<libc::pid_t>().ok());
    group == Some(pgid) && !matches!(state, "Z" | "X" | "x")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn shell(script: &str) -> Shell {
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", script])
            .process_group(0)
            .spawn()
            .expect("sh starts");
        Shell::new(child)
    }

    #[test]
    fn an_exit_is_seen_without_reaping_and_its_group_ended_at_once() {
        let failed = shell("sleep 61.901 & exit 3");
        assert!(wait_until(Duration::from_secs(10), REAP_POLL, || failed
            .exit()
            .is_some()));
        assert_eq!(failed.exit(), Some(false));
        // Still unreaped: its zombie holds the group's id.
        assert!(sys::peek_exit(failed.pgid() as u32).is_some());
        let ending = Instant::now();
        failed.end("127.0.0.1:1".parse().expect("an address"));
        assert!(ending.elapsed() < EXIT_GRACE, "SIGTERM ended the sleep");
        assert!(!group_has_others(failed.pgid()));
        assert_eq!(failed.exit(), Some(false));
        let succeeded = shell("exit 0");
        assert!(wait_until(Duration::from_secs(10), REAP_POLL, || succeeded
            .exit()
            .is_some()));
        assert_eq!(succeeded.exit(), Some(true));
        succeeded.kill();
    }

    #[test]
    fn stat_lines_are_read_after_the_name() {
        let line = "42 (a) b) c) S 1 7 7 0 -1";
        assert!(live_in_group(line, 7));
        assert!(!live_in_group(line, 8));
        assert!(!live_in_group("42 (sleep) Z 1 7 7 0", 7));
        assert!(!live_in_group("garbage", 7));
    }
}
