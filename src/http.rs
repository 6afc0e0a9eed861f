//! The plain-HTTP side: reading a request head with a deadline and a bound,
//! and writing short answers that always close the connection.

use crate::transport::Transport;
use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Largest request head (request line, headers, blank line) accepted.
pub const MAX_HEAD_BYTES: usize = 8192;
/// Most header lines accepted in a request head.
const MAX_HEADERS: usize = 64;
/// How much of a head the first read takes.
const FIRST_HEAD_READ: usize = 2048;
/// How long, at most, unread request bytes are drained after an answer, so the
/// client reads the answer instead of a connection reset.
const LINGER: Duration = Duration::from_secs(1);

/// A parsed request head, with the bytes it was parsed from.
#[derive(Debug)]
pub struct RequestHead {
    /// The request method, e.g. `GET`.
    pub method: String,
    /// The request target as sent, query string included.
    pub target: String,
    /// Whether an `Upgrade` header names `websocket`.
    pub wants_websocket: bool,
    /// The raw head, up to and including the blank line.
    pub raw: Vec<u8>,
    /// Bytes that arrived behind the head (a client that did not wait for
    /// the 101 before its first frame).
    pub rest: Vec<u8>,
}

impl RequestHead {
    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target.split(['?', '#']).next().unwrap_or_default()
    }
}

/// Why no request head could be read.
#[derive(Debug)]
pub enum HeadError {
    /// The head passed [`MAX_HEAD_BYTES`] (or 64 header lines): 431.
    TooLarge,
    /// The head is not valid HTTP/1.x: 400.
    Malformed,
    /// The deadline passed, the client closed or the read failed before
    /// the head was whole.
    Read(ReadError),
}

/// Reads one request head from `stream`, giving up at `deadline`, of at
/// most `budget` bytes ([`MAX_HEAD_BYTES`], less what a PROXY header in
/// front took of it).
pub fn read_request_head(
    stream: &Transport,
    deadline: Instant,
    budget: usize,
) -> Result<RequestHead, HeadError> {
    let budget = budget.clamp(1, MAX_HEAD_BYTES);
    // Most heads are a few hundred bytes: start small, grow up to the budget.
    let mut buf = vec![0u8; budget.min(FIRST_HEAD_READ)];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize((len * 2).min(budget), 0);
        }
        let n = read_before(&mut &*stream, &mut buf[len..], deadline).map_err(HeadError::Read)?;
        len += n;
        // Parse the first bytes (junk is refused at once) and then only when a
        // line ends: a client trickling bytes must not cost a parse per byte.
        if (len == n || buf[len - n..len].contains(&b'\n'))
            && let Some(head) = parse_head(&buf[..len])?
        {
            return Ok(head);
        }
        if len == budget {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Why a read before a deadline (of a PROXY header, a head, a body) got
/// no bytes.
#[derive(Debug)]
pub enum ReadError {
    /// The deadline passed first.
    TimedOut,
    /// The client closed the connection.
    Closed,
    /// Reading failed.
    Io(io::Error),
}

/// A reader whose reads can be given a timeout.
pub trait TimedRead: Read {
    /// Sets the timeout of the reads that follow.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
}

impl TimedRead for &TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

impl TimedRead for &Transport {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }
}

/// One read into `buf` that gives up at `deadline`: how many bytes came, at
/// least one. An interrupted read is tried again.
pub fn read_before(
    stream: &mut impl TimedRead,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<usize, ReadError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::TimedOut);
        }
        stream.set_read_timeout(Some(left)).map_err(ReadError::Io)?;
        match stream.read(buf) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => return Ok(n),
            Err(e) if is_timeout(&e) => return Err(ReadError::TimedOut),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

/// Reads a body of `length` bytes: first what arrived behind the head
/// (`rest`, bytes past the body ignored), then from `stream`, all before
/// `deadline`, the same deadline as the head's.
pub fn read_body(
    stream: &Transport,
    rest: &[u8],
    length: usize,
    deadline: Instant,
) -> Result<Vec<u8>, ReadError> {
    let mut body = vec![0u8; length];
    let early = rest.len().min(length);
    body[..early].copy_from_slice(&rest[..early]);
    let mut len = early;
    while len < length {
        len += read_before(&mut &*stream, &mut body[len..], deadline)?;
    }
    Ok(body)
}

