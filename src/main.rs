//! The `wsauth` binary: the command line in, a running server out.
#![deny(unsafe_code)]

mod cli;

use cli::{Command, Options};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::Write;
use std::process::ExitCode;
use wsauth::exec::Exec;
use wsauth::{Echo, Grant, PublishKey, Server, TokenStore, auth};

fn main() -> ExitCode {
    match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("wsauth {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Command::Run(options)) => match run(*options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("wsauth: {message}");
                ExitCode::from(1)
            }
        },
        Err(usage) => {
            eprintln!("wsauth: {usage}{}", usage.hint());
            ExitCode::from(2)
        }
    }
}

fn run(mut options: Options) -> Result<(), String> {
    init_logging(options.log_level);
    std::panic::set_hook(Box::new(|info| log::error!("{info}")));
    wsauth::raise_open_files_limit();

    let (store, demo_token) = token_store(&mut options)?;
    let auth = options.authenticator(store)?;
    if let Some(path) = &options.publish_key_file {
        let key = PublishKey::load(path).map_err(|e| e.to_string())?;
        options.config.publish_key = Some(std::sync::Arc::new(key));
    }
    let scheme = options.use_tls()?;
    // Registered before serving, so no signal can arrive unhandled.
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(|e| e.to_string())?;
    let listen = options.listen.as_str();
    let server = match options.exec {
        Some(command) => {
            let exec = Exec::new(command, options.config.max_message_bytes);
            Server::start_with_handler(listen, options.config, auth, move |info| exec.start(info))
        }
        None => {
            let echo = Echo::each_session(&options.greeting, &options.echo_prefix);
            Server::start_with_handler(listen, options.config, auth, echo)
        }
    }
    .map_err(|e| e.to_string())?;

    let addr = server.local_addr();
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "wsauth listening on {scheme}://{addr}/");
    if let Some(token) = demo_token {
        let _ = writeln!(stdout, "open {scheme}://{addr}/#token={token} in a browser");
    }
    let _ = stdout.flush();

    serve_until_stopped(&server, &mut signals);
    server.stop();
    Ok(())
}

/// The tokens from the flags and `--tokens-file`; with none and no JWT
/// keys, a random demo token, returned to be shown.
fn token_store(options: &mut Options) -> Result<(TokenStore, Option<String>), String> {
    let mut demo_token = None;
    let mut tokens = std::mem::take(&mut options.tokens);
    if tokens.is_empty() && options.tokens_file.is_none() && !options.has_jwt_keys() {
        let token = auth::random_token().map_err(|e| e.to_string())?;
        tokens.push(Grant {
            user: "demo".into(),
            token: token.clone(),
            expires: None,
        });
        demo_token = Some(token);
    }
    let mut store = TokenStore::new(tokens);
    if let Some(path) = &options.tokens_file {
        store = store.with_file(path).map_err(|e| e.to_string())?;
    }
    Ok((store, demo_token))
}

/// Reloads on SIGHUP; returns on SIGINT or SIGTERM.
fn serve_until_stopped(server: &Server, signals: &mut Signals) {
    for signal in signals.forever() {
        if signal == SIGHUP {
            log::info!("SIGHUP: reloading tokens, certificate and publish key");
            server.reload();
        } else {
            log::info!("shutting down");
            break;
        }
    }
}

/// `--log-level`, else `RUST_LOG`, else info; tungstenite is held to debug,
/// since at trace it prints every message (a first-message token included).
fn init_logging(level: Option<log::LevelFilter>) {
    let mut logger = simple_logger::SimpleLogger::new()
        .with_level(log::LevelFilter::Info)
        .env();
    if let Some(level) = level {
        logger = logger.with_level(level);
    }
    let level = logger.max_level();
    let _ = logger
        .with_module_level("tungstenite", level.min(log::LevelFilter::Debug))
        .init();
}
