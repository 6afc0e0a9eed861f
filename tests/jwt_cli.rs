//! The `wsauth` binary with JWT keys (feature `jwt`): its flags, start-up
//! errors, reloads on change and on `SIGHUP`, and logs that never show a JWT.
#![cfg(feature = "jwt")]

mod common;

use common::process::*;
use common::*;
use std::time::{Duration, Instant};
use tungstenite::Message;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A token PyJWT minted (see `tests/fixtures/jwt/make_fixtures.py`).
fn pyjwt(name: &str) -> String {
    std::fs::read_to_string(fixture(&format!("pyjwt_{name}.jwt")))
        .unwrap()
        .trim()
        .to_string()
}

/// Asserts that no part of `token` (header, payload, signature) is in `text`.
fn assert_shows_no_part_of(text: &str, token: &str) {
    for part in token.split('.').filter(|p| !p.is_empty()) {
        assert!(!text.contains(part), "a part of a JWT shows in {text:?}");
    }
}

/// Asserts a start-up failure with `code` and one stderr line containing `needle`.
fn assert_fails_with_one_line_naming(args: &[&str], code: i32, needle: &str) {
    let run = finish(args);
    assert_eq!(run.code, Some(code), "{args:?}: {:?}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {:?}", run.stderr);
    assert!(run.stderr.contains(needle), "{args:?}: {:?}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{:?}", run.stderr);
    assert_eq!(run.stdout, "");
}

#[test]
fn help_lists_the_jwt_flags() {
    let run = finish(&["--help"]);
    for flag in [
        "--jwt-secret-file",
        "--jwt-public-key",
        "--jwt-jwks",
        "--jwt-issuer",
        "--jwt-audience",
        "--jwt-user-claim",
        "--jwt-leeway",
    ] {
        assert!(
            run.stdout.contains(flag),
            "{flag} missing in {}",
            run.stdout
        );
    }
}

#[test]
fn with_a_key_and_no_token_no_demo_token_is_made_and_pyjwt_tokens_work() {
    let (wsauth, addr) = Wsauth::serve(
        &[
            "--jwt-secret-file",
            &fixture("hs256.secret"),
            "--jwt-public-key",
            &fixture("rsa.pub.pem"),
            "--jwt-jwks",
            &fixture("jwks.json"),
            "--log-level",
            "trace",
        ],
        &[],
    );
    for (name, user) in [
        ("hs256", "alice"),
        ("rs256", "alice"),
        ("rs256_kid", "rita"),
        ("es256_kid", "erin"),
        ("eddsa_kid", "edna"),
    ] {
        let (mut ws, _) = connect_bearer(addr, &pyjwt(name)).expect("a session");
        assert_eq!(next_text(&mut ws), format!("Hello {user}"), "{name}");
    }
    assert_eq!(refused_status(connect_bearer(addr, &pyjwt("none"))), 401);
    // A kid names JWKS keys only: a PEM key, having none, is tried for any kid.
    let (mut ws, _) = connect_bearer(addr, &pyjwt("unknown_kid")).expect("verified by the PEM key");
    assert_eq!(next_text(&mut ws), "Hello alice");
    let (rest, stderr) = wsauth.stop();
    assert_eq!(rest, Vec::<String>::new(), "only the listen line");
    for name in [
        "hs256",
        "rs256",
        "rs256_kid",
        "es256_kid",
        "eddsa_kid",
        "none",
    ] {
        assert_shows_no_part_of(&stderr, &pyjwt(name));
    }
}

#[test]
fn static_tokens_still_work_beside_the_keys() {
    let (wsauth, addr) = Wsauth::serve(
        &[
            "--jwt-secret-file",
            &fixture("hs256.secret"),
            "--token",
            "bob:Sekrit42",
        ],
        &[],
    );
    let (mut ws, _) = connect_bearer(addr, "Sekrit42").unwrap();
    assert_eq!(next_text(&mut ws), "Hello bob");
    drop(ws);
    wsauth.stop();
}

#[test]
fn a_short_hmac_secret_exits_1_naming_the_file() {
    let short = TempFile::new("short.secret", b"only-31-bytes-of-secret-here-xx\n");
    assert_fails_with_one_line_naming(
        &["--listen", "127.0.0.1:0", "--jwt-secret-file", short.path()],
        1,
        short.path(),
    );
}

#[test]
fn unreadable_or_malformed_key_files_exit_1_naming_the_file() {
    let garbage = TempFile::new("garbage.pem", b"not a key\n");
    let not_json = TempFile::new("not.json", b"{\"keys\": [");
    let missing = std::env::temp_dir().join("wsauth-jwt-cli-no-such-file");
    let missing = missing.to_str().unwrap();
    for (flag, path) in [
        ("--jwt-public-key", garbage.path()),
        ("--jwt-jwks", not_json.path()),
        ("--jwt-secret-file", missing),
        ("--jwt-public-key", missing),
        ("--jwt-jwks", missing),
    ] {
        assert_fails_with_one_line_naming(&["--listen", "127.0.0.1:0", flag, path], 1, path);
    }
}

