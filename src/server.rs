//! The listener: accept connections, give each its own thread, keep to the
//! connection limit, and stop cleanly.

use crate::auth::Authenticator;
use crate::config::Config;
use crate::connection;
use crate::error::Error;
use crate::handler::{Echo, Handler, SessionInfo};
use crate::handshake::{Admission, Upgraded};
use crate::http::Answer;
use crate::metrics::{Metrics, RejectionReason};
use crate::pending::{Pending, Ticket};
use crate::pool::{Pool, spawn_worker, worker};
use crate::push::Sessions;
use crate::registry::Registry;
use crate::session;
use crate::state::Shared;
use crate::throttle::Throttle;
use std::io::{Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs,
};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tungstenite::protocol::WebSocketConfig;

/// tungstenite's read buffer per session; messages larger than it are read in
/// several steps (its default, 128 KiB, is zero-filled before every read).
const READ_BUFFER_BYTES: usize = 4096;
/// How long stopping waits for sessions to end: their close frames, and a
/// handler's cleanup (an `--exec` program gets 2 s, then SIGTERM, then 2 s).
const STOP_GRACE: Duration = Duration::from_millis(4500);
/// Longest timeout honoured; more would overflow `Instant` arithmetic.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// The threads kept for reuse: connection threads (head, handshake) and
/// session threads.
#[derive(Default)]
struct Pools {
    connections: Pool<(Arc<TcpStream>, Slot)>,
    sessions: Pool<(Upgraded, Slot)>,
}

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
    pools: Arc<Pools>,
    accept_thread: Option<JoinHandle<()>>,
    tick_thread: Option<JoinHandle<()>>,
    stop_ticking: Option<mpsc::Sender<()>>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and starts serving on
    /// background threads, with the echo as every session's handler.
    pub fn start(
        addr: impl ToSocketAddrs + std::fmt::Display,
        config: Config,
        auth: impl Authenticator + 'static,
    ) -> Result<Server, Error> {
        let greeting = config.greeting.clone();
        let prefix: Arc<str> = config.echo_prefix.as_str().into();
        Server::start_with_handler(addr, config, auth, move |info| {
            Echo::new(&info.identity.user, &greeting, prefix.clone())
        })
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
    ///         reply.text(text.to_uppercase());
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
        mut config: Config,
        auth: impl Authenticator + 'static,
        make_handler: impl Fn(&SessionInfo) -> H + Send + Sync + 'static,
    ) -> Result<Server, Error> {
        config.handshake_timeout = config.handshake_timeout.min(MAX_TIMEOUT);
        config.idle_timeout = config.idle_timeout.map(|t| t.min(MAX_TIMEOUT));
        config.write_timeout = config.write_timeout.min(MAX_TIMEOUT);
        let listener = TcpListener::bind(&addr).map_err(|source| Error::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let local = listener.local_addr()?;
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(0)
            .max_write_buffer_size(
                config
                    .max_message_bytes
                    .saturating_mul(2)
                    .saturating_add(READ_BUFFER_BYTES),
            )
            .max_message_size(Some(config.max_message_bytes))
            .max_frame_size(Some(config.max_message_bytes));
        let pending_cap = config.max_pending_per_ip;
        let shared = Arc::new(Shared {
            throttle: Throttle::new(config.max_auth_failures),
            config,
            auth: Arc::new(auth),
            registry: Arc::new(Registry::default()),
            ws_config,
            make_handler: Box::new(move |info| Box::new(make_handler(info))),
            open: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            metrics: Arc::new(Metrics::default()),
            pending: Pending::new(pending_cap),
        });
        let pools = Arc::new(Pools::default());
        let (accept_shared, accept_pools) = (shared.clone(), pools.clone());
        let accept_thread = thread::Builder::new()
            .name("wsauth-accept".into())
            .spawn(move || accept_loop(listener, accept_shared, accept_pools))?;
        let (stop_ticking, ticks) = mpsc::channel();
        let tick_shared = shared.clone();
        let tick_thread = thread::Builder::new()
            .name("wsauth-tick".into())
            .spawn(move || tick_loop(&tick_shared, ticks))?;
        Ok(Server {
            addr: local,
            shared,
            pools,
            accept_thread: Some(accept_thread),
            tick_thread: Some(tick_thread),
            stop_ticking: Some(stop_ticking),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Re-reads the tokens now (what `SIGHUP` does) and closes the sessions
    /// whose token is no longer valid; with TLS, re-reads the certificate
    /// and key too, for new connections.
    pub fn reload(&self) {
        if self.shared.auth.refresh(true) {
            self.shared.registry.revalidate(self.shared.auth.as_ref());
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

    /// Stops accepting, closes every session with 1001 `server shutting
    /// down`, and returns once they have ended (a few seconds at most).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(accept_thread) = self.accept_thread.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.pools.connections.release();
        self.pools.sessions.release();
        // Wake the blocked accept() with a connection of our own.
        if TcpStream::connect_timeout(&reachable(self.addr), Duration::from_secs(1)).is_ok() {
            let _ = accept_thread.join();
        }
        self.stop_ticking.take();
        if let Some(tick_thread) = self.tick_thread.take() {
            let _ = tick_thread.join();
        }
        let deadline = Instant::now() + STOP_GRACE;
        self.shared.registry.close_all(STOP_GRACE);
        // Connections not yet sessions: heads being read are cut off, and an
        // upgrade already answered 101 gets its 1001 when it tries to join.
        // Wait for them, so that none is cut by the process exiting.
        self.shared.pending.cut_all();
        while self.shared.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
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

/// The address to connect to in order to reach a listener bound to `addr`.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, pools: Arc<Pools>) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, usually: back off instead of spinning.
                log::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        // Past its IP's cap: closed at once, before it costs a thread or a read.
        let stream = Arc::new(stream);
        let Some(ticket) = take_pending(&shared, &stream, peer.ip()) else {
            continue;
        };
        let max = shared.config.max_connections;
        let open = shared.open.fetch_add(1, Ordering::SeqCst);
        if open >= max {
            // Full: the oldest connection not yet a session makes room; only
            // when every connection is a session does the newcomer get 503.
            // A closed one gives its place back when its thread has seen the
            // close: until then at most `max` more are let in.
            if open < max.saturating_mul(2) && shared.pending.close_oldest(ticket) {
                shared.metrics.rejected(RejectionReason::Evicted);
            } else {
                shared.open.fetch_sub(1, Ordering::SeqCst);
                shared.pending.remove(ticket);
                shared.metrics.rejected(RejectionReason::Busy);
                refuse_busy(&stream, &shared);
                continue;
            }
        }
        shared.metrics.connection_accepted();
        let slot = Slot(shared.clone(), pools.clone(), Some(ticket));
        let job = (stream, slot);
        // A thread that finished its last connection takes it; else a new one.
        if let Some(job) = pools.connections.offer(job) {
            let (worker_shared, worker_pools) = (shared.clone(), pools.clone());
            spawn_worker("wsauth-conn", move || {
                worker(
                    job,
                    &worker_pools.connections,
                    &worker_shared.stopping,
                    serve_guarded,
                )
            });
        }
    }
}

/// Hands an upgraded connection to a session thread: a waiting one, else a
/// new one. Sessions run on threads of their own, apart from the threads that
/// read heads and run handshakes, whose deeper stacks would otherwise stay
/// resident for the whole life of every idle session.
fn start_session(job: (Upgraded, Slot)) {
    let (shared, pools) = (job.1.0.clone(), job.1.1.clone());
    if let Some(job) = pools.sessions.offer(job) {
        spawn_worker("wsauth-session", move || {
            worker(job, &pools.sessions, &shared.stopping, run_session_guarded)
        });
    }
}

/// Registers a new connection as pending, counted against its IP's
/// `--max-pending-per-ip` (not a trusted proxy's, and with `--proxy-protocol`
/// only once the header names the client); `None` when past the cap.
fn take_pending(shared: &Shared, stream: &Arc<TcpStream>, peer: IpAddr) -> Option<Ticket> {
    let ip = peer.to_canonical();
    let counted = Some(ip)
        .filter(|ip| !shared.config.proxy_protocol && !shared.config.trusted_proxies.contains(*ip));
    // The list shares the socket, to close the connection by.
    match shared.pending.add(counted, Some(stream.clone())) {
        Ok(ticket) => Some(ticket),
        Err(_) => {
            shared.metrics.rejected(RejectionReason::PendingPerIp);
            if let Some(ip) = counted {
                shared.pending.note_refusal(ip);
            }
            None
        }
    }
}

/// Holds one of the `max_connections` places, and while the connection is
/// not yet a session its pending ticket; gives both back when dropped, even
/// if the connection's thread panics.
struct Slot(Arc<Shared>, Arc<Pools>, Option<Ticket>);

impl Slot {
    /// The connection is a session now (or over): no longer pending.
    fn settle(&mut self) {
        if let Some(ticket) = self.2.take() {
            self.0.pending.remove(ticket);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.settle();
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.metrics.connection_closed();
    }
}

fn serve_guarded((stream, mut slot): (Arc<TcpStream>, Slot)) {
    let peer = stream.peer_addr().ok();
    let served = catch_unwind(AssertUnwindSafe(|| {
        connection::serve(stream, &slot.0, slot.2)
    }));
    match served {
        Ok(Some(upgraded)) => {
            // Authenticated by the upgrade itself: a session from here on.
            if matches!(upgraded.admission, Admission::Authenticated { .. }) {
                slot.settle();
            }
            start_session((upgraded, slot))
        }
        Ok(None) => {}
        Err(panic) => log_panic(peer, panic.as_ref()),
    }
}

fn run_session_guarded((upgraded, mut slot): (Upgraded, Slot)) {
    let peer = Some(upgraded.link.peer());
    let shared = slot.0.clone();
    let run = || session::run(upgraded, &shared, || slot.settle());
    if let Err(panic) = catch_unwind(AssertUnwindSafe(run)) {
        log_panic(peer, panic.as_ref());
    }
}

fn log_panic(peer: Option<SocketAddr>, panic: &(dyn std::any::Any + Send)) {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    let peer = peer.map(|p| p.to_string()).unwrap_or_default();
    log::error!("{peer}: connection thread panicked: {what}");
}

/// Answers 503 on the accept thread itself: a short write that fits the
/// socket buffer, and no waiting for the client. A TLS client is only
/// closed: a plain-text answer means nothing to it, and a TLS handshake
/// here would hold up the accept thread.
fn refuse_busy(mut stream: &TcpStream, shared: &Shared) {
    log::info!(
        "{}: rejected: too many connections",
        stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    #[cfg(feature = "tls")]
    if shared.config.tls.is_some() {
        return;
    }
    #[cfg(not(feature = "tls"))]
    let _ = shared;
    let answer =
        Answer::text(503, "server busy; try again later\n").with_header("Retry-After", "1");
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.write_all(&answer.to_bytes());
    let _ = stream.shutdown(Shutdown::Write);
    // Drain what already arrived, so closing does not reset the connection.
    if stream.set_nonblocking(true).is_ok() {
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    }
}

/// Once a second, the shared state's upkeep (see [`Shared::tick`]).
fn tick_loop(shared: &Shared, stop: mpsc::Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(Duration::from_secs(1)) {
        shared.tick();
    }
}
