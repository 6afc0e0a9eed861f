//! Key files for [`JwtKeys`](super::JwtKeys): HMAC secrets, PEM public keys
//! and JWKS documents, read into keys that each allow only the algorithms
//! their key material (and a JWK's `alg`) names.

use super::MIN_SECRET_BYTES;
use crate::error::Error;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::SystemTime;

const HMAC: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
const RSA: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const ES256: &[Algorithm] = &[Algorithm::ES256];
const ES384: &[Algorithm] = &[Algorithm::ES384];
const EDDSA: &[Algorithm] = &[Algorithm::EdDSA];

/// The kinds of key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    /// An HMAC secret: the file's bytes, one trailing newline removed.
    Secret,
    /// A PEM public key: RSA, EC P-256, EC P-384 or Ed25519.
    PublicKey,
    /// A JWKS document, `{"keys": [...]}`.
    Jwks,
}

/// One key and what it may verify.
pub(super) struct Key {
    /// The JWK's `kid`; `None` for keys from a secret or PEM file.
    kid: Option<String>,
    /// The algorithms this key allows, decided by the key alone.
    algorithms: &'static [Algorithm],
    /// The key itself.
    pub(super) key: DecodingKey,
}

impl Key {
    /// Whether this key is one to try for a token with this header: its
    /// algorithm fits the key, and a `kid` on both sides matches.
    pub(super) fn fits(&self, header: &Header) -> bool {
        self.algorithms.contains(&header.alg)
            && match (&self.kid, &header.kid) {
                (Some(mine), Some(theirs)) => mine == theirs,
                _ => true,
            }
    }
}

/// A key file, its keys, and the modification time they were read at.
pub(super) struct KeyFile {
    path: PathBuf,
    format: Format,
    keys: RwLock<Vec<Key>>,
    modified: Mutex<Option<SystemTime>>,
}

impl KeyFile {
    /// Reads the file; an unreadable or malformed one is an error.
    pub(super) fn open(path: &Path, format: Format) -> Result<KeyFile, Error> {
        let modified = modified_time(path);
        let keys = read_keys(path, format)?;
        Ok(KeyFile {
            path: path.to_path_buf(),
            format,
            keys: RwLock::new(keys),
            modified: Mutex::new(modified),
        })
    }

    /// The keys in force.
    pub(super) fn keys(&self) -> RwLockReadGuard<'_, Vec<Key>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-reads the file if its modification time changed (always when
    /// `forced`); a file that fails keeps its keys and logs one error.
    pub(super) fn refresh(&self, forced: bool) -> bool {
        let modified = modified_time(&self.path);
        {
            let mut last = self.modified.lock().unwrap_or_else(|e| e.into_inner());
            if !forced && *last == modified {
                return false;
            }
            *last = modified;
        }
        match read_keys(&self.path, self.format) {
            Ok(keys) => {
                log::info!(
                    "JWT key file {} reloaded: {} keys",
                    self.path.display(),
                    keys.len()
                );
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
                true
            }
            Err(e) => {
                log::error!("{e}; keeping its previous keys");
                false
            }
        }
    }
}

fn modified_time(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads the keys of one file.
fn read_keys(path: &Path, format: Format) -> Result<Vec<Key>, Error> {
    let fail = |reason: String| Error::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    match format {
        Format::Secret => secret_key(&bytes).map(|key| vec![key]),
        Format::PublicKey => pem_key(&bytes).map(|key| vec![key]),
        Format::Jwks => jwks_keys(&bytes),
    }
    .map_err(fail)
}

fn secret_key(bytes: &[u8]) -> Result<Key, String> {
    let secret = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "an HMAC secret needs at least {MIN_SECRET_BYTES} bytes, this one has {}",
            secret.len()
        ));
    }
    let key = DecodingKey::from_secret(secret).map_err(|e| e.to_string())?;
    Ok(Key {
        kid: None,
        algorithms: HMAC,
        key,
    })
}

