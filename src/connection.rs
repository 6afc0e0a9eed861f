//! One connection up to its session: read the PROXY header (with
//! `--proxy-protocol`), with TLS the TLS handshake, and the head; work out
//! who the client is, route the request, answer or upgrade.

#[cfg(feature = "tls")]
mod tls;

use crate::client_ip::{Client, identify_client};
use crate::handshake::{Upgraded, redact_target, upgrade};
use crate::http::{
    Answer, HeadError, MAX_HEAD_BYTES, ReadError, RequestHead, header_lines, read_request_head,
    send_answer,
};
use crate::metrics::RejectionReason;
use crate::pending::{Refused, Ticket};
use crate::proxy_protocol::{ProxyHeaderError, read_proxy_header};
use crate::router::{Paths, Route, metrics_answer, route_with};
use crate::state::Shared;
use crate::transport::Transport;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
#[cfg(feature = "tls")]
use tls::open_transport;

/// Reads and routes one accepted connection on the calling thread, up to
/// the upgrade;
/// returns the session to run, if there is one. Never inlined: the frames of
/// the head and the handshake are gone before the session runs on this stack.
/// `tcp_peer` is the address `accept` gave; `ticket` its place among the
/// pending connections, counted against the PROXY header's source once that
/// is read.
#[inline(never)]
pub fn read_and_route(
    stream: Arc<TcpStream>,
    tcp_peer: SocketAddr,
    shared: &Shared,
    ticket: Option<Ticket>,
) -> Option<Upgraded> {
    let timeout = shared.config.handshake_timeout;
    // The PROXY header, the TLS handshake and the head share one deadline;
    // the PROXY header and the head one byte budget.
    let deadline = Instant::now() + timeout;
    // A peer that stops reading cannot block a write forever. (TCP_NODELAY
    // comes from the listening socket.)
    let _ = stream.set_write_timeout(Some(timeout));
    let (source, budget) = if shared.config.proxy_protocol {
        let (source, budget) = read_source(&stream, tcp_peer, shared, deadline)?;
        if let Some(ticket) = ticket {
            count_pending(shared, ticket, source.ip())?;
        }
        (source, budget)
    } else {
        (tcp_peer, MAX_HEAD_BYTES)
    };
    let stream = open_transport(stream, shared, source, deadline)?;
    let head = read_head(&stream, source, shared, deadline, budget)?;
    if let Some(ticket) = ticket {
        shared.pending.answering(ticket);
    }
    let client = who_is_the_client(source.ip(), &head, shared);
    // The port is the TCP peer's, or the one a PROXY header gave.
    let peer = SocketAddr::new(client.ip, source.port());
    let paths = Paths {
        metrics: shared.config.metrics,
        publish: shared.config.publish_key.is_some(),
    };
    let answer = match route_with(&head, paths) {
        Route::Upgrade => {
            return upgrade(stream, &head, shared, peer, client.host.as_deref(), ticket);
        }
        Route::Answer(answer) => answer,
        Route::Metrics => metrics_answer(shared.metrics.render(), &head),
        // Its body, if any, is read under the head's deadline.
        Route::Publish(endpoint) => {
            crate::publish::endpoint::answer(endpoint, &stream, &head, shared, peer, deadline)?
        }
    };
    log::debug!(
        "{peer}: {} {} -> {}",
        head.method,
        redact_target(&head.target),
        answer.status
    );
    let _ = send_answer(&stream, &answer);
    None
}

/// The one place that decides who the client is: logs, the throttle and
/// the session (REMOTE_ADDR) all use its address from here on. Headers
/// count only from a trusted proxy.
fn who_is_the_client(source: IpAddr, head: &RequestHead, shared: &Shared) -> Client {
    let proxies = &shared.config.trusted_proxies;
    if proxies.contains(source) {
        identify_client(source, proxies, header_lines(&head.raw))
    } else {
        Client {
            ip: source.to_canonical(),
            host: None,
        }
    }
}

