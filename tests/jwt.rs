//! JWTs (feature `jwt`): which tokens verify, which never do, and tokens
//! from PyJWT (`tests/jwt_sessions.rs`: how a JWT session ends with its token).
#![cfg(feature = "jwt")]

mod common;

use common::jwt::*;
use common::process::TempFile;
use common::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use wsauth::auth::unix_now;
use wsauth::{Authenticator, Chain, JwtKeys, TokenStore};

// ---- tokens from PyJWT ----

#[test]
fn pyjwt_hs256_and_rs256_tokens_verify_with_secret_and_pem_files() {
    let keys = with_secret()
        .with_public_key_file(fixture("rsa.pub.pem"))
        .unwrap();
    assert_eq!(user(&keys, &pyjwt("hs256")), Some("alice".into()));
    assert_eq!(user(&keys, &pyjwt("rs256")), Some("alice".into()));
}

#[test]
fn pyjwt_es256_es384_and_eddsa_tokens_verify() {
    let keys = JwtKeys::new()
        .with_public_key_file(fixture("ec384.pub.pem"))
        .unwrap()
        .with_jwks_file(fixture("jwks.json"))
        .unwrap();
    assert_eq!(user(&keys, &pyjwt("es384")), Some("esme".into()));
    assert_eq!(user(&keys, &pyjwt("es256_kid")), Some("erin".into()));
    assert_eq!(user(&keys, &pyjwt("eddsa_kid")), Some("edna".into()));
}

#[test]
fn a_jwks_key_is_chosen_by_kid_and_an_unknown_kid_is_refused() {
    let keys = JwtKeys::new().with_jwks_file(fixture("jwks.json")).unwrap();
    assert_eq!(user(&keys, &pyjwt("rs256_kid")), Some("rita".into()));
    assert_eq!(user(&keys, &pyjwt("unknown_kid")), None);
    // Without a kid, each key of the kind is tried.
    assert_eq!(user(&keys, &pyjwt("rs256")), Some("alice".into()));
}

#[test]
fn ec_pem_keys_allow_only_the_algorithm_of_their_curve() {
    let p256 = JwtKeys::new()
        .with_public_key_file(fixture("ec256.pub.pem"))
        .unwrap();
    let key = EncodingKey::from_ec_pem(&fixture_bytes("ec256.key.pem")).unwrap();
    assert_eq!(
        user(
            &p256,
            &mint(Algorithm::ES256, &key, None, claims(json!({})))
        ),
        Some("alice".into())
    );
    assert_eq!(user(&p256, &pyjwt("es384")), None);
}

// ---- the algorithm comes from the key ----

#[test]
fn alg_none_is_refused_and_never_reaches_the_static_tokens() {
    let none = pyjwt("none");
    assert!(none.ends_with('.'), "an unsigned token: {none}");
    let store = TokenStore::new(vec![grant("mallory", &none, None), grant("bob", BOB, None)]);
    let chain = Chain::new().with(with_secret()).with(store);
    assert_eq!(chain.authenticate(&none), None);
    assert_eq!(
        chain.authenticate(BOB).map(|i| i.user),
        Some("bob".into()),
        "other tokens still reach the store"
    );
}

#[test]
fn a_failing_jwt_never_falls_through_to_an_equal_static_token() {
    let forged = hs256(json!({ "sub": "alice" })); // no exp
    let store = TokenStore::new(vec![grant("mallory", &forged, None)]);
    let chain = Chain::new().with(with_secret()).with(store);
    assert!(chain.recognizes(&forged));
    assert_eq!(chain.authenticate(&forged), None);
}

#[test]
fn hs256_signed_with_the_rsa_public_key_pem_is_refused() {
    let pem = fixture_bytes("rsa.pub.pem");
    let forged = mint(Algorithm::HS256, &hmac(&pem), None, claims(json!({})));
    let keys = JwtKeys::new()
        .with_public_key_file(fixture("rsa.pub.pem"))
        .unwrap()
        .with_jwks_file(fixture("jwks.json"))
        .unwrap();
    assert_eq!(user(&keys, &forged), None);
    let with_kid = mint(
        Algorithm::HS256,
        &hmac(&pem),
        Some("rsa-1"),
        claims(json!({})),
    );
    assert_eq!(user(&keys, &with_kid), None);
}

