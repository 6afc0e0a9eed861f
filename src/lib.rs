//! wsauth: a small, synchronous, thread-per-connection WebSocket server that
//! checks a token *before* the upgrade.
//!
//! A connection flows through one module per step, in `src/`, all on the
//! thread that accepted it:
//!
//! 1. `listener::Listener::connection_thread` accepts it;
//! 2. `admit::connection` applies the per-IP cap and `--max-connections`,
//!    and `admit::run_connection` runs the rest, catching a panic;
//! 3. `connection::read_and_route` reads a `proxy_protocol` header if
//!    configured, the TLS handshake (`tls`) and the head (`http`), asks
//!    `client_ip` who the client is, and routes with `router::route_with`:
//!    the page, the health check, the metrics, the publish API
//!    (`publish::endpoint::answer`), or the upgrade;
//! 4. `handshake::upgrade` runs tungstenite's `accept_hdr` with the
//!    admission checks (`credentials`, [`auth`], `throttle`), a refusal's
//!    answer from `rejection`;
//! 5. `session::run` runs the session's [`Handler`] in `Session::read_loop`
//!    until it closes; every write goes through `link` (and a frame the
//!    socket cannot take at once waits in `outbox`, written out by
//!    `flusher`).
//!
//! With the feature `jwt`, `JwtKeys` verifies signed JWTs, and a
//! [`Chain`] puts it in front of the static tokens. With `redis`, `bus`
//! joins instances.
//!
//! The smallest server, with the echo as its handler:
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
//!
//! Your own logic is a [`Handler`] made per session
//! ([`Server::start_with_handler`]); [`SessionHandle`] and [`Sessions`] send
//! to sessions from any thread; [`Publisher`] pushes to users' sessions
//! as `POST /publish` does; [`exec::Exec`] runs a program per session.
//! With the feature `tls`, `Config::tls` (a `tls::TlsSettings`) makes the
//! same port serve https and wss, every step unchanged over the TLS stream.
#![warn(missing_docs)]
// Only `sys` may use `unsafe`: every OS call std lacks is a safe function there.
#![deny(unsafe_code)]

mod admit;
pub mod auth;
#[cfg(feature = "redis")]
pub mod bus;
mod client_ip;
mod client_key;
mod config;
mod connection;
mod credentials;
mod error;
pub mod exec;
mod flusher;
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
mod handler;
mod handshake;
mod http;
mod inbox;
#[cfg(feature = "jwt")]
pub mod jwt;
mod link;
mod listener;
mod message;
mod metrics;
mod outbox;
mod pending;
mod proxy_protocol;
mod publish;
mod publish_key;
mod push;
mod registry;
mod rejection;
mod router;
mod server;
mod session;
mod socket;
mod state;
#[allow(unsafe_code)]
mod sys;
mod thread_limits;
mod throttle;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;

pub use auth::{Authenticator, Chain, Grant, Identity, TokenStore};
pub use client_ip::TrustedProxies;
pub use config::Config;
pub use error::{Error, PublishError, SendError};
pub use handler::{Echo, Handler, Reply, SessionInfo};
#[cfg(feature = "jwt")]
pub use jwt::JwtKeys;
pub use message::Message;
pub use publish::Publisher;
pub use publish_key::PublishKey;
pub use push::{LiveSession, SessionHandle, Sessions};
pub use server::Server;
pub use sys::raise_open_files_limit;
