//! One connection up to its session: read the head, route it, answer or
//! upgrade.

use crate::handshake::Upgraded;
use crate::handshake::{redact_target, upgrade};
use crate::http::{Answer, HeadError, MAX_HEAD_BYTES, read_request_head, send_answer};
use crate::router::{Route, route};
use crate::state::Shared;
use std::net::TcpStream;
use std::time::Instant;

/// Serves one accepted connection on the calling thread, up to the upgrade;
/// returns the session to run, if there is one.
pub fn serve(mut stream: TcpStream, shared: &Shared) -> Option<Upgraded> {
    let Ok(peer) = stream.peer_addr() else {
        return None;
    };
    let timeout = shared.config.handshake_timeout;
    // Small messages go out at once; a peer that stops reading cannot block a write forever.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(timeout));
    let head = match read_request_head(&mut stream, Instant::now() + timeout) {
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