#[test]
fn a_token_signed_by_another_key_is_refused() {
    let other = hmac(b"another-secret-that-is-long-enough-32b");
    let token = mint(Algorithm::HS256, &other, None, claims(json!({})));
    assert_eq!(user(&with_secret(), &token), None);
}

// ---- claims ----

#[test]
fn exp_is_required() {
    let keys = with_secret();
    assert_eq!(user(&keys, &hs256(json!({ "sub": "alice" }))), None);
    assert_eq!(
        user(&keys, &hs256(json!({ "sub": "alice", "exp": "soon" }))),
        None
    );
}

#[test]
fn exp_allows_the_leeway_and_sets_expires_to_the_second_after_it() {
    let keys = with_secret().leeway(10);
    let exp = unix_now() - 5;
    let identity = keys
        .authenticate(&hs256(json!({ "sub": "alice", "exp": exp })))
        .expect("within the leeway");
    assert_eq!(identity.expires, Some(exp + 11));
    assert_eq!(
        user(
            &keys,
            &hs256(json!({ "sub": "alice", "exp": unix_now() - 20 }))
        ),
        None
    );
}

#[test]
fn the_default_leeway_is_30_seconds() {
    let keys = with_secret();
    let exp = unix_now() - 20;
    let identity = keys.authenticate(&hs256(json!({ "sub": "alice", "exp": exp })));
    assert_eq!(identity.and_then(|i| i.expires), Some(exp + 31));
    let old = hs256(json!({ "sub": "alice", "exp": unix_now() - 40 }));
    assert_eq!(user(&keys, &old), None);
}

#[test]
fn nbf_is_honoured_with_the_leeway() {
    let keys = with_secret().leeway(10);
    let early = hs256(claims(json!({ "nbf": unix_now() + 100 })));
    assert_eq!(user(&keys, &early), None);
    let skewed = hs256(claims(json!({ "nbf": unix_now() + 5 })));
    assert_eq!(user(&keys, &skewed), Some("alice".into()));
}

#[test]
fn iss_and_aud_are_ignored_unless_configured() {
    let token = hs256(claims(json!({ "iss": "someone", "aud": "something" })));
    assert_eq!(user(&with_secret(), &token), Some("alice".into()));
}

#[test]
fn a_configured_issuer_must_match() {
    let keys = with_secret().issuer("https://idp.example");
    let right = hs256(claims(json!({ "iss": "https://idp.example" })));
    assert_eq!(user(&keys, &right), Some("alice".into()));
    let wrong = hs256(claims(json!({ "iss": "https://evil.example" })));
    assert_eq!(user(&keys, &wrong), None);
    assert_eq!(user(&keys, &hs256(claims(json!({})))), None, "iss missing");
}

#[test]
fn a_configured_audience_must_be_in_aud_as_string_or_array() {
    let keys = with_secret().audience("wsauth").audience("chat");
    for aud in [json!("wsauth"), json!("chat"), json!(["other", "chat"])] {
        let token = hs256(claims(json!({ "aud": aud })));
        assert_eq!(user(&keys, &token), Some("alice".into()), "aud {aud}");
    }
    for aud in [json!("other"), json!(["other", "more"]), json!([])] {
        let token = hs256(claims(json!({ "aud": aud })));
        assert_eq!(user(&keys, &token), None, "aud {aud}");
    }
    assert_eq!(user(&keys, &hs256(claims(json!({})))), None, "aud missing");
    // PyJWT's array audience too.
    assert_eq!(
        user(&keys.issuer("https://idp.example"), &pyjwt("aud_array")),
        Some("alice".into())
    );
}

#[test]
fn the_user_claim_must_be_a_non_empty_string_without_control_characters() {
    let keys = with_secret().user_claim("email");
    let token = hs256(claims(json!({ "email": "alice@example.org" })));
    assert_eq!(user(&keys, &token), Some("alice@example.org".into()));
    assert_eq!(user(&keys, &hs256(claims(json!({})))), None, "missing");
    for bad in [
        json!(""),
        json!(42),
        json!(["a"]),
        json!(null),
        json!("a\nINFO forged"),
    ] {
        let token = hs256(claims(json!({ "email": bad })));
        assert_eq!(user(&keys, &token), None, "email {bad}");
    }
    let empty_sub = hs256(json!({ "sub": "", "exp": unix_now() + 60 }));
    assert_eq!(user(&with_secret(), &empty_sub), None);
}

