//! Every input kept in the fuzz corpus (`fuzz/corpus/<target>/`) goes through
//! the same calls as under the fuzzer, so `cargo test` catches a regression on
//! any of them without cargo-fuzz or a nightly toolchain.

#[path = "../fuzz/exercise.rs"]
mod exercise;

use std::path::{Path, PathBuf};

/// The files of one target's corpus, sorted; fails when there are none.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

/// Runs `exercise` on every corpus file of `target`, naming the ones that panic.
fn replay(target: &str, exercise: fn(&[u8])) {
    let failed: Vec<String> = corpus(target)
        .into_iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            std::panic::catch_unwind(|| exercise(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "inputs that panic: {failed:#?}");
}

#[test]
fn every_request_head_in_the_corpus_parses_routes_and_yields_credentials_without_panicking() {
    replay("request_head", exercise::request_head);
}

#[test]
fn every_tokens_file_in_the_corpus_parses_without_panicking() {
    replay("tokens_file", exercise::tokens_file);
}

#[test]
fn every_proxy_header_in_the_corpus_parses_within_its_bounds_without_panicking() {
    replay("proxy_header", exercise::proxy_header);
}

#[test]
fn a_seed_proxy_header_yields_its_source() {
    // Guards the replay itself: the corpus really holds complete headers.
    use wsauth::proxy_protocol::{Progress, parse_proxy_header};
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/proxy_header/v2-tcp4"),
    )
    .unwrap();
    assert_eq!(
        parse_proxy_header(&data[..28]).unwrap(),
        Progress::Done(Some("192.0.2.1:56324".parse().unwrap()))
    );
}

#[test]
fn a_seed_upgrade_yields_its_bearer_token() {
    // Guards the replay itself: the corpus really reaches credential extraction.
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/request_head/upgrade-bearer"),
    )
    .unwrap();
    let head = wsauth::http::parse_head(&data).unwrap().unwrap();
    assert!(matches!(
        wsauth::router::route(&head),
        wsauth::router::Route::Upgrade
    ));
    use tungstenite::handshake::machine::TryParse;
    let (_, request) = tungstenite::handshake::server::Request::try_parse(&head.raw)
        .unwrap()
        .unwrap();
    assert_eq!(
        wsauth::credentials::extract_credentials(&request).token,
        wsauth::credentials::Presented::Token("alice-s3cret".into())
    );
}
