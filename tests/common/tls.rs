//! https and wss clients for the TLS tests: throwaway certificates (rcgen,
//! ECDSA P-256), a rustls client that trusts exactly one of them, and the
//! raw, tungstenite and `wsauth` binary helpers over it.

use super::{PATIENCE, grant, read_to_close};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;
use tungstenite::{WebSocket, http};
use wsauth::tls::TlsSettings;
use wsauth::{Config, Server, TokenStore};

/// A client's TLS stream.
pub type TlsClient = StreamOwned<ClientConnection, TcpStream>;
/// A WebSocket client over TLS.
pub type WssClient = WebSocket<TlsClient>;

/// What connecting over wss gives: a session and its 101, or tungstenite's error.
pub type WssConnected = Result<(WssClient, http::Response<Option<Vec<u8>>>), tungstenite::Error>;

/// TLS 1.3 and 1.2, as a browser offers them.
pub const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A fresh folder holding `cert.pem` and `key.pem`, removed afterwards.
pub struct Pair {
    dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The certificate now in the files.
    pub der: CertificateDer<'static>,
}

impl Pair {
    pub fn new() -> Pair {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wsauth-https-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut pair = Pair {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
            der: CertificateDer::from(Vec::new()),
        };
        pair.rewrite();
        pair
    }

    /// Writes a new self-signed certificate for `localhost` and 127.0.0.1,
    /// with its key; each file replaced at once (written aside, renamed).
    pub fn rewrite(&mut self) {
        self.rewrite_dated(None);
    }

    /// Like [`Pair::rewrite`], the new files keeping the old modification
    /// times, so that only a `SIGHUP` can tell the server.
    pub fn rewrite_keeping_times(&mut self) {
        let time = |path: &PathBuf| std::fs::metadata(path).unwrap().modified().unwrap();
        self.rewrite_dated(Some((time(&self.cert), time(&self.key))));
    }

    fn rewrite_dated(&mut self, times: Option<(SystemTime, SystemTime)>) {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let made = rcgen::generate_simple_self_signed(names).unwrap();
        let aside = self.dir.join("new.pem");
        let replace = |text: String, path: &PathBuf, time: Option<SystemTime>| {
            std::fs::write(&aside, text).unwrap();
            if let Some(time) = time {
                let file = std::fs::File::options().write(true).open(&aside).unwrap();
                file.set_modified(time).unwrap();
            } else {
                super::process::later_than(&aside, path);
            }
            std::fs::rename(&aside, path).unwrap();
        };
        replace(
            made.signing_key.serialize_pem(),
            &self.key,
            times.map(|t| t.1),
        );
        replace(made.cert.pem(), &self.cert, times.map(|t| t.0));
        self.der = made.cert.der().clone();
    }

