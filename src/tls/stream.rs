//! A TLS connection over a blocking socket that its own thread reads while
//! any thread may write.
//!
//! rustls 0.23 cannot split a connection into a reading and a writing half,
//! and reading can change the write keys (a TLS 1.3 KeyUpdate), so every
//! use of the connection state goes through one lock (a [`Gate`], which a
//! writer gives up on at its deadline). The reader never holds it while it
//! waits for the socket; a writer holds it until its records are on the
//! wire, which keeps records, and so messages, whole and in order.

use super::gate::{Gate, Inside};
use crate::socket::{DeadlineWriter, send_now};
use rustls::{ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes read from the socket per call: about what `read_tls` takes at once.
const READ_CHUNK: usize = 4096;
/// Time the reader allows its own records (alerts, KeyUpdate answers) to go
/// out when the socket has no write timeout.
const DEFAULT_WRITE_TIME: Duration = Duration::from_secs(10);

/// A server-side TLS connection: the socket and the rustls state behind a lock.
///
/// ```no_run
/// # use std::time::{Duration, Instant};
/// # use std::path::Path;
/// # use wsauth::tls::{TlsSettings, TlsStream};
/// let tls = TlsSettings::load(Path::new("cert.pem"), Path::new("key.pem"))?;
/// let listener = std::net::TcpListener::bind("127.0.0.1:8443")?;
/// let (tcp, _) = listener.accept()?;
/// let soon = Instant::now() + Duration::from_secs(10);
/// let stream = TlsStream::accept(tcp, tls.current(), soon)?;
/// stream.write_all(b"hello", soon)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TlsStream {
    /// Shared with the server's list of pending connections, which may shut
    /// it down to make room.
    tcp: Arc<TcpStream>,
    conn: Gate<ServerConnection>,
}

impl TlsStream {
    /// Runs the server side of the TLS handshake on `tcp`, failing with
    /// [`io::ErrorKind::TimedOut`] if it is not complete by `deadline`.
    /// Leaves the socket's read timeout changed.
    pub fn accept(
        tcp: TcpStream,
        config: Arc<ServerConfig>,
        deadline: Instant,
    ) -> io::Result<TlsStream> {
        TlsStream::accept_shared(Arc::new(tcp), config, deadline)
    }

    /// [`TlsStream::accept`] on a socket that others hold too (to shut it
    /// down from outside).
    pub fn accept_shared(
        tcp: Arc<TcpStream>,
        config: Arc<ServerConfig>,
        deadline: Instant,
    ) -> io::Result<TlsStream> {
        let mut conn = ServerConnection::new(config).map_err(io::Error::other)?;
        handshake(&tcp, &mut conn, deadline)?;
        Ok(TlsStream {
            tcp,
            conn: Gate::new(conn),
        })
    }

