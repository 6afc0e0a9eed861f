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
    /// Every reason, in the order they are rendered.
    pub const ALL: [RejectionReason; 12] = [
        RejectionReason::MissingToken,
        RejectionReason::InvalidToken,
        RejectionReason::Throttled,
        RejectionReason::Origin,
        RejectionReason::Subprotocol,
        RejectionReason::Busy,
        RejectionReason::BadRequest,
        RejectionReason::HeadTooLarge,
        RejectionReason::Timeout,
        RejectionReason::PendingPerIp,
        RejectionReason::Evicted,
        RejectionReason::NoThread,
    ];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            RejectionReason::MissingToken => "missing_token",
            RejectionReason::InvalidToken => "invalid_token",
            RejectionReason::Throttled => "throttled",
            RejectionReason::Origin => "origin",
            RejectionReason::Subprotocol => "subprotocol",
            RejectionReason::Busy => "busy",
            RejectionReason::BadRequest => "bad_request",
            RejectionReason::HeadTooLarge => "head_too_large",
            RejectionReason::Timeout => "timeout",
            RejectionReason::PendingPerIp => "pending_per_ip",
            RejectionReason::Evicted => "evicted",
            RejectionReason::NoThread => "no_thread",
        }
    }
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
    /// Every result, in the order they are rendered.
    pub const ALL: [PublishResult; 7] = [
        PublishResult::Ok,
        PublishResult::Unauthorized,
        PublishResult::Forbidden,
        PublishResult::Throttled,
        PublishResult::BadRequest,
        PublishResult::TooLarge,
        PublishResult::Unavailable,
    ];

    /// The `result` label value.
    pub fn label(self) -> &'static str {
        match self {
            PublishResult::Ok => "ok",
            PublishResult::Unauthorized => "unauthorized",
            PublishResult::Forbidden => "forbidden",
            PublishResult::Throttled => "throttled",
            PublishResult::BadRequest => "bad_request",
            PublishResult::TooLarge => "too_large",
            PublishResult::Unavailable => "unavailable",
        }
    }
}