/// Reads the request head within the deadline and `budget` bytes; answers
/// and logs the ways it can fail, naming `source`.
fn read_head(
    stream: &Transport,
    source: SocketAddr,
    shared: &Shared,
    deadline: Instant,
    budget: usize,
) -> Option<RequestHead> {
    let refused = |reason| shared.metrics.rejected(reason);
    match read_request_head(stream, deadline, budget) {
        Ok(head) => Some(head),
        Err(HeadError::TooLarge) => {
            log::info!("{source}: rejected: request head over {MAX_HEAD_BYTES} bytes");
            refused(RejectionReason::HeadTooLarge);
            let _ = send_answer(stream, &Answer::text(431, "request head too large\n"));
            None
        }
        Err(HeadError::Malformed) => {
            log::info!("{source}: rejected: malformed request head");
            refused(RejectionReason::BadRequest);
            let _ = send_answer(stream, &Answer::text(400, "malformed request\n"));
            None
        }
        Err(HeadError::Read(ReadError::TimedOut)) => {
            let timeout = shared.config.handshake_timeout;
            log::info!(
                "{source}: closed: no complete request head within {}",
                Shown(timeout)
            );
            refused(RejectionReason::Timeout);
            None
        }
        Err(HeadError::Read(ReadError::Closed)) => None,
        Err(HeadError::Read(ReadError::Io(e))) => {
            log::debug!("{source}: reading the request head failed: {e}");
            None
        }
    }
}

/// Counts a connection against the pending cap of the client its PROXY
/// header named (a trusted proxy is exempt); `None`: close it, unanswered.
fn count_pending(shared: &Shared, ticket: Ticket, ip: IpAddr) -> Option<()> {
    let ip = ip.to_canonical();
    if shared.config.trusted_proxies.contains(ip) {
        return Some(());
    }
    match shared.pending.count(ticket, ip) {
        Ok(()) => Some(()),
        Err(Refused::OverCap) => {
            shared.metrics.rejected(RejectionReason::PendingPerIp);
            shared.pending.note_refusal(ip);
            None
        }
        // Closed to make room meanwhile; already counted as evicted.
        Err(Refused::Gone) => None,
    }
}

/// With `--proxy-protocol`: reads the PROXY header and returns the source it
/// names, with what is left of the head budget. The header is required from
/// every peer; its address is believed unless `--trusted-proxy` is given and
/// the peer is not one of them (then the TCP peer is the client). A missing
/// or invalid header closes the connection.
fn read_source(
    stream: &TcpStream,
    tcp_peer: SocketAddr,
    shared: &Shared,
    deadline: Instant,
) -> Option<(SocketAddr, usize)> {
    let (named, read) = match read_proxy_header(&mut &*stream, deadline) {
        Ok(header) => header,
        Err(ProxyHeaderError::Read(ReadError::Closed)) => return None,
        Err(ProxyHeaderError::Read(ReadError::Io(e))) => {
            log::debug!("{tcp_peer}: reading the PROXY header failed: {e}");
            return None;
        }
        Err(e) => {
            log::info!("{tcp_peer}: closed: {e}");
            shared.metrics.rejected(match e {
                ProxyHeaderError::Read(ReadError::TimedOut) => RejectionReason::Timeout,
                _ => RejectionReason::BadRequest,
            });
            return None;
        }
    };
    let trusted = &shared.config.trusted_proxies;
    let believed = trusted.is_empty() || trusted.contains(tcp_peer.ip());
    let source = match named {
        Some(source) if believed => source,
        Some(source) => {
            log::debug!("{tcp_peer}: PROXY header naming {source} ignored: not a trusted proxy");
            tcp_peer
        }
        None => tcp_peer,
    };
    Some((source, MAX_HEAD_BYTES.saturating_sub(read)))
}

/// The stream the connection speaks: the socket itself, or with TLS
/// configured, a TLS stream once its handshake is done by `deadline`.
#[cfg(not(feature = "tls"))]
fn open_transport(
    stream: Arc<TcpStream>,
    _shared: &Shared,
    _peer: SocketAddr,
    _deadline: Instant,
) -> Option<Transport> {
    Some(Transport::Plain(stream))
}

/// A timeout as the logs show it: `10s`, or `1500ms` when not whole
/// seconds (what `Duration`'s `Debug` prints costs the binary more).
struct Shown(Duration);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.subsec_millis() {
            0 => write!(f, "{}s", self.0.as_secs()),
            _ => write!(f, "{}ms", self.0.as_millis()),
        }
    }
}
