//! Socket calls std has no method for: sends and peeks with flags of their
//! own, shutting a listening socket, the options a listener takes.

use super::checked;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// One `send` that never blocks and never raises `SIGPIPE`; how many bytes
/// the socket took.
#[inline]
pub fn send_nonblocking(socket: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    let fd = socket.as_raw_fd();
    // SAFETY: the pointer and length describe a live slice, which send only
    // reads; the descriptor is open for the borrow's lifetime.
    let sent = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), flags) };
    checked(sent)
}

/// Whether bytes from the peer wait unread: a one-byte `MSG_PEEK` that
/// never blocks, one system call; `false` at the peer's end or on an error.
#[inline]
pub fn peek_byte(socket: BorrowedFd<'_>) -> bool {
    let mut byte = 0u8;
    let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
    // SAFETY: recv writes at most one byte, into a byte that lives across
    // the call; the descriptor is open for the borrow's lifetime.
    let peeked = unsafe { libc::recv(socket.as_raw_fd(), (&raw mut byte).cast(), 1, flags) };
    peeked > 0
}

/// One `recv(MSG_PEEK | MSG_WAITALL)`: copies what the peer sent into
/// `buf` without consuming it, blocking until `buf` can be filled, within
/// the socket's read timeout; how many bytes it copied.
#[cfg(feature = "tls")]
pub fn peek_wait_all(socket: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let flags = libc::MSG_PEEK | libc::MSG_WAITALL;
    let fd = socket.as_raw_fd();
    // SAFETY: the pointer and length describe a live slice we borrow
    // mutably, and recv writes only within it (any bytes are valid `u8`s);
    // the descriptor is open for the borrow's lifetime.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) };
    checked(n)
}

/// Shuts both directions of a socket (std offers it for streams only): on a
/// listening socket, it wakes every thread blocked in `accept` with an
/// error. Errors (not a socket, not connected) are ignored.
#[inline]
pub fn shutdown_both(socket: BorrowedFd<'_>) {
    // SAFETY: shutdown takes no pointers; the descriptor is open for the
    // borrow's lifetime.
    unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_RDWR) };
}

/// `SO_RCVTIMEO` (std offers it for streams only): on a listening socket,
/// `accept` honours it (Linux), and accepted sockets inherit it.
pub fn set_receive_timeout(socket: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    let value = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros() as i32),
    };
    set_option(socket, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &value)
}

/// `TCP_NODELAY` on (std offers it for streams only): on a listening socket,
/// accepted sockets inherit it.
pub fn set_no_delay(socket: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    set_option(socket, libc::IPPROTO_TCP, libc::TCP_NODELAY, &on)
}

/// `setsockopt` of one option to `value`, a timeval or an int.
fn set_option<T>(socket: BorrowedFd<'_>, level: i32, name: i32, value: &T) -> io::Result<()> {
    let size = size_of::<T>() as libc::socklen_t;
    let fd = socket.as_raw_fd();
    // SAFETY: setsockopt only reads `size` bytes from `value`, a live value
    // of that size (plain data: the two callers pass a timeval and an int);
    // the descriptor is open for the borrow's lifetime.
    let set = unsafe { libc::setsockopt(fd, level, name, (&raw const *value).cast(), size) };
    checked(set as isize).map(drop)
}
