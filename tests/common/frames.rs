//! Raw WebSocket frames, for the protocol cases a well-behaved client cannot send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// Opcodes.
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CONTINUATION: u8 = 0x0;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A masked client frame.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    header_length(&mut out, payload.len() as u64, true);
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Just the header of a masked frame announcing `len` payload bytes.
pub fn header_only(opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    header_length(&mut out, len, true);
    out.extend_from_slice(&[1, 2, 3, 4]);
    out
}

fn header_length(out: &mut Vec<u8>, len: u64, masked: bool) {
    let m = if masked { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= u16::MAX as u64 {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A close frame's payload: code and reason.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// One frame from the server: (fin, opcode, payload); `None` at end of stream.
pub fn read_frame(stream: &mut TcpStream) -> Option<(bool, u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    read_exact_or_eof(stream, &mut head)?;
    let mut len = u64::from(head[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        read_exact_or_eof(stream, &mut b)?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        read_exact_or_eof(stream, &mut b)?;
        len = u64::from_be_bytes(b);
    }
    assert_eq!(head[1] & 0x80, 0, "server frames are never masked");
    let mut payload = vec![0u8; len as usize];
    read_exact_or_eof(stream, &mut payload)?;
    Some((head[0] & 0x80 != 0, head[0] & 0x0f, payload))
}

fn read_exact_or_eof(stream: &mut TcpStream, buf: &mut [u8]) -> Option<()> {
    match stream.read_exact(buf) {
        Ok(()) => Some(()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            None
        }
        Err(e) => panic!("reading a frame: {e}"),
    }
}

/// Reads frames until a close frame; returns its code (1005 for an empty
/// close) and reason. Data frames before it are skipped.
pub fn read_close(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    loop {
        let (_, opcode, payload) =
            read_frame(stream).expect("a close frame before the end of the stream");
        if opcode == CLOSE {
            if payload.len() < 2 {
                return (1005, Vec::new());
            }
            return (
                u16::from_be_bytes([payload[0], payload[1]]),
                payload[2..].to_vec(),
            );
        }
    }
}

/// Upgrades a raw socket with the given request, checks for 101, and returns
/// the socket ready for frames (the greeting, if any, not yet read).
pub fn raw_session(addr: SocketAddr, request: &str) -> TcpStream {
    raw_session_bytes(addr, request.as_bytes())
}

/// As [`raw_session`], with the request (and anything behind it) as bytes.
pub fn raw_session_bytes(addr: SocketAddr, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(super::PATIENCE)).unwrap();
    stream.write_all(request).unwrap();
    // Read the response head byte by byte, so no frame bytes are swallowed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "expected 101, got {head}");
    stream
}

/// A raw session authenticated as alice by header, its greeting consumed.
pub fn raw_alice(addr: SocketAddr) -> TcpStream {
    let request = super::upgrade_request(
        addr,
        "/ws",
        &[&format!("Authorization: Bearer {}", super::ALICE)],
    );
    let mut stream = raw_session(addr, &request);
    let (_, opcode, payload) = read_frame(&mut stream).expect("greeting");
    assert_eq!((opcode, payload.as_slice()), (TEXT, &b"Hello alice"[..]));
    stream
}
