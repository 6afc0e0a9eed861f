//! The command line, turned into a [`Config`] and the token sources.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use wsauth::Config;
use wsauth::auth::{Grant, is_valid_token};

#[cfg(feature = "jwt")]
mod jwt;
#[cfg(feature = "jwt")]
pub use jwt::JwtOptions;

/// The `--help` text; `$jwt` is the JWT part, empty in a build without it.
macro_rules! usage {
    ($jwt:expr) => {
        concat!(
            "\
wsauth: a WebSocket server that checks a token before the upgrade, then echoes
(or runs a program per session with --exec)

usage: wsauth [OPTIONS]

  --listen ADDR               address to bind; port 0 picks a free one [127.0.0.1:8000]
  --token [USER:]TOKEN        accept TOKEN for USER (default user `user`); repeatable
  --tokens-file PATH          one USER:TOKEN[:EXPIRES] a line; re-read on SIGHUP and on change
  --allow-origin ORIGIN       a browser origin allowed besides the server's own; `*` all; repeatable
  --max-connections N         connections served at once [1024]
  --max-message-bytes N       largest message or frame accepted [65536]
  --max-outbox-bytes N        bytes that may wait for one slow session [1 MiB]
  --handshake-timeout SECS    time allowed for the request head [10]
  --idle-timeout SECS         close a silent session after this; ping at half; 0 disables [60]
  --echo-prefix TEXT          prepended to echoed text [\"Message text was: \"]
  --greeting TEXT             sent after the upgrade, {user} replaced; empty sends none [\"Hello {user}\"]
  --exec COMMAND              run `/bin/sh -c COMMAND` per session instead of the echo:
                              text messages to its stdin, its stdout lines back
  --first-message-auth        also accept upgrades without a token; the first message must be it
  --max-auth-failures N       failed authentications per IP per minute before 429; 0 disables [20]
  --max-pending-per-ip N      connections from one IP not yet a session; past it, closed; 0 disables [32]
  --trusted-proxy ADDR        an IP or CIDR whose Forwarded / X-Forwarded-* (and PROXY
                              header) are believed; repeatable
  --proxy-protocol            every connection begins with a PROXY v1/v2 header naming the client
  --metrics                   serve GET /metrics (Prometheus text format); else it is a 404
  --publish-key-file PATH     serve POST /publish and /disconnect to holders of this key
                              (at least 32 bytes); re-read on SIGHUP and on change
  --log-level LEVEL           error, warn, info, debug or trace [info, or RUST_LOG]
  --tls-cert PATH             serve https and wss (a build with the feature tls): PEM certificate chain
  --tls-key PATH              and its PEM private key; both or neither; re-read on SIGHUP and on change
  --redis URL                 join a Redis bus (feature redis): redis[s]://[USER:PASS@]HOST[:PORT][/DB]
  --redis-prefix P            its channel prefix [wsauth]
  --help, --version
",
            $jwt,
            "
With neither --token nor --tokens-file, a random token is made for user `demo`.
"
        )
    };
}

/// `--redis URL` and `--redis-prefix P` into the config. The URL may hold
/// a password: no error repeats it.
#[cfg(feature = "redis")]
fn bus_flags(
    config: &mut Config,
    url: Option<String>,
    prefix: Option<String>,
) -> Result<(), UsageError> {
    match (url, prefix) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(UsageError("--redis-prefix needs --redis".into())),
        (Some(url), prefix) => {
            let prefix = prefix.as_deref().unwrap_or("wsauth");
            let settings = wsauth::bus::BusSettings::new(&url, prefix).map_err(|e| match e {
                wsauth::bus::BusError::Prefix => UsageError(format!("--redis-prefix: {e}")),
                _ => UsageError(format!("--redis: {e}")),
            })?;
            config.bus = Some(settings);
            Ok(())
        }
    }
}

/// Without the feature the flags never get here.
#[cfg(not(feature = "redis"))]
fn bus_flags(_: &mut Config, _: Option<String>, _: Option<String>) -> Result<(), UsageError> {
    Ok(())
}

/// The `--help` text.
#[cfg(not(feature = "jwt"))]
pub const USAGE: &str = usage!("");

/// The `--help` text.
#[cfg(feature = "jwt")]
pub const USAGE: &str = usage!(
    "
JWT (tokens of the form xxx.yyy.zzz are JWTs; every other token is looked up as above):
  --jwt-secret-file PATH      HMAC secret for HS256/384/512, at least 32 bytes; repeatable
  --jwt-public-key PATH       PEM public key: RSA (RS*, PS*), EC P-256/P-384 (ES*), Ed25519; repeatable
  --jwt-jwks PATH             JWKS document; its keys are chosen by the token's kid; repeatable
  --jwt-issuer ISS            iss must equal ISS
  --jwt-audience AUD          aud must contain AUD; repeatable, any one suffices
  --jwt-user-claim NAME       the claim that names the user [sub]
  --jwt-leeway SECS           allowed clock skew for exp and nbf [30]
  Key files are re-read on SIGHUP and on change. With a key, no random token is made.
"
);

/// The flags of the feature `jwt`: in a build without it, each is refused.
const JWT_FLAGS: [&str; 7] = [
    "--jwt-secret-file",
    "--jwt-public-key",
    "--jwt-jwks",
    "--jwt-issuer",
    "--jwt-audience",
    "--jwt-user-claim",
    "--jwt-leeway",
];

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Serve with these options.
    Run(Box<Options>),
    /// Print the usage text.
    Help,
    /// Print the version.
    Version,
}

