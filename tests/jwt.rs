//! JWTs (feature `jwt`): which tokens verify, which never do, tokens from
//! PyJWT, and how a JWT session ends with its token.
#![cfg(feature = "jwt")]

mod common;

use common::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tungstenite::Message;
use wsauth::auth::unix_now;
use wsauth::{Authenticator, Chain, Config, JwtKeys, Server, TokenStore};

/// A file of the committed fixtures (test-only keys, tokens that expire in 2100).
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// A token PyJWT minted (see `make_fixtures.py`).
fn pyjwt(name: &str) -> String {
    String::from_utf8(fixture_bytes(&format!("pyjwt_{name}.jwt")))
        .unwrap()
        .trim()
        .to_string()
}

/// The HMAC secret of `hs256.secret`, without its trailing newline.
fn secret() -> Vec<u8> {
    let mut bytes = fixture_bytes("hs256.secret");
    assert_eq!(bytes.pop(), Some(b'\n'));
    bytes
}

/// Signs `claims` with `alg` and `key`, naming `kid` if given.
fn mint(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn hmac(secret: &[u8]) -> EncodingKey {
    EncodingKey::from_secret(secret).unwrap()
}

fn hs256(claims: Value) -> String {
    mint(Algorithm::HS256, &hmac(&secret()), None, claims)
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture_bytes("rsa.key.pem")).unwrap()
}

/// Claims for alice that expire in an hour, plus `extra`.
fn claims(extra: Value) -> Value {
    let mut claims = json!({ "sub": "alice", "exp": unix_now() + 3600 });
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        claims.extend(extra.clone());
    }
    claims
}

fn with_secret() -> JwtKeys {
    JwtKeys::new()
        .with_secret_file(fixture("hs256.secret"))
        .unwrap()
}

fn user(keys: &JwtKeys, token: &str) -> Option<String> {
    keys.authenticate(token).map(|identity| identity.user)
}

