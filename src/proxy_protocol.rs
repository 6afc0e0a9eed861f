//! The PROXY protocol header (`--proxy-protocol`), versions 1 (text) and 2
//! (binary), as HAProxy's `send-proxy` and cloud load balancers send it in
//! front of the request.
//!
//! The header is read exactly, never a byte more: what follows it belongs
//! to the HTTP head and to tungstenite, which cannot be handed bytes already
//! read. [`parse_proxy_header`] says how many more bytes the header needs;
//! [`read_proxy_header`] reads just those, within a deadline.

use crate::http::{ReadError, TimedRead, read_before};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

/// The first 12 bytes of every version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest version 1 header, CRLF included (the protocol's own limit).
pub const MAX_V1_BYTES: usize = 107;
/// Largest version 2 address-and-extensions block accepted. The addresses
/// take at most 216 bytes; the rest leaves room for a few TLVs (ALPN, an
/// authority, a unique ID). The whole header stays far within the 8 KiB
/// head budget.
pub const MAX_V2_PAYLOAD: usize = 512;
/// Length of a version 2 header before its payload.
const V2_FIXED: usize = 16;
/// What every version 1 header starts with.
const V1_PREFIX: &[u8] = b"PROXY ";

/// Why no PROXY header could be read.
#[derive(Debug)]
pub enum ProxyHeaderError {
    /// The bytes are not a PROXY header of either version (or one larger
    /// than this server accepts).
    Malformed,
    /// The deadline passed, the peer closed or the read failed before the
    /// header was complete.
    Read(ReadError),
}

impl std::fmt::Display for ProxyHeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyHeaderError::Malformed => f.write_str("not a valid PROXY protocol header"),
            ProxyHeaderError::Read(ReadError::TimedOut) => {
                f.write_str("no PROXY protocol header in time")
            }
            ProxyHeaderError::Read(ReadError::Closed) => {
                f.write_str("closed before the PROXY protocol header")
            }
            ProxyHeaderError::Read(ReadError::Io(e)) => {
                write!(f, "reading the PROXY protocol header: {e}")
            }
        }
    }
}

impl std::error::Error for ProxyHeaderError {}

/// How far the bytes of a header, read so far, have got.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not complete: read exactly this many more bytes (at least 1), then
    /// parse again. Never more than the rest of a valid header.
    Need(usize),
    /// A complete header, exactly the bytes given. Its source address, or
    /// `None` when it names none: a v2 `LOCAL` (HAProxy's health checks), a
    /// v1 `UNKNOWN`, or a v2 family other than TCP over IPv4/IPv6 (the
    /// source is then the TCP peer).
    Done(Option<SocketAddr>),
}

/// Parses the bytes of a header read so far (start with none).
pub fn parse_proxy_header(bytes: &[u8]) -> Result<Progress, ProxyHeaderError> {
    match bytes.first() {
        None => Ok(Progress::Need(1)),
        Some(b'P') => parse_v1(bytes),
        Some(b'\r') => parse_v2(bytes),
        Some(_) => Err(ProxyHeaderError::Malformed),
    }
}

/// Version 1: `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or `PROXY UNKNOWN ...\r\n`.
fn parse_v1(bytes: &[u8]) -> Result<Progress, ProxyHeaderError> {
    let prefix_len = bytes.len().min(V1_PREFIX.len());
    if bytes[..prefix_len] != V1_PREFIX[..prefix_len] {
        return Err(ProxyHeaderError::Malformed);
    }
    if bytes.len() < V1_PREFIX.len() {
        return Ok(Progress::Need(V1_PREFIX.len() - bytes.len()));
    }
    // Byte by byte from here: only the CRLF tells where the header ends.
    let Some(cr) = bytes.iter().position(|&b| b == b'\r') else {
        return if bytes.len() >= MAX_V1_BYTES - 1 || bytes.contains(&b'\n') {
            Err(ProxyHeaderError::Malformed)
        } else {
            Ok(Progress::Need(1))
        };
    };
    match &bytes[cr..] {
        b"\r" => Ok(Progress::Need(1)),
        b"\r\n" => {
            let line = std::str::from_utf8(&bytes[V1_PREFIX.len()..cr])
                .map_err(|_| ProxyHeaderError::Malformed)?;
            v1_source(line).map(Progress::Done)
        }
        _ => Err(ProxyHeaderError::Malformed),
    }
}

