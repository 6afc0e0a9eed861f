//! One connection up to its session: with TLS, the TLS handshake; read the
//! head, route it, answer or upgrade.

use crate::handshake::Upgraded;
use crate::handshake::{redact_target, upgrade};
use crate::http::{Answer, HeadError, MAX_HEAD_BYTES, read_request_head, send_answer};
use crate::router::{Route, route};
use crate::state::Shared;
use crate::transport::Transport;
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

/// Serves one accepted connection on the calling thread, up to the upgrade;
/// returns the session to run, if there is one.
pub fn serve(stream: TcpStream, shared: &Shared) -> Option<Upgraded> {
    let Ok(peer) = stream.peer_addr() else {
        return None;
    };
    let timeout = shared.config.handshake_timeout;
    // One deadline for the TLS handshake (if any) and the request head.
    let deadline = Instant::now() + timeout;
    // Small messages go out at once; a peer that stops reading cannot block a write forever.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(timeout));
    let mut stream = open_transport(stream, shared, peer, deadline)?;
    let head = match read_request_head(&mut stream, deadline) {
        Ok(head) => head,
        Err(HeadError::TooLarge) => {
            log::info!("{peer}: rejected: request head over {MAX_HEAD_BYTES} bytes");
            let _ = send_answer(&mut stream, &Answer::text(431, "request head too large\n"));
            return None;
        }
        Err(HeadError::Malformed) => {
            log::info!("{peer}: rejected: malformed request head");
            let _ = send_answer(&mut stream, &Answer::text(400, "malformed request\n"));
            return None;
        }
        Err(HeadError::TimedOut) => {
            log::info!("{peer}: closed: no complete request head within {timeout:?}");
            return None;
        }
        Err(HeadError::Closed) => return None,
        Err(HeadError::Io(e)) => {
            log::debug!("{peer}: reading the request head failed: {e}");
            return None;
        }
    };
    match route(&head) {
        Route::Answer(answer) => {
            log::debug!(
                "{peer}: {} {} -> {}",
                head.method,
                redact_target(&head.target),
                answer.status
            );
            let _ = send_answer(&mut stream, &answer);
            None
        }
        Route::Upgrade => upgrade(stream, &head, shared, peer),
    }
}

/// The stream the connection speaks: the socket itself, or with TLS
/// configured, a TLS stream once its handshake is done by `deadline`.
#[cfg(not(feature = "tls"))]
fn open_transport(
    stream: TcpStream,
    _shared: &Shared,
    _peer: SocketAddr,
    _deadline: Instant,
) -> Option<Transport> {
    Some(Transport::Plain(stream))
}

/// The stream the connection speaks: the socket itself, or with TLS
/// configured, a TLS stream once its handshake is done by `deadline`.
/// Plain HTTP gets the plain 400 that says to use `https://`; other bytes
/// that are not TLS are closed at once.
#[cfg(feature = "tls")]
fn open_transport(
    stream: TcpStream,
    shared: &Shared,
    peer: SocketAddr,
    deadline: Instant,
) -> Option<Transport> {
    use crate::tls::{FirstBytes, TlsStream, plain_http_refusal, sniff};
    let Some(tls) = &shared.config.tls else {
        return Some(Transport::Plain(stream));
    };
    let timeout = shared.config.handshake_timeout;
    let failed = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::TimedOut => {
            log::info!("{peer}: closed: no TLS handshake and request head within {timeout:?}")
        }
        std::io::ErrorKind::UnexpectedEof => {}
        _ => log::info!("{peer}: closed: TLS handshake failed: {e}"),
    };
    match sniff(&stream, deadline) {
        Ok(FirstBytes::Tls) => {}
        Ok(FirstBytes::PlainHttp) => {
            log::info!("{peer}: rejected: plain HTTP on the TLS port");
            let plain = Transport::Plain(stream);
            if plain
                .write_all_before(plain_http_refusal(), deadline)
                .is_ok()
            {
                crate::http::close_gracefully(&plain);
            }
            return None;
        }
        Ok(FirstBytes::Other) => {
            log::info!("{peer}: closed: neither TLS nor HTTP");
            return None;
        }
        Err(e) => {
            failed(e);
            return None;
        }
    }
    match TlsStream::accept(stream, tls.current(), deadline) {
        Ok(tls) => Some(Transport::Tls(Box::new(tls))),
        Err(e) => {
            failed(e);
            None
        }
    }
}
