//! A chat: every text message from any session goes to every live session
//! as `USER: TEXT`. A handler of your own, and a `Publisher`.
//!
//!     cargo run --example broadcast -- --listen 127.0.0.1:8000 \
//!         --token alice:s3cret --token bob:hunter2
//!
//! It prints wsauth's first line, so scripts can find the port. With
//! `--redis URL` (`cargo run --features redis --example broadcast`) every
//! instance on that Redis is one chat room.

use std::sync::{Arc, OnceLock};
use wsauth::{Config, Grant, Handler, Publisher, Reply, Server, Sessions, TokenStore};

/// One chat member: what it says goes to everyone, itself included.
struct Member {
    user: String,
    /// Every session the publisher reaches (on the bus, every instance's).
    everyone: Arc<OnceLock<Publisher>>,
    /// This server's own sessions, until the publisher is there.
    here: Sessions,
}

impl Handler for Member {
    fn on_text(&mut self, text: &str, reply: &mut Reply<'_>) {
        let line = format!("{}: {text}", self.user);
        let sent = match self.everyone.get() {
            Some(everyone) => everyone.to_all(line).is_ok(),
            None => self.here.broadcast(line) > 0,
        };
        if !sent {
            let _ = reply.text("(not sent: the bus is down; try again)");
        }
    }
}

/// The chat's flags: `--listen ADDR`, `--token USER:TOKEN` (repeatable),
/// `--metrics`, and with the feature `redis`, `--redis URL`.
fn options(mut args: impl Iterator<Item = String>) -> Result<(String, Config, TokenStore), String> {
    let (mut listen, mut config, mut grants) =
        ("127.0.0.1:8000".to_string(), Config::default(), vec![]);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--token" => {
                let pair = value()?;
                let (user, token) = pair.split_once(':').ok_or("--token USER:TOKEN")?;
                grants.push(Grant {
                    user: user.into(),
                    token: token.into(),
                    expires: None,
                });
            }
            "--metrics" => config.metrics = true,
            #[cfg(feature = "redis")]
            "--redis" => {
                let bus = wsauth::bus::BusSettings::new(&value()?, "wsauth");
                config.bus = Some(bus.map_err(|e| e.to_string())?);
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok((listen, config, TokenStore::new(grants)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (listen, config, tokens) = options(std::env::args().skip(1))?;
    let everyone = Arc::new(OnceLock::new());
    let members = everyone.clone();
    let server = Server::start_with_handler(listen.as_str(), config, tokens, move |info| Member {
        user: info.identity.user.clone(),
        everyone: members.clone(),
        here: info.sessions.clone(),
    })?;
    let _ = everyone.set(server.publisher());
    println!("wsauth listening on http://{}/", server.local_addr());
    loop {
        std::thread::park();
    }
}
