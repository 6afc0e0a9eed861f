//! Unit tests of the parent module.

use super::*;
use std::io::{self, Cursor, Read};
use std::net::TcpStream;
use std::time::Duration;

/// A byte source handing out at most `chunk` bytes a read, like a slow peer.
struct Trickle {
    data: Cursor<Vec<u8>>,
    chunk: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk);
        self.data.read(&mut buf[..n])
    }
}

impl TimedRead for Trickle {
    fn set_read_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

/// Reads a header from `data` (`chunk` bytes a read); returns it and what is left.
fn read(data: &[u8], chunk: usize) -> (Result<Option<SocketAddr>, ProxyHeaderError>, Vec<u8>) {
    let mut stream = Trickle {
        data: Cursor::new(data.to_vec()),
        chunk,
    };
    let result = read_proxy_header(&mut stream, Instant::now() + Duration::from_secs(5));
    let mut rest = Vec::new();
    stream.data.read_to_end(&mut rest).expect("a cursor reads");
    if let Ok((_, length)) = &result {
        assert_eq!(*length, data.len() - rest.len(), "the header's length");
    }
    (result.map(|(source, _)| source), rest)
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("valid in this test")
}

fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.push(0x20 | command);
    header.push(family);
    header.extend_from_slice(&u16::try_from(payload.len()).expect("short").to_be_bytes());
    header.extend_from_slice(payload);
    header
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn v1_tcp4_gives_the_source_and_leaves_the_request_unread() {
    for chunk in [1, 3, 4096] {
        let data = [b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n", REQUEST].concat();
        let (result, rest) = read(&data, chunk);
        assert_eq!(result.expect("valid"), Some(addr("192.0.2.1:56324")));
        assert_eq!(rest, REQUEST, "chunk {chunk}");
    }
}

#[test]
fn v1_tcp6_gives_the_source() {
    let data = [b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 80\r\n", REQUEST].concat();
    let (result, rest) = read(&data, 4096);
    assert_eq!(result.expect("valid"), Some(addr("[2001:db8::1]:65535")));
    assert_eq!(rest, REQUEST);
}

#[test]
fn v1_unknown_names_no_source() {
    for header in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
    ] {
        let (result, rest) = read(&[header, REQUEST].concat(), 4096);
        assert_eq!(result.expect("valid"), None);
        assert_eq!(rest, REQUEST);
    }
}

#[test]
fn malformed_v1_headers_are_refused() {
    let long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(100));
    for header in [
        "PROXY TCP4 192.0.2.1 192.0.2.2 56324\r\n",
        "PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n",
        "PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 65536 80\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 +1 80\r\n",
        "PROXY TCP4  192.0.2.1 192.0.2.2 1 80\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 80\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 80\rX",
        "PROXY UDP4 192.0.2.1 192.0.2.2 1 80\r\n",
        "PROXYTCP4\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        long.as_str(),
    ] {
        let (result, _) = read(header.as_bytes(), 4096);
        assert!(
            matches!(result, Err(ProxyHeaderError::Malformed)),
            "{header:?}: {result:?}"
        );
    }
}

#[test]
fn a_v1_header_never_reads_past_107_bytes() {
    let data = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 200]].concat();
    let (result, rest) = read(&data, 4096);
    assert!(matches!(result, Err(ProxyHeaderError::Malformed)));
    assert!(data.len() - rest.len() <= MAX_V1_BYTES);
}

#[test]
fn the_longest_v1_header_is_accepted() {
    let header = format!("PROXY UNKNOWN {}\r\n", "x".repeat(MAX_V1_BYTES - 16));
    assert_eq!(header.len(), MAX_V1_BYTES);
    assert_eq!(read(header.as_bytes(), 4096).0.expect("valid"), None);
}

#[test]
fn v2_proxy_over_ipv4_gives_the_source_and_leaves_the_request_unread() {
    let payload = [192, 0, 2, 1, 192, 0, 2, 2, 0xdc, 0x04, 0x01, 0xbb];
    // A TLV behind the addresses (type 0x04 NOOP, length 2) is skipped.
    let header = v2(1, 0x11, &[&payload[..], &[0x04, 0, 2, 0, 0]].concat());
    for chunk in [1, 5, 4096] {
        let (result, rest) = read(&[&header[..], REQUEST].concat(), chunk);
        assert_eq!(result.expect("valid"), Some(addr("192.0.2.1:56324")));
        assert_eq!(rest, REQUEST, "chunk {chunk}");
    }
}

