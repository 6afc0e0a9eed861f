//! The certificate and key in force: loaded from PEM files at start, and
//! swapped for new connections when the files change.

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

/// Why a certificate and key could not be loaded. Its `Display` is one line
/// that names the file at fault and never shows key material.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read, or holds no usable PEM item.
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Both files read, but rustls refused the pair (the key does not belong
    /// to the certificate, or is of a kind it cannot sign with).
    Pair {
        /// The key file, named since the key is what is refused.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::File { path, reason } => write!(f, "TLS file {}: {reason}", path.display()),
            TlsError::Pair { key, reason } => {
                write!(f, "TLS key {}: {reason}", key.display())
            }
        }
    }
}

impl std::error::Error for TlsError {}

/// The modification times of the certificate and key files, as last seen.
type Stamps = (Option<SystemTime>, Option<SystemTime>);

/// Where the certificate and key come from, and the configuration built from
/// them that new connections get.
///
/// ```no_run
/// use std::path::Path;
/// let tls = wsauth::tls::TlsSettings::load(Path::new("cert.pem"), Path::new("key.pem"))?;
/// let config = tls.current(); // for the next connection
/// # Ok::<(), wsauth::tls::TlsError>(())
/// ```
#[derive(Debug)]
pub struct TlsSettings {
    cert_path: PathBuf,
    key_path: PathBuf,
    /// Held for a whole reload, so two reloads never race and log twice.
    stamps: Mutex<Stamps>,
    config: RwLock<Arc<ServerConfig>>,
}

impl TlsSettings {
    /// Loads the certificate chain (PEM, leaf first) and the private key
    /// (PEM: PKCS#8, PKCS#1 or SEC1) into a configuration for TLS 1.2 and
    /// 1.3 with ALPN `http/1.1`.
    pub fn load(cert: &Path, key: &Path) -> Result<TlsSettings, TlsError> {
        let stamps = modification_times(cert, key);
        let config = build_config(cert, key)?;
        Ok(TlsSettings {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            stamps: Mutex::new(stamps),
            config: RwLock::new(config),
        })
    }

    /// The configuration for a connection accepted now.
    pub fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Re-reads both files if either one's modification time changed since
    /// the last look (or always, when `forced`, as on `SIGHUP`) and swaps
    /// the new pair in for new connections. Returns whether it did. A pair
    /// that fails to load keeps the old one in force and logs one error;
    /// the same broken files are not reported again until they change.
    pub fn refresh(&self, forced: bool) -> bool {
        let mut seen = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
        let now = modification_times(&self.cert_path, &self.key_path);
        if !forced && now == *seen {
            return false;
        }
        *seen = now;
        match build_config(&self.cert_path, &self.key_path) {
            Ok(config) => {
                *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
                log::info!("TLS certificate reloaded from {}", self.cert_path.display());
                true
            }
            Err(e) => {
                log::error!("{e}; the certificate loaded before stays in force");
                false
            }
        }
    }
}

/// Both files' modification times; `None` for a file that cannot be looked at.
fn modification_times(cert: &Path, key: &Path) -> Stamps {
    let time = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    (time(cert), time(key))
}

/// Reads the pair and builds a server configuration from it.
fn build_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_chain(cert)?;
    let private_key = read_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let refused = |e: rustls::Error| TlsError::Pair {
        key: key.to_path_buf(),
        reason: e.to_string(),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(refused)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(refused)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificates of a PEM file, leaf first; at least one.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(path, "no CERTIFICATE in it".into()));
    }
    Ok(chain)
}

/// The first private key of a PEM file, of any of the three kinds.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            file_error(path, "no PRIVATE KEY (PKCS#8, PKCS#1 or SEC1) in it".into())
        }
        e => file_error(path, e.to_string()),
    })
}

/// The whole file, or an error naming it.
fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| file_error(path, e.to_string()))
}

fn file_error(path: &Path, reason: String) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason,
    }
}
