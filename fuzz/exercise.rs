//! What each fuzz target does with its input. Shared, through `#[path]`, by
//! the targets in `fuzz_targets/` and by `tests/fuzz_corpus.rs`, so that a
//! plain `cargo test` replays the corpus through the very same calls.

// Each includer calls only some of these.
#![allow(dead_code)]

use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::Request;
use wsauth::credentials::extract_credentials;
use wsauth::http::{RequestHead, parse_head};

/// Parses `data` as a request head; when that succeeds, routes it and takes
/// its credentials apart as the upgrade would.
pub fn request_head(data: &[u8]) {
    let Ok(Some(head)) = parse_head(data) else {
        return;
    };
    assert!(
        data.starts_with(&head.raw),
        "the head is a prefix of the input"
    );
    assert_eq!(head.raw.len() + head.rest.len(), data.len());
    assert!(
        head.raw.ends_with(b"\n"),
        "a complete head ends with its blank line"
    );
    assert!(head.target.starts_with(head.path()));

    let _ = wsauth::router::route(&head);
    let redacted = wsauth::handshake::redact_target(&head.target);
    assert!(redacted.starts_with(head.target.split('?').next().unwrap_or_default()));

    // The request any method would give, and the one tungstenite builds for a GET.
    if let Some(request) = as_request(&head) {
        let _ = extract_credentials(&request);
    }
    if let Ok(Some((_, request))) = Request::try_parse(&head.raw) {
        let _ = extract_credentials(&request);
    }
}

/// Parses `data` as a tokens file; every grant it yields must be usable, and
/// an error must name one of its lines.
pub fn tokens_file(data: &[u8]) {
    match wsauth::auth::parse_tokens(data) {
        Ok(grants) => {
            for grant in grants {
                assert!(wsauth::auth::is_valid_token(&grant.token));
                assert!(!grant.user.is_empty());
            }
        }
        Err((line, _)) => {
            let lines = data.split(|&b| b == b'\n').count();
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
        }
    }
    let _ = wsauth::credentials::percent_decode(&String::from_utf8_lossy(data));
}

/// An `http::Request` with the head's method, target and headers, or `None`
/// when `http` refuses one of them.
fn as_request(head: &RequestHead) -> Option<Request> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed.parse(&head.raw).ok()?;
    let mut builder = Request::builder()
        .method(head.method.as_str())
        .uri(head.target.as_str());
    for header in parsed.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    builder.body(()).ok()
}

/// Feeds `data` to the PROXY header parser the way the reader does, a piece
/// at a time as it asks; it must never ask for more than a header can hold,
/// and a complete header must parse the same when given whole.
pub fn proxy_header(data: &[u8]) {
    use wsauth::proxy_protocol::{
        MAX_V1_BYTES, MAX_V2_PAYLOAD, Progress, V2_SIGNATURE, parse_proxy_header,
    };
    let mut len = 0;
    loop {
        match parse_proxy_header(&data[..len]) {
            Ok(Progress::Need(more)) => {
                assert!(more >= 1, "asks for at least a byte");
                assert!(
                    len + more <= V2_SIGNATURE.len() + 4 + MAX_V2_PAYLOAD.max(MAX_V1_BYTES),
                    "asks for {more} after {len}"
                );
                if len + more > data.len() {
                    return;
                }
                len += more;
            }
            Ok(Progress::Done(source)) => {
                let again = parse_proxy_header(&data[..len]).ok();
                assert_eq!(again, Some(Progress::Done(source)));
                return;
            }
            Err(_) => return,
        }
    }
}
