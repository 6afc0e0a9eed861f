//! Who the client is behind a reverse proxy: `--trusted-proxy` addresses and
//! networks, and the client IP and host they forward in `Forwarded` (RFC 7239)
//! or `X-Forwarded-For` / `X-Forwarded-Host`.

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
        let (base, prefix) = (mask(network.base, network.prefix), network.prefix);
        if base != network.base {
            return Err(format!(
                "--trusted-proxy: `{value}` has bits set past its /{prefix}; did you mean {base}/{prefix}?"
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
    let (bits, width) = match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let past = width - u32::from(prefix);
    let kept = bits
        .checked_shr(past)
        .unwrap_or(0)
        .checked_shl(past)
        .unwrap_or(0);
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(kept as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(kept)),
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
/// `X-Forwarded-For` lines, in order, as one list. `Forwarded` is parsed
/// strictly: when any of its lines does not parse as RFC 7239 (the values of
/// `for=`, `by=`, `host=` and `proto=` included), or an element names a
/// parameter twice, the header is ignored as a whole, as if it were absent:
/// it may hold text that the client pasted into it. Then:
/// - The client is the rightmost address that is not itself a trusted proxy
///   (each trusted hop vouches for the entry to its left).
/// - When every address is trusted, the client is the leftmost one: the
///   farthest the chain of trust reaches.
/// - When the walk meets an entry that names no address (`unknown`, an
///   obfuscated `_name`, a `Forwarded` element without `for=`, or an
///   `X-Forwarded-For` entry that is no address) before an untrusted address,
///   it stops there and the client is the last trusted hop walked past (the
///   peer itself if that entry was the rightmost): no address further left
///   can be vouched for.
/// - Empty list elements (`a, , b`) are skipped; `IP:port` and
///   `[IPv6]:port` are accepted, the port (obfuscated or not) ignored.
///
/// The forwarded host, also only from a trusted peer: with `Forwarded`, the
/// `host=` of the element where the walk stopped (the element written by the
/// trusted proxy that faced the client, so it holds the `Host` the client
/// sent); otherwise the rightmost `X-Forwarded-Host` value (the one the
/// trusted peer wrote). A proxy in front must therefore set or remove both
/// `Forwarded` and `X-Forwarded-*` headers, and never paste client text into
/// `Forwarded` (a `Host` of `a",for=198.51.100.7;host="b` inside
/// `host="..."` makes a valid element of its own); the files in `deploy/`
/// send no `Forwarded` at all.
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
    // A Forwarded header that is absent, or broken and so ignored as a
    // whole, leaves the X-Forwarded-* headers.
    if let Some(hops) = forwarded::hops(&lines.forwarded).filter(|_| !lines.forwarded.is_empty()) {
        let (ip, stop) = walk(peer, trusted, &hops);
        let host = stop
            .and_then(|i| hops.get(i))
            .and_then(|hop| hop.host.clone());
        return Client { ip, host };
    }
    let hops: Vec<Hop> = lines
        .forwarded_for
        .iter()
        .flat_map(|l| x_forwarded_for(l))
        .collect();
    let (ip, _) = walk(peer, trusted, &hops);
    Client {
        ip,
        host: rightmost_value(&lines.forwarded_host),
    }
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

/// An `X-Forwarded-For` entry: `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:80`, a port possibly obfuscated (`:_x`).
/// `unknown`, obfuscated `_names` and anything else give `None`.
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

mod forwarded;
#[cfg(test)]
mod tests;