/// Everything needed to start the server.
#[derive(Debug)]
pub struct Options {
    /// The address to bind.
    pub listen: String,
    /// Tokens from `--token`.
    pub tokens: Vec<Grant>,
    /// The `--tokens-file`, if any.
    pub tokens_file: Option<PathBuf>,
    /// The `--log-level`, if given.
    pub log_level: Option<log::LevelFilter>,
    /// The `--publish-key-file`, if any.
    pub publish_key_file: Option<PathBuf>,
    /// The `--exec` command, if given: it replaces the echo.
    pub exec: Option<String>,
    /// `--tls-cert` and `--tls-key`: the certificate chain and its key (only
    /// ever both, and only in a build with the feature `tls`).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The server settings.
    pub config: Config,
    /// The `--jwt-*` flags.
    #[cfg(feature = "jwt")]
    pub jwt: JwtOptions,
}

/// A command line that cannot be used. Its text names a flag, or a stray
/// argument by its position, and never shows a value given on the command
/// line: any of them may be a token (`--token alice s3cret`).
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the message for a flag of a feature the build lacks goes on.
const FEATURE_MISSING: &str = " needs a build with the feature ";

impl UsageError {
    /// `flag` belongs to a feature this build lacks.
    pub fn missing_feature(flag: &str, feature: &str) -> UsageError {
        UsageError(format!("{flag}{FEATURE_MISSING}{feature}"))
    }

    /// An argument that is no flag of this build: a flag's name (`--bogus`)
    /// is shown, anything else only by its position (counting from 1).
    fn not_a_flag(arg: &str, position: usize) -> UsageError {
        let is_flag_name = arg.strip_prefix("--").is_some_and(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        if is_flag_name {
            UsageError(format!("unknown flag `{arg}`"))
        } else {
            UsageError(format!("argument {position} is not a flag"))
        }
    }

    /// What follows the message on stderr: a pointer to `--help`, except
    /// when a feature is missing, which `--help` cannot fix.
    pub fn hint(&self) -> &'static str {
        if self.0.contains(FEATURE_MISSING) {
            ""
        } else {
            " (see --help)"
        }
    }
}