/// The source address of a version 1 line (after `PROXY `, before CRLF).
fn v1_source(line: &str) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split(' ').collect();
    let [family, source, destination, source_port, destination_port] = fields[..] else {
        return Err(ProxyHeaderError::Malformed);
    };
    let (Some(source), Some(_), Some(port), Some(_)) = (
        v1_address(family, source),
        v1_address(family, destination),
        v1_port(source_port),
        v1_port(destination_port),
    ) else {
        return Err(ProxyHeaderError::Malformed);
    };
    Ok(Some(SocketAddr::new(source, port)))
}

/// An address of the line's family: dotted IPv4 for `TCP4`, IPv6 for `TCP6`.
fn v1_address(family: &str, text: &str) -> Option<IpAddr> {
    match family {
        "TCP4" => text.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        "TCP6" => text.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        _ => None,
    }
}

/// A port as version 1 writes it: 1 to 5 digits.
fn v1_port(text: &str) -> Option<u16> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

/// Version 2: signature, version and command, family and protocol, a
/// big-endian length, then that many bytes of addresses and TLVs.
fn parse_v2(bytes: &[u8]) -> Result<Progress, ProxyHeaderError> {
    let signature_len = bytes.len().min(V2_SIGNATURE.len());
    if bytes[..signature_len] != V2_SIGNATURE[..signature_len] {
        return Err(ProxyHeaderError::Malformed);
    }
    if bytes.len() < V2_FIXED {
        return Ok(Progress::Need(V2_FIXED - bytes.len()));
    }
    let (version, command) = (bytes[12] >> 4, bytes[12] & 0x0f);
    let (family, protocol) = (bytes[13] >> 4, bytes[13] & 0x0f);
    let length = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    if version != 2 || command > 1 || family > 3 || protocol > 2 || length > MAX_V2_PAYLOAD {
        return Err(ProxyHeaderError::Malformed);
    }
    if bytes.len() < V2_FIXED + length {
        return Ok(Progress::Need(V2_FIXED + length - bytes.len()));
    }
    if bytes.len() > V2_FIXED + length {
        return Err(ProxyHeaderError::Malformed);
    }
    let payload = &bytes[V2_FIXED..];
    match (command, family, protocol) {
        // LOCAL: the proxy speaks for itself (a health check); the payload is ignored.
        (0, _, _) => Ok(Progress::Done(None)),
        (1, 1, 0 | 1) => v2_inet(payload).map(Progress::Done),
        (1, 2, 0 | 1) => v2_inet6(payload).map(Progress::Done),
        // UNSPEC or UNIX: no IP to give; the TCP peer stands.
        (1, 0 | 3, _) => Ok(Progress::Done(None)),
        // A datagram source over a stream connection makes no sense.
        _ => Err(ProxyHeaderError::Malformed),
    }
}

/// Source address and port of a TCP over IPv4 payload (12 bytes at least).
fn v2_inet(payload: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let address: [u8; 4] = slice(payload, 0..4)?;
    let port: [u8; 2] = slice(payload, 8..10)?;
    slice::<2>(payload, 10..12)?;
    let source = SocketAddr::new(Ipv4Addr::from(address).into(), u16::from_be_bytes(port));
    Ok(Some(source))
}

/// Source address and port of a TCP over IPv6 payload (36 bytes at least).
fn v2_inet6(payload: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let address: [u8; 16] = slice(payload, 0..16)?;
    let port: [u8; 2] = slice(payload, 32..34)?;
    slice::<2>(payload, 34..36)?;
    let source = SocketAddr::new(Ipv6Addr::from(address).into(), u16::from_be_bytes(port));
    Ok(Some(source))
}

/// A fixed-size piece of the payload; too short a payload is malformed.
fn slice<const N: usize>(
    payload: &[u8],
    range: std::ops::Range<usize>,
) -> Result<[u8; N], ProxyHeaderError> {
    payload
        .get(range)
        .and_then(|piece| piece.try_into().ok())
        .ok_or(ProxyHeaderError::Malformed)
}

/// Reads one PROXY header from `stream`, exactly its bytes, giving up at
/// `deadline`. Returns its source address (see [`Progress::Done`]) and its
/// length.
/// The stream's read timeout is left set to the time that was left.
pub fn read_proxy_header(
    stream: &mut impl TimedRead,
    deadline: Instant,
) -> Result<(Option<SocketAddr>, usize), ProxyHeaderError> {
    let mut bytes = Vec::with_capacity(V2_FIXED);
    loop {
        let more = match parse_proxy_header(&bytes)? {
            Progress::Done(source) => return Ok((source, bytes.len())),
            Progress::Need(more) => more,
        };
        let filled = bytes.len();
        bytes.resize(filled + more, 0);
        let read = read_before(stream, &mut bytes[filled..], deadline);
        bytes.truncate(filled + read.map_err(ProxyHeaderError::Read)?);
    }
}

#[cfg(test)]
mod tests;
