//! Why an upgrade was refused, each reason with its HTTP answer, its
//! metric and its words for the log.

use crate::http::Answer;
use crate::metrics::RejectionReason;

/// Why an upgrade was refused; each variant is one HTTP answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Too many failed authentications from this IP in the last minute: 429.
    Throttled {
        /// Seconds until the client may try again.
        retry_after: u64,
    },
    /// A browser page from an origin that is not allowed: 403.
    ForeignOrigin,
    /// Subprotocols were offered, but only ones carrying a token: 400.
    OnlyTokenSubprotocols,
    /// No token in any source: 401.
    MissingToken,
    /// An unknown, expired or malformed token: 401 `invalid_token`.
    InvalidToken,
}

impl Rejection {
    /// The HTTP answer for this rejection.
    pub fn answer(&self) -> Answer {
        match self {
            Rejection::Throttled { retry_after } => {
                Answer::text(429, "too many failed authentications; try again later\n")
                    .with_header("Retry-After", retry_after.to_string())
            }
            Rejection::ForeignOrigin => Answer::text(403, "origin not allowed\n"),
            Rejection::OnlyTokenSubprotocols => Answer::text(
                400,
                "no subprotocol to select: offer one besides the bearer. token\n",
            ),
            Rejection::MissingToken => Answer::text(401, "missing token\n")
                .with_header("WWW-Authenticate", r#"Bearer realm="wsauth""#),
            Rejection::InvalidToken => Answer::text(401, "invalid token\n").with_header(
                "WWW-Authenticate",
                r#"Bearer realm="wsauth", error="invalid_token""#,
            ),
        }
    }

    /// Whether this counts towards the client's failed authentications.
    pub fn is_failed_authentication(&self) -> bool {
        matches!(self, Rejection::MissingToken | Rejection::InvalidToken)
    }

    /// Its `wsauth_rejections_total` reason, and a few words for the log.
    pub fn counted(&self) -> (RejectionReason, &'static str) {
        use RejectionReason as Reason;
        match self {
            Rejection::Throttled { .. } => (Reason::Throttled, "too many failed authentications"),
            Rejection::ForeignOrigin => (Reason::Origin, "origin not allowed"),
            Rejection::OnlyTokenSubprotocols => {
                (Reason::Subprotocol, "only token subprotocols offered")
            }
            Rejection::MissingToken => (Reason::MissingToken, "missing token"),
            Rejection::InvalidToken => (Reason::InvalidToken, "invalid token"),
        }
    }
}
