//! JWTs for the tests: the PyJWT fixtures, tokens minted here to the second,
//! and a `JwtKeys` over the fixtures' secret.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::path::PathBuf;
use wsauth::auth::unix_now;
use wsauth::{Authenticator, JwtKeys};

/// A file of the committed fixtures (test-only keys, tokens that expire in 2100).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// A token PyJWT minted (see `make_fixtures.py`).
pub fn pyjwt(name: &str) -> String {
    String::from_utf8(fixture_bytes(&format!("pyjwt_{name}.jwt")))
        .unwrap()
        .trim()
        .to_string()
}

/// The HMAC secret of `hs256.secret`, without its trailing newline.
pub fn secret() -> Vec<u8> {
    let mut bytes = fixture_bytes("hs256.secret");
    assert_eq!(bytes.pop(), Some(b'\n'));
    bytes
}

/// Signs `claims` with `alg` and `key`, naming `kid` if given.
pub fn mint(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

pub fn hmac(secret: &[u8]) -> EncodingKey {
    EncodingKey::from_secret(secret).unwrap()
}

pub fn hs256(claims: Value) -> String {
    mint(Algorithm::HS256, &hmac(&secret()), None, claims)
}

pub fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture_bytes("rsa.key.pem")).unwrap()
}

/// Claims for alice that expire in an hour, plus `extra`.
pub fn claims(extra: Value) -> Value {
    let mut claims = json!({ "sub": "alice", "exp": unix_now() + 3600 });
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        claims.extend(extra.clone());
    }
    claims
}

pub fn with_secret() -> JwtKeys {
    JwtKeys::new()
        .with_secret_file(fixture("hs256.secret"))
        .unwrap()
}

pub fn user(keys: &JwtKeys, token: &str) -> Option<String> {
    keys.authenticate(token).map(|identity| identity.user)
}
