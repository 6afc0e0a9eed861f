//! The write side of a session: every frame, the session's own and every
//! push, goes through [`Link::write_frames`] or [`Link::push_frame`]; what
//! the socket cannot take at once waits in the session's outbox.

use super::{Link, MAX_CHUNK, MAX_WAITING_WRITERS, Wake};
use crate::error::SendError;
use crate::flusher::{Backlog, Flushed};
use crate::message::reason_end;
use crate::outbox::Outbox;
use crate::socket::wait_for;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The write side's state. Every write to the socket is a non-blocking one
/// made under this lock, so frames never interleave and nobody waits for a
/// slow socket while holding it; a writer that must wait does so outside.
#[derive(Default)]
pub(super) struct Writer {
    /// The frames the socket has not taken yet, in order.
    outbox: Outbox,
    /// TLS records of frames already taken still wait for the socket.
    unsent: bool,
    /// When the outbox last moved (or filled), for the write timeout.
    moved_at: Option<Instant>,
    /// The flusher has this session in its list.
    flushing: bool,
    /// Threads waiting for their frame to leave.
    waiting: usize,
    /// Our close frame is handed over, or the session is over: no frame
    /// may follow (RFC 6455 forbids data after our Close).
    closed: bool,
    /// The connection was cut: nothing more is written.
    cut: bool,
    /// The session's end has drained the outbox and sent our FIN.
    finished: bool,
    /// The close a handle sent (or the outbox's `too slow`), for the log line.
    closed_by_handle: Option<(u16, Box<str>)>,
}

impl Writer {
    fn backlog(&self) -> bool {
        !self.outbox.is_empty() || self.unsent
    }
}

impl Link {
    /// Hands over `bytes`, whole frames only, as one unit (no other
    /// writer's frame comes between them), and waits until they have left,
    /// within the write timeout; past it the session is cut off. A writer
    /// that finds the outbox full waits for room instead of overflowing it.
    /// `own` writes (the session thread's) are never refused for too many
    /// waiters.
    pub fn write_frames(self: &Arc<Self>, bytes: &[u8], own: bool) -> Result<(), SendError> {
        let deadline = Instant::now() + self.write_timeout;
        let mut state = self.state();
        if state.closed || state.cut {
            return Err(SendError::Closed);
        }
        if !own && state.waiting >= MAX_WAITING_WRITERS && state.backlog() {
            return Err(SendError::Full);
        }
        let fits = |state: &Writer| {
            state.outbox.is_empty() || state.outbox.len() + bytes.len() <= self.flusher.limit()
        };
        if !fits(&state) {
            state.waiting += 1;
            drop(state);
            let room = self.wait_until(deadline, fits);
            state = self.state();
            state.waiting -= 1;
            room?;
            if state.closed || state.cut {
                return Err(SendError::Closed);
            }
        }
        let end = self.hand_over(&mut state, bytes, false)?;
        if state.outbox.has_written(end) {
            self.keep_flushing(&mut state);
            return Ok(());
        }
        state.waiting += 1;
        drop(state);
        let waited = self.wait_until(deadline, |state| state.outbox.has_written(end));
        let mut state = self.state();
        state.waiting -= 1;
        self.keep_flushing(&mut state);
        waited
    }

    /// Hands over one frame without waiting for it to leave (a fan-out):
    /// what the socket does not take at once waits in the outbox; a
    /// session whose outbox would overflow is closed as too slow.
    pub fn push_frame(self: &Arc<Self>, frame: &[u8]) -> Result<(), SendError> {
        let mut state = self.state();
        if state.closed || state.cut {
            return Err(SendError::Closed);
        }
        self.hand_over(&mut state, frame, true)?;
        self.keep_flushing(&mut state);
        Ok(())
    }

