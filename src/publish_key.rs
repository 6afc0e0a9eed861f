//! The publish key: a file's bytes, re-read when the file changes.

use crate::auth::constant_time_eq;
use crate::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;

/// Fewest bytes a publish key may have.
pub const MIN_KEY_BYTES: usize = 32;

/// The key of `POST /publish` and `/disconnect` (`--publish-key-file`):
/// the file's bytes, one trailing newline removed, at least 32 bytes. Its
/// `Debug` never shows the key.
///
/// ```no_run
/// use std::sync::Arc;
/// let mut config = wsauth::Config::default();
/// config.publish_key = Some(Arc::new(wsauth::PublishKey::load("/etc/wsauth/publish.key")?));
/// # Ok::<(), wsauth::Error>(())
/// ```
pub struct PublishKey {
    path: PathBuf,
    key: RwLock<Vec<u8>>,
    modified: Mutex<Option<SystemTime>>,
}

impl fmt::Debug for PublishKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PublishKey {
    /// Reads the key file; an unreadable file or a key under 32 bytes is an
    /// error naming the file (never the key).
    pub fn load(path: impl AsRef<Path>) -> Result<PublishKey, Error> {
        let path = path.as_ref().to_path_buf();
        let modified = modified_time(&path);
        let key = read_key(&path)?;
        Ok(PublishKey {
            path,
            key: RwLock::new(key),
            modified: Mutex::new(modified),
        })
    }

    /// Whether `presented` is the key, compared in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let key = self.key.read().unwrap_or_else(|e| e.into_inner());
        constant_time_eq(&key, presented)
    }

    /// Re-reads the file if its modification time changed (always when
    /// `forced`); a file that fails to load keeps the key in force and logs
    /// one error. Returns whether a new key was loaded.
    pub fn refresh(&self, forced: bool) -> bool {
        let modified = modified_time(&self.path);
        {
            let mut last = self.modified.lock().unwrap_or_else(|e| e.into_inner());
            if !forced && *last == modified {
                return false;
            }
            *last = modified;
        }
        match read_key(&self.path) {
            Ok(key) => {
                *self.key.write().unwrap_or_else(|e| e.into_inner()) = key;
                log::info!("publish key file {} reloaded", self.path.display());
                true
            }
            Err(e) => {
                log::error!("{e}; keeping the previous key");
                false
            }
        }
    }
}

fn modified_time(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The key in a file: its bytes less one trailing newline, at least
/// [`MIN_KEY_BYTES`] of them.
fn read_key(path: &Path) -> Result<Vec<u8>, Error> {
    let fail = |reason: String| Error::PublishKeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    if bytes.len() < MIN_KEY_BYTES {
        return Err(fail(format!(
            "a publish key needs at least {MIN_KEY_BYTES} bytes, this one has {}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_loses_one_trailing_newline_and_needs_32_bytes() {
        let path = std::env::temp_dir().join(format!("wsauth-key-unit-{}", std::process::id()));
        std::fs::write(&path, [&[b'k'; 32][..], b"\n"].concat()).expect("written");
        let key = PublishKey::load(&path).expect("32 bytes and a newline");
        assert!(key.matches(&[b'k'; 32]));
        assert!(!key.matches(&[b'k'; 33]));
        std::fs::write(&path, [&[b'k'; 31][..], b"\n"].concat()).expect("written");
        let error = PublishKey::load(&path).expect_err("31 bytes are too few");
        assert!(!error.to_string().contains("kkkk"), "{error}");
        let _ = std::fs::remove_file(&path);
    }
}
