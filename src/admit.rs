//! Admitting an accepted connection: the per-IP cap on pending
//! connections, `--max-connections`, and the 503 when there is no room;
//! then its run, the session included, on the thread that accepted it.

use crate::connection;
use crate::handshake::Admission;
use crate::http::Answer;
use crate::metrics::RejectionReason;
use crate::pending::{Refused, Ticket};
use crate::session;
use crate::state::Shared;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Admits a connection a connection thread accepted (the per-IP cap, the
/// connection limit), then serves it, its session included, on that thread.
pub fn connection(stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    // Past its IP's cap: closed at once, before it costs a read.
    let stream = Arc::new(stream);
    let Some(ticket) = take_pending(shared, &stream, peer.ip()) else {
        return;
    };
    let max = shared.config.max_connections;
    let open = shared.open.fetch_add(1, Ordering::SeqCst);
    if open >= max {
        // Full: the oldest connection not yet a session makes room; only
        // when every connection is a session does the newcomer get 503.
        // A closed one gives its place back when its thread has seen the
        // close: until then at most `max` more are let in.
        if open < max.saturating_mul(2) && shared.pending.close_oldest(ticket) {
            shared.metrics.rejected(RejectionReason::Evicted);
        } else {
            shared.open.fetch_sub(1, Ordering::SeqCst);
            shared.pending.remove(ticket);
            shared.metrics.rejected(RejectionReason::Busy);
            log::info!("{peer}: rejected: too many connections");
            return answer_503(&stream, shared);
        }
    }
    shared.metrics.connection_accepted();
    let ticket = Some(ticket);
    run_connection(stream, peer, Slot { shared, ticket });
}

/// Registers a new connection as pending, counted against its IP's
/// `--max-pending-per-ip` (not a trusted proxy's, and with `--proxy-protocol`
/// only once the header names the client); `None` when past the cap.
fn take_pending(shared: &Shared, stream: &Arc<TcpStream>, peer: IpAddr) -> Option<Ticket> {
    let ip = peer.to_canonical();
    let counted = Some(ip)
        .filter(|ip| !shared.config.proxy_protocol && !shared.config.trusted_proxies.contains(*ip));
    // The list shares the socket, to close the connection by.
    match shared.pending.add(counted, Some(stream.clone())) {
        Ok(ticket) => Some(ticket),
        Err(Refused::OverCap) => {
            shared.metrics.rejected(RejectionReason::PendingPerIp);
            if let Some(ip) = counted {
                shared.pending.note_refusal(ip);
            }
            None
        }
        // The server is stopping.
        Err(Refused::Gone) => None,
    }
}

/// Holds one of the `max_connections` places, and while the connection is
/// not yet a session its pending ticket; gives both back when dropped, even
/// if the connection's thread panics.
struct Slot<'a> {
    shared: &'a Shared,
    ticket: Option<Ticket>,
}

impl Slot<'_> {
    /// The connection is a session now (or over): no longer pending.
    fn settle(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.pending.remove(ticket);
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.settle();
        self.shared.open.fetch_sub(1, Ordering::SeqCst);
        self.shared.metrics.connection_closed();
    }
}

/// Runs a connection up to its upgrade, then its session, on this thread;
/// a panic in either is logged and ends only this connection.
fn run_connection(stream: Arc<TcpStream>, peer: SocketAddr, mut slot: Slot<'_>) {
    let shared = slot.shared;
    let read = catch_unwind(AssertUnwindSafe(|| {
        connection::read_and_route(stream, peer, shared, slot.ticket)
    }));
    let upgraded = match read {
        Ok(Some(upgraded)) => upgraded,
        Ok(None) => return,
        Err(panic) => return log_panic(peer, panic.as_ref()),
    };
    // Authenticated by the upgrade itself: a session from here on.
    if matches!(upgraded.admission, Admission::Authenticated { .. }) {
        slot.settle();
    }
    let peer = upgraded.link.peer();
    let run = || session::run(upgraded, shared, || slot.settle());
    if let Err(panic) = catch_unwind(AssertUnwindSafe(run)) {
        log_panic(peer, panic.as_ref());
    }
}

fn log_panic(peer: SocketAddr, panic: &(dyn std::any::Any + Send)) {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    log::error!("{peer}: connection thread panicked: {what}");
}

/// Refuses a connection the OS gave no thread to (`kernel.pid_max`, a
/// cgroup's `pids.max`, `RLIMIT_NPROC`...), as a full server refuses, at
/// once on the accepting thread; it is logged once a second at most.
#[inline(never)]
pub fn refuse_no_thread(stream: TcpStream, _peer: SocketAddr, shared: &Shared) {
    shared.metrics.rejected(RejectionReason::NoThread);
    shared.pending.note_no_thread();
    answer_503(&stream, shared);
}

/// Answers 503 on the accepting thread itself: a short write that fits the
/// socket buffer, and no waiting for the client. A TLS client is only
/// closed: a plain-text answer means nothing to it, and a TLS handshake
/// here would hold up the accept thread.
#[inline(never)]
fn answer_503(mut stream: &TcpStream, shared: &Shared) {
    #[cfg(feature = "tls")]
    if shared.config.tls.is_some() {
        return;
    }
    #[cfg(not(feature = "tls"))]
    let _ = shared;
    let answer =
        Answer::text(503, "server busy; try again later\n").with_header("Retry-After", "1");
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.write_all(&answer.to_bytes());
    let _ = stream.shutdown(Shutdown::Write);
    // Drain what already arrived, so closing does not reset the connection.
    if stream.set_nonblocking(true).is_ok() {
        drain_arrived(stream);
    }
}

/// Reads and drops what a non-blocking socket has already received. Never
/// inlined: its buffer would otherwise sit in the frame that stays under
/// every session run by this thread.
#[inline(never)]
fn drain_arrived(mut stream: &TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}
