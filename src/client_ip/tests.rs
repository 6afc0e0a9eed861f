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

mod strict_forwarded;
