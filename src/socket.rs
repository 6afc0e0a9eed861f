//! Socket writes and waits bounded by a deadline, whatever the socket's own
//! timeouts say: a peer that stops reading can hold a writer only until then.

use crate::sys;
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

/// Writes all of `bytes` to `tcp`, giving up with [`io::ErrorKind::TimedOut`]
/// at `deadline`. Never raises `SIGPIPE`; a prefix may have been sent when it
/// fails, so a failed write leaves the stream unusable for framed data.
pub fn write_all_before(tcp: &TcpStream, bytes: &[u8], deadline: Instant) -> io::Result<()> {
    DeadlineWriter { tcp, deadline }.write_all(bytes)
}

/// A [`Write`] on a borrowed socket whose every write ends by a deadline.
pub struct DeadlineWriter<'a> {
    /// The socket written to.
    pub tcp: &'a TcpStream,
    /// When a write that cannot proceed gives up.
    pub deadline: Instant,
}

impl Write for DeadlineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        loop {
            match send_now(self.tcp, bytes) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_for(self.tcp, libc::POLLOUT, self.deadline)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One `send` that never blocks and never raises `SIGPIPE`.
pub(crate) fn send_now(tcp: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    sys::send_nonblocking(tcp.as_fd(), bytes)
}

/// Waits until `tcp` is ready for `events` (`POLLIN`, `POLLOUT`), or fails
/// with [`io::ErrorKind::TimedOut`] once `deadline` has passed. A signal
/// ends the wait early with success: the caller simply tries again.
pub(crate) fn wait_for(
    tcp: &TcpStream,
    events: libc::c_short,
    deadline: Instant,
) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
    }
    let mut fd = [sys::pollfd(tcp.as_raw_fd(), events)];
    match sys::poll(&mut fd, Some(left)) {
        Err(e) if e.kind() != io::ErrorKind::Interrupted => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
