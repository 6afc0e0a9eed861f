//! Signed JWTs as tokens (feature `jwt`): [`JwtKeys`], an [`Authenticator`]
//! that verifies them with `jsonwebtoken` against keys read from files, and
//! re-reads those files when they change.
//!
//! The algorithm a token may use comes from the key that verifies it, never
//! from the token alone: an HMAC secret allows HS256/384/512 only, an RSA key
//! RS*/PS*, an EC key the one ES* of its curve, an Ed25519 key EdDSA.
//!
//! ```no_run
//! use wsauth::{Chain, Config, JwtKeys, Server, TokenStore};
//!
//! let keys = JwtKeys::new().with_jwks_file("/etc/wsauth/jwks.json")?.audience("wsauth");
//! let auth = Chain::new().with(keys).with(TokenStore::new(Vec::new()));
//! let server = Server::start("127.0.0.1:8000", Config::default(), auth)?;
//! # server.stop();
//! # Ok::<(), wsauth::Error>(())
//! ```

mod key_file;

use crate::auth::{Authenticator, Identity};
use crate::error::Error;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use key_file::{Format, KeyFile};
use std::path::Path;

/// The least an HMAC secret may have, in bytes (RFC 7518: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The default allowed clock skew for `exp` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// The largest leeway taken, a year: more would underflow jsonwebtoken's `now - leeway`.
pub const MAX_LEEWAY_SECS: u64 = 365 * 24 * 3600;

/// The latest expiry kept, the year 10000: later ones overflow time arithmetic.
const MAX_EXPIRES: u64 = 253_402_300_800;

/// Whether `token` has the JWT shape: three base64url parts joined by dots
/// (the header and payload not empty; the signature may be, as in `alg: none`).
pub fn is_jwt_shaped(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let base64url = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    !header.is_empty()
        && !payload.is_empty()
        && [header, payload, signature].into_iter().all(base64url)
}

/// An [`Authenticator`] for signed JWTs. It recognizes only tokens of the
/// JWT shape, so in a [`Chain`](crate::Chain) every other token goes on to
/// the next authenticator, and a JWT never does.
///
/// A token is valid when its signature verifies with a configured key that
/// allows its `alg` (a token with a `kid` is tried only against keys with
/// that `kid` or with none), `exp` is present and now ≤ `exp` + leeway,
/// `nbf` (if present) ≤ now + leeway, `iss` and `aud` match when asked for,
/// and the user claim is a non-empty string without control characters.
/// Its [`Identity::expires`] is `exp` + leeway + 1, the first second at which
/// it is no longer valid.
pub struct JwtKeys {
    files: Vec<KeyFile>,
    validation: Validation,
    user_claim: String,
}

impl Default for JwtKeys {
    fn default() -> Self {
        JwtKeys::new()
    }
}

