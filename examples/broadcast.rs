//! A chat: every text message from any session goes to every live session
//! as `USER: TEXT`. A handler of your own, and broadcast.
//!
//!     cargo run --example broadcast -- --listen 127.0.0.1:8000 \
//!         --token alice:s3cret --token bob:hunter2
//!
//! It takes wsauth's own `--listen`, `--token` and `--tokens-file` flags and
//! prints the same first line, so scripts can find the port.

use std::process::ExitCode;
use wsauth::cli::{self, Command};
use wsauth::{Handler, Reply, Server, Sessions, TokenStore};

/// One chat member: what it says goes to everyone, itself included.
struct Member {
    user: String,
    everyone: Sessions,
}

impl Handler for Member {
    fn on_text(&mut self, text: &str, _reply: &mut Reply<'_>) {
        self.everyone.broadcast(format!("{}: {text}", self.user));
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
    let started = Server::start_with_handler(
        options.listen.as_str(),
        options.config,
        tokens,
        |info| Member {
            user: info.identity.user.clone(),
            everyone: info.sessions.clone(),
        },
    );
    match started {
        Ok(server) => {
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
