//! A program's output: stdout lines to the client, stderr lines to the log.

use super::wait_for_exit;
use crate::push::SessionHandle;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::process::Child;
use std::sync::Mutex;

/// Longest stderr line logged; the rest of a longer one is logged as more lines.
const MAX_LOG_LINE: usize = 4096;

/// Sends each stdout line as it completes; at the end, the close that the
/// program's exit status calls for.
pub(super) fn send_output(
    stdout: impl Read,
    child: &Mutex<Child>,
    handle: &SessionHandle,
    max_line: usize,
) {
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
        if len > self.max_line {
            Err(TooLong)
        } else {
            Ok(())
        }
    }

    /// The last line, if the output did not end with `\n`.
    fn rest(&self) -> Option<&[u8]> {
        (!self.partial.is_empty()).then_some(self.partial.as_slice())
    }
}

/// Logs each stderr line at info, with the client's address.
pub(super) fn log_lines(stderr: impl Read, peer: SocketAddr) {
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