    /// Reads plaintext; only the connection's own thread calls it. Blocks
    /// like a read on the socket, within its read timeout, which surfaces
    /// exactly as on a plain socket (`WouldBlock` or `TimedOut`) and leaves
    /// the stream usable. The timeout is for the whole call: a record that
    /// trickles in a byte at a time cannot stretch it. `Ok(0)` when the peer
    /// has closed, with or without `close_notify`.
    // Never inlined: its 4 KiB buffer would otherwise put a stack probe and
    // a resident stack page on the plain path that shares a caller with it.
    #[inline(never)]
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut chunk = [0u8; READ_CHUNK];
        let started = Instant::now();
        // The socket's own timeout, noted when a second raw read is needed.
        let (mut raw_reads, mut restore) = (0u32, None);
        let read = loop {
            match self.read_plaintext(buf) {
                Ok(Some(n)) => break Ok(n),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            if raw_reads > 0
                && let Err(e) = self.keep_to_timeout(started, &mut restore)
            {
                break Err(e);
            }
            raw_reads += 1;
            // Outside the lock: writers must not wait for the peer to speak.
            let n = match (&*self.tcp).read(&mut chunk) {
                Ok(0) => break Ok(0),
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            let fed = self.lock(None).and_then(|mut conn| {
                feed_and_answer(&mut conn, &self.tcp, &chunk[..n], || self.reader_deadline())
                    .map_err(not_a_timeout)
            });
            if let Err(e) = fed {
                break Err(e);
            }
        };
        if let Some(timeout) = restore {
            self.tcp.set_read_timeout(timeout)?;
        }
        read
    }

    /// Before a raw read after the first: shortens the socket's timeout to
    /// what is left of it since `started` (noting the timeout to put back),
    /// or fails with `TimedOut` once none is left.
    fn keep_to_timeout(
        &self,
        started: Instant,
        restore: &mut Option<Option<Duration>>,
    ) -> io::Result<()> {
        if restore.is_none() {
            *restore = Some(self.tcp.read_timeout()?);
        }
        let Some(Some(timeout)) = *restore else {
            return Ok(());
        };
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.tcp.set_read_timeout(Some(left))
    }

    /// Sends `bytes` as application data, from any thread: all of it is on
    /// the wire when this returns, or it fails with
    /// [`io::ErrorKind::TimedOut`] at `deadline`. After a failure part of
    /// `bytes` may have been sent: give up on the stream.
    pub fn write_all(&self, bytes: &[u8], deadline: Instant) -> io::Result<()> {
        let mut conn = self.lock(Some(deadline))?;
        let mut rest = bytes;
        while !rest.is_empty() {
            // rustls takes only what fits its outgoing buffer (64 KiB): flush and go on.
            let n = conn.writer().write(rest)?;
            if n == 0 && !conn.wants_write() {
                return Err(io::ErrorKind::WriteZero.into());
            }
            rest = &rest[n..];
            flush(&mut conn, &self.tcp, deadline)?;
        }
        Ok(())
    }

    /// Sends what the socket takes now, never waiting: returns how many
    /// bytes of `bytes` the TLS state took, and whether records of them (or
    /// of earlier ones) are still to go out. Takes nothing while earlier
    /// records wait, or while another thread is using the TLS state.
    pub fn send_some(&self, bytes: &[u8]) -> io::Result<(usize, bool)> {
        let Ok(mut conn) = self.lock(Some(Instant::now())) else {
            return Ok((0, true));
        };
        if !flush_now(&mut conn, &self.tcp)? {
            return Ok((0, true));
        }
        let n = match bytes.is_empty() {
            true => 0,
            false => conn.writer().write(bytes)?,
        };
        let all_out = flush_now(&mut conn, &self.tcp)?;
        Ok((n, !all_out))
    }

    /// Sends a TLS `close_notify` alert, by `deadline`.
    pub fn send_close_notify(&self, deadline: Instant) -> io::Result<()> {
        let mut conn = self.lock(Some(deadline))?;
        conn.send_close_notify();
        flush(&mut conn, &self.tcp, deadline)
    }

    /// The socket, for its timeouts, its peer address and `shutdown`.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Plaintext already decrypted, `Some(0)` at `close_notify`, or `None`
    /// when the socket must be read first.
    fn read_plaintext(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut conn = self.lock(None)?;
        match conn.reader().read(buf) {
            Ok(n) => Ok(Some(n)),
            // rustls's "nothing buffered", never to be mistaken for a read timeout.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }

    /// When the reader's own records must be out: the socket's write timeout.
    fn reader_deadline(&self) -> Instant {
        let time = self.tcp.write_timeout().ok().flatten();
        Instant::now() + time.unwrap_or(DEFAULT_WRITE_TIME)
    }

    /// The connection state, once no one else uses it; a writer gives up
    /// at its `deadline`, the reader (`None`) waits for the writer's.
    fn lock(&self, deadline: Option<Instant>) -> io::Result<Inside<'_, ServerConnection>> {
        self.conn.enter(deadline)
    }
}

/// Drives the handshake to its end, reading and writing by `deadline`.
fn handshake(tcp: &TcpStream, conn: &mut ServerConnection, deadline: Instant) -> io::Result<()> {
    let mut chunk = [0u8; READ_CHUNK];
    while conn.is_handshaking() {
        if !conn.wants_read() {
            return Err(io::Error::other("TLS handshake stuck"));
        }
        let n = read_before(tcp, &mut chunk, deadline)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed during the TLS handshake",
            ));
        }
        feed_and_answer(conn, tcp, &chunk[..n], || deadline)?;
    }
    Ok(())
}

/// One socket read that ends by `deadline` ([`io::ErrorKind::TimedOut`]).
fn read_before(tcp: &TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake not complete in time",
            ));
        }
        tcp.set_read_timeout(Some(left))?;
        match (&*tcp).read(buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            other => return other,
        }
    }
}

/// Hands bytes from the socket to rustls, then sends what it has to say
/// (handshake messages, alerts, KeyUpdate answers). A refused record still
/// gets its alert sent, best effort, before the error returns.
fn feed_and_answer(
    conn: &mut ServerConnection,
    tcp: &TcpStream,
    bytes: &[u8],
    deadline: impl FnOnce() -> Instant,
) -> io::Result<()> {
    let fed = feed(conn, bytes);
    // Most records need no answer: the deadline (a system call) only when one does.
    let flushed = match conn.wants_write() {
        true => flush(conn, tcp, deadline()),
        false => Ok(()),
    };
    fed.and(flushed)
}

/// `read_tls` takes a few KiB a call: loop until every byte is in.
fn feed(conn: &mut ServerConnection, bytes: &[u8]) -> io::Result<()> {
    let mut rest = bytes;
    while !rest.is_empty() {
        conn.read_tls(&mut rest)?;
        conn.process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    }
    Ok(())
}

/// Writes every pending TLS record to the socket by `deadline`.
fn flush(conn: &mut ServerConnection, tcp: &TcpStream, deadline: Instant) -> io::Result<()> {
    let mut socket = DeadlineWriter { tcp, deadline };
    while conn.wants_write() {
        if conn.write_tls(&mut socket)? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// Writes the pending TLS records the socket takes now; `true` when none is
/// left.
fn flush_now(conn: &mut ServerConnection, tcp: &TcpStream) -> io::Result<bool> {
    struct Now<'a>(&'a TcpStream);
    impl Write for Now<'_> {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            send_now(self.0, bytes)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    while conn.wants_write() {
        match conn.write_tls(&mut Now(tcp)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The reader's own writes timing out must not pass for a read timeout.
fn not_a_timeout(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            io::Error::other(format!("sending TLS records: {e}"))
        }
        _ => e,
    }
}
