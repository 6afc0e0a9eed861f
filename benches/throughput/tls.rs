//! What TLS costs (`cargo bench --features tls`): a session with a full
//! handshake (ECDSA P-256), echo round trips over wss, and idle wss
//! sessions, each beside plain wsauth of the same run (in the table's
//! "raw TCP" column for the echo and idle rows, which say so).

use crate::idle::{Idle, idle_test};
use crate::load::compare;
use crate::plan::Plan;
use crate::scenarios::{SessionCase, run_echo};
use crate::servers::{Kind, ServerProc};
use crate::table::{Row, Summary, Unit};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// The bench's certificate (ECDSA P-256, for `localhost`), its files and a
/// client configuration that trusts it.
struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    client: Arc<ClientConfig>,
}

fn certificate() -> &'static Certificate {
    static CERTIFICATE: OnceLock<Certificate> = OnceLock::new();
    CERTIFICATE.get_or_init(|| {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("a certificate");
        let dir = std::env::temp_dir().join(format!("wsauth-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for the certificate");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).expect("cert.pem");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("key.pem");
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(made.cert.der().to_vec()))
            .expect("a root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Certificate {
            cert,
            key,
            client: Arc::new(client),
        }
    })
}

/// The flags that make wsauth serve the bench's certificate.
pub fn server_args() -> Vec<String> {
    let c = certificate();
    vec![
        "--tls-cert".into(),
        c.cert.display().to_string(),
        "--tls-key".into(),
        c.key.display().to_string(),
    ]
}

/// The client side of a TLS connection, its handshake done (a fresh one
/// each time: no session resumption, so every session costs a full one).
pub fn connect(mut tcp: TcpStream) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
    let name = ServerName::try_from("localhost").expect("a name");
    let mut conn = ClientConnection::new(certificate().client.clone(), name)
        .map_err(|e| format!("TLS client: {e}"))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| format!("TLS handshake: {e}"))?;
    }
    Ok(StreamOwned::new(conn, tcp))
}

/// Sessions over wss: the plain session of 16 clients, with a full TLS handshake.
pub fn session_case() -> SessionCase {
    let args = server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    SessionCase::variant(
        "tls_session16",
        "over TLS (full handshake, ECDSA P-256)",
        16,
    )
    .server_args(&args)
}

/// The echo groups over wss: (name, message size), at 16 connections.
const TLS_ECHO_GROUPS: [(&str, usize); 2] = [("tls_echo16", 32), ("tls_echo16k", 16 * 1024)];

/// Echo round trips over wss beside the same over ws on `plain`.
pub fn echo_rows(plan: &Plan, plain: &ServerProc, details: &mut Vec<String>) -> Vec<Row> {
    if !TLS_ECHO_GROUPS.iter().any(|(g, _)| plan.runs(g)) {
        return Vec::new();
    }
    let tls = ServerProc::wsauth(plan, &server_args());
    let mut rows = Vec::new();
    for (group, size) in TLS_ECHO_GROUPS {
        if !plan.runs(group) {
            continue;
        }
        let name = format!("wss/ws echo {size} B x16");
        let (t, p) = compare(plan, [&tls, plain], details, &name, |server| {
            run_echo(plan, server, 16, size)
        });
        rows.extend(tls_echo_rows(size, &t, &p));
    }
    rows
}

fn tls_echo_rows(size: usize, t: &Summary, p: &Summary) -> Vec<Row> {
    let label = if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    };
    let cpu = Row::new(
        format!("  wss echo {label} x16: server CPU per round trip (ws in the next column)"),
        Unit::Micros,
        t.cpu_ns(),
        Some(p.cpu_ns()),
    );
    let ratio = t.cpu_ns() / p.cpu_ns();
    vec![if size == 32 {
        cpu.target("<= 1.5x ws", ratio <= 1.5)
    } else {
        cpu
    }]
}

/// Idle sessions over wss, beside the plain ones of the same run.
pub fn idle_rows(plan: &Plan, plain: &Idle) -> Vec<Row> {
    let tls = idle_test(plan, Kind::WsauthTls);
    let mut rows: Vec<Row> = tls
        .points
        .iter()
        .enumerate()
        .map(|(i, &(n, per, _))| {
            let plain_per = plain.points.get(i).map_or(f64::NAN, |p| p.1);
            Row::new(
                format!("RSS per idle wss session, {n} sessions (ws in the next column)"),
                Unit::KiB,
                per,
                Some(plain_per),
            )
            .target("<= 2x ws", per <= 2.0 * plain_per)
        })
        .collect();
    rows.push(
        Row::new(
            format!("wss sessions held at once, {} wanted", tls.wanted),
            Unit::Count,
            tls.held as f64,
            Some(plain.held as f64),
        )
        .target(
            "all, no error",
            tls.held == tls.wanted && tls.first_error.is_none(),
        ),
    );
    if let Some(e) = &tls.first_error {
        println!("idle wss: first error: {e}");
    }
    rows
}
