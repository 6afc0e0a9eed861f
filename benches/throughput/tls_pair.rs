//! The bench's TLS certificate (feature `tls`): the flags that make wsauth
//! serve it, and a client that trusts it. Below the servers and the clients,
//! which both need it.

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
