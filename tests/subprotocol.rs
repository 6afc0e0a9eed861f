//! What a session learns of its subprotocol is what the 101 said: a
//! subprotocol the 101 cannot carry as the client offered it is not
//! selected, for the handler (and so `WSAUTH_SUBPROTOCOL`) as on the wire.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver};
use wsauth::{Config, Echo, Server, TokenStore};

/// A server that reports each session's subprotocol, as its handler saw it.
fn reporting_server() -> (Server, Receiver<Option<String>>) {
    let (seen, subprotocols) = mpsc::channel();
    let seen = Mutex::new(seen);
    let store = TokenStore::new(vec![grant("alice", ALICE, None)]);
    let server = Server::start_with_handler("127.0.0.1:0", Config::default(), store, move |info| {
        let _ = seen.lock().unwrap().send(info.subprotocol.clone());
        Echo::new(&info.identity.user, "", "".into())
    })
    .expect("server starts");
    (server, subprotocols)
}

/// An upgrade as alice offering `protocols` (raw bytes, as a client may
/// send them); the head of the answer.
fn upgrade_offering(server: &Server, protocols: &[u8]) -> (String, TcpStream) {
    let addr = server.local_addr();
    let mut request =
        upgrade_request(addr, "/ws", &[&format!("Authorization: Bearer {ALICE}")]).into_bytes();
    // Before the blank line that ends the head.
    request.truncate(request.len() - 2);
    request.extend_from_slice(b"Sec-WebSocket-Protocol: ");
    request.extend_from_slice(protocols);
    request.extend_from_slice(b"\r\n\r\n");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(&request).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte, up to the blank line (or the server's close).
    while !head.ends_with(b"\r\n\r\n") && matches!(stream.read(&mut byte), Ok(1)) {
        head.push(byte[0]);
    }
    (String::from_utf8_lossy(&head).into_owned(), stream)
}

#[test]
fn a_subprotocol_the_101_cannot_carry_is_not_selected() {
    let (server, subprotocols) = reporting_server();
    // Bytes 0x80-0xFF pass the HTTP parser, but a header the server writes
    // is visible ASCII: neither offer can be named in the 101 as it came.
    for offer in [&b"chat\xff"[..], "ch\u{e4}t".as_bytes()] {
        let (head, _stream) = upgrade_offering(&server, offer);
        assert_eq!(status(&head), 101, "{offer:?}: {head}");
        assert_eq!(header(&head, "Sec-WebSocket-Protocol"), None, "{head}");
        assert_eq!(subprotocols.recv_timeout(PATIENCE).unwrap(), None);
    }
}

#[test]
fn the_subprotocol_the_101_selects_is_the_one_the_handler_learns() {
    let (server, subprotocols) = reporting_server();
    let (head, _stream) = upgrade_offering(&server, b"chat, superchat");
    assert_eq!(status(&head), 101, "{head}");
    assert_eq!(header(&head, "Sec-WebSocket-Protocol"), Some("chat"));
    assert_eq!(
        subprotocols.recv_timeout(PATIENCE).unwrap().as_deref(),
        Some("chat")
    );
}
