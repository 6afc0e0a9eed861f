//! With `first_message_auth`: the session's token as its first message,
//! by one absolute deadline from the upgrade.

use super::{End, Event, Session, WsMessage};
use crate::auth::{Identity, is_valid_token};
use crate::handshake::Admission;
use crate::metrics::RejectionReason;
use std::time::Instant;
use tungstenite::protocol::frame::coding::CloseCode;

impl Session<'_> {
    /// The session's identity and token: from the upgrade, or with
    /// `first_message_auth` from its first message (unless throttled).
    pub(super) fn identify(&mut self, admission: Admission) -> Result<(Identity, String), End> {
        match admission {
            Admission::Authenticated { identity, token } => Ok((identity, token)),
            Admission::AwaitingToken => {
                let found = self.await_token()?;
                self.unless_throttled(found)
            }
        }
    }

    /// With `first_message_auth`: the first message must be a valid token,
    /// whole, by one absolute deadline from the upgrade.
    fn await_token(&mut self) -> Result<(Identity, String), End> {
        let deadline = Instant::now() + self.shared.config.handshake_timeout;
        // Fragments, pings and pongs must not keep a read going past it.
        self.ws.get_mut().set_deadline(Some(deadline));
        let outcome = self.read_token(deadline);
        self.ws.get_mut().set_deadline(None);
        // The stream set the socket's timeout behind our back.
        self.read_timeout = None;
        let failure = match outcome {
            Ok(Ok(found)) => return Ok(found),
            Ok(Err(failure)) => failure,
            Err(end) => return Err(end),
        };
        log::info!(
            "{}: rejected: first-message authentication failed: {failure}",
            self.peer
        );
        // Checked and counted in one step; past the limit it is not counted,
        // and the answer (1008) is the same either way, so it tells nothing.
        let _past_the_limit = self.shared.throttle.record_failure(self.peer.ip());
        self.shared.metrics.rejected(RejectionReason::InvalidToken);
        Err(self.close(CloseCode::Policy.into(), "invalid token".into()))
    }

    /// Reads until the token message or the deadline: the identity, why it
    /// failed, or how the session ended meanwhile.
    fn read_token(
        &mut self,
        deadline: Instant,
    ) -> Result<Result<(Identity, String), &'static str>, End> {
        loop {
            let event = self.next_event(Some(deadline));
            if Instant::now() >= deadline && !matches!(event, Event::Ended(_)) {
                return Ok(Err("no token message in time"));
            }
            match event {
                Event::Message(WsMessage::Text(text)) if is_valid_token(&text) => {
                    return Ok(match self.shared.auth.authenticate(&text) {
                        Some(identity) => Ok((identity, text.to_string())),
                        None => Err("wrong token"),
                    });
                }
                Event::Message(WsMessage::Text(_)) => return Ok(Err("wrong token")),
                Event::Message(WsMessage::Binary(_)) => return Ok(Err("binary first message")),
                // Pings, pongs, a read timeout: the deadline above decides.
                Event::Message(_) | Event::Tick => continue,
                Event::Ended(end) => return Err(end),
            }
        }
    }

    /// A right first-message token from a client that reached
    /// `--max-auth-failures` meanwhile (its other connections failed since
    /// the upgrade) is refused as a wrong one is, 1008 `invalid token`: no
    /// answer tells a client which of its guesses past the limit was right.
    /// A wrong one past the limit closes the same way, uncounted (see
    /// `await_token`).
    fn unless_throttled(&mut self, found: (Identity, String)) -> Result<(Identity, String), End> {
        if self.shared.throttle.retry_after(self.peer.ip()).is_none() {
            return Ok(found);
        }
        log::info!("{}: rejected: too many failed authentications", self.peer);
        self.shared.metrics.rejected(RejectionReason::Throttled);
        Err(self.close(CloseCode::Policy.into(), "invalid token".into()))
    }
}
