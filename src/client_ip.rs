//! Who the client is behind a reverse proxy: `--trusted-proxy` addresses and
//! networks, and the client IP and host they forward in `Forwarded` (RFC 7239)
//! or `X-Forwarded-For` / `X-Forwarded-Host`.
//!
//! ```
//! use std::net::IpAddr;
//! use wsauth::client_ip::{TrustedProxies, identify_client};
//!
//! let mut trusted = TrustedProxies::default();
//! trusted.add("10.0.0.0/8").unwrap();
//! let peer: IpAddr = "10.0.0.2".parse().unwrap();
//! let headers = [("X-Forwarded-For", &b"203.0.113.9, 10.0.0.7"[..])];
//! let client = identify_client(peer, &trusted, headers);
//! assert_eq!(client.ip, "203.0.113.9".parse::<IpAddr>().unwrap());
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One `--trusted-proxy` value: an address and how many leading bits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Network {
    base: IpAddr,
    prefix: u8,
}

/// The proxies whose forwarding headers are believed (`--trusted-proxy`).
/// Empty by default: then every peer is the client itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<Network>,
}

impl TrustedProxies {
    /// Adds one `--trusted-proxy` value: an IPv4 or IPv6 address
    /// (`192.0.2.7`, `::1`) or a CIDR (`10.0.0.0/8`, `fd00::/8`). A CIDR
    /// whose address has bits set past its prefix (`10.0.0.1/8`) is refused
    /// rather than widened: it is most likely a typo, and trusting too much
    /// lets clients forge their IP. The error is a one-line usage message.
    pub fn add(&mut self, value: &str) -> Result<(), String> {
        let network = parse_network(value).ok_or_else(|| {
            format!("--trusted-proxy: `{value}` is not an IP address or a CIDR like 10.0.0.0/8")
        })?;
        if mask(network.base, network.prefix) != network.base {
            return Err(format!(
                "--trusted-proxy: `{value}` has bits set past its /{}; did you mean {}/{}?",
                network.prefix,
                mask(network.base, network.prefix),
                network.prefix
            ));
        }
        self.networks.push(network);
        Ok(())
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `ip` is a trusted proxy; an IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks
            .iter()
            .any(|n| same_family(n.base, ip) && mask(ip, n.prefix) == n.base)
    }
}

/// `ADDR` or `ADDR/PREFIX`, the prefix within the family's width.
fn parse_network(value: &str) -> Option<Network> {
    let (addr, prefix) = match value.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (value, None),
    };
    let base: IpAddr = addr.parse().ok()?;
    let width = if base.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        // `u8::from_str` takes a leading `+`; a prefix is digits only.
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => return None,
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= width)?,
        None => width,
    };
    Some(Network { base, prefix })
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// `ip` with every bit past the first `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = bits.checked_shr(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(
                kept.checked_shl(32 - u32::from(prefix)).unwrap_or(0),
            ))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = bits.checked_shr(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(
                kept.checked_shl(128 - u32::from(prefix)).unwrap_or(0),
            ))
        }
    }
}

/// The client of a request, as the server should see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// The client IP: for logs, the throttle and `REMOTE_ADDR`.
    pub ip: IpAddr,
    /// The host the client asked for, as a trusted proxy forwarded it; it
    /// stands for `Host` in the same-origin check. `None`: use `Host`.
    pub host: Option<String>,
}

/// One hop of a forwarding list: the address it names, and (for `Forwarded`)
/// the host that hop was asked for.
#[derive(Debug)]
struct Hop {
    /// `None` for an obfuscated (`_hidden`), `unknown` or unparsable entry.
    ip: Option<IpAddr>,
    host: Option<String>,
}

/// Finds the client of a request that came from `peer` (the TCP peer, or the
/// source of a PROXY protocol header), given the request's header lines as
/// (name, value) pairs, names in any case. With an `http::HeaderMap`, pass
/// `map.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))`.
///
/// From a peer that is not a trusted proxy, the headers are ignored: the
/// client is the peer. From a trusted proxy, the list of hops is taken from
/// all `Forwarded` lines (their `for=`), or, when there is none, from all
/// `X-Forwarded-For` lines, in order, as one list. Then:
/// - The client is the rightmost address that is not itself a trusted proxy
///   (each trusted hop vouches for the entry to its left).
/// - When every address is trusted, the client is the leftmost one: the
///   farthest the chain of trust reaches.
/// - When the walk meets an entry that names no address (`unknown`, an
///   obfuscated `_name`, a `Forwarded` element without `for=`, or anything
///   unparsable) before an untrusted address, it stops there and the client
///   is the last trusted hop walked past (the peer itself if that entry was
///   the rightmost): no address further left can be vouched for.
/// - Empty list elements (`a, , b`) are skipped; `IP:port` and
///   `[IPv6]:port` are accepted, the port (obfuscated or not) ignored.
///
/// The forwarded host, also only from a trusted peer: with `Forwarded`, the
/// `host=` of the element where the walk stopped (the element written by the
/// trusted proxy that faced the client, so it holds the `Host` the client
/// sent); otherwise the rightmost `X-Forwarded-Host` value (the one the
/// trusted peer wrote). A proxy in front must therefore set or remove both
/// `Forwarded` and `X-Forwarded-*` headers; the files in `deploy/` do.
pub fn identify_client<'a>(
    peer: IpAddr,
    trusted: &TrustedProxies,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Client {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return Client {
            ip: peer,
            host: None,
        };
    }
    let lines = ForwardingLines::collect(headers);
    let hops: Vec<Hop> = if lines.forwarded.is_empty() {
        lines
            .forwarded_for
            .iter()
            .flat_map(|l| x_forwarded_for(l))
            .collect()
    } else {
        lines.forwarded.iter().flat_map(|l| forwarded(l)).collect()
    };
    let (ip, stop) = walk(peer, trusted, &hops);
    let host = if lines.forwarded.is_empty() {
        rightmost_value(&lines.forwarded_host)
    } else {
        stop.and_then(|i| hops[i].host.clone())
    };
    Client { ip, host }
}

