//! A `Forwarded` header is taken only when it is RFC 7239 throughout;
//! otherwise it is ignored as a whole and X-Forwarded-* count.

use super::*;

/// The client and host of a request from trusted 10.0.0.1 whose proxy also
/// wrote `X-Forwarded-For: 203.0.113.9` and `X-Forwarded-Host: example.com`.
fn beside_x_forwarded(forwarded: &[&str]) -> Client {
    let mut headers: Vec<(&str, &str)> = forwarded.iter().map(|l| ("Forwarded", *l)).collect();
    headers.push(("X-Forwarded-For", "203.0.113.9"));
    headers.push(("X-Forwarded-Host", "example.com"));
    client("10.0.0.1", &["10.0.0.0/8"], &headers)
}

/// What a Forwarded header that is ignored as a whole leaves: X-Forwarded-*.
fn x_forwarded() -> Client {
    Client {
        ip: ip("203.0.113.9"),
        host: Some("example.com".to_string()),
    }
}

#[test]
fn an_element_that_names_a_parameter_twice_voids_the_whole_header() {
    for header in [
        // What `host="$http_host"` made of `Host: a";for=198.51.100.7;x="`.
        r#"for=127.0.0.2;host="a";for=198.51.100.7;x="";proto=http"#,
        "for=192.0.2.1;FOR=198.51.100.7",
        "for=192.0.2.1;host=a;Host=b",
        "for=192.0.2.1;proto=http;proto=https",
        "for=192.0.2.1;x=1;x=2",
        "for=198.51.100.7;by=10.0.0.1;by=10.0.0.2, for=10.0.0.5",
    ] {
        assert_eq!(beside_x_forwarded(&[header]), x_forwarded(), "{header}");
    }
    // A broken line voids the others too: they form one list.
    let lines = ["for=198.51.100.7", "for=192.0.2.1;for=192.0.2.2"];
    assert_eq!(beside_x_forwarded(&lines), x_forwarded());
}

#[test]
fn a_header_that_is_not_rfc_7239_is_ignored_as_a_whole() {
    for header in [
        "for=\"unterminated",
        r#"for=192.0.2.1;host="a"#,
        // What `host="$http_host"` made of `Host: a"`.
        r#"for=192.0.2.1;host="a"";proto=http"#,
        r#"for=192.0.2.1;host="a"b"#,
        r#"for="192.0.2.1"x"#,
        "for=192.0.2.1 proto=http",
        "for=192.0.2.1;proto",
        "for=192.0.2.1;=http",
        "for=",
        "for=192.0.2.1:80",
        "for=[2001:db8::1]",
        "for=192.0.2.1, \"stray\"",
        "for=192.0.2.1;proto=http,;x",
        "for=999.1.1.1",
        "for=2001:db8::1",
        r#"for="2001:db8::1:_port""#,
        r#"for="[2001:db8::1]:""#,
        r#"for="192.0.2.1:123456""#,
        r#"for="192.0.2.1:_""#,
        "for=hidden",
        "for=192.0.2.1;by=evil",
        "for=192.0.2.1;proto=1http",
        r#"for=192.0.2.1;host="a\"b""#,
        r#"for=192.0.2.1;host="a b""#,
        r#"for=192.0.2.1;host="a:x""#,
        r#"for=192.0.2.1;host="[::1""#,
        r#"for=192.0.2.1;host="a%zz""#,
        "for=192.0.2.1;x=\"\u{7}\"",
    ] {
        assert_eq!(beside_x_forwarded(&[header]), x_forwarded(), "{header}");
    }
}

#[test]
fn an_ignored_forwarded_header_leaves_the_peer_without_x_forwarded_for() {
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[("Forwarded", "for=1.1.1.1;for=2.2.2.2")],
    );
    assert_eq!(
        got,
        Client {
            ip: ip("10.0.0.1"),
            host: None
        }
    );
}

#[test]
fn strict_parsing_still_takes_every_rfc_7239_form() {
    let cases = [
        ("for=192.0.2.1;;proto=http", "192.0.2.1", None),
        (" , for=192.0.2.2 ,, ", "192.0.2.2", None),
        ("for=192.0.2.3\t;\tproto=https", "192.0.2.3", None),
        (r#"for="\1\9\2.0.2.4""#, "192.0.2.4", None),
        (
            r#"for=192.0.2.5;host="[2001:db8::1]:8443""#,
            "192.0.2.5",
            Some("[2001:db8::1]:8443"),
        ),
        (
            r#"for=192.0.2.6;host="a%2Db.example:""#,
            "192.0.2.6",
            Some("a%2Db.example:"),
        ),
        (
            "for=192.0.2.7;host=x.example;ext=\"\u{e9}\"",
            "192.0.2.7",
            Some("x.example"),
        ),
        (r#"for="[::ffff:192.0.2.8]:_p""#, "192.0.2.8", None),
        ("for=UNKNOWN, for=192.0.2.9", "192.0.2.9", None),
    ];
    for (header, expected, host) in cases {
        let got = client("10.0.0.1", &["10.0.0.0/8"], &[("Forwarded", header)]);
        assert_eq!(got.ip, ip(expected), "{header}");
        assert_eq!(got.host.as_deref(), host, "{header}");
    }
}

#[test]
fn a_host_that_adds_an_element_is_believed_so_the_proxy_must_not_paste_it() {
    // What `host="$http_host"` made of `Host: a",for=198.51.100.7;host="b`: it
    // is valid RFC 7239, so only the proxy's file can prevent it (deploy/).
    let got = client(
        "127.0.0.1",
        &["127.0.0.1"],
        &[(
            "Forwarded",
            r#"for=127.0.0.2;host="a",for=198.51.100.7;host="b";proto=http"#,
        )],
    );
    assert_eq!(got.ip, ip("198.51.100.7"));
}
