//! The clients: tungstenite over TCP for wsauth, plain `TcpStream`s for the
//! floor; connect, upgrade, echo, finish.

use crate::servers::{Kind, TOKEN};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Bytes, HandshakeError, Message, WebSocket};

/// How long a client waits for any answer before calling it an error.
const CLIENT_PATIENCE: Duration = Duration::from_secs(30);

/// A WebSocket client session, over TCP or TLS.
pub type Ws = WebSocket<ClientStream>;

/// What a client session runs on.
pub enum ClientStream {
    /// ws://
    Tcp(TcpStream),
    /// wss://, trusting the bench's own certificate.
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ClientStream::Tcp(s) => s.read(buf),
            #[cfg(feature = "tls")]
            ClientStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            ClientStream::Tcp(s) => s.write(buf),
            #[cfg(feature = "tls")]
            ClientStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            ClientStream::Tcp(s) => s.flush(),
            #[cfg(feature = "tls")]
            ClientStream::Tls(s) => s.flush(),
        }
    }
}

#[cfg(feature = "redis")]
impl ClientStream {
    /// The read timeout of the TCP connection underneath.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self {
            ClientStream::Tcp(s) => s.set_read_timeout(timeout),
            #[cfg(feature = "tls")]
            ClientStream::Tls(s) => s.sock.set_read_timeout(timeout),
        }
    }
}

/// The client's stream for a server of `kind`: TLS for a TLS server.
fn client_stream(kind: Kind, tcp: TcpStream) -> Result<ClientStream, String> {
    match kind {
        #[cfg(feature = "tls")]
        Kind::WsauthTls => crate::tls_pair::connect(tcp).map(|s| ClientStream::Tls(Box::new(s))),
        _ => Ok(ClientStream::Tcp(tcp)),
    }
}

/// The headers a client adds to its upgrade request to authenticate, made
/// afresh for each upgrade (so that a signed token can carry a fresh time).
pub type Credential = Box<dyn Fn() -> Vec<(String, String)> + Sync>;

/// `Authorization: Bearer TOKEN` on every upgrade.
pub fn bearer(token: &str) -> Credential {
    let value = format!("Bearer {token}");
    Box::new(move || vec![("Authorization".to_string(), value.clone())])
}

/// One connection of either kind.
pub enum Conn {
    /// A session with wsauth.
    Ws(Box<Ws>),
    /// A connection to the floor, with a buffer for the echo.
    Raw(TcpStream, Vec<u8>),
}

/// Settings of a client session that sends `message_bytes` at a time.
fn client_config(message_bytes: usize) -> WebSocketConfig {
    // A small read buffer: tungstenite zero-fills all of it before each read.
    WebSocketConfig::default().read_buffer_size((message_bytes + 16).max(4096))
}

/// A TCP connection with `TCP_NODELAY` and the client's patience.
fn tcp_connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(CLIENT_PATIENCE)))
        .map_err(|e| format!("socket options: {e}"))?;
    Ok(stream)
}

/// Upgrades with `credential`'s headers; `Ok(Err(status))` when the server refused.
pub fn ws_upgrade(
    kind: Kind,
    addr: SocketAddr,
    credential: &Credential,
    message_bytes: usize,
) -> Result<Result<Ws, u16>, String> {
    let stream = client_stream(kind, tcp_connect(addr)?)?;
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    for (name, value) in credential() {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?,
            HeaderValue::from_str(&value).map_err(|e| e.to_string())?,
        );
    }
    match tungstenite::client::client_with_config(
        request,
        stream,
        Some(client_config(message_bytes)),
    ) {
        Ok((ws, _)) => Ok(Ok(ws)),
        Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Ok(Err(response.status().as_u16()))
        }
        Err(e) => Err(format!("handshake: {e}")),
    }
}

/// A session up to and including the greeting (when `greeted`).
fn ws_open(
    kind: Kind,
    addr: SocketAddr,
    credential: &Credential,
    message_bytes: usize,
    greeted: bool,
) -> Result<Ws, String> {
    let mut ws = ws_upgrade(kind, addr, credential, message_bytes)?
        .map_err(|status| format!("upgrade refused with {status}"))?;
    if !greeted {
        return Ok(ws);
    }
    match ws.read().map_err(|e| format!("greeting: {e}"))? {
        Message::Text(t) if t.starts_with("Hello") => Ok(ws),
        other => Err(format!("expected the greeting, got {other:?}")),
    }
}

/// A connection ready for echoes: for wsauth authenticated with `credential`
/// and greeted (when `greeted`); for the floor just connected.
pub fn open_with(
    kind: Kind,
    addr: SocketAddr,
    credential: &Credential,
    message_bytes: usize,
    greeted: bool,
) -> Result<Conn, String> {
    match kind {
        Kind::Raw => Ok(Conn::Raw(tcp_connect(addr)?, vec![0; message_bytes])),
        _ => Ok(Conn::Ws(Box::new(ws_open(
            kind,
            addr,
            credential,
            message_bytes,
            greeted,
        )?))),
    }
}

/// [`open_with`] the bench's own [`TOKEN`].
pub fn open(kind: Kind, addr: SocketAddr, message_bytes: usize) -> Result<Conn, String> {
    open_with(kind, addr, &bearer(TOKEN), message_bytes, true)
}

/// Sends `payload` (binary, or text when `text`) and waits for it to come
/// back; a text payload must be ASCII.
pub fn echo_as(conn: &mut Conn, payload: &Bytes, text: bool) -> Result<(), String> {
    match conn {
        Conn::Ws(ws) => {
            let message = if text {
                let text = String::from_utf8(payload.to_vec()).map_err(|e| e.to_string())?;
                Message::text(text)
            } else {
                Message::Binary(payload.clone())
            };
            ws.send(message).map_err(|e| format!("send: {e}"))?;
            loop {
                match ws.read().map_err(|e| format!("read: {e}"))? {
                    Message::Binary(b) if b.len() == payload.len() => return Ok(()),
                    Message::Text(t) if text && t.len() == payload.len() => return Ok(()),
                    Message::Ping(_) | Message::Pong(_) => continue,
                    other => return Err(format!("unexpected {other:?}")),
                }
            }
        }
        Conn::Raw(stream, buf) => {
            stream
                .write_all(payload)
                .map_err(|e| format!("write: {e}"))?;
            stream
                .read_exact(&mut buf[..payload.len()])
                .map_err(|e| format!("read: {e}"))
        }
    }
}

/// Sends a binary `payload` and waits for it to come back.
pub fn echo(conn: &mut Conn, payload: &Bytes) -> Result<(), String> {
    echo_as(conn, payload, false)
}

/// Ends a connection cleanly: close handshake (wsauth) or half-close
/// (raw), then waits for the server to close the TCP connection.
pub fn finish(conn: Conn) -> Result<(), String> {
    match conn {
        Conn::Ws(mut ws) => {
            ws.close(None).map_err(|e| format!("close: {e}"))?;
            loop {
                match ws.read() {
                    Ok(_) => continue,
                    Err(tungstenite::Error::ConnectionClosed) => return Ok(()),
                    Err(e) => return Err(format!("closing: {e}")),
                }
            }
        }
        Conn::Raw(mut stream, _) => {
            stream
                .shutdown(std::net::Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
            let mut sink = [0u8; 64];
            loop {
                match stream.read(&mut sink) {
                    Ok(0) => return Ok(()),
                    Ok(_) => continue,
                    Err(e) => return Err(format!("waiting for the close: {e}")),
                }
            }
        }
    }
}
