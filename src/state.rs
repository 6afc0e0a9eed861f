//! What every step of a connection shares: the settings, the authenticator,
//! the failure throttle, the live sessions and the session handler.

use crate::auth::Authenticator;
use crate::config::Config;
use crate::flusher::Flusher;
use crate::handler::{Handler, SessionInfo};
use crate::link::Link;
use crate::metrics::Metrics;
use crate::pending::Pending;
use crate::registry::Registry;
use crate::throttle::Throttle;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use tungstenite::protocol::WebSocketConfig;

/// Makes the handler of each new session.
pub type MakeHandler = dyn Fn(&SessionInfo) -> Box<dyn Handler> + Send + Sync;

/// Shared by the listener, the connection threads and the session threads.
pub struct Shared {
    pub config: Config,
    pub auth: Arc<dyn Authenticator>,
    pub throttle: Throttle,
    pub registry: Arc<Registry>,
    pub ws_config: WebSocketConfig,
    pub make_handler: Box<MakeHandler>,
    /// Open connections, HTTP and WebSocket together.
    pub open: AtomicUsize,
    /// The counters behind `GET /metrics`, kept whether or not it is served.
    pub metrics: Arc<Metrics>,
    /// The connections not yet a session.
    pub pending: Pending,
    /// Set when the server begins to stop: publications are refused.
    pub stopping: AtomicBool,
    /// Writes sessions' outboxes out as their sockets drain.
    pub flusher: Arc<Flusher<Link>>,
    /// The bus across instances, once started (feature `redis`).
    #[cfg(feature = "redis")]
    pub(crate) bus: std::sync::OnceLock<Arc<crate::bus::Bus>>,
}

impl Shared {
    /// Once a second: notice a changed tokens file (and certificate, and
    /// publish key), wake
    /// sessions whose token has expired, write the pending connections' log
    /// summaries. (Old auth failures need no pruning: the throttle's table
    /// has a fixed size, and a new client takes the stalest place.)
    pub fn tick(&self) {
        if self.auth.refresh(false) {
            self.registry.revalidate(self.auth.as_ref());
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.config.tls {
            tls.refresh(false);
        }
        if let Some(key) = &self.config.publish_key {
            key.refresh(false);
        }
        self.registry.wake_expired();
        self.pending.flush_logs(false);
    }
}
