//! wsauth: a small, synchronous, thread-per-connection WebSocket server that
//! checks a token *before* the upgrade.
//!
//! A connection flows through one module per step:
//! [`server`] accepts it (keeping to the connection and per-IP limits) and
//! gives it a thread → [`http`] reads the request head (after a
//! [`proxy_protocol`] header, if configured) and [`client_ip`] says who the
//! client is → [`router`] picks the page, the health check, the metrics or the upgrade →
//! [`handshake`] runs tungstenite's `accept_hdr` with the admission checks
//! ([`credentials`], [`auth`], [`throttle`]) → `session` greets and echoes.
//!
//! ```no_run
//! use wsauth::{Config, Grant, Server, TokenStore};
//!
//! let tokens = TokenStore::new(vec![Grant { user: "alice".into(), token: "s3cret".into(), expires: None }]);
//! let server = Server::start("127.0.0.1:8000", Config::default(), tokens)?;
//! println!("try ws://{}/ws with Authorization: Bearer s3cret", server.local_addr());
//! # server.stop();
//! # Ok::<(), wsauth::Error>(())
//! ```

pub mod auth;
pub mod cli;
pub mod client_ip;
pub mod config;
mod connection;
pub mod credentials;
pub mod error;
pub mod exec;
pub mod handler;
pub mod handshake;
pub mod http;
mod link;
pub mod metrics;
mod pending;
mod pool;
pub mod proxy_protocol;
pub mod push;
mod registry;
pub mod router;
pub mod server;
mod session;
mod state;
pub mod throttle;

pub use auth::{Authenticator, Grant, Identity, TokenStore};
pub use config::Config;
pub use error::Error;
pub use handler::{Echo, Handler, Message, Reply, SessionInfo};
pub use link::SendError;
pub use push::{LiveSession, SessionHandle, Sessions};
pub use server::Server;