#[test]
fn bad_jwt_flag_values_exit_2_with_one_line() {
    let secret = fixture("hs256.secret");
    for args in [
        &["--jwt-leeway", "soon", "--jwt-secret-file", &secret][..],
        &["--jwt-leeway", "-1", "--jwt-secret-file", &secret],
        &["--jwt-user-claim", "", "--jwt-secret-file", &secret],
        &["--jwt-issuer", "https://idp.example"],
        &["--jwt-audience", "wsauth"],
        &["--jwt-jwks"],
    ] {
        let run = finish(args);
        assert_eq!(run.code, Some(2), "{args:?}: {:?}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {:?}", run.stderr);
    }
}

#[test]
fn issuer_audience_user_claim_and_leeway_flags_apply() {
    let (wsauth, addr) = Wsauth::serve(
        &[
            "--jwt-secret-file",
            &fixture("hs256.secret"),
            "--jwt-issuer",
            "https://idp.example",
            "--jwt-audience",
            "wsauth",
            "--jwt-user-claim",
            "sub",
            "--jwt-leeway",
            "0",
        ],
        &[],
    );
    // iss and aud ["other", "wsauth"]: accepted.
    let (mut ws, _) = connect_bearer(addr, &pyjwt("aud_array")).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    // No iss, no aud: refused.
    assert_eq!(refused_status(connect_bearer(addr, &pyjwt("hs256"))), 401);
    drop(ws);
    wsauth.stop();
}

/// Rewrites `file` with `contents`, keeping its modification time.
fn rewrite_keeping_the_time(file: &TempFile, contents: &[u8]) {
    let modified = std::fs::metadata(&file.0).unwrap().modified().unwrap();
    std::fs::write(&file.0, contents).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file.0)
        .unwrap()
        .set_modified(modified)
        .unwrap();
}

#[test]
fn sighup_rereads_key_files_and_revokes_sessions_whose_token_no_longer_verifies() {
    let secret = std::fs::read(fixture("hs256.secret")).unwrap();
    let file = TempFile::new("hup.secret", &secret);
    let (wsauth, addr) = Wsauth::serve(&["--jwt-secret-file", file.path()], &[]);
    let token = pyjwt("hs256");
    let (mut alice, _) = connect_bearer(addr, &token).unwrap();
    assert_eq!(next_text(&mut alice), "Hello alice");
    // Same length, same modification time: only SIGHUP can notice.
    let mut rotated = secret.clone();
    rotated[0] ^= 1;
    rewrite_keeping_the_time(&file, &rotated);
    wsauth.signal(libc::SIGHUP);
    let signalled = Instant::now();
    assert_eq!(expect_close(&mut alice), (1008, "token revoked".into()));
    assert!(signalled.elapsed() < Duration::from_secs(2));
    assert_eq!(refused_status(connect_bearer(addr, &token)), 401);
    let (_, stderr) = wsauth.stop();
    assert_shows_no_part_of(&stderr, &token);
}

#[test]
fn a_key_file_that_fails_to_parse_logs_one_error_naming_it_and_keeps_the_keys() {
    let file = TempFile::new("typo.json", &std::fs::read(fixture("jwks.json")).unwrap());
    let (wsauth, addr) = Wsauth::serve(&["--jwt-jwks", file.path()], &[]);
    let token = pyjwt("rs256_kid");
    let (mut rita, _) = connect_bearer(addr, &token).unwrap();
    assert_eq!(next_text(&mut rita), "Hello rita");
    // Replaced at once, as `mv` does, so no check can see a half-written
    // file, and with a later modification time even where timestamps are
    // coarse.
    file.rewrite(b"{\"keys\": [ oops");
    // Meanwhile the once-a-second check reads the broken file (three chances
    // on a busy machine): the session stays.
    let deadline = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < deadline {
        rita.send(Message::text("ping")).unwrap();
        assert_eq!(next_text(&mut rita), "Message text was: ping");
        std::thread::sleep(Duration::from_millis(250));
    }
    let (mut again, _) = connect_bearer(addr, &token).unwrap();
    assert_eq!(next_text(&mut again), "Hello rita");
    drop((rita, again));
    let (_, stderr) = wsauth.stop();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(file.path()), "{stderr}");
}

#[test]
fn a_jwt_session_ends_with_1008_token_expired_after_exp_plus_leeway() {
    let (wsauth, addr) = Wsauth::serve(
        &[
            "--jwt-public-key",
            &fixture("rsa.pub.pem"),
            "--jwt-leeway",
            "2",
        ],
        &[],
    );
    let key = std::fs::read(fixture("rsa.key.pem")).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&key).unwrap();
    // Seconds enough to connect on a loaded machine, few enough for a quick test.
    let exp = wsauth::auth::unix_now() + 2;
    let claims = serde_json::json!({ "sub": "alice", "exp": exp });
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let (mut ws, _) = connect_bearer(addr, &token).unwrap();
    assert_eq!(next_text(&mut ws), "Hello alice");
    let close = loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => break Ok((frame.code.into(), frame.reason)),
            Ok(_) => continue,
            Err(e) => break Err(e),
        }
    };
    let (_, stderr) = wsauth.stop();
    let (code, reason): (u16, _) = close.unwrap_or_else(|e| panic!("{e}; server log: {stderr}"));
    assert_eq!((code, reason.as_str()), (1008, "token expired"));
    assert!(
        wsauth::auth::unix_now() > exp + 2,
        "closed after exp + leeway"
    );
    assert_shows_no_part_of(&stderr, &token);
}
