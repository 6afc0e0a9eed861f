//! Unit tests of the parent module.

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("valid in this test")
}

fn trusted(values: &[&str]) -> TrustedProxies {
    let mut set = TrustedProxies::default();
    for value in values {
        set.add(value).expect("valid in this test");
    }
    set
}

/// The client of a request from `peer` with these header lines.
fn client(peer: &str, proxies: &[&str], headers: &[(&str, &str)]) -> Client {
    identify_client(
        ip(peer),
        &trusted(proxies),
        headers.iter().map(|(n, v)| (*n, v.as_bytes())),
    )
}

#[test]
fn addresses_and_cidrs_of_both_families_parse() {
    let set = trusted(&["192.0.2.7", "10.0.0.0/8", "::1", "fd00::/8", "0.0.0.0/0"]);
    assert!(set.contains(ip("192.0.2.7")));
    assert!(set.contains(ip("10.255.0.1")));
    assert!(set.contains(ip("::1")));
    assert!(set.contains(ip("fd12:3456::1")));
    assert!(!set.contains(ip("fe80::1")));
    assert!(!trusted(&["10.0.0.0/8"]).contains(ip("11.0.0.1")));
    assert!(trusted(&["::/0"]).contains(ip("2001:db8::1")));
    assert!(!trusted(&["::/0"]).contains(ip("192.0.2.1")));
}

#[test]
fn an_ipv4_mapped_peer_counts_as_its_ipv4_address() {
    assert!(trusted(&["10.0.0.0/8"]).contains(ip("::ffff:10.1.2.3")));
}

#[test]
fn bad_values_are_usage_errors() {
    for bad in [
        "",
        "10.0.0.0/",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/+8",
        "10.0.0/8",
        "host",
        "[::1]",
        "10.0.0.0/8/8",
        " 10.0.0.1",
    ] {
        let error = TrustedProxies::default().add(bad).expect_err(bad);
        assert!(error.starts_with("--trusted-proxy: "), "{error}");
    }
}

#[test]
fn a_cidr_with_host_bits_is_refused_with_a_suggestion() {
    let error = TrustedProxies::default().add("10.0.0.1/8").unwrap_err();
    assert!(error.contains("did you mean 10.0.0.0/8?"), "{error}");
}

#[test]
fn headers_from_an_untrusted_peer_are_ignored() {
    let got = client(
        "198.51.100.1",
        &["10.0.0.0/8"],
        &[
            ("X-Forwarded-For", "203.0.113.9"),
            ("Forwarded", "for=203.0.113.9;host=evil"),
            ("X-Forwarded-Host", "evil"),
        ],
    );
    assert_eq!(
        got,
        Client {
            ip: ip("198.51.100.1"),
            host: None
        }
    );
}

#[test]
fn a_trusted_peer_without_headers_is_the_client() {
    assert_eq!(client("10.0.0.1", &["10.0.0.0/8"], &[]).ip, ip("10.0.0.1"));
}

#[test]
fn the_rightmost_untrusted_x_forwarded_for_address_is_the_client() {
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.5")],
    );
    assert_eq!(got.ip, ip("203.0.113.9"));
}

#[test]
fn several_lines_form_one_list() {
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[
            ("X-Forwarded-For", "1.1.1.1"),
            ("Host", "example.com"),
            ("X-Forwarded-For", "203.0.113.9, 10.0.0.5"),
            ("X-Forwarded-For", "10.0.0.6"),
        ],
    );
    assert_eq!(got.ip, ip("203.0.113.9"));
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[("Forwarded", "for=1.1.1.1"), ("Forwarded", "for=10.0.0.2")],
    );
    assert_eq!(got.ip, ip("1.1.1.1"));
}

#[test]
fn forwarded_wins_over_x_forwarded_for() {
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[
            ("X-Forwarded-For", "198.51.100.7"),
            ("Forwarded", "for=203.0.113.9;proto=https"),
        ],
    );
    assert_eq!(got.ip, ip("203.0.113.9"));
}

