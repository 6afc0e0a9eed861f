//! `--tls-cert` and `--tls-key` (feature `tls`) into the config.

use super::Options;
use std::sync::Arc;
use wsauth::tls::TlsSettings;

impl Options {
    /// With `--tls-cert` and `--tls-key`, loads the pair into the config (an
    /// error names the file); returns the scheme to print.
    pub fn use_tls(&mut self) -> Result<&'static str, String> {
        let Some((cert, key)) = self.tls.take() else {
            return Ok("http");
        };
        let tls = TlsSettings::load(&cert, &key).map_err(|e| e.to_string())?;
        self.config.tls = Some(Arc::new(tls));
        Ok("https")
    }
}
