//! The `Forwarded` header (RFC 7239), parsed strictly: all its lines as one
//! list, or nothing at all. A header that breaks the grammar, or an element
//! that names a parameter twice, may hold text a client pasted in (its
//! `Host`, say), so no part of it is believed.
//!
//! The grammar, with the OWS the list rule allows around `,`, `;` and `=`:
//! `element *( "," element )`, an element `[pair] *( ";" [pair] )`, a pair
//! `token "=" ( token / quoted-string )`. Values are checked too: `for=` and
//! `by=` are nodes (section 6), `host=` a `Host` (RFC 7230 section 5.4),
//! `proto=` a URI scheme.

use super::{Hop, is_obfuscated};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The hops that all `lines` name, in order; `None` when any line breaks
/// RFC 7239 (then the header is ignored as a whole).
pub(super) fn hops(lines: &[String]) -> Option<Vec<Hop>> {
    let mut hops = Vec::new();
    for line in lines {
        line_hops(line.as_bytes(), &mut hops)?;
    }
    Some(hops)
}

/// One line: elements separated by `,`; empty ones (`a, , b`) are skipped.
fn line_hops(line: &[u8], hops: &mut Vec<Hop>) -> Option<()> {
    let mut cursor = Cursor { rest: line };
    loop {
        cursor.skip_ows();
        if let Some(hop) = element(&mut cursor)? {
            hops.push(hop);
        }
        cursor.skip_ows();
        if cursor.rest.is_empty() {
            return Some(());
        }
        if !cursor.eat(b',') {
            return None;
        }
    }
}

/// One element, up to the next `,` or the end; `Some(None)` for an empty one.
fn element(cursor: &mut Cursor<'_>) -> Option<Option<Hop>> {
    let mut hop = Hop {
        ip: None,
        host: None,
    };
    let mut names: Vec<String> = Vec::new();
    let mut empty = true;
    loop {
        if cursor.rest.first().is_some_and(|b| is_tchar(*b)) {
            let (name, value) = pair(cursor)?;
            if names.contains(&name) {
                return None;
            }
            take(&mut hop, &name, &value)?;
            names.push(name);
            empty = false;
        }
        cursor.skip_ows();
        if !cursor.eat(b';') {
            return Some((!empty).then_some(hop));
        }
        empty = false;
        cursor.skip_ows();
    }
}

/// `token "=" value`: the name in lower case and the value unquoted.
fn pair(cursor: &mut Cursor<'_>) -> Option<(String, String)> {
    let name = cursor.token()?.to_ascii_lowercase();
    cursor.skip_ows();
    if !cursor.eat(b'=') {
        return None;
    }
    cursor.skip_ows();
    let value = if cursor.rest.first() == Some(&b'"') {
        cursor.quoted_string()?
    } else {
        cursor.token()?.to_vec()
    };
    let name = String::from_utf8_lossy(&name).into_owned();
    Some((name, String::from_utf8_lossy(&value).into_owned()))
}

/// Checks a parameter's value and keeps what a hop needs of it.
fn take(hop: &mut Hop, name: &str, value: &str) -> Option<()> {
    match name {
        "for" => hop.ip = node(value)?,
        "by" => {
            node(value)?;
        }
        "host" if is_host(value) => hop.host = Some(value.to_string()).filter(|h| !h.is_empty()),
        "host" => return None,
        "proto" if !is_scheme(value) => return None,
        _ => {}
    }
    Some(())
}

/// A node (RFC 7239 section 6): `IPv4`, `[IPv6]`, `unknown` or an obfuscated
/// `_name`, then an optional `:port` or `:_port`. `Some(None)` for a node
/// that names no address; `None` for text that is no node at all.
fn node(text: &str) -> Option<Option<IpAddr>> {
    let split = match text.strip_prefix('[') {
        Some(rest) => rest.find(']').map_or(text.len(), |end| end + 2),
        None => text.find(':').unwrap_or(text.len()),
    };
    let (name, port) = text.split_at(split);
    if let Some(port) = port.strip_prefix(':') {
        let digits = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
        if !digits && !is_obfuscated(port) {
            return None;
        }
    } else if !port.is_empty() {
        return None;
    }
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return Some(Some(IpAddr::V6(v6.parse::<Ipv6Addr>().ok()?)));
    }
    if name.eq_ignore_ascii_case("unknown") || is_obfuscated(name) {
        return Some(None);
    }
    Some(Some(IpAddr::V4(name.parse::<Ipv4Addr>().ok()?)))
}

/// `uri-host [":" port]`: `[IPv6]`, or a reg-name (which an IPv4 address
/// also is), then digits after an optional `:`.
fn is_host(text: &str) -> bool {
    let (name, port) = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) if v6.parse::<Ipv6Addr>().is_ok() => ("", port),
            _ => return false,
        },
        None => text.split_at(text.find(':').unwrap_or(text.len())),
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && is_reg_name(name)
}

/// `*( unreserved / pct-encoded / sub-delims )` (RFC 3986).
fn is_reg_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    while let Some(b) = bytes.next() {
        let ok = match b {
            b'%' => {
                bytes.next().is_some_and(|h| h.is_ascii_hexdigit())
                    && bytes.next().is_some_and(|h| h.is_ascii_hexdigit())
            }
            b => b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 section 3.1).
fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// A `tchar` of RFC 7230: what a token is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What is left of a line to parse.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// Skips spaces and tabs.
    fn skip_ows(&mut self) {
        while let [b' ' | b'\t', rest @ ..] = self.rest {
            self.rest = rest;
        }
    }

    /// Consumes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        match self.rest.split_first() {
            Some((first, rest)) if *first == byte => {
                self.rest = rest;
                true
            }
            _ => false,
        }
    }

    /// `1*tchar`.
    fn token(&mut self) -> Option<&'a [u8]> {
        let len = self.rest.iter().take_while(|b| is_tchar(**b)).count();
        let (token, rest) = self.rest.split_at(len);
        self.rest = rest;
        (len > 0).then_some(token)
    }

    /// `DQUOTE *( qdtext / "\" char ) DQUOTE`, without its quotes and escapes.
    fn quoted_string(&mut self) -> Option<Vec<u8>> {
        let mut bytes = self.rest.strip_prefix(b"\"")?.iter();
        let mut out = Vec::new();
        loop {
            match *bytes.next()? {
                b'"' => break,
                b'\\' => out.push(*bytes.next().filter(|b| is_quotable(**b))?),
                b if is_quotable(b) => out.push(b),
                _ => return None,
            }
        }
        self.rest = bytes.as_slice();
        Some(out)
    }
}

/// HTAB, SP, a visible character or obs-text: what a quoted string may hold.
fn is_quotable(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}