#[test]
fn forwarded_takes_quotes_brackets_ports_and_any_case() {
    let cases = [
        (r#"For="[2001:db8:cafe::17]:4711""#, "2001:db8:cafe::17"),
        (r#"for="[2001:db8:cafe::17]""#, "2001:db8:cafe::17"),
        (r#"for="192.0.2.43:47011""#, "192.0.2.43"),
        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        (r#"for="[2001:db8::1]:_port""#, "2001:db8::1"),
        (r#"for="192.0.2.44:_port""#, "192.0.2.44"),
        (r#"ext="a,b";for=192.0.2.61"#, "192.0.2.61"),
        ("proto=http ; FOR = 192.0.2.62", "192.0.2.62"),
    ];
    for (header, expected) in cases {
        let got = client("10.0.0.1", &["10.0.0.0/8"], &[("Forwarded", header)]);
        assert_eq!(got.ip, ip(expected), "{header}");
    }
}

#[test]
fn a_blank_forwarded_line_does_not_hide_x_forwarded_for() {
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[("Forwarded", " "), ("X-Forwarded-For", "203.0.113.9")],
    );
    assert_eq!(got.ip, ip("203.0.113.9"));
}

#[test]
fn a_comma_inside_quotes_does_not_split_elements() {
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[("Forwarded", r#"for=203.0.113.9;host="a,b", for=10.0.0.3"#)],
    );
    assert_eq!(got.ip, ip("203.0.113.9"));
    assert_eq!(got.host.as_deref(), Some("a,b"));
}

#[test]
fn when_every_address_is_trusted_the_leftmost_is_the_client() {
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[("X-Forwarded-For", "10.0.0.9, 10.0.0.5")],
    );
    assert_eq!(got.ip, ip("10.0.0.9"));
}

#[test]
fn an_entry_without_an_address_stops_the_walk_at_the_last_trusted_hop() {
    let cases = [
        ("for=203.0.113.9, for=unknown, for=10.0.0.5", "10.0.0.5"),
        ("for=203.0.113.9, for=_hidden", "10.0.0.1"),
        ("for=203.0.113.9, proto=https", "10.0.0.1"),
    ];
    for (header, expected) in cases {
        let got = client("10.0.0.1", &["10.0.0.0/8"], &[("Forwarded", header)]);
        assert_eq!(got.ip, ip(expected), "{header}");
    }
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[("X-Forwarded-For", "203.0.113.9, garbage, 10.0.0.5")],
    );
    assert_eq!(got.ip, ip("10.0.0.5"));
}

#[test]
fn empty_list_elements_are_skipped() {
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[("X-Forwarded-For", " , 203.0.113.9,, ")],
    );
    assert_eq!(got.ip, ip("203.0.113.9"));
}

#[test]
fn x_forwarded_for_entries_may_carry_ports_and_bare_ipv6() {
    let got = client("::1", &["::1"], &[("X-Forwarded-For", "2001:db8::7")]);
    assert_eq!(got.ip, ip("2001:db8::7"));
    let got = client("::1", &["::1"], &[("X-Forwarded-For", "[2001:db8::7]:443")]);
    assert_eq!(got.ip, ip("2001:db8::7"));
    let got = client("::1", &["::1"], &[("X-Forwarded-For", "192.0.2.1:5000")]);
    assert_eq!(got.ip, ip("192.0.2.1"));
}

#[test]
fn an_ipv4_mapped_client_is_reported_as_ipv4() {
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[("X-Forwarded-For", "::ffff:192.0.2.1")],
    );
    assert_eq!(got.ip, ip("192.0.2.1"));
}

#[test]
fn the_forwarded_host_comes_from_the_element_that_named_the_client() {
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[(
            "Forwarded",
            r#"for=198.51.100.1;host=spoofed, for=203.0.113.9;host="example.com:8443", for=10.0.0.5;host=internal"#,
        )],
    );
    assert_eq!(got.ip, ip("203.0.113.9"));
    assert_eq!(got.host.as_deref(), Some("example.com:8443"));
}

#[test]
fn with_x_forwarded_headers_the_rightmost_host_counts() {
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Forwarded-Host", "spoofed, example.com"),
        ],
    );
    assert_eq!(got.host.as_deref(), Some("example.com"));
}

#[test]
fn forwarded_without_host_gives_no_host_even_with_x_forwarded_host() {
    let got = client(
        "10.0.0.1",
        &["10.0.0.0/8"],
        &[
            ("Forwarded", "for=203.0.113.9"),
            ("X-Forwarded-Host", "other"),
        ],
    );
    assert_eq!(got.host, None);
}

#[test]
fn a_value_that_is_not_utf8_names_no_address() {
    let got = identify_client(
        ip("10.0.0.1"),
        &trusted(&["10.0.0.0/8"]),
        [("X-Forwarded-For", &b"203.0.113.9, \xff"[..])],
    );
    assert_eq!(got.ip, ip("10.0.0.1"));
}

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

#[test]
fn the_rightmost_untrusted_address_is_the_client() {
    let mut trusted = TrustedProxies::default();
    trusted.add("10.0.0.0/8").expect("a network");
    let peer: IpAddr = "10.0.0.2".parse().expect("an address");
    let headers = [("X-Forwarded-For", &b"203.0.113.9, 10.0.0.7"[..])];
    let client = identify_client(peer, &trusted, headers);
    assert_eq!(
        client.ip,
        "203.0.113.9".parse::<IpAddr>().expect("an address")
    );
}