impl JwtKeys {
    /// No keys yet; user claim `sub`, leeway 30 s, no issuer or audience check.
    pub fn new() -> JwtKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = DEFAULT_LEEWAY_SECS;
        validation.validate_nbf = true;
        // jsonwebtoken refuses any `aud` when no audience is set; SPEC ignores it then.
        validation.validate_aud = false;
        JwtKeys {
            files: Vec::new(),
            validation,
            user_claim: "sub".to_string(),
        }
    }

    /// Adds an HMAC secret file (HS256, HS384, HS512): its bytes, one trailing
    /// newline removed, at least [`MIN_SECRET_BYTES`].
    pub fn with_secret_file(self, path: impl AsRef<Path>) -> Result<JwtKeys, Error> {
        self.with_file(path.as_ref(), Format::Secret)
    }

    /// Adds a PEM public key file: RSA (RS*, PS*), EC P-256 (ES256), EC P-384
    /// (ES384) or Ed25519 (EdDSA).
    pub fn with_public_key_file(self, path: impl AsRef<Path>) -> Result<JwtKeys, Error> {
        self.with_file(path.as_ref(), Format::PublicKey)
    }

    /// Adds a JWKS file (`{"keys": [...]}`) with RSA, EC, OKP and oct keys.
    /// Keys whose `use` is not `sig`, or of a kind or curve not supported,
    /// are skipped; a file without any usable key is an error.
    pub fn with_jwks_file(self, path: impl AsRef<Path>) -> Result<JwtKeys, Error> {
        self.with_file(path.as_ref(), Format::Jwks)
    }

    fn with_file(mut self, path: &Path, format: Format) -> Result<JwtKeys, Error> {
        self.files.push(KeyFile::open(path, format)?);
        Ok(self)
    }

    /// Requires `iss` to equal `issuer`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> JwtKeys {
        self.validation.set_issuer(&[issuer.into()]);
        self.validation.required_spec_claims.insert("iss".into());
        self
    }

    /// Adds an accepted audience: `aud` (a string or an array) must then
    /// contain one of the audiences added.
    pub fn audience(mut self, audience: impl Into<String>) -> JwtKeys {
        self.validation
            .aud
            .get_or_insert_with(Default::default)
            .insert(audience.into());
        self.validation.validate_aud = true;
        self.validation.required_spec_claims.insert("aud".into());
        self
    }

    /// The claim that names the user (default `sub`).
    pub fn user_claim(mut self, name: impl Into<String>) -> JwtKeys {
        self.user_claim = name.into();
        self
    }

    /// The allowed clock skew for `exp` and `nbf`, in seconds (default 30,
    /// at most [`MAX_LEEWAY_SECS`]).
    pub fn leeway(mut self, secs: u64) -> JwtKeys {
        self.validation.leeway = secs.min(MAX_LEEWAY_SECS);
        self
    }

    /// Whether no key file was added.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The identity a token stands for, or why it does not stand for one
    /// (a fixed text: never any part of the token).
    pub fn verify(&self, token: &str) -> Result<Identity, &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed header")?;
        // jsonwebtoken wants every allowed algorithm in the key's family; each
        // key tried below allows this one.
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let mut tried = false;
        for file in &self.files {
            let keys = file.keys();
            for key in keys.iter().filter(|key| key.fits(&header)) {
                tried = true;
                match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                    Ok(data) => return self.identity(&data.claims),
                    // Another key of the same kind may be the one that signed it.
                    Err(e) if is_key_mismatch(e.kind()) => continue,
                    Err(e) => return Err(refusal(e.kind())),
                }
            }
        }
        Err(if tried {
            "signature does not verify"
        } else {
            "no key for its alg and kid"
        })
    }

    fn identity(&self, claims: &Claims) -> Result<Identity, &'static str> {
        let user = match claims.get(&self.user_claim) {
            // A control character would let a user name forge log lines.
            Some(serde_json::Value::String(user))
                if !user.is_empty() && !user.chars().any(char::is_control) =>
            {
                user.clone()
            }
            _ => return Err("user claim missing, empty, not a string or with control characters"),
        };
        // jsonwebtoken has checked that `exp` is present and a number.
        let exp = claims.get("exp").and_then(|exp| {
            exp.as_u64()
                .or_else(|| exp.as_f64().map(|secs| secs.max(0.0) as u64))
        });
        let exp = exp.ok_or("exp is not a number")?;
        Ok(Identity {
            user,
            // Valid while now <= exp + leeway, so invalid from exp + leeway + 1 on.
            expires: Some(
                exp.saturating_add(self.validation.leeway)
                    .saturating_add(1)
                    .min(MAX_EXPIRES),
            ),
        })
    }
}

type Claims = serde_json::Map<String, serde_json::Value>;

impl Authenticator for JwtKeys {
    fn recognizes(&self, token: &str) -> bool {
        is_jwt_shaped(token)
    }

    fn authenticate(&self, token: &str) -> Option<Identity> {
        match self.verify(token) {
            Ok(identity) => Some(identity),
            Err(why) => {
                log::debug!("JWT refused: {why}");
                None
            }
        }
    }

    fn refresh(&self, forced: bool) -> bool {
        // Every file gets its check, whatever the others report.
        self.files
            .iter()
            .fold(false, |changed, file| file.refresh(forced) | changed)
    }
}

/// Errors that mean "not this key", so the next key of the kind is tried.
fn is_key_mismatch(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat
    )
}

/// Why a token was refused, in words that carry nothing of it.
fn refusal(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not valid yet (nbf)",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
        ErrorKind::InvalidAlgorithm => "alg not allowed",
        _ => "malformed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape_is_three_base64url_parts() {
        assert!(is_jwt_shaped("eyJh.eyJz.c2ln"));
        assert!(
            is_jwt_shaped("eyJh.eyJz."),
            "an empty signature is still a JWT"
        );
        assert!(!is_jwt_shaped("plain-token"));
        assert!(!is_jwt_shaped("a.b"));
        assert!(!is_jwt_shaped("a.b.c.d"));
        assert!(!is_jwt_shaped(".b.c"));
        assert!(!is_jwt_shaped("a+b.c.d"));
        assert!(!is_jwt_shaped("YQ==.Yg==.Yw=="));
    }
}
