//! Where a request goes: the test page, the health check, the WebSocket
//! upgrade, the metrics, the publish API, or a plain error answer.

use crate::http::{Answer, RequestHead, method_not_allowed};
use std::borrow::Cow;

/// The browser test page, compiled into the binary.
pub const PAGE: &str = include_str!("../www/index.html");

/// The policy the page is served with: inline script and style only, no
/// external resources, connections back to this server only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// What to do with a request.
#[derive(Debug)]
pub enum Route {
    /// Hand the connection to the WebSocket handshake.
    Upgrade,
    /// Answer with the metrics (only routed with `--metrics`).
    Metrics,
    /// Hand the request to the publish API, whatever its method (only
    /// routed with `--publish-key-file`; it answers 405 itself, so that
    /// every request it sees is counted in its metric).
    Publish(crate::publish::Endpoint),
    /// Write this answer and close.
    Answer(Answer),
}

/// The optional paths a server serves; each off is a 404 like any unknown path.
#[derive(Clone, Copy, Debug, Default)]
pub struct Paths {
    /// `GET /metrics` (`--metrics`).
    pub metrics: bool,
    /// `POST /publish` and `POST /disconnect` (`--publish-key-file`).
    pub publish: bool,
}

/// Routes a request head by method and path, serving the optional `paths`
/// that are on.
pub fn route_with(head: &RequestHead, paths: Paths) -> Route {
    match route_method_and_path(head, paths) {
        // An answer to HEAD never has a body, whatever its status.
        Route::Answer(answer) if head.method == "HEAD" => Route::Answer(Answer {
            send_body: false,
            ..answer
        }),
        route => route,
    }
}

fn route_method_and_path(head: &RequestHead, paths: Paths) -> Route {
    use crate::publish::Endpoint;
    let method = head.method.as_str();
    match head.path() {
        "/" | "/index.html" => match method {
            "GET" | "HEAD" => Route::Answer(page()),
            _ => Route::Answer(method_not_allowed("GET, HEAD")),
        },
        "/healthz" => match method {
            "GET" | "HEAD" => Route::Answer(Answer::text(200, "ok\n")),
            _ => Route::Answer(method_not_allowed("GET, HEAD")),
        },
        "/ws" => match method {
            "GET" if head.wants_websocket => Route::Upgrade,
            "GET" => Route::Answer(
                Answer::text(426, "this endpoint needs a WebSocket upgrade\n")
                    .with_header("Upgrade", "websocket"),
            ),
            _ => Route::Answer(method_not_allowed("GET")),
        },
        "/metrics" if paths.metrics => match method {
            "GET" | "HEAD" => Route::Metrics,
            _ => Route::Answer(method_not_allowed("GET, HEAD")),
        },
        "/publish" if paths.publish => Route::Publish(Endpoint::Publish),
        "/disconnect" if paths.publish => Route::Publish(Endpoint::Disconnect),
        _ => Route::Answer(Answer::text(404, "not found\n")),
    }
}

fn page() -> Answer {
    Answer {
        status: 200,
        headers: vec![
            ("Content-Type", "text/html; charset=utf-8".into()),
            ("Content-Security-Policy", CONTENT_SECURITY_POLICY.into()),
            ("X-Content-Type-Options", "nosniff".into()),
            ("Referrer-Policy", "no-referrer".into()),
            ("Cache-Control", "no-store".into()),
        ],
        body: Cow::Borrowed(PAGE.as_bytes()),
        send_body: true,
    }
}

/// The answer to `GET /metrics`: `text` in the Prometheus format.
pub fn metrics_answer(text: String, head: &RequestHead) -> Answer {
    Answer {
        status: 200,
        headers: vec![
            ("Content-Type", crate::metrics::CONTENT_TYPE.into()),
            ("Cache-Control", "no-store".into()),
        ],
        body: Cow::Owned(text.into_bytes()),
        send_body: head.method != "HEAD",
    }
}