fn pem_key(bytes: &[u8]) -> Result<Key, String> {
    // A private key has no business on the server that only verifies.
    if bytes.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err("is a private key; give the public key".into());
    }
    let unnamed = |algorithms, key| Key {
        kid: None,
        algorithms,
        key,
    };
    if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
        return Ok(unnamed(RSA, key));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
        return Ok(unnamed(EDDSA, key));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
        return ec_curve_of(&key)
            .map(|algorithms| unnamed(algorithms, key))
            .ok_or_else(|| "an EC key on a curve other than P-256 or P-384".to_string());
    }
    Err("not a PEM public key (RSA, EC P-256, EC P-384 or Ed25519)".into())
}

/// ES256 or ES384, from the length of the uncompressed point (0x04, x, y).
fn ec_curve_of(key: &DecodingKey) -> Option<&'static [Algorithm]> {
    match key.try_get_as_bytes().ok()?.len() {
        65 => Some(ES256),
        97 => Some(ES384),
        _ => None,
    }
}

fn jwks_keys(bytes: &[u8]) -> Result<Vec<Key>, String> {
    let set: JwkSet = serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for (index, jwk) in set.keys.iter().enumerate() {
        let name = jwk.common.key_id.as_ref().map_or_else(
            || format!("key {}", index + 1),
            |kid| format!("key {kid:?}"),
        );
        if let Some(key) = jwk_key(jwk).map_err(|reason| format!("{name}: {reason}"))? {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err("no usable signature key in it".into());
    }
    Ok(keys)
}

/// One JWK as a key; `None` for a key that is not for verifying signatures
/// with a supported algorithm (identity providers publish encryption keys too).
fn jwk_key(jwk: &Jwk) -> Result<Option<Key>, String> {
    // `DecodingKey::from_jwk` ignores `use`, `key_ops` and `alg`: checked here.
    let common = &jwk.common;
    if common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return Ok(None);
    }
    if common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return Ok(None);
    }
    let Some(kind) = jwk_algorithms(&jwk.algorithm) else {
        return Ok(None);
    };
    let algorithms = match common.key_algorithm {
        None => kind,
        Some(alg) => match kind.iter().find(|a| key_algorithm_is(alg, **a)) {
            Some(a) => std::slice::from_ref(a),
            None => return Ok(None),
        },
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    if algorithms.iter().any(|a| HMAC.contains(a)) {
        let len = key.try_get_as_bytes().map_or(0, <[u8]>::len);
        if len < MIN_SECRET_BYTES {
            return Err(format!(
                "an oct key needs at least {MIN_SECRET_BYTES} bytes, this one has {len}"
            ));
        }
    }
    Ok(Some(Key {
        kid: common.key_id.clone(),
        algorithms,
        key,
    }))
}

/// The algorithms a JWK's key material allows; `None` when unsupported.
fn jwk_algorithms(parameters: &AlgorithmParameters) -> Option<&'static [Algorithm]> {
    match parameters {
        AlgorithmParameters::RSA(_) => Some(RSA),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(ES256),
            EllipticCurve::P384 => Some(ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => {
            (okp.curve == EllipticCurve::Ed25519).then_some(EDDSA)
        }
        AlgorithmParameters::OctetKey(_) => Some(HMAC),
        _ => None,
    }
}

/// Whether a JWK's `alg` names this algorithm.
fn key_algorithm_is(alg: KeyAlgorithm, algorithm: Algorithm) -> bool {
    alg.to_string() == format!("{algorithm:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_loses_one_trailing_newline_and_needs_32_bytes() {
        let secret = [b'k'; 32];
        assert!(secret_key(&[&secret[..], b"\n"].concat()).is_ok());
        assert!(secret_key(&[&secret[..31], b"\n"].concat()).is_err());
        assert!(secret_key(&secret[..31]).is_err());
    }

    #[test]
    fn key_algorithms_are_matched_by_name() {
        assert!(key_algorithm_is(KeyAlgorithm::RS256, Algorithm::RS256));
        assert!(key_algorithm_is(KeyAlgorithm::EdDSA, Algorithm::EdDSA));
        assert!(!key_algorithm_is(KeyAlgorithm::RS256, Algorithm::PS256));
        assert!(!key_algorithm_is(
            KeyAlgorithm::UNKNOWN_ALGORITHM,
            Algorithm::HS256
        ));
    }
}
