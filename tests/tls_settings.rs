//! The certificate and key: loading, errors that name the file, reloading
//! for new connections while live ones go on.
#![cfg(feature = "tls")]

mod common;

use common::PATIENCE;
use common::tls::{Pair, client_config};
use common::tls_stream::*;
use rustls::pki_types::CertificateDer;
use std::io::Read;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use wsauth::tls::{TlsError, TlsSettings};

/// Keeps every log line, so a test can count the errors about its own files.
struct Captured(Mutex<Vec<(log::Level, String)>>);

impl log::Log for Captured {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let line = record.args().to_string();
        self.0.lock().unwrap().push((record.level(), line));
    }
    fn flush(&self) {}
}

fn captured() -> &'static Captured {
    static LOGGER: OnceLock<&'static Captured> = OnceLock::new();
    LOGGER.get_or_init(|| {
        let logger: &'static Captured = Box::leak(Box::new(Captured(Mutex::new(Vec::new()))));
        log::set_logger(logger).unwrap();
        log::set_max_level(log::LevelFilter::Info);
        logger
    })
}

fn errors_naming(path: &std::path::Path) -> usize {
    let name = path.display().to_string();
    let lines = captured().0.lock().unwrap();
    lines
        .iter()
        .filter(|(level, line)| *level == log::Level::Error && line.contains(&name))
        .count()
}

/// The certificate a fresh client is shown.
fn served_certificate(
    settings: &TlsSettings,
    root: &CertificateDer<'static>,
) -> CertificateDer<'static> {
    let (addr, server) = serve_one(settings, PATIENCE);
    let client = connect(addr, client_config(&[&rustls::version::TLS13], root));
    let _ = server.join();
    client.conn.peer_certificates().unwrap()[0].clone()
}

/// Moves a file's modification time, as a rewrite a second later would.
fn touch(path: &std::path::Path, seconds_later: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    let time = std::time::SystemTime::now() + Duration::from_secs(seconds_later);
    file.set_modified(time).unwrap();
}

#[test]
fn a_rewritten_pair_is_served_to_new_connections_and_live_ones_go_on() {
    let (settings, mut pair, old) = settings();
    assert!(!settings.refresh(false), "nothing changed yet");
    let (mut live, live_server, _) = {
        let (addr, server) = serve_one(&settings, PATIENCE);
        let client = connect(addr, client_config(&[&rustls::version::TLS13], &old));
        (client, server.join().unwrap().unwrap(), ())
    };
    pair.rewrite();
    let new = pair.der.clone();
    touch(&pair.cert, 5);
    touch(&pair.key, 5);
    assert!(settings.refresh(false), "changed files are reloaded");
    assert!(!settings.refresh(false), "and only once");
    assert_eq!(served_certificate(&settings, &new), new);
    live_server.write_all(b"old cert", soon()).unwrap();
    let mut buf = [0u8; 8];
    live.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"old cert");
}

#[test]
fn a_broken_pair_keeps_the_old_one_and_logs_one_error() {
    let _ = captured();
    let (settings, pair, old) = settings();
    std::fs::write(&pair.cert, "not a certificate\n").unwrap();
    touch(&pair.cert, 5);
    assert!(!settings.refresh(false));
    assert!(
        !settings.refresh(false),
        "the same broken files are not retried"
    );
    assert_eq!(errors_naming(&pair.cert), 1);
    assert_eq!(served_certificate(&settings, &old), old);
    assert!(!settings.refresh(true), "still broken when forced");
    assert_eq!(errors_naming(&pair.cert), 2);
}

#[test]
fn load_errors_name_the_file_on_one_line() {
    let pair = Pair::new();
    let missing = pair.dir().join("missing.pem");
    let e = TlsSettings::load(&missing, &pair.key).unwrap_err();
    assert!(
        matches!(&e, TlsError::File { path, .. } if *path == missing),
        "{e}"
    );
    assert!(e.to_string().contains("missing.pem"), "{e}");
    let e = TlsSettings::load(&pair.key, &pair.key).unwrap_err();
    assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    let e = TlsSettings::load(&pair.cert, &pair.cert).unwrap_err();
    assert!(e.to_string().contains("no PRIVATE KEY"), "{e}");
    let other = Pair::new();
    let e = TlsSettings::load(&pair.cert, &other.key).unwrap_err();
    assert!(
        matches!(&e, TlsError::Pair { key, .. } if *key == other.key),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'), "{e}");
}

/// Runs `openssl` with `args` in `dir`; `false` when it is not installed.
fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    match std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => {
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
            true
        }
        Err(_) => false,
    }
}

#[test]
fn sec1_and_pkcs1_keys_load() {
    let pair = Pair::new();
    let dir = pair.dir();
    if !openssl(dir, &["ec", "-in", "key.pem", "-out", "sec1.pem"]) {
        eprintln!("openssl not installed: SEC1 and PKCS#1 keys not tried");
        return;
    }
    let sec1 = std::fs::read_to_string(dir.join("sec1.pem")).unwrap();
    assert!(sec1.contains("BEGIN EC PRIVATE KEY"));
    TlsSettings::load(&pair.cert, &dir.join("sec1.pem")).expect("SEC1 key loads");
    let made = openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "rsa8.pem",
            "-out",
            "rsa.pem",
            "-subj",
            "/CN=localhost",
            "-days",
            "1",
        ],
    ) && openssl(
        dir,
        &["rsa", "-in", "rsa8.pem", "-traditional", "-out", "rsa1.pem"],
    );
    assert!(made);
    let pkcs1 = std::fs::read_to_string(dir.join("rsa1.pem")).unwrap();
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"));
    TlsSettings::load(&dir.join("rsa.pem"), &dir.join("rsa1.pem")).expect("PKCS#1 key loads");
}
