//! What each fuzz target does with its input, for `fuzz/` and for the
//! corpus replay below: the only way in to the parsers from outside the
//! crate, and only in a fuzzing build (`--cfg fuzzing`, which cargo-fuzz
//! sets). A plain `cargo test` replays the corpus through the very same
//! calls, so an input the fuzzer once broke stays fixed.

use crate::credentials::extract_credentials;
use crate::http::{RequestHead, parse_head};
use crate::router::{Paths, route_with};
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::Request;

/// Every optional path on, so that the fuzzer reaches each.
const ALL_PATHS: Paths = Paths {
    metrics: true,
    publish: true,
};

/// Parses `data` as a request head; when that succeeds, routes it and takes
/// its credentials apart as the upgrade would.
pub fn request_head(data: &[u8]) {
    let Ok(Some(head)) = parse_head(data) else {
        return;
    };
    assert!(
        data.starts_with(&head.raw),
        "the head is a prefix of the input"
    );
    assert_eq!(head.raw.len() + head.rest.len(), data.len());
    assert!(
        head.raw.ends_with(b"\n"),
        "a complete head ends with its blank line"
    );
    assert!(head.target.starts_with(head.path()));

    let _ = route_with(&head, ALL_PATHS);
    let redacted = crate::handshake::redact_target(&head.target);
    assert!(redacted.starts_with(head.target.split('?').next().unwrap_or_default()));

    // The request any method would give, and the one tungstenite builds for a GET.
    if let Some(request) = as_request(&head) {
        let _ = extract_credentials(&request);
    }
    if let Ok(Some((_, request))) = Request::try_parse(&head.raw) {
        let _ = extract_credentials(&request);
    }
}

/// Parses `data` as a tokens file; every grant it yields must be usable, and
/// an error must name one of its lines.
pub fn tokens_file(data: &[u8]) {
    match crate::auth::parse_tokens(data) {
        Ok(grants) => {
            for grant in grants {
                assert!(crate::auth::is_valid_token(&grant.token));
                assert!(!grant.user.is_empty());
            }
        }
        Err((line, _)) => {
            let lines = data.split(|&b| b == b'\n').count();
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
        }
    }
    let _ = crate::credentials::percent_decode(&String::from_utf8_lossy(data));
}

/// An `http::Request` with the head's method, target and headers, or `None`
/// when `http` refuses one of them.
fn as_request(head: &RequestHead) -> Option<Request> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed.parse(&head.raw).ok()?;
    let mut builder = Request::builder()
        .method(head.method.as_str())
        .uri(head.target.as_str());
    for header in parsed.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    builder.body(()).ok()
}

/// Feeds `data` to the PROXY header parser the way the reader does, a piece
/// at a time as it asks; it must never ask for more than a header can hold,
/// and a complete header must parse the same when given whole.
pub fn proxy_header(data: &[u8]) {
    use crate::proxy_protocol::{
        MAX_V1_BYTES, MAX_V2_PAYLOAD, Progress, V2_SIGNATURE, parse_proxy_header,
    };
    let mut len = 0;
    loop {
        match parse_proxy_header(&data[..len]) {
            Ok(Progress::Need(more)) => {
                assert!(more >= 1, "asks for at least a byte");
                assert!(
                    len + more <= V2_SIGNATURE.len() + 4 + MAX_V2_PAYLOAD.max(MAX_V1_BYTES),
                    "asks for {more} after {len}"
                );
                if len + more > data.len() {
                    return;
                }
                len += more;
            }
            Ok(Progress::Done(source)) => {
                let again = parse_proxy_header(&data[..len]).ok();
                assert_eq!(again, Some(Progress::Done(source)));
                return;
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod corpus {
    use std::path::{Path, PathBuf};

    /// The files of one target's corpus, sorted; fails when there are none.
    fn corpus(target: &str) -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a corpus entry").path())
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
                let data = std::fs::read(path).expect("a readable corpus file");
                std::panic::catch_unwind(|| exercise(&data)).is_err()
            })
            .map(|path| path.display().to_string())
            .collect();
        assert!(failed.is_empty(), "inputs that panic: {failed:#?}");
    }

    #[test]
    fn every_request_head_in_the_corpus_parses_routes_and_yields_credentials_without_panicking() {
        replay("request_head", super::request_head);
    }

    #[test]
    fn every_tokens_file_in_the_corpus_parses_without_panicking() {
        replay("tokens_file", super::tokens_file);
    }

    #[test]
    fn every_proxy_header_in_the_corpus_parses_within_its_bounds_without_panicking() {
        replay("proxy_header", super::proxy_header);
    }

    #[test]
    fn a_seed_proxy_header_yields_its_source() {
        // Guards the replay itself: the corpus really holds complete headers.
        use crate::proxy_protocol::{Progress, parse_proxy_header};
        let data = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/proxy_header/v2-tcp4"),
        )
        .expect("the v2 seed");
        assert_eq!(
            parse_proxy_header(&data[..28]).expect("a valid header"),
            Progress::Done("192.0.2.1:56324".parse().ok())
        );
    }

    #[test]
    fn a_seed_upgrade_yields_its_bearer_token() {
        // Guards the replay itself: the corpus really reaches credential extraction.
        let data = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/request_head/upgrade-bearer"),
        )
        .expect("the upgrade seed");
        let head = crate::http::parse_head(&data)
            .expect("a valid head")
            .expect("a complete head");
        assert!(matches!(
            super::route_with(&head, super::ALL_PATHS),
            crate::router::Route::Upgrade
        ));
        use tungstenite::handshake::machine::TryParse;
        let (_, request) = tungstenite::handshake::server::Request::try_parse(&head.raw)
            .expect("tungstenite parses it")
            .expect("a whole request");
        assert_eq!(
            crate::credentials::extract_credentials(&request).token,
            crate::credentials::Presented::Token("alice-s3cret".into())
        );
    }
}
