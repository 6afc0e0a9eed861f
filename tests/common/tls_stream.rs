//! The TLS layer on its own, for `tests/tls_stream_*.rs` and
//! `tests/tls_settings.rs`: settings from a throwaway pair, one accepted
//! connection, a client that completed its handshake.

use super::PATIENCE;
use super::tls::{Pair, TlsClient as Client, client_config};
use rustls::ClientConnection;
use rustls::StreamOwned;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use wsauth::tls::{TlsSettings, TlsStream};

pub fn settings() -> (TlsSettings, Pair, CertificateDer<'static>) {
    let pair = Pair::new();
    let settings = TlsSettings::load(&pair.cert, &pair.key).expect("pair loads");
    let der = pair.der.clone();
    (settings, pair, der)
}

pub fn soon() -> Instant {
    Instant::now() + PATIENCE
}

/// Accepts one connection and runs the TLS handshake on it.
pub fn serve_one(
    settings: &TlsSettings,
    deadline: Duration,
) -> (SocketAddr, JoinHandle<io::Result<TlsStream>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = settings.current();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept()?;
        TlsStream::accept(tcp, config, Instant::now() + deadline)
    });
    (addr, handle)
}

/// A client that has completed its handshake.
pub fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Client {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config, name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut client = StreamOwned::new(conn, tcp);
    while client.conn.is_handshaking() {
        client.conn.complete_io(&mut client.sock).unwrap();
    }
    client
}

/// A client and the server's end of the same connection, TLS 1.3.
pub fn connected() -> (Client, TlsStream, CertificateDer<'static>) {
    let (settings, _pair, der) = settings();
    let (addr, server) = serve_one(&settings, PATIENCE);
    let client = connect(addr, client_config(&[&rustls::version::TLS13], &der));
    (client, server.join().unwrap().unwrap(), der)
}

/// The bytes a real client opens with: its ClientHello record.
pub fn client_hello(der: &CertificateDer<'static>) -> Vec<u8> {
    let config = client_config(&[&rustls::version::TLS13], der);
    let mut conn =
        ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

pub fn read_exactly(stream: &TlsStream, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = stream.read(&mut out[got..]).unwrap();
        assert!(n > 0, "closed after {got} of {len} bytes");
        got += n;
    }
    out
}
