//! https and wss on the same port (feature `tls`): the certificate in force,
//! telling TLS from plain HTTP by the first bytes, and a TLS stream that the
//! connection's thread reads while other threads push frames.
//!
//! The flow for one connection: look at the first bytes without consuming
//! them; for a TLS record, [`TlsStream::accept`] with
//! [`TlsSettings::current`]; for a plain-HTTP request, a 400 that says to use
//! `https://`, and close.
//! rustls runs on the `ring` provider, TLS 1.2 and 1.3 only, ALPN `http/1.1`.

mod gate;
mod settings;
mod sniff;
mod stream;

pub use settings::{TlsError, TlsSettings};
pub(crate) use sniff::{FirstBytes, plain_http_refusal, sniff};
pub use stream::TlsStream;
