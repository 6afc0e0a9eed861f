//! The server's settings: one plain struct, every limit a named field.

use crate::client_ip::TrustedProxies;
use crate::publish_key::PublishKey;
use std::sync::Arc;
use std::time::Duration;

/// How a server behaves. Every field has a default, stated in its doc comment;
/// start from `Config::default()` and change what you need:
///
/// ```
/// use std::time::Duration;
/// let mut config = wsauth::Config::default();
/// config.idle_timeout = Some(Duration::from_secs(30));
/// assert_eq!(config.max_connections, 1024);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Open connections (HTTP and WebSocket together) served at once; past
    /// this a client gets 503. Default: 1024.
    pub max_connections: usize,
    /// Largest WebSocket message, and largest single frame, accepted; a larger
    /// one closes the session with 1009. Default: 65536.
    pub max_message_bytes: usize,
    /// Time allowed for the whole request head to arrive, and for the first
    /// message with `first_message_auth`. Default: 10 s.
    pub handshake_timeout: Duration,
    /// Longest a write to a session may take, a push included; a session
    /// that does not take a frame in this time is cut off. Default: 10 s.
    pub write_timeout: Duration,
    /// Bytes that may wait for one session whose socket is full (its
    /// outbox); a session whose outbox would overflow is closed with 1008
    /// `too slow`. Never less than `max_message_bytes`. Default: `None`,
    /// 1 MiB or `max_message_bytes` when that is larger.
    pub max_outbox_bytes: Option<usize>,
    /// A session with no frame from the peer for this long is closed with
    /// 1001; a ping goes out at half of it. `None` disables both. Default: 60 s.
    pub idle_timeout: Option<Duration>,
    /// Also accept upgrades without a token, then require the token as the
    /// first text message. Default: `false`.
    pub first_message_auth: bool,
    /// Browser origins allowed besides the server's own; `"*"` allows all.
    /// Default: none.
    pub allowed_origins: Vec<String>,
    /// Failed authentications allowed per client IP per minute before 429;
    /// 0 disables the limit. Default: 20.
    pub max_auth_failures: usize,
    /// Connections from one IP that are not yet a session; past it a new one
    /// is closed at once, without an answer. 0 disables the cap. Default: 32.
    pub max_pending_per_ip: usize,
    /// Proxies whose `Forwarded` / `X-Forwarded-*` headers (and, with
    /// `proxy_protocol`, PROXY headers) are believed. Default: none.
    pub trusted_proxies: TrustedProxies,
    /// Every connection begins with a PROXY protocol header (v1 or v2), whose
    /// source address is the client. Default: `false`.
    pub proxy_protocol: bool,
    /// Answer `GET /metrics` in the Prometheus text format; without it
    /// `/metrics` is a 404. Default: `false`.
    pub metrics: bool,
    /// Serve `POST /publish` and `POST /disconnect` to backends that present
    /// this key as `Authorization: Bearer KEY`; without it both are a 404.
    /// [`Server::reload`](crate::Server::reload) and a change of the file's
    /// modification time (checked once a second) load a new key. Default: `None`.
    pub publish_key: Option<Arc<PublishKey>>,
    /// Serve https and wss with this certificate and key (feature `tls`):
    /// the port then speaks TLS only. [`Server::reload`](crate::Server::reload)
    /// and a change of either file's modification time (checked once a
    /// second) load a new pair for new connections. Default: `None` (plain
    /// http and ws).
    ///
    /// ```no_run
    /// use std::{path::Path, sync::Arc};
    /// let mut config = wsauth::Config::default();
    /// let tls = wsauth::tls::TlsSettings::load(Path::new("cert.pem"), Path::new("key.pem"))?;
    /// config.tls = Some(Arc::new(tls));
    /// # Ok::<(), wsauth::tls::TlsError>(())
    /// ```
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<crate::tls::TlsSettings>>,
    /// Join this Redis pub/sub bus (feature `redis`): [`Publisher`](crate::Publisher)
    /// and `POST /publish` then reach every instance's sessions. Default: `None`.
    #[cfg(feature = "redis")]
    pub bus: Option<crate::bus::BusSettings>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_connections: 1024,
            max_message_bytes: 65536,
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_outbox_bytes: None,
            idle_timeout: Some(Duration::from_secs(60)),
            first_message_auth: false,
            allowed_origins: Vec::new(),
            max_auth_failures: 20,
            max_pending_per_ip: 32,
            trusted_proxies: TrustedProxies::default(),
            proxy_protocol: false,
            metrics: false,
            publish_key: None,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "redis")]
            bus: None,
        }
    }
}