/// Walks `hops` from the right past trusted addresses; returns the client IP
/// and the index of the hop where the walk stopped (`None` for an empty list).
fn walk(peer: IpAddr, trusted: &TrustedProxies, hops: &[Hop]) -> (IpAddr, Option<usize>) {
    let mut last_trusted = peer;
    for (i, hop) in hops.iter().enumerate().rev() {
        let Some(ip) = hop.ip.map(|ip| ip.to_canonical()) else {
            return (last_trusted, Some(i));
        };
        if !trusted.contains(ip) || i == 0 {
            return (ip, Some(i));
        }
        last_trusted = ip;
    }
    (last_trusted, None)
}

/// The header lines that matter here, in order of arrival.
#[derive(Default)]
struct ForwardingLines {
    forwarded: Vec<String>,
    forwarded_for: Vec<String>,
    forwarded_host: Vec<String>,
}

impl ForwardingLines {
    fn collect<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut lines = ForwardingLines::default();
        for (name, value) in headers {
            // A value that is not UTF-8 keeps its place but cannot parse.
            let value = String::from_utf8_lossy(value).into_owned();
            // A blank line names nothing (and must not make Forwarded win).
            if value.trim().is_empty() {
                continue;
            }
            if name.eq_ignore_ascii_case("forwarded") {
                lines.forwarded.push(value);
            } else if name.eq_ignore_ascii_case("x-forwarded-for") {
                lines.forwarded_for.push(value);
            } else if name.eq_ignore_ascii_case("x-forwarded-host") {
                lines.forwarded_host.push(value);
            }
        }
        lines
    }
}

/// The hops of one `X-Forwarded-For` line.
fn x_forwarded_for(line: &str) -> Vec<Hop> {
    line.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| Hop {
            ip: parse_node(entry),
            host: None,
        })
        .collect()
}

/// The last non-empty value of a comma-separated header's lines.
fn rightmost_value(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
        .map(str::to_string)
}

/// The hops of one `Forwarded` line: `for=` and `host=` of each element.
fn forwarded(line: &str) -> Vec<Hop> {
    split_outside_quotes(line, ',')
        .into_iter()
        .filter(|element| !element.trim().is_empty())
        .map(forwarded_element)
        .collect()
}

/// One `Forwarded` element: `pair;pair;...`, each `name=value`.
fn forwarded_element(element: &str) -> Hop {
    let mut hop = Hop {
        ip: None,
        host: None,
    };
    for pair in split_outside_quotes(element, ';') {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        let Some(value) = unquote(value.trim()) else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "for" => hop.ip = parse_node(&value),
            "host" if !value.is_empty() => hop.host = Some(value),
            _ => {}
        }
    }
    hop
}

/// Splits at `separator`, except inside a quoted string (with `\` escapes).
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A token as it is, or a quoted string without its quotes and escapes;
/// `None` for a quoted string that does not end.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_string());
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return chars.as_str().is_empty().then_some(out),
            c => out.push(c),
        }
    }
    None
}

/// A node as RFC 7239 writes it (`192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`,
/// `[2001:db8::1]:80`), or a bare IPv6 address as X-Forwarded-For has it.
/// `unknown` and obfuscated `_names` give `None`, as does anything else.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    // `[v6]` alone, or an obfuscated port: `192.0.2.1:_x`, `[2001:db8::1]:_x`.
    let host = node
        .rsplit_once(':')
        .filter(|(_, port)| is_obfuscated(port))
        .map_or(node, |(host, _)| host);
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// An obfuscated identifier (RFC 7239 section 6.3): `_` then ALPHA, DIGIT, `.`, `_`, `-`.
fn is_obfuscated(text: &str) -> bool {
    text.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}

#[cfg(test)]
mod tests {
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
            (r#"by="a,b";for=192.0.2.61"#, "192.0.2.61"),
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
            ("for=203.0.113.9, for=\"unterminated", "10.0.0.1"),
            ("for=203.0.113.9, for=999.1.1.1", "10.0.0.1"),
            ("for=203.0.113.9, for=\"2001:db8::1:_port\"", "10.0.0.1"),
            ("for=203.0.113.9, for=\"[2001:db8::1]:\"", "10.0.0.1"),
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
}
