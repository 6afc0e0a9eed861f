//! What can go wrong when starting a server.

use std::fmt;
use std::path::PathBuf;

/// An error that stops a server from starting (or a tokens file from loading).
/// Its `Display` is one line and never contains a token.
///
/// ```
/// let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let addr = taken.local_addr()?.to_string();
/// let refused = wsauth::Server::start(addr, wsauth::Config::default(), wsauth::TokenStore::new(vec![]));
/// assert!(matches!(refused, Err(wsauth::Error::Bind { .. })));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The listening address could not be bound.
    Bind {
        /// The address asked for.
        addr: String,
        /// Why the operating system refused.
        source: std::io::Error,
    },
    /// The tokens file could not be read, or a line of it is malformed.
    TokensFile {
        /// The file.
        path: PathBuf,
        /// The line at fault, counting from 1; `None` when the file is unreadable.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// A JWT key file (feature `jwt`) could not be read or holds no usable key.
    #[cfg(feature = "jwt")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The publish key file could not be read, or holds fewer than 32 bytes.
    PublishKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The operating system gave no random bytes for a token.
    Random(String),
    /// Another I/O error while starting.
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::TokensFile { path, line, reason } => {
                write!(f, "tokens file {}: ", path.display())?;
                if let Some(line) = line {
                    write!(f, "line {line}: ")?;
                }
                f.write_str(reason)
            }
            #[cfg(feature = "jwt")]
            Error::KeyFile { path, reason } => {
                write!(f, "JWT key file {}: {reason}", path.display())
            }
            Error::PublishKeyFile { path, reason } => {
                write!(f, "publish key file {}: {reason}", path.display())
            }
            Error::Random(reason) => write!(f, "cannot get random bytes: {reason}"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// Why a push could not be delivered.
///
/// ```no_run
/// # fn push(handle: wsauth::SessionHandle) {
/// match handle.send("reading: 21.5") {
///     Ok(()) => {}
///     Err(wsauth::SendError::Full) => { /* the peer is slow: drop this reading */ }
///     Err(e) => println!("session over: {e}"),
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The session has ended, or has sent its close frame.
    Closed,
    /// Too many other threads are already waiting to write to this session.
    Full,
    /// The frame could not be written within the write timeout; if part of
    /// it was, the session was cut off (a half frame cannot be taken back).
    TimedOut,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed => "the session is closed",
            SendError::Full => "too many writers are waiting for this session",
            SendError::TimedOut => "the session did not take the message within the write timeout",
        })
    }
}

impl std::error::Error for SendError {}

/// Why a publication was not handed on.
///
/// ```no_run
/// # fn tell(publisher: wsauth::Publisher) {
/// match publisher.to_user("alice", "your order shipped") {
///     Ok(sessions) => println!("{sessions} of alice's sessions took it"),
///     Err(e) => eprintln!("not sent: {e}"),
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// The server is stopping or has stopped: nothing was sent.
    Stopped,
    /// The bus to the other instances (`--redis`) is down: nothing was sent.
    BusDown,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PublishError::Stopped => "the server has stopped",
            PublishError::BusDown => "the bus to the other instances is down",
        })
    }
}

impl std::error::Error for PublishError {}
