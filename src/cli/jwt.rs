//! The `--jwt-*` flags (feature `jwt`), and the [`JwtKeys`] they ask for.

use super::flags::number;
use super::{Options, UsageError};
use std::path::PathBuf;
use wsauth::{Chain, Error, JwtKeys, TokenStore};

/// The `--jwt-*` flags, as given (feature `jwt`).
#[derive(Debug, Default)]
pub struct JwtOptions {
    /// `--jwt-secret-file`, in order.
    pub secret_files: Vec<PathBuf>,
    /// `--jwt-public-key`, in order.
    pub public_keys: Vec<PathBuf>,
    /// `--jwt-jwks`, in order.
    pub jwks: Vec<PathBuf>,
    /// `--jwt-issuer`, if given.
    pub issuer: Option<String>,
    /// `--jwt-audience`, any one suffices.
    pub audiences: Vec<String>,
    /// `--jwt-user-claim`, if given (else `sub`).
    pub user_claim: Option<String>,
    /// `--jwt-leeway` in seconds, if given (else 30).
    pub leeway: Option<u64>,
}

impl JwtOptions {
    /// Whether any key file was given.
    pub fn has_keys(&self) -> bool {
        !(self.secret_files.is_empty() && self.public_keys.is_empty() && self.jwks.is_empty())
    }

    /// Reads the key files into a [`JwtKeys`]; `None` when no
    /// key file was given.
    pub fn load(&self) -> Result<Option<JwtKeys>, Error> {
        if !self.has_keys() {
            return Ok(None);
        }
        let mut keys = JwtKeys::new();
        for path in &self.secret_files {
            keys = keys.with_secret_file(path)?;
        }
        for path in &self.public_keys {
            keys = keys.with_public_key_file(path)?;
        }
        for path in &self.jwks {
            keys = keys.with_jwks_file(path)?;
        }
        if let Some(issuer) = &self.issuer {
            keys = keys.issuer(issuer);
        }
        for audience in &self.audiences {
            keys = keys.audience(audience);
        }
        if let Some(claim) = &self.user_claim {
            keys = keys.user_claim(claim);
        }
        if let Some(secs) = self.leeway {
            keys = keys.leeway(secs);
        }
        Ok(Some(keys))
    }
}

impl Options {
    /// JWT keys, when a key flag was given, then the static tokens: a
    /// JWT-shaped token is decided by the keys alone, any other by the store.
    pub fn authenticator(&self, store: TokenStore) -> Result<Chain, String> {
        let mut chain = Chain::new();
        if let Some(keys) = self.jwt.load().map_err(|e| e.to_string())? {
            chain = chain.with(keys);
        }
        Ok(chain.with(store))
    }

    /// Whether a JWT key was given, so no demo token is needed.
    pub fn has_jwt_keys(&self) -> bool {
        self.jwt.has_keys()
    }
}

/// Records one `--jwt-*` flag.
pub(super) fn record(jwt: &mut JwtOptions, flag: &str, value: String) -> Result<(), UsageError> {
    match flag {
        "--jwt-secret-file" => jwt.secret_files.push(PathBuf::from(value)),
        "--jwt-public-key" => jwt.public_keys.push(PathBuf::from(value)),
        "--jwt-jwks" => jwt.jwks.push(PathBuf::from(value)),
        "--jwt-issuer" => jwt.issuer = Some(value),
        "--jwt-audience" => jwt.audiences.push(value),
        "--jwt-user-claim" if value.is_empty() => {
            return Err(UsageError("--jwt-user-claim: must not be empty".into()));
        }
        "--jwt-user-claim" => jwt.user_claim = Some(value),
        _ => jwt.leeway = Some(number(flag, &value)? as u64),
    }
    Ok(())
}

/// Settings for JWTs without any key to check them with are a mistake.
pub(super) fn check(jwt: &JwtOptions) -> Result<(), UsageError> {
    let settings = jwt.issuer.is_some()
        || !jwt.audiences.is_empty()
        || jwt.user_claim.is_some()
        || jwt.leeway.is_some();
    if settings && !jwt.has_keys() {
        return Err(UsageError(
            "--jwt-issuer, --jwt-audience, --jwt-user-claim and --jwt-leeway need a key \
             (--jwt-secret-file, --jwt-public-key or --jwt-jwks)"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cli::{Command, parse};

    fn jwt(args: &[&str]) -> Result<super::JwtOptions, super::UsageError> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(options) => Ok(options.jwt),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn jwt_flags_set_the_jwt_options() {
        let options = jwt(&[
            "--jwt-jwks=a.json",
            "--jwt-jwks",
            "b.json",
            "--jwt-audience",
            "x",
            "--jwt-audience",
            "y",
            "--jwt-leeway",
            "0",
            "--jwt-user-claim",
            "email",
        ])
        .expect("valid in this test");
        assert_eq!(options.jwks.len(), 2);
        assert_eq!(options.audiences, ["x", "y"]);
        assert_eq!(options.leeway, Some(0));
        assert_eq!(options.user_claim.as_deref(), Some("email"));
        assert!(options.has_keys());
    }

    #[test]
    fn jwt_settings_without_a_key_are_usage_errors() {
        assert!(jwt(&["--jwt-leeway", "5"]).is_err());
        assert!(jwt(&["--jwt-secret-file", "s", "--jwt-leeway", "x"]).is_err());
        assert!(jwt(&["--jwt-secret-file", "s", "--jwt-user-claim="]).is_err());
    }
}
