//! `--exec`: a program per session, as websocketd runs one. Text messages go
//! to its stdin a line each; each line of its stdout comes back as a message
//! at once; its stderr goes to the log; it is always reaped.

use crate::handler::{Handler, Reply, SessionInfo};
use crate::push::SessionHandle;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How long a program may take to exit after its stdin is closed, and again
/// after `SIGTERM`, before the next step.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How often a program that should be exiting is checked on.
const REAP_POLL: Duration = Duration::from_millis(10);
/// How often a write to a program that stopped reading checks whether the
/// session has been told to end.
const STALL_POLL: Duration = Duration::from_millis(250);
/// Longest stderr line logged; the rest of a longer one is logged as more lines.
const MAX_LOG_LINE: usize = 4096;
/// Stack of the threads that carry a program's output.
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
        let started = spawn(&self.command, info).and_then(|mut child| {
            let stdin = child.stdin.take();
            let output = (child.stdout.take(), child.stderr.take());
            let child = Arc::new(Mutex::new(child));
            if let Err(e) = start_pumps(output, child.clone(), info, self.max_line) {
                // No thread to carry its output: end it now, and reap it.
                let mut child = lock(&child);
                // SAFETY: the group of a child we have not reaped yet.
                unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
                let _ = child.wait();
                return Err(e);
            }
            Ok((child, stdin))
        });
        match started {
            Ok((child, stdin)) => Program {
                child: Some(child),
                stdin,
                peer: info.peer,
            },
            Err(e) => {
                log::error!("{}: cannot start the program: {e}", info.peer);
                Program {
                    child: None,
                    stdin: None,
                    peer: info.peer,
                }
            }
        }
    }
}

/// One session's program: the [`Handler`] that feeds it.
pub struct Program {
    /// `None` when it could not be started.
    child: Option<Arc<Mutex<Child>>>,
    stdin: Option<ChildStdin>,
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
    if let Some(stdin) = &child.stdin {
        set_nonblocking(stdin.as_raw_fd());
    }
    Ok(child)
}

fn set_nonblocking(fd: libc::c_int) {
    // SAFETY: fcntl on a pipe descriptor we own, with valid flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// The threads that carry stdout to the client and stderr to the log.
fn start_pumps(
    (stdout, stderr): (Option<impl Read + Send + 'static>, Option<impl Read + Send + 'static>),
    child: Arc<Mutex<Child>>,
    info: &SessionInfo,
    max_line: usize,
) -> io::Result<()> {
    let (handle, peer) = (info.handle.clone(), info.peer);
    if let Some(stderr) = stderr {
        thread::Builder::new()
            .name("wsauth-exec-err".into())
            .stack_size(PIPE_THREAD_STACK)
            .spawn(move || log_lines(stderr, peer))?;
    }
    if let Some(stdout) = stdout {
        thread::Builder::new()
            .name("wsauth-exec-out".into())
            .stack_size(PIPE_THREAD_STACK)
            .spawn(move || send_output(stdout, &child, &handle, max_line))?;
    }
    Ok(())
}

/// Sends each stdout line as it completes; at the end, the close that the
/// program's exit status calls for.
fn send_output(stdout: impl Read, child: &Mutex<Child>, handle: &SessionHandle, max_line: usize) {
    let mut lines = LineSplitter::new(max_line);
    let mut chunk = [0u8; 4096];
    let mut out = stdout;
    loop {
        let n = match out.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let sent = lines.push(&chunk[..n], |line| send_line(handle, line));
        match sent {
            Ok(true) => {}
            // The session is gone: its end stops the program.
            Ok(false) => return,
            Err(TooLong) => {
                let _ = handle.close(1011, "program output too long");
                return;
            }
        }
    }
    if let Some(last) = lines.rest() {
        send_line(handle, last);
    }
    let status = wait_for_exit(child);
    let _ = match status {
        Some(status) if status.success() => handle.close(1000, ""),
        _ => handle.close(1011, "program failed"),
    };
}

/// Sends one line: text when it is UTF-8, else binary. `false`: the session
/// no longer takes messages.
fn send_line(handle: &SessionHandle, line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let sent = match std::str::from_utf8(line) {
        Ok(text) => handle.send(text),
        Err(_) => handle.send(line.to_vec()),
    };
    sent.is_ok()
}

/// A stdout line passed the message size limit before its end.
#[derive(Debug)]
struct TooLong;

/// Splits a byte stream into lines, holding at most `max_line` bytes of an
/// unfinished one.
struct LineSplitter {
    partial: Vec<u8>,
    max_line: usize,
}

impl LineSplitter {
    fn new(max_line: usize) -> Self {
        LineSplitter {
            partial: Vec::new(),
            max_line,
        }
    }

    /// Feeds bytes; calls `line` for each complete line (without its `\n`)
    /// until it returns `false`.
    fn push(&mut self, mut bytes: &[u8], mut line: impl FnMut(&[u8]) -> bool) -> Result<bool, TooLong> {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            let done = if self.partial.is_empty() {
                self.check(end)?;
                line(&bytes[..end])
            } else {
                self.check(self.partial.len() + end)?;
                self.partial.extend_from_slice(&bytes[..end]);
                let done = line(&self.partial);
                self.partial.clear();
                done
            };
            if !done {
                return Ok(false);
            }
            bytes = &bytes[end + 1..];
        }
        // A `\r` may still precede the coming `\n`: allow one byte over.
        self.check(self.partial.len() + bytes.len() - usize::from(bytes.ends_with(b"\r")))?;
        self.partial.extend_from_slice(bytes);
        Ok(true)
    }

    fn check(&self, len: usize) -> Result<(), TooLong> {
        if len > self.max_line { Err(TooLong) } else { Ok(()) }
    }

    /// The last line, if the output did not end with `\n`.
    fn rest(&self) -> Option<&[u8]> {
        (!self.partial.is_empty()).then_some(self.partial.as_slice())
    }
}

