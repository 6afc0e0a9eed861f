//! A chat: every text message from any session goes to every live session
//! as `USER: TEXT`. A handler of your own, and a `Publisher`.
//!
//!     cargo run --example broadcast -- --listen 127.0.0.1:8000 \
//!         --token alice:s3cret --token bob:hunter2
//!
//! It takes wsauth's own flags and prints the same first line, so scripts
//! can find the port. With `--redis URL` (`cargo run --features redis
//! --example broadcast`) every instance on that Redis is one chat room.

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use wsauth::cli::{self, Command};
use wsauth::{Handler, Publisher, Reply, Server, Sessions, TokenStore};

/// One chat member: what it says goes to everyone, itself included.
struct Member {
    user: String,
    /// Every session the server's publisher reaches: on the bus, those of
    /// every instance.
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
            reply.send(&"(not sent: the bus is down; try again)".into());
        }
    }
}

fn main() -> ExitCode {
    let options = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => *options,
        Ok(_) => {
            println!("usage: broadcast --listen ADDR --token USER:TOKEN ... [--tokens-file PATH]");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("broadcast: {e}");
            return ExitCode::from(2);
        }
    };
    let mut tokens = TokenStore::new(options.tokens);
    if let Some(path) = &options.tokens_file {
        tokens = match tokens.with_file(path) {
            Ok(tokens) => tokens,
            Err(e) => {
                eprintln!("broadcast: {e}");
                return ExitCode::from(1);
            }
        };
    }
    let everyone = Arc::new(OnceLock::new());
    let members = everyone.clone();
    let started = Server::start_with_handler(
        options.listen.as_str(),
        options.config,
        tokens,
        move |info| Member {
            user: info.identity.user.clone(),
            everyone: members.clone(),
            here: info.sessions.clone(),
        },
    );
    match started {
        Ok(server) => {
            let _ = everyone.set(server.publisher());
            println!("wsauth listening on http://{}/", server.local_addr());
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("broadcast: {e}");
            ExitCode::from(1)
        }
    }
}