/// A file of its own for each test, removed afterwards.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("wsauth-jwt-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    /// Replaces the file at once, as `mv` does, so no check sees half of it.
    fn rewrite(&self, contents: &[u8]) {
        let new = self.0.with_extension("new");
        std::fs::write(&new, contents).unwrap();
        std::fs::rename(&new, &self.0).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn connect_with(addr: std::net::SocketAddr, token: &str) -> Connected {
    connect(
        addr,
        "/ws",
        &[("Authorization", &format!("Bearer {token}"))],
    )
}

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

fn server_with(keys: JwtKeys) -> Server {
    let chain = Chain::new()
        .with(keys)
        .with(TokenStore::new(vec![grant("bob", BOB, None)]));
    Server::start("127.0.0.1:0", Config::default(), chain).unwrap()
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn a_jwt_session_closes_with_1008_token_expired_within_a_second_of_exp_plus_leeway() {
    let leeway = 2;
    let server = server_with(with_secret().leeway(leeway));
    // Seconds enough to connect on a loaded machine, few enough for a quick test.
    let exp = unix_now() + 2;
    let token = hs256(json!({ "sub": "alice", "exp": exp }));
    let (mut ws, _) = connect_with(server.local_addr(), &token).expect("a session");
    assert_eq!(next_text(&mut ws), "Hello alice");
    assert_eq!(expect_close(&mut ws), (1008, "token expired".to_string()));
    let closed = now_secs();
    let last_valid = (exp + leeway) as f64;
    assert!(
        closed >= last_valid + 1.0 && closed < last_valid + 2.0,
        "closed at {closed}, exp + leeway = {last_valid}"
    );
    assert_eq!(
        refused_status(connect_with(server.local_addr(), &token)),
        401
    );
}

#[test]
fn a_changed_key_file_closes_sessions_whose_token_no_longer_verifies_within_2_seconds() {
    let file = TempFile::new("rotate.secret", &fixture_bytes("hs256.secret"));
    let keys = JwtKeys::new().with_secret_file(&file.0).unwrap();
    let server = server_with(keys);
    let addr = server.local_addr();
    let (mut alice, _) = connect_with(addr, &hs256(claims(json!({})))).unwrap();
    assert_eq!(next_text(&mut alice), "Hello alice");
    let mut bob = connect_with(addr, BOB).unwrap().0;
    assert_eq!(next_text(&mut bob), "Hello bob");

    let new_secret = b"a-rotated-secret-that-is-long-enough-for-hs256";
    file.rewrite(new_secret);
    let changed = Instant::now();
    assert_eq!(
        expect_close(&mut alice),
        (1008, "token revoked".to_string())
    );
    assert!(
        changed.elapsed() < Duration::from_secs(2),
        "{:?}",
        changed.elapsed()
    );

    // The static token's session goes on; tokens under the new key open sessions.
    bob.send(Message::text("still")).unwrap();
    assert_eq!(next_text(&mut bob), "Message text was: still");
    let fresh = mint(
        Algorithm::HS256,
        &hmac(new_secret),
        None,
        claims(json!({ "sub": "carol" })),
    );
    let (mut carol, _) = connect_with(addr, &fresh).unwrap();
    assert_eq!(next_text(&mut carol), "Hello carol");
}

#[test]
fn a_key_file_that_fails_to_parse_keeps_the_keys_in_force() {
    let file = TempFile::new("typo.secret", &fixture_bytes("hs256.secret"));
    let server = server_with(JwtKeys::new().with_secret_file(&file.0).unwrap());
    let token = hs256(claims(json!({})));
    let (mut alice, _) = connect_with(server.local_addr(), &token).unwrap();
    assert_eq!(next_text(&mut alice), "Hello alice");
    file.rewrite(b"too short");
    server.reload();
    alice.send(Message::text("still in")).unwrap();
    assert_eq!(next_text(&mut alice), "Message text was: still in");
    let (mut again, _) = connect_with(server.local_addr(), &token).unwrap();
    assert_eq!(next_text(&mut again), "Hello alice");
}

#[test]
fn an_invalid_jwt_gets_401_invalid_token() {
    let server = server_with(with_secret());
    let answer = raw_upgrade(
        server.local_addr(),
        &upgrade_request(
            server.local_addr(),
            "/ws",
            &[&format!("Authorization: Bearer {}", pyjwt("none"))],
        ),
    );
    assert_eq!(status(&answer), 401, "{answer}");
    assert_eq!(
        header(&answer, "WWW-Authenticate"),
        Some(r#"Bearer realm="wsauth", error="invalid_token""#)
    );
    for part in pyjwt("none").split('.').filter(|p| !p.is_empty()) {
        assert!(!answer.contains(part), "the answer shows part of the token");
    }
}

#[test]
fn jwts_work_from_the_subprotocol_and_the_query_too() {
    let server = server_with(with_secret());
    let token = pyjwt("hs256");
    let (mut ws, _) = connect(server.local_addr(), &format!("/ws?token={token}"), &[]).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    let (mut ws, _) = connect(
        server.local_addr(),
        "/ws",
        &[("Sec-WebSocket-Protocol", &format!("chat, bearer.{token}"))],
    )
    .unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
}

#[test]
fn a_jwt_works_as_the_first_message_too() {
    let mut config = Config::default();
    config.first_message_auth = true;
    let chain = Chain::new().with(with_secret());
    let server = Server::start("127.0.0.1:0", config, chain).unwrap();
    let (mut ws, _) = connect(server.local_addr(), "/ws", &[]).unwrap();
    ws.send(Message::text(pyjwt("hs256"))).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
}

#[test]
fn refused_jwts_count_as_failed_authentications() {
    let mut config = Config::default();
    config.max_auth_failures = 2;
    let chain = Chain::new().with(with_secret());
    let server = Server::start("127.0.0.1:0", config, chain).unwrap();
    let addr = server.local_addr();
    let expired = hs256(json!({ "sub": "alice", "exp": unix_now() - 3600 }));
    assert_eq!(refused_status(connect_with(addr, &expired)), 401);
    assert_eq!(refused_status(connect_with(addr, &pyjwt("none"))), 401);
    assert_eq!(refused_status(connect_with(addr, &pyjwt("hs256"))), 429);
}

#[test]
fn absurd_exp_and_leeway_values_are_clamped_rather_than_a_crash() {
    let keys = with_secret().leeway(u64::MAX);
    let identity = keys.authenticate(&hs256(json!({ "sub": "alice", "exp": u64::MAX })));
    let expires = identity.and_then(|i| i.expires).expect("a far expiry");
    assert!(expires > unix_now() + 1_000_000_000, "{expires}");
    let server = server_with(keys);
    let token = hs256(json!({ "sub": "alice", "exp": u64::MAX }));
    let (mut ws, _) = connect_with(server.local_addr(), &token).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    ws.send(Message::text("fine")).unwrap();
    assert_eq!(next_text(&mut ws), "Message text was: fine");
}
