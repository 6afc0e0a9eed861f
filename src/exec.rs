//! `--exec`: a program per session, as websocketd runs one. Text messages go
//! to its stdin a line each; each line of its stdout comes back as a message
//! at once; its stderr goes to the log; it is always reaped.

use crate::handler::{Handler, Reply, SessionInfo};
use crate::thread_limits;
mod output;
mod process;

use crate::sys::set_nonblocking;
use output::{Pipes, carry_output};
use process::Shell;
use std::io::{self, PipeWriter, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;

/// Stack of the thread that carries a program's output.
const PIPE_THREAD_STACK: usize = 64 * 1024;

/// Makes `--exec` handlers: `/bin/sh -c command` for each session; a stdout
/// line longer than `max_line` bytes closes the session with 1011.
///
/// ```no_run
/// use wsauth::{Config, Server, TokenStore, exec::Exec};
/// let exec = Exec::new("tr a-z A-Z", 65536);
/// let server = Server::start_with_handler("127.0.0.1:0", Config::default(),
///     TokenStore::new(vec![]), move |info| exec.start(info))?;
/// # Ok::<(), wsauth::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Exec {
    command: String,
    max_line: usize,
}

impl Exec {
    /// Runs `command` with `/bin/sh -c` for each session.
    pub fn new(command: impl Into<String>, max_line: usize) -> Self {
        Exec {
            command: command.into(),
            max_line,
        }
    }

    /// Starts the program for one session. A program that cannot be started
    /// gives a handler that closes the session with 1011 `program failed`.
    pub fn start(&self, info: &SessionInfo) -> Program {
        match spawn(&self.command, info).and_then(|child| start_pipes(child, info, self.max_line)) {
            Ok(program) => program,
            Err(e) => {
                log::error!("{}: cannot start the program: {e}", info.peer);
                Program {
                    shell: None,
                    stdin: None,
                    ended: None,
                    peer: info.peer,
                }
            }
        }
    }
}

/// One session's program: the [`Handler`] that feeds it.
pub struct Program {
    /// `None` when it could not be started.
    shell: Option<Arc<Shell>>,
    stdin: Option<ChildStdin>,
    /// Dropped once the program is ended and reaped: its pipe thread ends.
    ended: Option<PipeWriter>,
    peer: SocketAddr,
}

fn spawn(command: &str, info: &SessionInfo) -> io::Result<Child> {
    let mut program = Command::new("/bin/sh");
    program
        .arg("-c")
        .arg(command)
        .env("WSAUTH_USER", &info.identity.user)
        .env("REMOTE_ADDR", info.peer.ip().to_string())
        .env("REMOTE_PORT", info.peer.port().to_string())
        .env_remove("WSAUTH_SUBPROTOCOL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so that ending it ends whatever it started.
        .process_group(0);
    if let Some(protocol) = &info.subprotocol {
        program.env("WSAUTH_SUBPROTOCOL", protocol);
    }
    let child = program.spawn()?;
    // Our ends only: the pipe thread and a stalled write never block.
    child.stdin.iter().for_each(set_nonblocking);
    child.stdout.iter().for_each(set_nonblocking);
    child.stderr.iter().for_each(set_nonblocking);
    Ok(child)
}

/// Gives the program its pipe thread; a program that cannot have one is
/// ended at once.
fn start_pipes(mut child: Child, info: &SessionInfo, max_line: usize) -> io::Result<Program> {
    let stdin = child.stdin.take();
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let shell = Arc::new(Shell::new(child));
    let thread = io::pipe().and_then(|(ended_rx, ended)| {
        let pipes = Pipes {
            stdout,
            stderr,
            ended: ended_rx,
        };
        let (handle, peer, carried) = (info.handle.clone(), info.peer, shell.clone());
        let run = move || carry_output(pipes, &carried, &handle, peer, max_line);
        thread_limits::spawn("wsauth-exec-io", PIPE_THREAD_STACK, Box::new(run)).map(|()| ended)
    });
    match thread {
        Ok(ended) => Ok(Program {
            shell: Some(shell),
            stdin,
            ended: Some(ended),
            peer: info.peer,
        }),
        Err(e) => {
            shell.kill();
            Err(e)
        }
    }
}

impl Program {
    /// Writes one line to the program's stdin. A program that stops reading
    /// stalls this session only, and only while the session lasts: the wait
    /// ends when its client leaves, its idle timeout passes or it is told
    /// to end (see [`Reply::wait_writable`]).
    fn write_line(&mut self, text: &str, reply: &mut Reply<'_>) {
        let Some(stdin) = &mut self.stdin else { return };
        let mut line = Vec::with_capacity(text.len() + 1);
        line.extend_from_slice(text.as_bytes());
        line.push(b'\n');
        let mut rest = line.as_slice();
        while !rest.is_empty() {
            match stdin.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !reply.wait_writable(stdin.as_fd()) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // It closed its stdin or exited: its output says the rest.
                    self.stdin = None;
                    return;
                }
            }
        }
    }
}

impl Handler for Program {
    fn on_open(&mut self, reply: &mut Reply<'_>) {
        if self.shell.is_none() {
            reply.close(1011, "program failed");
        }
    }

    fn on_text(&mut self, text: &str, reply: &mut Reply<'_>) {
        self.write_line(text, reply);
    }

    fn on_binary(&mut self, _data: &[u8], reply: &mut Reply<'_>) {
        reply.close(1003, "binary messages not supported");
    }
}

/// The session has ended, whatever the reason: close the program's stdin;
/// if it has not exited 2 s later its group gets SIGTERM, and SIGKILL 2 s
/// after that; once it has exited, its group gets SIGTERM at once, and
/// SIGKILL 2 s later if any of it is left. It is reaped in every case.
impl Drop for Program {
    fn drop(&mut self) {
        self.stdin = None;
        if let Some(shell) = &self.shell {
            shell.end(self.peer);
        }
        // Nothing is left to read for: the pipe thread ends, even if a
        // process that left the group still holds a pipe.
        self.ended = None;
    }
}
