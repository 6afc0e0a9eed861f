//! Telling a TLS client from a plain-HTTP one by its first bytes, without
//! consuming them.

use crate::sys;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

/// The longest method name recognised as plain HTTP.
const MAX_METHOD_LEN: usize = 20;

/// What a connection's first bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstBytes {
    /// A TLS handshake record (`0x16 0x03`).
    Tls,
    /// An HTTP method name (letters) followed by a space: a plain-HTTP
    /// request sent to the TLS port.
    PlainHttp,
    /// Anything else.
    Other,
}

/// Looks at the first bytes of `tcp` without consuming them, deciding on as
/// few as possible and waiting for more only while they leave it open.
///
/// Fails with [`io::ErrorKind::TimedOut`] when `deadline` passes first, and
/// with [`io::ErrorKind::UnexpectedEof`] when the peer closes first. Leaves
/// the socket's read timeout changed.
pub fn sniff(tcp: &TcpStream, deadline: Instant) -> io::Result<FirstBytes> {
    let mut buf = [0u8; MAX_METHOD_LEN + 1];
    let mut want = 1;
    loop {
        let have = peek_at_least(tcp, &mut buf[..want], deadline)?;
        if let Some(kind) = classify(&buf[..have]) {
            return Ok(kind);
        }
        want = have + 1;
    }
}

/// Classifies the first bytes; `None` while more bytes could change the answer.
/// Never `None` for 21 bytes or more (a method name has at most 20 letters).
pub fn classify(bytes: &[u8]) -> Option<FirstBytes> {
    match bytes {
        [] | [0x16] => None,
        [0x16, 0x03, ..] => Some(FirstBytes::Tls),
        [0x16, ..] => Some(FirstBytes::Other),
        _ => classify_method(bytes),
    }
}

/// Letters, then a space: a method name; anything else is not HTTP.
fn classify_method(bytes: &[u8]) -> Option<FirstBytes> {
    let letters = bytes.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    match bytes.get(letters) {
        _ if letters == 0 || letters > MAX_METHOD_LEN => Some(FirstBytes::Other),
        None => None,
        Some(b' ') => Some(FirstBytes::PlainHttp),
        Some(_) => Some(FirstBytes::Other),
    }
}

/// Peeks until `buf` is full, the peer closes, or `deadline` passes.
fn peek_at_least(tcp: &TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no decisive first bytes in time",
            ));
        }
        tcp.set_read_timeout(Some(left))?;
        match peek_waiting(tcp, buf) {
            Ok(n) if n == buf.len() => return Ok(n),
            // A short peek: the read timeout fired, a signal came, or the peer closed.
            Ok(0) => return Err(closed()),
            Ok(_) if peer_closed(tcp)? => return Err(closed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// One `recv(MSG_PEEK | MSG_WAITALL)`: blocks until `buf` can be filled,
/// within the socket's read timeout.
fn peek_waiting(tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    sys::peek_wait_all(tcp.as_fd(), buf)
}

/// Whether the peer has shut down its sending side (a poll that never waits).
fn peer_closed(tcp: &TcpStream) -> io::Result<bool> {
    let mut fd = [sys::pollfd(tcp.as_raw_fd(), libc::POLLRDHUP)];
    sys::poll(&mut fd, Some(Duration::ZERO))?;
    Ok(fd[0].revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0)
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "closed before the first bytes decided",
    )
}

/// A complete plain-HTTP answer for a plain-HTTP request sent to the TLS
/// port: 400 with a body telling the client to use `https://`, as nginx does.
pub fn plain_http_refusal() -> &'static [u8] {
    concat!(
        "HTTP/1.1 400 Bad Request\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Content-Length: 50\r\n",
        "Connection: close\r\n",
        "\r\n",
        "This port speaks HTTPS: use https:// (or wss://).\n",
    )
    .as_bytes()
}

#[cfg(test)]
mod tests;
