//! A program's output: stdout lines to the client, stderr lines to the log,
//! and once its `sh` exits, the close its exit status calls for. One thread
//! carries both pipes; it waits on them, on the `sh`'s exit and on the
//! session's end at once, so a process that keeps a pipe open holds neither
//! the session nor the thread.

use super::process::Shell;
use crate::push::SessionHandle;
use crate::sys::{bytes_waiting, pollfd};
use std::io::{self, PipeReader, Read};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::{ChildStderr, ChildStdout};
use std::time::Duration;

/// Longest stderr line logged; the rest of a longer one is logged as more lines.
const MAX_LOG_LINE: usize = 4096;
/// How often the `sh`'s exit is checked where the kernel cannot tell it.
const EXIT_POLL: Duration = Duration::from_millis(100);
/// Bytes read from a pipe at a time.
const CHUNK: usize = 4096;

/// What the pipe thread reads: our (non-blocking) ends of the program's
/// stdout and stderr, and the session's end.
pub(super) struct Pipes {
    pub(super) stdout: Option<ChildStdout>,
    pub(super) stderr: Option<ChildStderr>,
    /// Hangs up once the session has ended its program: then nothing more
    /// is wanted from the pipes, whoever still holds them.
    pub(super) ended: PipeReader,
}

/// Carries the program's output until its `sh` exits (then sends what it
/// wrote before and closes the session) or the session ends it.
pub(super) fn carry_output(
    mut pipes: Pipes,
    shell: &Shell,
    handle: &SessionHandle,
    peer: SocketAddr,
    max_line: usize,
) {
    let mut out = Stdout {
        lines: LineSplitter::new(max_line),
        handle,
    };
    let mut err = Stderr {
        lines: LineSplitter::new(usize::MAX),
        peer,
    };
    loop {
        let ready = wait_ready(&pipes, shell);
        if ready.ended {
            return;
        }
        if ready.stderr {
            read_some(&mut pipes.stderr, CHUNK, |bytes| err.feed(bytes));
        }
        if ready.stdout && !read_some(&mut pipes.stdout, CHUNK, |bytes| out.feed(bytes)) {
            return;
        }
        if ready.exit
            && let Some(success) = shell.exit()
        {
            return finish(pipes, out, err, success);
        }
    }
}

/// The `sh` has exited: sends and logs what its pipes held at that moment
/// (not what a process it left behind writes later), then the close.
fn finish(mut pipes: Pipes, mut out: Stdout<'_>, mut err: Stderr, success: bool) {
    let waiting = pipes.stderr.as_ref().map_or(0, bytes_waiting);
    read_some(&mut pipes.stderr, waiting, |bytes| err.feed(bytes));
    err.finish();
    let waiting = pipes.stdout.as_ref().map_or(0, bytes_waiting);
    if !read_some(&mut pipes.stdout, waiting, |bytes| out.feed(bytes)) || !out.finish() {
        return;
    }
    let _ = match success {
        true => out.handle.close(1000, ""),
        false => out.handle.close(1011, "program failed"),
    };
}

/// Which of the things waited on are ready.
struct Ready {
    stdout: bool,
    stderr: bool,
    /// The `sh` may have exited: check.
    exit: bool,
    ended: bool,
}

fn wait_ready(pipes: &Pipes, shell: &Shell) -> Ready {
    let fds = [
        pipes.stdout.as_ref().map(AsRawFd::as_raw_fd),
        pipes.stderr.as_ref().map(AsRawFd::as_raw_fd),
        shell.exit_fd().map(|fd| fd.as_raw_fd()),
        Some(pipes.ended.as_raw_fd()),
    ];
    // A descriptor of -1 is skipped by poll(2): one slot per kind.
    let mut polled = fds.map(|fd| pollfd(fd.unwrap_or(-1), libc::POLLIN));
    let timeout = fds[2].is_none().then_some(EXIT_POLL);
    // A signal (an error) leaves every `revents` 0: nothing is ready.
    let _ = crate::sys::poll(&mut polled, timeout);
    let ready = |i: usize| fds[i].is_some() && polled[i].revents != 0;
    Ready {
        stdout: ready(0),
        stderr: ready(1),
        exit: ready(2) || fds[2].is_none(),
        ended: ready(3),
    }
}