/// Logs each stderr line at info, with the client's address.
fn log_lines(stderr: impl Read, peer: SocketAddr) {
    let mut lines = LineSplitter::new(usize::MAX);
    let mut chunk = [0u8; 1024];
    let mut err = stderr;
    let mut log_line = |line: &[u8]| {
        for piece in line.chunks(MAX_LOG_LINE) {
            log::info!("{peer}: program: {}", String::from_utf8_lossy(piece));
        }
        true
    };
    loop {
        match err.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = lines.push(&chunk[..n], &mut log_line);
                // Bound what a line without end can hold.
                if lines.partial.len() > MAX_LOG_LINE {
                    log_line(&std::mem::take(&mut lines.partial));
                }
            }
        }
    }
    if let Some(last) = lines.rest() {
        log_line(last);
    }
}

fn lock(child: &Mutex<Child>) -> MutexGuard<'_, Child> {
    child.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until the program has exited and reaps it; `None` if waiting failed.
/// `waitid` with `WNOWAIT` waits without reaping, so the pid cannot be reused
/// while the session's end may still signal its group.
fn wait_for_exit(child: &Mutex<Child>) -> Option<ExitStatus> {
    let pid = lock(child).id();
    // SAFETY: waitid writes only into the siginfo we pass.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        );
    }
    lock(child).try_wait().ok().flatten()
}

impl Program {
    /// Writes one line to the program's stdin. A program that stops reading
    /// stalls this session only; the wait ends when the session is told to
    /// end (shutdown, revocation, the program's exit).
    fn write_line(&mut self, text: &str, reply: &Reply<'_>) {
        let Some(stdin) = &mut self.stdin else { return };
        let mut line = Vec::with_capacity(text.len() + 1);
        line.extend_from_slice(text.as_bytes());
        line.push(b'\n');
        let mut rest = line.as_slice();
        while !rest.is_empty() {
            match stdin.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if reply.is_closing() {
                        return;
                    }
                    wait_writable(stdin.as_raw_fd(), STALL_POLL);
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

fn wait_writable(fd: libc::c_int, at_most: Duration) {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, as the count says.
    unsafe { libc::poll(&mut pollfd, 1, at_most.as_millis() as libc::c_int) };
}

impl Handler for Program {
    fn on_open(&mut self, reply: &mut Reply<'_>) {
        if self.child.is_none() {
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
/// after that. It is reaped in every case.
impl Drop for Program {
    fn drop(&mut self) {
        self.stdin = None;
        let Some(child) = &self.child else { return };
        let started = Instant::now();
        let mut terminated = false;
        loop {
            let mut child = lock(child);
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            let pgid = child.id() as libc::pid_t;
            let waited = started.elapsed();
            if waited >= 2 * EXIT_GRACE {
                log::info!("{}: program killed", self.peer);
                // SAFETY: the group of a child we have not reaped yet.
                unsafe { libc::killpg(pgid, libc::SIGKILL) };
                let _ = child.wait();
                return;
            }
            if waited >= EXIT_GRACE && !terminated {
                log::info!("{}: program did not exit; sending SIGTERM", self.peer);
                // SAFETY: as above.
                unsafe { libc::killpg(pgid, libc::SIGTERM) };
                terminated = true;
            }
            drop(child);
            thread::sleep(REAP_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> (Vec<Vec<u8>>, Result<(), ()>, Option<Vec<u8>>) {
        let mut splitter = LineSplitter::new(max);
        let mut lines = Vec::new();
        for chunk in chunks {
            if splitter
                .push(chunk, |l| {
                    lines.push(l.to_vec());
                    true
                })
                .is_err()
            {
                return (lines, Err(()), None);
            }
        }
        let rest = splitter.rest().map(<[u8]>::to_vec);
        (lines, Ok(()), rest)
    }

    #[test]
    fn lines_are_split_across_chunks() {
        let (lines, ok, rest) = split(&[b"ab", b"c\nde\n", b"f"], 10);
        assert_eq!(lines, [b"abc".to_vec(), b"de".to_vec()]);
        assert!(ok.is_ok());
        assert_eq!(rest, Some(b"f".to_vec()));
    }

    #[test]
    fn a_line_over_the_limit_is_refused_before_its_end() {
        assert!(split(&[b"12345"], 4).1.is_err());
        assert!(split(&[b"12", b"345\n"], 4).1.is_err());
        assert!(split(&[b"1234\n"], 4).1.is_ok());
        assert!(split(&[b"1234\r", b"\n"], 4).1.is_ok());
    }
}