#[test]
fn v2_proxy_over_ipv6_gives_the_source() {
    let source: Ipv6Addr = "2001:db8::7".parse().expect("valid in this test");
    let mut payload = source.octets().to_vec();
    payload.extend_from_slice(&[0; 16]);
    payload.extend_from_slice(&[0x1f, 0x90, 0, 80]);
    let (result, rest) = read(&[&v2(1, 0x21, &payload)[..], REQUEST].concat(), 4096);
    assert_eq!(result.expect("valid"), Some(addr("[2001:db8::7]:8080")));
    assert_eq!(rest, REQUEST);
}

#[test]
fn v2_local_and_unspec_name_no_source() {
    for header in [
        v2(0, 0x00, &[]),
        v2(0, 0x11, &[1; 12]),
        v2(1, 0x00, &[]),
        v2(1, 0x31, &[0; 216]),
    ] {
        let (result, rest) = read(&[&header[..], REQUEST].concat(), 4096);
        assert_eq!(result.expect("valid"), None);
        assert_eq!(rest, REQUEST);
    }
}

#[test]
fn malformed_v2_headers_are_refused() {
    let mut bad_version = v2(1, 0x11, &[0; 12]);
    bad_version[12] = 0x11;
    let mut bad_signature = v2(1, 0x11, &[0; 12]);
    bad_signature[7] = b'X';
    for header in [
        bad_version,
        bad_signature,
        v2(2, 0x11, &[0; 12]),
        v2(1, 0x41, &[0; 12]),
        v2(1, 0x12, &[0; 12]),
        v2(1, 0x11, &[0; 11]),
        v2(1, 0x21, &[0; 35]),
        v2(1, 0x11, &[0; MAX_V2_PAYLOAD + 1]),
    ] {
        let (result, rest) = read(&header, 4096);
        assert!(
            matches!(result, Err(ProxyHeaderError::Malformed)),
            "{header:?}: {result:?}"
        );
        assert!(header.len() - rest.len() <= V2_FIXED + MAX_V2_PAYLOAD);
    }
}

#[test]
fn an_oversized_v2_length_is_refused_before_its_payload_is_read() {
    let header = v2(1, 0x11, &[0; MAX_V2_PAYLOAD + 1]);
    let (_, rest) = read(&header, 4096);
    assert_eq!(rest.len(), header.len() - V2_FIXED);
}

#[test]
fn a_truncated_header_is_closed_not_malformed() {
    let (result, _) = read(b"PROXY TCP4 192.0.2.1", 4096);
    assert!(matches!(
        result,
        Err(ProxyHeaderError::Read(ReadError::Closed))
    ));
    let (result, _) = read(&v2(1, 0x11, &[0; 12])[..20], 4096);
    assert!(matches!(
        result,
        Err(ProxyHeaderError::Read(ReadError::Closed))
    ));
    let (result, _) = read(b"", 4096);
    assert!(matches!(
        result,
        Err(ProxyHeaderError::Read(ReadError::Closed))
    ));
}

#[test]
fn a_plain_request_is_refused_at_its_first_byte() {
    let (result, rest) = read(REQUEST, 4096);
    assert!(matches!(result, Err(ProxyHeaderError::Malformed)));
    assert_eq!(rest.len(), REQUEST.len() - 1);
}

#[test]
fn a_silent_peer_times_out_at_the_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let _client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    let start = Instant::now();
    let result = read_proxy_header(&mut &server, start + Duration::from_millis(200));
    assert!(
        matches!(result, Err(ProxyHeaderError::Read(ReadError::TimedOut))),
        "{result:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_v1_header_is_asked_for_then_yields_its_source() {
    assert_eq!(
        parse_proxy_header(b"").expect("nothing yet is no error"),
        Progress::Need(1)
    );
    let header = b"PROXY TCP4 192.0.2.1 192.0.2.2 5000 80\r\n";
    let Ok(Progress::Done(Some(source))) = parse_proxy_header(header) else {
        panic!("a complete v1 header")
    };
    assert_eq!(source.to_string(), "192.0.2.1:5000");
}
