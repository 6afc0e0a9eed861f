//! The `wsauth` binary as a child process, for the command-line and log tests.

use super::PATIENCE;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The `wsauth` binary, run as a child that is killed when this is dropped,
/// even when the test fails. Its stdout arrives line by line, its stderr is
/// collected whole.
pub struct Wsauth {
    child: Child,
    stdout: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Wsauth {
    /// Starts `wsauth ARGS` with `RUST_LOG` unset unless `env` sets it.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Wsauth {
        Wsauth::spawn_program(env!("CARGO_BIN_EXE_wsauth").as_ref(), args, env)
    }

    /// Starts `program ARGS` the same way (an example that takes wsauth's flags).
    pub fn spawn_program(program: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Wsauth {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("wsauth starts");
        let stdout = lines_of(child.stdout.take().unwrap());
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Wsauth {
            child,
            stdout,
            stderr: Some(stderr),
        }
    }

    /// Starts a server on an ephemeral port and waits for its listen line.
    pub fn serve(args: &[&str], env: &[(&str, &str)]) -> (Wsauth, SocketAddr) {
        Wsauth::serve_program(env!("CARGO_BIN_EXE_wsauth").as_ref(), args, env)
    }

    /// [`Wsauth::serve`] with another program that takes wsauth's flags.
    pub fn serve_program(
        program: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (Wsauth, SocketAddr) {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut wsauth = Wsauth::spawn_program(program, &all, env);
        let addr = wsauth.listen_addr();
        (wsauth, addr)
    }

    /// The next stdout line, waiting at most [`PATIENCE`].
    pub fn next_line(&mut self) -> Option<String> {
        self.stdout.recv_timeout(PATIENCE).ok()
    }

    /// Reads the first stdout line and the address it names.
    pub fn listen_addr(&mut self) -> SocketAddr {
        self.listen_addr_of("http")
    }

    /// Reads the first stdout line, which must name `scheme`, and the address it names.
    pub fn listen_addr_of(&mut self, scheme: &str) -> SocketAddr {
        let line = self.next_line().expect("a listen line on stdout");
        let addr = line
            .strip_prefix(&format!("wsauth listening on {scheme}://"))
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        addr.parse()
            .unwrap_or_else(|_| panic!("no address in {line:?}"))
    }

    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill only sends a signal to our own child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill failed");
    }

    /// Waits for the exit, at most `within`; `None` if it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the server with SIGTERM; returns the rest of stdout and all of stderr.
    pub fn stop(mut self) -> (Vec<String>, String) {
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(PATIENCE).expect("wsauth exits on SIGTERM");
        assert!(status.success(), "exit status {status}");
        self.output()
    }

    /// After the exit: the rest of stdout and all of stderr.
    pub fn output(&mut self) -> (Vec<String>, String) {
        let mut rest = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(PATIENCE) {
            rest.push(line);
        }
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (rest, stderr)
    }
}

impl Drop for Wsauth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An example's binary, built by `cargo test` beside the test binaries.
pub fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().expect("the test binary's path");
    let debug = deps
        .parent()
        .and_then(|d| d.parent())
        .expect("target/debug");
    debug.join("examples").join(name)
}

/// A thread that sends each line of `stdout` over a channel until EOF.
pub fn lines_of(stdout: ChildStdout) -> Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// What a run of `wsauth ARGS` that ends by itself left behind.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `wsauth ARGS` to its end; fails if it is still running after [`PATIENCE`].
pub fn finish(args: &[&str]) -> Finished {
    let mut wsauth = Wsauth::spawn(args, &[]);
    let status = wsauth
        .wait_exit(PATIENCE)
        .unwrap_or_else(|| panic!("wsauth {args:?} is still running"));
    let (stdout, stderr) = wsauth.output();
    Finished {
        code: status.code(),
        stdout: stdout.join("\n"),
        stderr,
    }
}

/// A file of its own for each test (a tokens or key file), removed afterwards.
pub struct TempFile(pub PathBuf);

impl TempFile {
    /// Writes `contents` to a file named after `name` and this test process.
    pub fn new(name: &str, contents: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("wsauth-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    /// Replaces the file at once, as `mv` does, so no check sees half of it,
    /// with a modification time later than the old file's.
    pub fn rewrite(&self, contents: &[u8]) {
        let new = self.0.with_extension("new");
        std::fs::write(&new, contents).unwrap();
        later_than(&new, &self.0);
        std::fs::rename(&new, &self.0).unwrap();
    }

    /// The path, as a command-line argument.
    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Makes `new`'s modification time later than `old`'s. Timestamps move with
/// the kernel's clock tick: a file rewritten within the tick of its last
/// write would look unchanged to a server that watches modification times.
pub fn later_than(new: &std::path::Path, old: &std::path::Path) {
    let modified = |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified());
    let (Ok(then), Ok(now)) = (modified(old), modified(new)) else {
        return;
    };
    if now <= then {
        let file = std::fs::File::options().write(true).open(new).unwrap();
        file.set_modified(then + std::time::Duration::from_secs(1))
            .unwrap();
    }
}