// ---- JWKS: alg and use are checked ----

/// `jwks.json` with the key `kid` changed by `edit`.
fn edited_jwks(name: &str, kid: &str, edit: impl Fn(&mut Value)) -> TempFile {
    let mut jwks: Value = serde_json::from_slice(&fixture_bytes("jwks.json")).unwrap();
    for key in jwks["keys"].as_array_mut().unwrap() {
        if key["kid"] == kid {
            edit(key);
        }
    }
    TempFile::new(name, &serde_json::to_vec(&jwks).unwrap())
}

#[test]
fn a_jwk_for_encryption_is_not_used_to_verify() {
    let file = edited_jwks("use-enc.json", "rsa-1", |key| key["use"] = json!("enc"));
    let keys = JwtKeys::new().with_jwks_file(&file.0).unwrap();
    assert_eq!(user(&keys, &pyjwt("rs256_kid")), None);
    assert_eq!(user(&keys, &pyjwt("es256_kid")), Some("erin".into()));
}

#[test]
fn a_jwk_alg_limits_its_key_to_that_algorithm() {
    let file = edited_jwks("alg-ps256.json", "rsa-1", |key| key["alg"] = json!("PS256"));
    let keys = JwtKeys::new().with_jwks_file(&file.0).unwrap();
    assert_eq!(user(&keys, &pyjwt("rs256_kid")), None);
    let ps256 = mint(
        Algorithm::PS256,
        &rsa_key(),
        Some("rsa-1"),
        claims(json!({})),
    );
    assert_eq!(user(&keys, &ps256), Some("alice".into()));
}

#[test]
fn an_oct_jwk_verifies_hmac_tokens() {
    let mut jwk = Jwk::from_encoding_key(&hmac(&secret()), Algorithm::HS256).unwrap();
    jwk.common.key_id = Some("oct-1".into());
    let file = TempFile::new(
        "oct.json",
        &serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap(),
    );
    let keys = JwtKeys::new().with_jwks_file(&file.0).unwrap();
    let token = mint(
        Algorithm::HS256,
        &hmac(&secret()),
        Some("oct-1"),
        claims(json!({})),
    );
    assert_eq!(user(&keys, &token), Some("alice".into()));
}

// ---- key files ----

#[test]
fn unusable_key_files_are_errors_that_name_the_file() {
    let short = TempFile::new("short.secret", &[b'k'; 31]);
    let garbage = TempFile::new("garbage.pem", b"-----BEGIN PUBLIC KEY-----\nnope\n");
    let private = TempFile::new("private.pem", &fixture_bytes("rsa.key.pem"));
    let only_enc = TempFile::new(
        "only-enc.json",
        br#"{"keys": [{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}]}"#,
    );
    let not_json = TempFile::new("not.json", b"{\"keys\": ");
    let missing = std::env::temp_dir().join("wsauth-jwt-no-such-file");
    let results = [
        JwtKeys::new().with_secret_file(&short.0).err(),
        JwtKeys::new().with_public_key_file(&garbage.0).err(),
        JwtKeys::new().with_public_key_file(&private.0).err(),
        JwtKeys::new().with_jwks_file(&only_enc.0).err(),
        JwtKeys::new().with_jwks_file(&not_json.0).err(),
        JwtKeys::new().with_secret_file(&missing).err(),
    ];
    let paths = [
        &short.0,
        &garbage.0,
        &private.0,
        &only_enc.0,
        &not_json.0,
        &missing,
    ];
    for (error, path) in results.iter().zip(paths) {
        let text = error.as_ref().expect("refused").to_string();
        assert!(text.contains(path.to_str().unwrap()), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }
}

#[test]
fn chain_refresh_asks_every_member_and_reports_any_change() {
    let file = TempFile::new("chain.secret", &fixture_bytes("hs256.secret"));
    let keys = JwtKeys::new().with_secret_file(&file.0).unwrap();
    let chain = Chain::new().with(TokenStore::new(Vec::new())).with(keys);
    assert!(!chain.refresh(false), "nothing changed");
    assert!(chain.refresh(true), "forced: the key file is read again");
}

// ---- sessions end with their token ----