    /// The folder the pair is in.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn settings(&self) -> Arc<TlsSettings> {
        Arc::new(TlsSettings::load(&self.cert, &self.key).expect("the pair loads"))
    }

    pub fn cert_arg(&self) -> &str {
        self.cert.to_str().unwrap()
    }

    pub fn key_arg(&self) -> &str {
        self.key.to_str().unwrap()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS server on 127.0.0.1:0 that knows alice and bob, with `config`.
pub fn start_tls(config: Config, pair: &Pair) -> Server {
    start_tls_echo(config, pair, wsauth::Echo::GREETING, wsauth::Echo::PREFIX)
}

/// Like [`start_tls`], with an echo that neither greets nor prefixes.
pub fn start_tls_quiet(config: Config, pair: &Pair) -> Server {
    start_tls_echo(config, pair, "", "")
}

/// Like [`start_tls`], with the echo's greeting and prefix of a test's choice.
pub fn start_tls_echo(mut config: Config, pair: &Pair, greeting: &str, prefix: &str) -> Server {
    config.tls = Some(pair.settings());
    let store = TokenStore::new(vec![
        grant("alice", super::ALICE, None),
        grant("bob", super::BOB, None),
    ]);
    let echo = wsauth::Echo::each_session(greeting, prefix);
    Server::start_with_handler("127.0.0.1:0", config, store, echo).expect("server starts")
}

/// A client configuration that trusts `root` only.
pub fn client_config(
    versions: &[&'static rustls::SupportedProtocolVersion],
    root: &CertificateDer<'static>,
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS connection whose handshake is complete, or the error it ended with.
pub fn try_tls_connect(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<TlsClient> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(client_config(versions, root), name).unwrap();
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(PATIENCE))?;
    let mut client = StreamOwned::new(conn, tcp);
    while client.conn.is_handshaking() {
        client.conn.complete_io(&mut client.sock)?;
    }
    Ok(client)
}

/// A TLS 1.3 or 1.2 connection trusting `root`.
pub fn tls_connect(addr: SocketAddr, root: &CertificateDer<'static>) -> TlsClient {
    try_tls_connect(addr, root, BOTH).expect("the TLS handshake completes")
}

/// Sends a raw request over TLS and reads the answer until the server closes.
pub fn https_raw(addr: SocketAddr, root: &CertificateDer<'static>, request: &str) -> String {
    let mut client = tls_connect(addr, root);
    client.write_all(request.as_bytes()).unwrap();
    read_to_close(&mut client)
}

/// `GET path` over https, with extra header lines.
pub fn https_get(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    path: &str,
    headers: &[&str],
) -> String {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    https_raw(addr, root, &request)
}

/// Opens a WebSocket over TLS to `target` with extra headers.
pub fn wss_connect(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    target: &str,
    headers: &[(&str, &str)],
) -> WssConnected {
    super::handshake(
        &format!("wss://{addr}{target}"),
        headers,
        tls_connect(addr, root),
    )
}

/// The certificate a new connection is served.
pub fn served_certificate(addr: SocketAddr) -> CertificateDer<'static> {
    // Trusting nothing would stop the handshake before the certificate is
    // seen; any root does, since the check comes after the Certificate message.
    let name = ServerName::try_from("localhost").unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(BOTH)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate))
        .with_no_client_auth();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut client = StreamOwned::new(conn, tcp);
    while client.conn.is_handshaking() {
        client.conn.complete_io(&mut client.sock).unwrap();
    }
    client.conn.peer_certificates().unwrap()[0].clone()
}

/// A verifier that accepts any certificate: only to look at what is served.
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        algorithms().supported_schemes()
    }
}

fn algorithms() -> rustls::crypto::WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// A ClientHello that offers TLS 1.1 only (no supported_versions extension),
/// otherwise acceptable: cipher suites, groups and signature schemes that
/// the server has.
pub fn tls11_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02];
    hello.extend([0x42; 32]);
    hello.push(0);
    hello.extend([0x00, 0x06, 0xc0, 0x2b, 0xc0, 0x09, 0xc0, 0x13]);
    hello.extend([0x01, 0x00]);
    let extensions = [
        &[0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04][..],
        &[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x1d],
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00],
    ]
    .concat();
    hello.extend([0x00, extensions.len() as u8]);
    hello.extend(extensions);
    let mut handshake = vec![0x01, 0x00, 0x00, hello.len() as u8];
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8];
    record.extend(handshake);
    record
}

/// Alice over wss with the Authorization header, greeting read.
pub fn wss_alice(server: &Server, pair: &Pair) -> WssClient {
    let bearer = format!("Bearer {}", super::ALICE);
    let (mut ws, _) = wss_connect(
        server.local_addr(),
        &pair.der,
        "/ws",
        &[("Authorization", &bearer)],
    )
    .expect("alice connects over wss");
    assert_eq!(super::next_text(&mut ws), "Hello alice");
    ws
}

pub fn wss_echo(ws: &mut WssClient, text: &str) {
    ws.send(tungstenite::Message::text(text)).unwrap();
    assert_eq!(super::next_text(ws), format!("Message text was: {text}"));
}

pub fn refused_https(result: WssConnected) -> String {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            let mut text = format!("{}\r\n", response.status().as_u16());
            for (name, value) in response.headers() {
                text.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
            }
            text + "\r\n" + &String::from_utf8_lossy(&body)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, got a session"),
    }
}