/// Parses a complete or partial head: `Ok(None)` means more bytes are needed.
pub fn parse_head(bytes: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let size = match request.parse(bytes) {
        Ok(httparse::Status::Complete(size)) => size,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    let wants_websocket = request.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("upgrade")
            && String::from_utf8_lossy(h.value)
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case("websocket"))
    });
    Ok(Some(RequestHead {
        method: request.method.unwrap_or_default().to_string(),
        target: request.path.unwrap_or_default().to_string(),
        wants_websocket,
        raw: bytes[..size].to_vec(),
        rest: bytes[size..].to_vec(),
    }))
}

/// The header lines of a complete raw head, as (name, value) pairs.
pub fn header_lines(raw: &[u8]) -> Vec<(&str, &[u8])> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    if request.parse(raw).is_err() {
        return Vec::new();
    }
    request
        .headers
        .iter()
        .filter(|h| !h.name.is_empty())
        .map(|h| (h.name, h.value))
        .collect()
}

/// Whether an I/O error is a read or write timeout firing.
pub fn is_timeout(e: &io::Error) -> bool {
    use io::ErrorKind::{TimedOut, WouldBlock};
    matches!(e.kind(), WouldBlock | TimedOut)
}

/// A complete HTTP answer: status, extra headers, body.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Headers besides `Content-Length` and `Connection`, which are always added.
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    /// The body; its length is sent even when the body is not (`HEAD`).
    pub body: Cow<'static, [u8]>,
    /// `false` for an answer to `HEAD`.
    pub send_body: bool,
}

impl Answer {
    /// A `text/plain` answer whose body is one line.
    pub fn text(status: u16, line: &'static str) -> Self {
        Answer {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: Cow::Borrowed(line.as_bytes()),
            send_body: true,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: String) -> Self {
        self.body = body.into_bytes().into();
        self
    }

    /// The whole answer as bytes, ready to write.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (status, length) = (self.status, self.body.len());
        let mut out = Vec::with_capacity(256 + length);
        let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason_phrase(status));
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        let _ = write!(out, "Content-Length: {length}\r\nConnection: close\r\n\r\n");
        if self.send_body {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The standard reason phrase for the statuses wsauth sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Writes `answer` and closes the connection gracefully.
pub fn send_answer(mut stream: &Transport, answer: &Answer) -> io::Result<()> {
    stream.write_all(&answer.to_bytes())?;
    close_gracefully(stream);
    Ok(())
}

/// Ends our side of the connection, then drains what the client still sends
/// for a short while: closing with unread bytes would reset the connection and
/// could destroy the answer before the client reads it.
pub fn close_gracefully(transport: &Transport) {
    if transport.shutdown_write().is_err() {
        return;
    }
    // Over TLS too the raw bytes are drained: nothing more is decrypted.
    let stream = transport.tcp();
    // Nothing unread: closing now sends no reset, so there is nothing to wait
    // for (the usual case; it saves a blocking read and a wake-up).
    if !has_unread_bytes(stream) {
        return;
    }
    drain_until(stream, Instant::now() + LINGER);
}

/// Reads and drops what the peer sends until it closes or `deadline`.
/// Never inlined: its buffer stays off the stack of the callers' callers
/// (a session's frames stay resident while it waits).
#[inline(never)]
fn drain_until(mut stream: &TcpStream, deadline: Instant) {
    let mut sink = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Whether bytes from the peer wait unread: a one-byte peek that never
/// blocks, one system call.
pub(crate) fn has_unread_bytes(stream: &TcpStream) -> bool {
    crate::sys::peek_byte(stream.as_fd())
}

/// A 405 naming the methods `allow`ed.
pub fn method_not_allowed(allow: &'static str) -> Answer {
    Answer::text(405, "method not allowed\n").with_header("Allow", allow)
}
