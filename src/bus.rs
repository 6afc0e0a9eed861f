//! The bus across instances (feature `redis`): every instance subscribes to
//! one Redis pub/sub, so that a message published anywhere reaches the
//! user's sessions everywhere. Channels, with the prefix `P`: `P:all`,
//! `P:user:NAME`, `P:disconnect:NAME`, and `P:bin:all`, `P:bin:user:NAME`
//! for binary messages that must stay binary.
//!
//! Delivery is at most once, as with Redis pub/sub everywhere; what wsauth
//! adds is that it never claims what it cannot send. A publication goes to
//! Redis only while this instance's own subscription is up, and counts as
//! taken only when Redis has handed it to at least one subscriber (this
//! instance's own among them): otherwise the caller gets
//! [`PublishError::BusDown`] and `POST /publish` a 503. The subscription
//! lives on a thread of its own (`subscriber`), which notices a lost or
//! silently dead connection within 3 s and subscribes again by itself.

use crate::error::PublishError;
use crate::message::Message;
use crate::metrics::Metrics;
use crate::push::Sessions;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

mod subscriber;

/// How long a connection to Redis may take, its handshake included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a `PUBLISH` may wait for Redis's answer.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the bus is (`--redis URL`) and its channel prefix (`--redis-prefix`).
///
/// ```no_run
/// let mut config = wsauth::Config::default();
/// config.bus = Some(wsauth::bus::BusSettings::new("redis://127.0.0.1:6379/0", "wsauth")?);
/// # Ok::<(), wsauth::bus::BusError>(())
/// ```
#[derive(Clone)]
pub struct BusSettings {
    client: redis::Client,
    prefix: String,
    /// The URL as logs show it: no user, no password.
    shown: String,
}

impl fmt::Debug for BusSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusSettings")
            .field("url", &self.shown)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Why a Redis URL or prefix cannot be used. Its message never repeats the
/// URL, which may hold a password.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusError {
    /// Not `redis://[USER:PASSWORD@]HOST[:PORT][/DB]` or `rediss://…`.
    Url,
    /// `rediss://` in a build without the feature `tls`.
    TlsMissing,
    /// A prefix that is empty or holds a `:` or a pattern character.
    Prefix,
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BusError::Url => "not a Redis URL (redis://[USER:PASSWORD@]HOST[:PORT][/DB])",
            BusError::TlsMissing => "rediss:// needs a build with the features redis and tls",
            BusError::Prefix => "a prefix must be non-empty, without ':', '*', '?', '[' or '\\'",
        })
    }
}

impl std::error::Error for BusError {}

impl BusSettings {
    /// Parses `url` (nothing is connected yet) and checks `prefix`.
    pub fn new(url: &str, prefix: &str) -> Result<BusSettings, BusError> {
        let tls = url.starts_with("rediss://");
        if tls && !cfg!(feature = "tls") {
            return Err(BusError::TlsMissing);
        }
        if !tls && !url.starts_with("redis://") {
            return Err(BusError::Url);
        }
        let client = redis::Client::open(url).map_err(|_| BusError::Url)?;
        if prefix.is_empty() || prefix.contains([':', '*', '?', '[', ']', '\\']) {
            return Err(BusError::Prefix);
        }
        let info = client.get_connection_info();
        let (host, port) = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
            redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port),
            _ => return Err(BusError::Url),
        };
        let settings = info.redis_settings();
        let hidden = settings.username().is_some() || settings.password().is_some();
        let shown = format!(
            "{}://{}{host}:{port}/{}",
            if tls { "rediss" } else { "redis" },
            if hidden { "***@" } else { "" },
            settings.db()
        );
        Ok(BusSettings {
            client,
            prefix: prefix.to_string(),
            shown,
        })
    }

    /// The URL as logs show it: `redis://***@HOST:PORT/DB`.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The channel prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// What a publication asks of every instance.