/// Parses the arguments (without the program name). Values may follow their
/// flag as the next argument or after `=`.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, UsageError> {
    let mut options = Options {
        listen: "127.0.0.1:8000".to_string(),
        tokens: Vec::new(),
        tokens_file: None,
        log_level: None,
        publish_key_file: None,
        exec: None,
        tls: None,
        config: Config::default(),
        #[cfg(feature = "jwt")]
        jwt: JwtOptions::default(),
    };
    let (mut tls_cert, mut tls_key) = (None, None);
    let (mut redis_url, mut redis_prefix): (Option<String>, Option<String>) = (None, None);
    let mut echo_flag = None;
    let config = &mut options.config;
    // Positions count from 1, the first argument after the program's name.
    let mut args = args.into_iter().zip(1..);
    while let Some((arg, position)) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg, None),
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--first-message-auth" => {
                if inline.is_some() {
                    return Err(UsageError("--first-message-auth takes no value".into()));
                }
                config.first_message_auth = true;
                continue;
            }
            "--proxy-protocol" | "--metrics" => {
                if inline.is_some() {
                    return Err(UsageError(format!("{flag} takes no value")));
                }
                if flag == "--metrics" {
                    config.metrics = true;
                } else {
                    config.proxy_protocol = true;
                }
                continue;
            }
            _ => {}
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().map(|(value, _)| value))
                .ok_or_else(|| UsageError(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--listen" => options.listen = listen_address(&value()?)?,
            "--token" => options.tokens.push(token_flag(&value()?)?),
            "--tokens-file" => options.tokens_file = Some(PathBuf::from(value()?)),
            "--publish-key-file" => options.publish_key_file = Some(PathBuf::from(value()?)),
            "--allow-origin" => config.allowed_origins.push(value()?),
            "--max-connections" => config.max_connections = positive(&flag, &value()?)?,
            "--max-message-bytes" => config.max_message_bytes = positive(&flag, &value()?)?,
            "--max-outbox-bytes" => config.max_outbox_bytes = Some(positive(&flag, &value()?)?),
            "--handshake-timeout" => {
                config.handshake_timeout = Duration::from_secs(positive(&flag, &value()?)? as u64)
            }
            "--idle-timeout" => {
                let secs = number(&flag, &value()?)?;
                config.idle_timeout = (secs > 0).then(|| Duration::from_secs(secs as u64));
            }
            "--echo-prefix" => {
                config.echo_prefix = value()?;
                echo_flag = Some("--echo-prefix");
            }
            "--greeting" => {
                config.greeting = value()?;
                echo_flag = Some("--greeting");
            }
            "--exec" => {
                let command = value()?;
                if command.trim().is_empty() {
                    return Err(UsageError("--exec: the command is empty".into()));
                }
                options.exec = Some(command);
            }
            "--max-auth-failures" => config.max_auth_failures = number(&flag, &value()?)?,
            "--max-pending-per-ip" => config.max_pending_per_ip = number(&flag, &value()?)?,
            "--trusted-proxy" => trusted_proxy(config, &value()?)?,
            "--tls-cert" if cfg!(feature = "tls") => tls_cert = Some(PathBuf::from(value()?)),
            "--tls-key" if cfg!(feature = "tls") => tls_key = Some(PathBuf::from(value()?)),
            "--tls-cert" | "--tls-key" => return Err(UsageError::missing_feature(&flag, "tls")),
            "--redis" if cfg!(feature = "redis") => redis_url = Some(value()?),
            "--redis-prefix" if cfg!(feature = "redis") => redis_prefix = Some(value()?),
            "--redis" | "--redis-prefix" => {
                return Err(UsageError::missing_feature(&flag, "redis"));
            }
            "--log-level" => {
                let text = value()?;
                let level = match text.to_ascii_lowercase().as_str() {
                    "error" | "warn" | "info" | "debug" | "trace" => text.parse().ok(),
                    _ => None,
                };
                options.log_level = Some(level.ok_or_else(|| {
                    UsageError("--log-level: not one of error, warn, info, debug, trace".into())
                })?);
            }
            #[cfg(feature = "jwt")]
            name if JWT_FLAGS.contains(&name) => jwt::record(&mut options.jwt, name, value()?)?,
            #[cfg(not(feature = "jwt"))]
            name if JWT_FLAGS.contains(&name) => {
                return Err(UsageError(format!(
                    "{name} needs a build with the feature jwt"
                )));
            }
            _ => return Err(UsageError::not_a_flag(&flag, position)),
        }
    }
    bus_flags(&mut options.config, redis_url, redis_prefix)?;
    options.tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => return Err(UsageError("--tls-cert needs --tls-key".into())),
        (None, Some(_)) => return Err(UsageError("--tls-key needs --tls-cert".into())),
    };
    if let Some(outbox) = options.config.max_outbox_bytes
        && outbox < options.config.max_message_bytes
    {
        return Err(UsageError(
            "--max-outbox-bytes: must be at least --max-message-bytes".into(),
        ));
    }
    if let (Some(_), Some(flag)) = (&options.exec, echo_flag) {
        return Err(UsageError(format!(
            "--exec replaces the echo: it cannot be used with {flag}"
        )));
    }
    #[cfg(feature = "jwt")]
    jwt::check(&options.jwt)?;
    Ok(Command::Run(Box::new(options)))
}

fn number(flag: &str, text: &str) -> Result<usize, UsageError> {
    text.parse()
        .map_err(|_| UsageError(format!("{flag}: not a whole number")))
}

fn positive(flag: &str, text: &str) -> Result<usize, UsageError> {
    match number(flag, text)? {
        0 => Err(UsageError(format!("{flag}: must be at least 1"))),
        n => Ok(n),
    }
}

/// An IP address and port, or a host name and port resolved when binding.
fn listen_address(text: &str) -> Result<String, UsageError> {
    let valid = text.parse::<std::net::SocketAddr>().is_ok()
        || text.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok()
        });
    if valid {
        Ok(text.to_string())
    } else {
        Err(UsageError(
            "--listen: not an address like 127.0.0.1:8000".into(),
        ))
    }
}

/// `--trusted-proxy`: an IP or a CIDR. The error says what is wrong without
/// the value, unlike [`TrustedProxies::add`](wsauth::TrustedProxies::add)'s.
fn trusted_proxy(config: &mut Config, text: &str) -> Result<(), UsageError> {
    config.trusted_proxies.add(text).map_err(|_| {
        UsageError(
            "--trusted-proxy: not an IP address, or a CIDR like 10.0.0.0/8 \
             with no bits set past its prefix"
                .into(),
        )
    })
}

/// `[USER:]TOKEN`: USER is the text before the first `:`; a second `:` is invalid.
fn token_flag(text: &str) -> Result<Grant, UsageError> {
    let (user, token) = text.split_once(':').unwrap_or(("user", text));
    if user.is_empty() || user.chars().any(char::is_whitespace) {
        return Err(UsageError("--token: USER is empty or has spaces".into()));
    }
    if !is_valid_token(token) {
        // Never echo the value: it may be a real secret with a typo.
        return Err(UsageError(
            "--token: TOKEN must be printable ASCII without spaces or ':'".into(),
        ));
    }
    Ok(Grant {
        user: user.to_string(),
        token: token.to_string(),
        expires: None,
    })
}

#[cfg(test)]
mod tests;
