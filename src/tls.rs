//! https and wss on the same port (feature `tls`): the certificate in force,
//! telling TLS from plain HTTP by the first bytes, and a TLS stream that the
//! connection's thread reads while other threads push frames.
//!
//! The flow for one connection: [`sniff`] the first bytes; for
//! [`FirstBytes::Tls`], [`TlsStream::accept`] with [`TlsSettings::current`];
//! for [`FirstBytes::PlainHttp`], send [`plain_http_refusal`] and close.
//! rustls runs on the `ring` provider, TLS 1.2 and 1.3 only, ALPN `http/1.1`.

mod gate;
mod settings;
mod sniff;
mod stream;

pub use crate::socket::write_all_before;
pub use settings::{TlsError, TlsSettings};
pub use sniff::{FirstBytes, classify, plain_http_refusal, sniff};
pub use stream::TlsStream;