pub(crate) enum Publication<'a> {
    ToUser(&'a str, &'a Message),
    ToAll(&'a Message),
    Disconnect(&'a str),
}

/// A running bus: the subscription thread and the connection that publishes.
pub(crate) struct Bus {
    settings: BusSettings,
    metrics: Arc<Metrics>,
    /// Whether the subscription is up now.
    connected: AtomicBool,
    /// The connection `PUBLISH` goes over, made when first needed and after
    /// a failure.
    publisher: Mutex<Option<redis::Connection>>,
    stopping: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Bus {
    /// Starts the subscription thread, which connects in the background:
    /// a Redis that is down at start delays nothing.
    pub fn start(
        settings: BusSettings,
        sessions: Sessions,
        metrics: Arc<Metrics>,
        max_message_bytes: usize,
    ) -> std::io::Result<Arc<Bus>> {
        metrics.bus_configured();
        let bus = Arc::new(Bus {
            settings,
            metrics,
            connected: AtomicBool::new(false),
            publisher: Mutex::new(None),
            stopping: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let running = bus.clone();
        let thread = std::thread::Builder::new()
            .name("wsauth-bus".into())
            .stack_size(256 * 1024)
            .spawn(move || subscriber::run(&running, &sessions, max_message_bytes))?;
        *lock(&bus.thread) = Some(thread);
        Ok(bus)
    }

    /// Stops the subscription thread (within a second) and waits for it.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
        *lock(&self.publisher) = None;
    }

    /// Publishes to every instance; returns how many subscribers Redis
    /// handed it to. Refused, with nothing sent, while this instance's own
    /// subscription is down; refused too if Redis handed it to no one
    /// (then not even this instance's subscription is there any more).
    pub fn publish(&self, publication: Publication<'_>) -> Result<usize, PublishError> {
        let result = self.try_publish(publication);
        if result.is_err() {
            self.metrics.bus_publish_failed();
        }
        result
    }

    fn try_publish(&self, publication: Publication<'_>) -> Result<usize, PublishError> {
        if !self.connected.load(Ordering::SeqCst) {
            return Err(PublishError::BusDown);
        }
        let prefix = &self.settings.prefix;
        let (channel, payload): (String, &[u8]) = match publication {
            Publication::ToAll(Message::Text(text)) => (format!("{prefix}:all"), text.as_bytes()),
            Publication::ToAll(Message::Binary(data)) => (format!("{prefix}:bin:all"), data),
            Publication::ToUser(user, Message::Text(text)) => {
                (format!("{prefix}:user:{user}"), text.as_bytes())
            }
            Publication::ToUser(user, Message::Binary(data)) => {
                (format!("{prefix}:bin:user:{user}"), data)
            }
            Publication::Disconnect(user) => (format!("{prefix}:disconnect:{user}"), &[]),
        };
        match self.send(&channel, payload) {
            Ok(receivers) if receivers > 0 => Ok(receivers as usize),
            Ok(_) => Err(PublishError::BusDown),
            Err(e) => {
                log::debug!("bus: PUBLISH on {}: {e}", self.settings.shown);
                Err(PublishError::BusDown)
            }
        }
    }

    /// `PUBLISH channel payload` on the publishing connection (made anew if
    /// there is none); how many subscribers Redis handed it to.
    fn send(&self, channel: &str, payload: &[u8]) -> redis::RedisResult<i64> {
        let mut publisher = lock(&self.publisher);
        let connection = match publisher.take() {
            Some(connection) => publisher.insert(connection),
            None => publisher.insert(self.connect(PUBLISH_TIMEOUT)?),
        };
        let sent = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query::<i64>(connection);
        if sent.is_err() {
            *publisher = None;
        }
        sent
    }

    /// A new connection with `timeout` on its reads and writes.
    fn connect(&self, timeout: Duration) -> redis::RedisResult<redis::Connection> {
        let connection = self
            .settings
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)?;
        connection.set_read_timeout(Some(timeout))?;
        connection.set_write_timeout(Some(timeout))?;
        Ok(connection)
    }

    /// Marks the subscription up or down, for publishers and the gauge.
    fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::SeqCst);
        self.metrics.bus_connected(up);
        if !up {
            // The publishing connection likely went with it: start afresh.
            *lock(&self.publisher) = None;
        }
    }
}

/// A lock that a panic elsewhere does not poison for the rest.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
