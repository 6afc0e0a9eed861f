//! The flags, one at a time, into [`Options`], and the checks that need
//! them all.

use super::{Command, JWT_FLAGS, Options, UsageError};
#[cfg(feature = "jwt")]
use super::{JwtOptions, jwt};
use std::path::PathBuf;
use std::time::Duration;
use wsauth::Config;
use wsauth::auth::{Grant, is_valid_token};

/// Parses the arguments (without the program name). Values may follow their
/// flag as the next argument or after `=`.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, UsageError> {
    let mut parsing = Parsing::default();
    // Positions count from 1, the first argument after the program's name.
    let mut args = args.into_iter().zip(1..);
    while let Some((arg, position)) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg, None),
        };
        let config = &mut parsing.options.config;
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--first-message-auth" | "--proxy-protocol" | "--metrics" if inline.is_some() => {
                return Err(UsageError(format!("{flag} takes no value")));
            }
            "--first-message-auth" => config.first_message_auth = true,
            "--proxy-protocol" => config.proxy_protocol = true,
            "--metrics" => config.metrics = true,
            _ => {
                let value = || inline.or_else(|| args.next().map(|(value, _)| value));
                parsing.record(&flag, position, value)?;
            }
        }
    }
    parsing
        .finish()
        .map(|options| Command::Run(Box::new(options)))
}

/// The options as the flags come, and what is checked once all have.
#[derive(Default)]
struct Parsing {
    options: Options,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    /// The last of `--greeting` and `--echo-prefix` given, which `--exec` excludes.
    echo_flag: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: "127.0.0.1:8000".to_string(),
            tokens: Vec::new(),
            tokens_file: None,
            log_level: None,
            publish_key_file: None,
            exec: None,
            greeting: wsauth::Echo::GREETING.to_string(),
            echo_prefix: wsauth::Echo::PREFIX.to_string(),
            tls: None,
            config: Config::default(),
            #[cfg(feature = "jwt")]
            jwt: JwtOptions::default(),
        }
    }
}

impl Parsing {
    /// A flag that takes a value, which `value` gives. An unknown flag, or
    /// one of a feature this build lacks, is refused as such before its
    /// value is looked for.
    fn record(
        &mut self,
        flag: &str,
        position: usize,
        value: impl FnOnce() -> Option<String>,
    ) -> Result<(), UsageError> {
        let missing = match flag {
            "--tls-cert" | "--tls-key" if !cfg!(feature = "tls") => "tls",
            "--redis" | "--redis-prefix" if !cfg!(feature = "redis") => "redis",
            _ if listed(JWT_FLAGS, flag) && !cfg!(feature = "jwt") => "jwt",
            _ if listed(FLAGS, flag) || listed(JWT_FLAGS, flag) => "",
            _ => return Err(UsageError::not_a_flag(flag, position)),
        };
        if !missing.is_empty() {
            return Err(UsageError::missing_feature(flag, missing));
        }
        let value = value().ok_or_else(|| UsageError(format!("{flag} needs a value")))?;
        let options = &mut self.options;
        let config = &mut options.config;
        match flag {
            "--listen" => options.listen = listen_address(&value)?,
            "--token" => options.tokens.push(token_flag(&value)?),
            "--tokens-file" => options.tokens_file = Some(value.into()),
            "--publish-key-file" => options.publish_key_file = Some(value.into()),
            "--allow-origin" => config.allowed_origins.push(value),
            "--max-connections" => config.max_connections = positive(flag, &value)?,
            "--max-message-bytes" => config.max_message_bytes = positive(flag, &value)?,
            "--max-outbox-bytes" => config.max_outbox_bytes = Some(positive(flag, &value)?),
            "--handshake-timeout" => {
                config.handshake_timeout = Duration::from_secs(positive(flag, &value)? as u64)
            }
            "--idle-timeout" => {
                let secs = number(flag, &value)?;
                config.idle_timeout = (secs > 0).then(|| Duration::from_secs(secs as u64));
            }
            "--greeting" => (options.greeting, self.echo_flag) = (value, Some("--greeting")),
            "--echo-prefix" => {
                (options.echo_prefix, self.echo_flag) = (value, Some("--echo-prefix"))
            }
            "--exec" if value.trim().is_empty() => {
                return Err(UsageError("--exec: the command is empty".into()));
            }
            "--exec" => options.exec = Some(value),
            "--max-auth-failures" => config.max_auth_failures = number(flag, &value)?,
            "--max-pending-per-ip" => config.max_pending_per_ip = number(flag, &value)?,
            "--trusted-proxy" => trusted_proxy(config, &value)?,
            "--log-level" => options.log_level = Some(log_level(&value)?),
            "--tls-cert" => self.tls_cert = Some(value.into()),
            "--tls-key" => self.tls_key = Some(value.into()),
            "--redis" => self.redis_url = Some(value),
            "--redis-prefix" => self.redis_prefix = Some(value),
            #[cfg(feature = "jwt")]
            _ => jwt::record(&mut options.jwt, flag, value)?,
            // The JWT flags, refused above.
            #[cfg(not(feature = "jwt"))]
            _ => {}
        }
        Ok(())
    }

    /// The checks that need every flag.
    fn finish(self) -> Result<Options, UsageError> {
        let mut options = self.options;
        bus_flags(&mut options.config, self.redis_url, self.redis_prefix)?;
        options.tls = match (self.tls_cert, self.tls_key) {
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
        if let (Some(_), Some(flag)) = (&options.exec, self.echo_flag) {
            return Err(UsageError(format!(
                "--exec replaces the echo: it cannot be used with {flag}"
            )));
        }
        #[cfg(feature = "jwt")]
        jwt::check(&options.jwt)?;
        Ok(options)
    }
}

/// The flags that take a value, besides `JWT_FLAGS`.
const FLAGS: &str = "--listen --token --tokens-file --publish-key-file --allow-origin \
    --max-connections --max-message-bytes --max-outbox-bytes --handshake-timeout --idle-timeout \
    --echo-prefix --greeting --exec --max-auth-failures --max-pending-per-ip --trusted-proxy \
    --log-level --tls-cert --tls-key --redis --redis-prefix";

/// Whether `flag` is one of the space-separated `flags`.
fn listed(flags: &str, flag: &str) -> bool {
    flags.split(' ').any(|listed| listed == flag)
}

fn log_level(text: &str) -> Result<log::LevelFilter, UsageError> {
    let level = match text.to_ascii_lowercase().as_str() {
        "error" | "warn" | "info" | "debug" | "trace" => text.parse().ok(),
        _ => None,
    };
    level
        .ok_or_else(|| UsageError("--log-level: not one of error, warn, info, debug, trace".into()))
}

pub(super) fn number(flag: &str, text: &str) -> Result<usize, UsageError> {
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