/// Reads up to `limit` bytes that are there now from `pipe` (dropped at its
/// end) and feeds them on; `false` once `feed` wants no more.
fn read_some<R: Read>(
    pipe: &mut Option<R>,
    limit: usize,
    mut feed: impl FnMut(&[u8]) -> bool,
) -> bool {
    let mut chunk = [0u8; CHUNK];
    let mut left = limit;
    while let Some(reader) = pipe.as_mut()
        && left > 0
    {
        let n = match reader.read(&mut chunk[..left.min(CHUNK)]) {
            Ok(n) if n > 0 => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            // Its end, or an error: nothing more comes from it.
            _ => {
                *pipe = None;
                return true;
            }
        };
        if !feed(&chunk[..n]) {
            return false;
        }
        left -= n;
    }
    true
}

/// Stdout, line by line, to the client.
struct Stdout<'a> {
    lines: LineSplitter,
    handle: &'a SessionHandle,
}

impl Stdout<'_> {
    /// Sends each line these bytes complete; `false` when the session no
    /// longer takes them (it ended, or a line was too long: then it closes).
    fn feed(&mut self, bytes: &[u8]) -> bool {
        match self.lines.push(bytes, |line| send_line(self.handle, line)) {
            Ok(sent) => sent,
            Err(TooLong) => {
                let _ = self.handle.close(1011, "program output too long");
                false
            }
        }
    }

    /// Sends a last line that had no `\n`; `false` if it could not be sent.
    fn finish(&mut self) -> bool {
        self.lines
            .rest()
            .is_none_or(|last| send_line(self.handle, last))
    }
}

/// Stderr, line by line, to the log with the client's address.
struct Stderr {
    lines: LineSplitter,
    peer: SocketAddr,
}

impl Stderr {
    fn feed(&mut self, bytes: &[u8]) -> bool {
        let peer = self.peer;
        let _ = self.lines.push(bytes, |line| log_line(peer, line));
        // Bound what a line without end can hold.
        if self.lines.partial.len() > MAX_LOG_LINE {
            log_line(peer, &std::mem::take(&mut self.lines.partial));
        }
        true
    }

    fn finish(&mut self) {
        if let Some(last) = self.lines.rest() {
            log_line(self.peer, last);
        }
    }
}

fn log_line(peer: SocketAddr, line: &[u8]) -> bool {
    for piece in line.chunks(MAX_LOG_LINE) {
        log::info!("{peer}: program: {}", String::from_utf8_lossy(piece));
    }
    true
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
    fn push(
        &mut self,
        mut bytes: &[u8],
        mut line: impl FnMut(&[u8]) -> bool,
    ) -> Result<bool, TooLong> {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            // The `\r` before the `\n` is not part of the line.
            let before_newline = match end {
                0 => self.partial.last(),
                _ => bytes.get(end - 1),
            };
            let carriage = usize::from(before_newline == Some(&b'\r'));
            self.check(self.partial.len() + end - carriage)?;
            let done = if self.partial.is_empty() {
                line(&bytes[..end])
            } else {
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
        (len <= self.max_line).then_some(()).ok_or(TooLong)
    }

    /// The last line, if the output did not end with `\n`.
    fn rest(&self) -> Option<&[u8]> {
        (!self.partial.is_empty()).then_some(self.partial.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines found, whether no line was too long, and the unfinished rest.
    type Split = (Vec<Vec<u8>>, Result<(), ()>, Option<Vec<u8>>);

    fn split(chunks: &[&[u8]], max: usize) -> Split {
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
