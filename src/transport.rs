//! The byte stream under a connection: the TCP socket itself, or (feature
//! `tls`) a TLS stream over it. Every step after the accept (the head, the
//! handshake, the session, pushes from other threads) reads and writes
//! through this one type, so each works the same over TLS.

use crate::socket::{send_now, write_all_before};
#[cfg(feature = "tls")]
use crate::tls::TlsStream;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
#[cfg(feature = "tls")]
use std::time::Duration;
use std::time::Instant;

/// Time allowed for our last TLS record (`close_notify`) when the socket has
/// no write timeout of its own.
#[cfg(feature = "tls")]
const DEFAULT_WRITE_TIME: Duration = Duration::from_secs(10);

/// A connection's stream: read by its own thread, written by any thread
/// (through the session's writer lock once it is a session).
#[derive(Debug)]
pub enum Transport {
    /// Plain TCP: http and ws. The socket is shared with the server's list
    /// of pending connections, which may shut it down to make room.
    Plain(Arc<TcpStream>),
    /// TLS over TCP: https and wss. Boxed, so that a plain session's link
    /// stays as small as without the feature.
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Transport {
    /// The socket, for its timeouts, its peer address and `shutdown` (the
    /// wake-up of a blocked read works on the descriptor, TLS or not).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.tcp(),
        }
    }

    /// Reads bytes (plaintext over TLS) within the socket's read timeout,
    /// which fires as `WouldBlock` or `TimedOut` either way. `Ok(0)`: the
    /// peer closed (a TLS `close_notify` included).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => (&**tcp).read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.read(buf),
        }
    }

    /// Writes all of `bytes`, giving up with `TimedOut` at `deadline`; after
    /// a failure part of them may be out.
    pub fn write_all_before(&self, bytes: &[u8], deadline: Instant) -> io::Result<()> {
        match self {
            Transport::Plain(tcp) => write_all_before(tcp, bytes, deadline),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.write_all(bytes, deadline),
        }
    }

    /// Writes what the socket takes now of `bytes`, never waiting: returns
    /// how many it took and whether bytes already taken still wait inside
    /// the stream (TLS records not yet on the wire; never for plain TCP).
    pub fn send_some(&self, bytes: &[u8]) -> io::Result<(usize, bool)> {
        use io::ErrorKind::{Interrupted, WouldBlock};
        match self {
            Transport::Plain(tcp) => match send_now(tcp, bytes) {
                Ok(n) => Ok((n, false)),
                Err(e) if matches!(e.kind(), WouldBlock | Interrupted) => Ok((0, false)),
                Err(e) => Err(e),
            },
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.send_some(bytes),
        }
    }

    /// Ends our sending side: a TLS `close_notify` first, then the FIN.
    pub fn shutdown_write(&self) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Transport::Tls(tls) = self {
            let _ = tls.send_close_notify(Instant::now() + self.write_time());
        }
        self.tcp().shutdown(Shutdown::Write)
    }

    /// The socket's write timeout, or a default when it has none.
    #[cfg(feature = "tls")]
    fn write_time(&self) -> Duration {
        let time = self.tcp().write_timeout().ok().flatten();
        time.unwrap_or(DEFAULT_WRITE_TIME)
    }
}

impl Read for &Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Transport::read(self, buf)
    }
}

impl Write for &Transport {
    /// Plain: one write within the socket's write timeout. TLS: all of `buf`
    /// as whole records within that timeout.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => (&**tcp).write(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => {
                tls.write_all(buf, Instant::now() + self.write_time())?;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
