//! Unit tests of the parent module.

use super::*;

#[test]
fn the_query_names_exactly_one_target() {
    let publish = |t| target(Endpoint::Publish, t);
    assert_eq!(
        publish("/publish?user=alice"),
        Ok(Target::User("alice".into()))
    );
    assert_eq!(
        publish("/publish?user=a%40b"),
        Ok(Target::User("a@b".into()))
    );
    assert_eq!(publish("/publish?all"), Ok(Target::All));
    for bad in [
        "/publish",
        "/publish?",
        "/publish?user=",
        "/publish?user=a&user=a",
        "/publish?user=a&all",
        "/publish?all&all",
        "/publish?all=1",
        "/publish?usr=a",
        "/publish?user=a%20b",
        "/publish?user=a:b",
        "/publish?user=%ff",
    ] {
        assert_eq!(publish(bad), Err(Refusal::Query), "{bad}");
    }
    assert_eq!(
        target(Endpoint::Disconnect, "/disconnect?all"),
        Err(Refusal::Query)
    );
}

#[test]
fn content_length_is_one_number() {
    let of = |values: &[&[u8]]| content_length(values.iter().copied());
    assert_eq!(of(&[]), Ok(None));
    assert_eq!(of(&[b"12"]), Ok(Some(12)));
    assert_eq!(of(&[b"12", b"12"]), Ok(Some(12)));
    assert_eq!(of(&[b"12", b"13"]), Err(Refusal::BadLength));
    assert_eq!(of(&[b"-1"]), Err(Refusal::BadLength));
    assert_eq!(of(&[b""]), Err(Refusal::BadLength));
    assert_eq!(of(&[b"99999999999999999999999"]), Ok(Some(u64::MAX)));
}

#[test]
fn octet_stream_is_recognized_with_parameters() {
    assert!(is_octet_stream(b"application/octet-stream"));
    assert!(is_octet_stream(b"Application/Octet-Stream; x=y"));
    assert!(!is_octet_stream(b"text/plain"));
}
