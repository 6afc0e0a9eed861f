//! With the feature `tls`: the connection's stream once the first bytes
//! say TLS and its handshake is done, or the answer to plain HTTP.

use super::Shown;
use crate::metrics::RejectionReason;
use crate::state::Shared;
use crate::transport::Transport;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

/// The stream the connection speaks: the socket itself, or with TLS
/// configured, a TLS stream once its handshake is done by `deadline`.
/// Plain HTTP gets the plain 400 that says to use `https://`; other bytes
/// that are not TLS are closed at once.
pub(super) fn open_transport(
    stream: Arc<TcpStream>,
    shared: &Shared,
    peer: SocketAddr,
    deadline: Instant,
) -> Option<Transport> {
    use crate::tls::{FirstBytes, TlsStream, plain_http_refusal, sniff};
    let Some(tls) = &shared.config.tls else {
        return Some(Transport::Plain(stream));
    };
    let timeout = shared.config.handshake_timeout;
    let refused = |reason| shared.metrics.rejected(reason);
    let failed = |e: io::Error| match e.kind() {
        io::ErrorKind::TimedOut => {
            log::info!(
                "{peer}: closed: no TLS handshake and request head within {}",
                Shown(timeout)
            );
            refused(RejectionReason::Timeout);
        }
        io::ErrorKind::UnexpectedEof => {}
        _ => {
            log::info!("{peer}: closed: TLS handshake failed: {e}");
            refused(RejectionReason::BadRequest);
        }
    };
    match sniff(&stream, deadline) {
        Ok(FirstBytes::Tls) => {}
        Ok(FirstBytes::PlainHttp) => {
            log::info!("{peer}: rejected: plain HTTP on the TLS port");
            refused(RejectionReason::BadRequest);
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
            refused(RejectionReason::BadRequest);
            return None;
        }
        Err(e) => {
            failed(e);
            return None;
        }
    }
    match TlsStream::accept_shared(stream, tls.current(), deadline) {
        Ok(tls) => Some(Transport::Tls(Box::new(tls))),
        Err(e) => {
            failed(e);
            None
        }
    }
}
