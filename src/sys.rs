//! Every OS call std lacks, each behind a small safe function: the one
//! module of the crate allowed `unsafe` (the crate root denies it
//! everywhere else). Each `unsafe` block says in a `SAFETY:` comment why it
//! is sound whatever a caller passes, so callers need no promises of their own.
//!
//! [`memory`]: page size, pages given back, the stack below the current
//! frame; [`net`]: socket calls std has no method for; [`process`]: signals,
//! exits, descriptors and limits of processes; here: `poll(2)`.

mod memory;
mod net;
mod process;

pub use memory::{PAGE_BYTES, Page, discard_pages, page_bytes, page_size, release_unused_stack};
#[cfg(feature = "tls")]
pub use net::peek_wait_all;
pub use net::{peek_byte, send_nonblocking, set_no_delay, set_receive_timeout, shutdown_both};
pub use process::{
    bytes_waiting, clock_ticks_per_second, kill_group, peek_exit, pidfd_open, process_limit,
    raise_open_files_limit, set_nonblocking,
};

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Waits until one of `fds` is ready (see each one's `revents`) or `timeout`
/// passes (`None`: no limit); returns how many are ready, 0 on a timeout.
/// The timeout is rounded up to whole milliseconds, so that a wait of less
/// than one is not a busy loop. A signal ends the wait early with
/// [`io::ErrorKind::Interrupted`]. A descriptor of -1 is skipped.
#[inline]
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let millis = timeout.map_or(-1, |t| {
        t.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
    });
    // SAFETY: `fds` is a live, writable array of `fds.len()` pollfds, and
    // poll writes only their `revents`; any descriptor number is allowed
    // (one not open comes back as POLLNVAL).
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
    checked(ready as isize)
}

/// A `pollfd` that waits for `events` on `fd`.
pub fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// A call's result: the count it returned, or the error it left in `errno`.
fn checked(returned: isize) -> io::Result<usize> {
    usize::try_from(returned).map_err(|_| io::Error::last_os_error())
}
