//! wsauth: a small, synchronous, thread-per-connection WebSocket server that
//! checks a token *before* the upgrade.
//!
//! A connection flows through one module per step:
//! [`server`] accepts it and gives it a thread → [`http`] reads the request
//! head → [`router`] picks the page, the health check or the upgrade →
//! [`handshake`] runs tungstenite's `accept_hdr` with the admission checks
//! ([`credentials`], [`auth`], [`throttle`]) → `session` greets and echoes.
//! With the feature `jwt`, `jwt::JwtKeys` verifies signed JWTs, and a
//! [`Chain`] puts it in front of the static tokens.
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
pub mod config;
mod connection;
pub mod credentials;
pub mod error;
pub mod handshake;
pub mod http;
#[cfg(feature = "jwt")]
pub mod jwt;
mod pool;
mod registry;
pub mod router;
pub mod server;
mod session;
pub mod throttle;

pub use auth::{Authenticator, Chain, Grant, Identity, TokenStore};
pub use config::Config;
pub use error::Error;
#[cfg(feature = "jwt")]
pub use jwt::JwtKeys;
pub use server::Server;
