//! The server: start it (its shared state, the listener, the flusher, the
//! bus), reload it, and stop it cleanly.

use crate::admit;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::Error;
use crate::flusher::Flusher;
use crate::handler::{Echo, Handler, SessionInfo};
use crate::listener::{Accept, Listener};
use crate::metrics::Metrics;
use crate::pending::Pending;
use crate::publish::Publisher;
use crate::push::Sessions;
use crate::registry::Registry;
use crate::state::{MakeHandler, Shared};
use crate::throttle::Throttle;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::protocol::WebSocketConfig;

/// tungstenite's read buffer per session, filled from the session's inbox
/// (which reads the socket in larger steps): small, since it is zero-filled
/// before every read and stays allocated while the session is idle.
const READ_BUFFER_BYTES: usize = 1024;
/// A session's outbox when `max_outbox_bytes` is not set (or below the
/// largest message): 1 MiB.
const DEFAULT_OUTBOX_BYTES: usize = 1 << 20;

/// How long stopping waits for sessions to end: their close frames, and a
/// handler's cleanup (an `--exec` program gets 2 s, then SIGTERM, then 2 s).
const STOP_GRACE: Duration = Duration::from_millis(4500);
/// Longest timeout honoured; more would overflow `Instant` arithmetic.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// A running server. Dropping it stops it, as [`Server::stop`] does.
///
/// ```no_run
/// use wsauth::{Config, Grant, Server, TokenStore};
/// let tokens = TokenStore::new(vec![Grant { user: "alice".into(), token: "s3cret".into(), expires: None }]);
/// let server = Server::start("127.0.0.1:0", Config::default(), tokens)?;
/// println!("ws://{}/ws", server.local_addr());
/// server.stop();
/// # Ok::<(), wsauth::Error>(())
/// ```
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: Option<Arc<Listener>>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and starts serving on
    /// background threads, with the echo as every session's handler.
    pub fn start(
        addr: impl ToSocketAddrs + std::fmt::Display,
        config: Config,
        auth: impl Authenticator + 'static,
    ) -> Result<Server, Error> {
        let echo = Echo::each_session(Echo::GREETING, Echo::PREFIX);
        Server::start_with_handler(addr, config, auth, echo)
    }

    /// Like [`Server::start`], with a handler of your own, made for each
    /// session by `make_handler` when it opens:
    ///
    /// ```no_run
    /// use wsauth::{Config, Grant, Handler, Reply, Server, TokenStore};
    ///
    /// struct Shout;
    /// impl Handler for Shout {
    ///     fn on_text(&mut self, text: &str, reply: &mut Reply<'_>) {
    ///         let _ = reply.text(text.to_uppercase());
    ///     }
    /// }
    ///
    /// let tokens = TokenStore::new(vec![Grant { user: "alice".into(), token: "s3cret".into(), expires: None }]);
    /// let server = Server::start_with_handler("127.0.0.1:0", Config::default(), tokens, |_info| Shout)?;
    /// # server.stop();
    /// # Ok::<(), wsauth::Error>(())
    /// ```
    pub fn start_with_handler<H: Handler + 'static>(
        addr: impl ToSocketAddrs + std::fmt::Display,
        config: Config,
        auth: impl Authenticator + 'static,
        make_handler: impl Fn(&SessionInfo) -> H + Send + Sync + 'static,
    ) -> Result<Server, Error> {
        let shown = addr.to_string();
        let resolved = addr.to_socket_addrs().map(Vec::from_iter);
        let addrs = resolved.map_err(|source| Error::Bind {
            addr: shown.clone(),
            source,
        })?;
        let make_handler = Box::new(move |info: &SessionInfo| -> Box<dyn Handler> {
            Box::new(make_handler(info))
        });
        Server::start_boxed(&addrs, shown, config, Arc::new(auth), make_handler)
    }

    /// The start itself, the same code whatever the handler and the
    /// authenticator (one copy in the binary, not one per handler type).
    fn start_boxed(
        addrs: &[SocketAddr],
        shown: String,
        mut config: Config,
        auth: Arc<dyn Authenticator>,
        make_handler: Box<MakeHandler>,
    ) -> Result<Server, Error> {
        config.handshake_timeout = config.handshake_timeout.min(MAX_TIMEOUT);
        config.idle_timeout = config.idle_timeout.map(|t| t.min(MAX_TIMEOUT));
        config.write_timeout = config.write_timeout.min(MAX_TIMEOUT);
        let ws_config = ws_config(&config);
        crate::thread_limits::warn_if_below(config.max_connections);
        let pending_cap = config.max_pending_per_ip;
        let config_outbox = config
            .max_outbox_bytes
            .unwrap_or(DEFAULT_OUTBOX_BYTES)
            .max(config.max_message_bytes);
        let shared = Arc::new(Shared {
            throttle: Throttle::new(config.max_auth_failures),
            config,
            auth,
            registry: Arc::new(Registry::default()),
            ws_config,
            make_handler,
            open: AtomicUsize::new(0),
            metrics: Arc::new(Metrics::default()),
            pending: Pending::new(pending_cap),
            stopping: Default::default(),
            flusher: Flusher::new(config_outbox),
            #[cfg(feature = "redis")]
            bus: Default::default(),
        });
        let accept = accept(&shared);
        let listener = Listener::bind(addrs, accept).map_err(|source| Error::Bind {
            addr: shown,
            source,
        })?;
        let server = Server {
            addr: listener.local_addr()?,
            shared,
            listener: Some(listener.clone()),
        };
        // From here an error drops `server`, which stops what was started:
        // a failed start leaves no thread behind and the port free.
        #[cfg(feature = "redis")]
        server.start_bus()?;
        listener.start()?;
        let upkeep = server.shared.clone();
        server.shared.flusher.start(move || upkeep.tick())?;
        Ok(server)
    }

    /// Joins the bus, if one is configured: in the background, so that a
    /// Redis that is down delays nothing; before the first connection, so
    /// that no publication can go around it.
    #[cfg(feature = "redis")]
    fn start_bus(&self) -> std::io::Result<()> {
        let shared = &self.shared;
        if let Some(settings) = &shared.config.bus {
            let bus = crate::bus::Bus::start(
                settings.clone(),
                Sessions::new(shared.registry.clone()),
                shared.metrics.clone(),
                shared.config.max_message_bytes,
            )?;
            let _ = shared.bus.set(bus);
        }
        Ok(())
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Re-reads the tokens now (what `SIGHUP` does) and closes the sessions
    /// whose token is no longer valid; with TLS, re-reads the certificate
    /// and key too, for new connections; re-reads the publish key.
    pub fn reload(&self) {
        if self.shared.auth.refresh(true) {
            self.shared.registry.revalidate(self.shared.auth.as_ref());
        }
        if let Some(key) = &self.shared.config.publish_key {
            key.refresh(true);
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.shared.config.tls {
            tls.refresh(true);
        }
    }

    /// Open connections, HTTP and WebSocket together.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Live WebSocket sessions (those still awaiting a first-message token
    /// included).
    pub fn live_sessions(&self) -> usize {
        self.shared.registry.len()
    }

    /// The live sessions: list them, send to all of them or to one user's.
    /// The value stays usable from any thread.
    pub fn sessions(&self) -> Sessions {
        Sessions::new(self.shared.registry.clone())
    }

    /// Sends to users' sessions as `POST /publish` does: the application's
    /// way to push, cloneable and usable from any thread (see [`Publisher`]).
    ///
    /// ```no_run
    /// # fn order_shipped(server: &wsauth::Server) -> Result<(), wsauth::PublishError> {
    /// let delivered = server.publisher().to_user("alice", "your order shipped")?;
    /// println!("{delivered} of alice's sessions told");
    /// # Ok(())
    /// # }
    /// ```
    pub fn publisher(&self) -> Publisher {
        Publisher::new(self.shared.clone())
    }

    /// Stops accepting, closes every session with 1001 `server shutting
    /// down`, and returns once they have ended (a few seconds at most).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        listener.stop();
        // The background thread: its upkeep and its outboxes (the sessions'
        // last frames are written out by their own threads).
        self.shared.flusher.stop();
        #[cfg(feature = "redis")]
        if let Some(bus) = self.shared.bus.get() {
            bus.stop();
        }
        let deadline = Instant::now() + STOP_GRACE;
        self.shared.registry.close_all(STOP_GRACE);
        // Connections not yet sessions: heads being read are cut off, and an
        // upgrade already answered 101 gets its 1001 when it tries to join.
        // Wait for them, and for every connection thread to end, so that no
        // connection is cut by the process exiting and the port is free.
        self.shared.pending.cut_all();
        while (self.shared.open.load(Ordering::SeqCst) > 0 || listener.threads() > 0)
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(5));
        }
        self.shared.pending.flush_logs(true);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// tungstenite's settings from ours: a small read buffer (filled from the
/// inbox), writes straight through, messages and frames within the limit.
fn ws_config(config: &Config) -> WebSocketConfig {
    let max = config.max_message_bytes;
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(max.saturating_mul(2).saturating_add(READ_BUFFER_BYTES))
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// What each connection thread does with what it accepts: admit it, or at
/// the thread ceiling refuse it.
fn accept(shared: &Arc<Shared>) -> Accept {
    let (serve_shared, refuse_shared) = (shared.clone(), shared.clone());
    let serve = move |stream, peer| admit::connection(stream, peer, &serve_shared);
    let refuse = move |stream, peer| admit::refuse_no_thread(stream, peer, &refuse_shared);
    Accept {
        serve: Box::new(serve),
        refuse: Box::new(refuse),
    }
}
