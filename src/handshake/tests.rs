//! Unit tests of the parent module.

use super::*;

#[test]
fn redaction_hides_every_token_parameter() {
    assert_eq!(
        redact_target("/ws?a=1&token=s3cret&tok%65n=x"),
        "/ws?a=1&token=***&token=***"
    );
    assert_eq!(redact_target("/ws"), "/ws");
}

#[test]
fn only_a_visible_ascii_subprotocol_can_be_carried() {
    assert!(protocol_header("chat.v2").is_some());
    for uncarried in ["ch\u{e4}t", "chat\u{fffd}", "a\u{7f}b"] {
        assert!(protocol_header(uncarried).is_none(), "{uncarried:?}");
    }
}

fn request(headers: &[(&str, &str)]) -> Request {
    let mut builder = Request::builder().uri("/ws");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("valid in this test")
}

#[test]
fn own_origin_matches_host_ignoring_case() {
    let own = request(&[
        ("Host", "Example.org:8000"),
        ("Origin", "HTTP://example.org:8000"),
    ]);
    assert!(origin_allowed(&own, None, &[]));
    let foreign = request(&[("Host", "example.org"), ("Origin", "http://evil.example")]);
    assert!(!origin_allowed(&foreign, None, &[]));
    assert!(origin_allowed(
        &foreign,
        None,
        &["http://evil.example".to_string()]
    ));
    assert!(origin_allowed(&foreign, None, &["*".to_string()]));
    let proxied = request(&[("Host", "10.0.0.5:8001"), ("Origin", "https://example.org")]);
    assert!(!origin_allowed(&proxied, None, &[]));
    assert!(origin_allowed(&proxied, Some("example.org"), &[]));
    let null = request(&[("Host", "null"), ("Origin", "null")]);
    assert!(!origin_allowed(&null, None, &[]));
    assert!(origin_allowed(&request(&[("Host", "x")]), None, &[]));
}
