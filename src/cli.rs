//! The command line, turned into a [`Config`] and the token sources.

use std::fmt;
use std::path::PathBuf;
use wsauth::Config;
use wsauth::auth::Grant;

mod flags;
#[cfg(feature = "jwt")]
mod jwt;
#[cfg(feature = "tls")]
mod tls;

pub use flags::parse;
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
const JWT_FLAGS: &str = "--jwt-secret-file --jwt-public-key --jwt-jwks --jwt-issuer \
    --jwt-audience --jwt-user-claim --jwt-leeway";

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
    /// The echo's `--greeting`.
    pub greeting: String,
    /// The echo's `--echo-prefix`.
    pub echo_prefix: String,
    /// `--tls-cert` and `--tls-key`: the certificate chain and its key (only
    /// ever both, and only in a build with the feature `tls`).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The server settings.
    pub config: Config,
    /// The `--jwt-*` flags.
    #[cfg(feature = "jwt")]
    pub jwt: JwtOptions,
}

#[cfg(not(feature = "tls"))]
impl Options {
    /// The scheme to print: plain http, since without the feature `tls` the
    /// TLS flags never parse.
    pub fn use_tls(&mut self) -> Result<&'static str, String> {
        Ok("http")
    }
}

#[cfg(not(feature = "jwt"))]
impl Options {
    /// The static tokens alone: there are no JWT flags without the feature `jwt`.
    pub fn authenticator(&self, store: wsauth::TokenStore) -> Result<wsauth::TokenStore, String> {
        Ok(store)
    }

    /// Whether a JWT key was given: never, without the feature `jwt`.
    pub fn has_jwt_keys(&self) -> bool {
        false
    }
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
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
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

#[cfg(test)]
mod tests;