    /// Writes what the socket takes of `bytes` now and puts the rest in the
    /// outbox, behind what already waits there; returns where they end.
    /// With `bounded`, an outbox that would overflow closes the session as
    /// too slow.
    fn hand_over(&self, state: &mut Writer, bytes: &[u8], bounded: bool) -> Result<u64, SendError> {
        if state.backlog() {
            self.drain(state)?;
        }
        let sent = match state.backlog() {
            true => 0,
            false => match self.stream.send_some(bytes) {
                Ok((n, unsent)) => {
                    state.unsent = unsent;
                    n
                }
                Err(_) => return Err(self.cut_locked(state)),
            },
        };
        if state.outbox.is_empty() && sent < bytes.len() {
            state.moved_at = Some(Instant::now());
        }
        let end = state.outbox.push(bytes, sent);
        if bounded && state.outbox.len() > self.flusher.limit() {
            return Err(self.too_slow(state));
        }
        if carries_close_frame(bytes) {
            state.closed = true;
        }
        Ok(end)
    }

    /// Writes out of the outbox what the socket takes now.
    fn drain(&self, state: &mut Writer) -> Result<(), SendError> {
        while state.backlog() {
            let front = state.outbox.front();
            let chunk = &front[..front.len().min(MAX_CHUNK)];
            let (sent, wanted) = (self.stream.send_some(chunk), chunk.len());
            let (n, unsent) = match sent {
                Ok(sent) => sent,
                Err(_) => return Err(self.cut_locked(state)),
            };
            state.unsent = unsent;
            if n > 0 {
                state.outbox.written(n);
                state.moved_at = Some(Instant::now());
            }
            if n < wanted || wanted == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Waits, outside the lock, until `done` holds, writing the outbox out
    /// as the socket drains; cuts the connection at `deadline`.
    fn wait_until(
        &self,
        deadline: Instant,
        done: impl Fn(&Writer) -> bool,
    ) -> Result<(), SendError> {
        loop {
            let ready = wait_for(self.stream(), libc::POLLOUT, deadline);
            let mut state = self.state();
            if state.cut {
                return Err(SendError::Closed);
            }
            let before = state.outbox.len();
            self.drain(&mut state)?;
            if done(&state) {
                return Ok(());
            }
            if state.outbox.is_empty() {
                // Given up on (too slow): what was waited for is gone.
                return Err(SendError::Closed);
            }
            if ready.is_err() {
                self.cut_locked(&mut state);
                return Err(SendError::TimedOut);
            }
            if state.outbox.len() == before {
                // Writable, yet the TLS state is busy elsewhere: no spinning.
                drop(state);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Gives the outbox to the flusher while bytes wait and no one else
    /// will write them out.
    fn keep_flushing(self: &Arc<Self>, state: &mut Writer) {
        if state.backlog() && !state.flushing && !state.cut && !state.finished {
            state.flushing = self.flusher.add(self.clone());
        }
    }

    /// Closes a session whose outbox has overflowed (or did not move within
    /// the write timeout): its outbox is freed, and it
    /// gets 1008 `too slow` if no frame is partly out and the socket takes
    /// the close at once; otherwise the connection is cut.
    fn too_slow(&self, state: &mut Writer) -> SendError {
        let between_frames = state.outbox.between_frames() && !state.closed;
        let dropped = state.outbox.clear();
        self.metrics.closed_slow(dropped);
        log::info!(
            "{}: closing: too slow, {dropped} messages dropped",
            self.peer
        );
        state.closed = true;
        state.closed_by_handle = Some((1008, "too slow".into()));
        // The reason first: the session, woken by the cut too, must see it.
        self.wake(Wake::Closed);
        let close = close_frame_bytes(1008, "too slow");
        let sent = between_frames
            && matches!(self.stream.send_some(&close), Ok((n, _)) if n == close.len());
        if !sent {
            self.cut_locked(state);
        }
        SendError::Closed
    }

    /// Cuts the connection off after a failed write: part of a frame may
    /// be out, so nothing more can follow it.
    fn cut_locked(&self, state: &mut Writer) -> SendError {
        state.cut = true;
        state.closed = true;
        state.outbox.clear();
        state.unsent = false;
        let _ = self.stream().shutdown(Shutdown::Both);
        SendError::Closed
    }

    /// Ends the session's writing side for good: refuses every later frame,
    /// writes out what waits (within the write timeout), then tells the peer
    /// (a FIN). Called by the session at its end; later calls do nothing.
    pub fn finish(&self) {
        let mut state = self.state();
        state.closed = true;
        if state.finished {
            return;
        }
        state.finished = true;
        if state.backlog() && !state.cut {
            let end = state.outbox.end();
            drop(state);
            let deadline = Instant::now() + self.write_timeout;
            let _ = self.wait_until(deadline, |state| state.outbox.has_written(end));
            state = self.state();
        }
        state.outbox.clear();
        drop(state);
        let _ = self.stream.shutdown_write();
    }

    /// Whether no more frames can be sent.
    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Sends a close frame from outside the session and wakes it to end.
    /// The close waits in the outbox if the socket is full: the session's
    /// end writes it out before its FIN.
    pub fn close_from_handle(self: &Arc<Self>, code: u16, reason: &str) -> Result<(), SendError> {
        let bytes = close_frame_bytes(code, reason);
        self.push_frame(&bytes)?;
        self.state().closed_by_handle = Some((code, reason.into()));
        self.wake(Wake::Closed);
        Ok(())
    }

    /// The close a handle sent, if one did.
    pub fn closed_by_handle(&self) -> Option<(u16, String)> {
        let state = self.state();
        let (code, reason) = state.closed_by_handle.as_ref()?;
        Some((*code, reason.to_string()))
    }
}

/// A close frame, formatted: unmasked, FIN, the code, then the reason (cut
/// to the 123 bytes a control frame can carry, on a character boundary).
pub fn close_frame_bytes(code: u16, reason: &str) -> Vec<u8> {
    let end = reason_end(reason);
    let mut bytes = vec![0x88, 2 + end as u8];
    bytes.extend_from_slice(&code.to_be_bytes());
    bytes.extend_from_slice(&reason.as_bytes()[..end]);
    bytes
}

/// A frame's header length (its mask included) and payload length; `None`
/// while the header is not whole.
fn frame_header(frame: &[u8]) -> Option<(u64, u64)> {
    let (header, length) = match frame.get(1)? & 0x7F {
        126 => (
            4,
            u64::from(u16::from_be_bytes(frame.get(2..4)?.try_into().ok()?)),
        ),
        127 => (10, u64::from_be_bytes(frame.get(2..10)?.try_into().ok()?)),
        n => (2, u64::from(n)),
    };
    Some((header + u64::from(frame[1] >> 7) * 4, length))
}

/// The payload length a frame's header declares (0 for a truncated header).
pub(super) fn payload_len(frame: &[u8]) -> usize {
    frame_header(frame).map_or(0, |(_, n)| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Whether a buffer of whole frames holds a close frame.
fn carries_close_frame(mut bytes: &[u8]) -> bool {
    while let Some((header, length)) = frame_header(bytes) {
        if bytes[0] & 0x0F == 0x8 {
            return true;
        }
        let Ok(next) = usize::try_from(length.saturating_add(header)) else {
            return false;
        };
        bytes = bytes.get(next..).unwrap_or_default();
    }
    false
}

impl Backlog for Link {
    fn socket(&self) -> RawFd {
        self.stream().as_raw_fd()
    }

    /// The flusher's turn: writes out what the socket takes; cuts a session
    /// whose outbox has not moved for the write timeout.
    fn flush_queued(&self) -> Flushed {
        let mut state = self.state();
        let before = (state.outbox.len(), state.unsent);
        if !state.cut && self.drain(&mut state).is_ok() && state.backlog() {
            if state
                .moved_at
                .is_some_and(|at| at.elapsed() >= self.write_timeout)
            {
                self.too_slow(&mut state);
            } else if (state.outbox.len(), state.unsent) == before {
                return Flushed::Stuck;
            } else {
                return Flushed::More;
            }
        }
        state.flushing = false;
        Flushed::Done
    }

    /// When the flusher must look at this session even if its socket stays
    /// full: when the write timeout runs out.
    fn flush_deadline(&self) -> Instant {
        let state = self.state();
        let moved = state.moved_at.unwrap_or_else(Instant::now);
        moved + self.write_timeout
    }
}

#[cfg(test)]
mod tests;
