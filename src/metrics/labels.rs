//! The label values of the counters that have them: each a bounded set.

/// Why a connection or an upgrade was refused: one label value of
/// `wsauth_rejections_total` each. Every refusal moves exactly one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionReason {
    /// No token in any source: 401.
    MissingToken,
    /// An unknown, expired or malformed token, or a failed first-message
    /// authentication: 401 or close 1008.
    InvalidToken,
    /// Too many failed authentications from the client IP: 429.
    Throttled,
    /// An `Origin` that is not allowed: 403.
    Origin,
    /// Only token subprotocols offered: 400.
    Subprotocol,
    /// Every connection slot is a session: 503.
    Busy,
    /// Any other 400: a malformed head or upgrade.
    BadRequest,
    /// A head over 8192 bytes: 431.
    HeadTooLarge,
    /// No complete head (or PROXY header) in time.
    Timeout,
    /// Past `--max-pending-per-ip`: closed without an answer.
    PendingPerIp,
    /// The oldest connection not yet a session, closed to make room.
    Evicted,
    /// The OS would start no thread for the connection: 503.
    NoThread,
}

impl RejectionReason {
    /// The `reason` label values, space-separated, in the order of the
    /// variants (and of the lines rendered).
    pub const LABELS: &'static str = "missing_token invalid_token throttled origin subprotocol \
        busy bad_request head_too_large timeout pending_per_ip evicted no_thread";
    /// How many reasons there are.
    pub const COUNT: usize = RejectionReason::NoThread as usize + 1;
}

/// How a `POST /publish` or `/disconnect` request ended: one label value of
/// `wsauth_publish_requests_total` each. Every request moves exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishResult {
    /// Answered 200.
    Ok,
    /// No key or a wrong key: 401.
    Unauthorized,
    /// An `Origin` header: 403.
    Forbidden,
    /// Too many failed authentications from the client IP: 429.
    Throttled,
    /// 400, 405 or 411, or a body that did not arrive whole in time.
    BadRequest,
    /// A `Content-Length` over `--max-message-bytes`: 413.
    TooLarge,
    /// The message could not be handed on (the server is stopping): 503.
    Unavailable,
}

impl PublishResult {
    /// The `result` label values, space-separated, in the order of the
    /// variants (and of the lines rendered).
    pub const LABELS: &'static str =
        "ok unauthorized forbidden throttled bad_request too_large unavailable";
    /// How many results there are.
    pub const COUNT: usize = PublishResult::Unavailable as usize + 1;
}
