//! The stream tungstenite runs a session on.

use super::Link;
use crate::inbox::Inbox;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

/// The stream tungstenite runs the session on: reads from the socket (or
/// its TLS stream) through the session's inbox, writes through the link's
/// writer lock.
pub struct SessionStream {
    link: Arc<Link>,
    inbox: Inbox,
    /// A deadline no read may pass, however the bytes trickle in.
    deadline: Option<Instant>,
}

impl SessionStream {
    /// The stream of the session `link` belongs to.
    pub fn new(link: Arc<Link>) -> SessionStream {
        SessionStream {
            link,
            inbox: Inbox::default(),
            deadline: None,
        }
    }

    /// Makes every read end by `deadline` (`None`: by the socket's read
    /// timeout alone). tungstenite reads until a whole message is in, so a
    /// client sending fragments or pings would otherwise keep one `read`
    /// going for ever; past the deadline a read fails with `TimedOut`.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Gives the inbox's memory back while the session is quiet.
    pub fn release_inbox(&mut self) {
        self.inbox.release();
    }
}

impl Read for SessionStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.link.stream().set_read_timeout(Some(left))?;
        }
        self.inbox.read(&self.link.stream, buf)
    }
}

impl Write for SessionStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.link.write_frames(buf, true) {
            Ok(()) => Ok(buf.len()),
            // Never a WouldBlock: tungstenite would keep the frame and retry,
            // and the session would take it for a read timeout.
            Err(e) => Err(io::Error::new(io::ErrorKind::BrokenPipe, e)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
