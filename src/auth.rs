//! Who may connect: the [`Authenticator`] trait, its default [`TokenStore`],
//! and [`Chain`] to ask several in order.

use crate::error::Error;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The user a token belongs to, and until when it is valid.
///
/// ```
/// let alice = wsauth::Identity { user: "alice".into(), expires: Some(4_000_000_000) };
/// assert_eq!(alice.user, "alice");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user name, used in the greeting and the logs.
    pub user: String,
    /// Unix seconds at which the token stops being valid; `None` never.
    pub expires: Option<u64>,
}

/// Decides whether a token may open a session, as FastAPI's `Depends` does for
/// a route. Implement it to plug in your own check:
///
/// ```
/// struct OnlyAlice;
/// impl wsauth::Authenticator for OnlyAlice {
///     fn authenticate(&self, token: &str) -> Option<wsauth::Identity> {
///         (token == "opensesame").then(|| wsauth::Identity { user: "alice".into(), expires: None })
///     }
/// }
/// ```
pub trait Authenticator: Send + Sync {
    /// The identity `token` stands for now, or `None` when it is unknown or
    /// expired. Called before every upgrade, and again for live sessions after
    /// a [`refresh`](Authenticator::refresh) that reported a change.
    fn authenticate(&self, token: &str) -> Option<Identity>;

    /// Re-reads the source of the tokens if it changed (always when `forced`);
    /// returns `true` when live sessions must be checked again. The server calls
    /// it about once a second, and forced on [`Server::reload`](crate::Server::reload).
    fn refresh(&self, forced: bool) -> bool {
        let _ = forced;
        false
    }

    /// Whether `token` is of the kind this authenticator decides on; a
    /// [`Chain`] hands a token to the first one that recognizes it. All by default.
    fn recognizes(&self, token: &str) -> bool {
        let _ = token;
        true
    }
}

/// Several authenticators in order: a token is decided by the first one that
/// [recognizes](Authenticator::recognizes) it, and by that one alone (so a
/// JWT that fails is never tried as a static token).
///
/// ```
/// use wsauth::{Authenticator, Chain, Grant, TokenStore};
/// let store = TokenStore::new(vec![Grant { user: "alice".into(), token: "s3cret".into(), expires: None }]);
/// let chain = Chain::new().with(store);
/// assert_eq!(chain.authenticate("s3cret").map(|i| i.user), Some("alice".into()));
/// ```
#[derive(Default)]
pub struct Chain {
    members: Vec<Box<dyn Authenticator>>,
}

impl Chain {
    /// An empty chain: it knows no token.
    pub fn new() -> Chain {
        Chain::default()
    }

    /// Adds `auth` after those already in the chain.
    pub fn with(mut self, auth: impl Authenticator + 'static) -> Chain {
        self.members.push(Box::new(auth));
        self
    }
}

impl Authenticator for Chain {
    fn authenticate(&self, token: &str) -> Option<Identity> {
        self.members
            .iter()
            .find(|auth| auth.recognizes(token))?
            .authenticate(token)
    }

    /// Refreshes every member; `true` when any of them changed.
    fn refresh(&self, forced: bool) -> bool {
        self.members
            .iter()
            .fold(false, |changed, auth| auth.refresh(forced) | changed)
    }

    fn recognizes(&self, token: &str) -> bool {
        self.members.iter().any(|auth| auth.recognizes(token))
    }
}

/// One accepted token: `USER:TOKEN[:EXPIRES]` in a tokens file. Its
/// `Debug` never shows the token.
///
/// ```
/// let grant = wsauth::Grant { user: "alice".into(), token: "s3cret".into(), expires: None };
/// assert!(!format!("{grant:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct Grant {
    /// Who the token belongs to.
    pub user: String,
    /// The secret itself.
    pub token: String,
    /// Unix seconds at which it stops being valid; `None` never.
    pub expires: Option<u64>,
}

// Written by hand so that `{:?}` never prints the secret.
impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("user", &self.user)
            .field("token", &"***")
            .field("expires", &self.expires)
            .finish()
    }
}

/// Tokens are printable ASCII without spaces or `:`.
pub fn is_valid_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The default [`Authenticator`]: tokens given up front (`--token`) plus,
/// optionally, a tokens file that is re-read whenever it changes.
///
/// ```
/// use wsauth::{Authenticator, Grant, TokenStore};
/// let store = TokenStore::new(vec![Grant { user: "alice".into(), token: "s3cret".into(), expires: None }]);
/// assert_eq!(store.authenticate("s3cret").map(|i| i.user), Some("alice".to_string()));
/// assert!(store.authenticate("guess").is_none());
/// ```
pub struct TokenStore {
    fixed: Vec<Grant>,
    file: Option<TokensFile>,
}

struct TokensFile {
    path: PathBuf,
    grants: RwLock<Vec<Grant>>,
    modified: Mutex<Option<SystemTime>>,
}

impl TokenStore {
    /// A store of fixed tokens.
    pub fn new(grants: Vec<Grant>) -> Self {
        TokenStore {
            fixed: grants,
            file: None,
        }
    }

    /// Adds a tokens file, read now; an unreadable or malformed file is an error.
    pub fn with_file(mut self, path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let modified = modified_time(&path);
        let grants = read_tokens_file(&path)?;
        self.file = Some(TokensFile {
            path,
            grants: RwLock::new(grants),
            modified: Mutex::new(modified),
        });
        Ok(self)
    }

    fn find(&self, token: &str, grants: &[Grant]) -> Option<Identity> {
        let now = unix_now();
        let mut found = None;
        // No early exit: the time taken must not tell which entry matched.
        for grant in self.fixed.iter().chain(grants) {
            let same = constant_time_eq(grant.token.as_bytes(), token.as_bytes());
            let live = grant.expires.is_none_or(|e| now < e);
            if same && live && found.is_none() {
                found = Some(Identity {
                    user: grant.user.clone(),
                    expires: grant.expires,
                });
            }
        }
        found
    }
}

impl Authenticator for TokenStore {
    fn authenticate(&self, token: &str) -> Option<Identity> {
        match &self.file {
            None => self.find(token, &[]),
            Some(file) => {
                let grants = file.grants.read().unwrap_or_else(|e| e.into_inner());
                self.find(token, &grants)
            }
        }
    }

    fn refresh(&self, forced: bool) -> bool {
        let Some(file) = &self.file else { return false };
        let modified = modified_time(&file.path);
        {
            let mut last = file.modified.lock().unwrap_or_else(|e| e.into_inner());
            if !forced && *last == modified {
                return false;
            }
            *last = modified;
        }
        match read_tokens_file(&file.path) {
            Ok(grants) => {
                log::info!("tokens file reloaded: {} tokens", grants.len());
                *file.grants.write().unwrap_or_else(|e| e.into_inner()) = grants;
                true
            }
            Err(e) => {
                log::error!("{e}; keeping the previous tokens");
                false
            }
        }
    }
}

fn modified_time(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads a tokens file: one `USER:TOKEN[:EXPIRES]` a line, `#` comments and
/// blank lines allowed.
pub fn read_tokens_file(path: &Path) -> Result<Vec<Grant>, Error> {
    let fail = |line, reason| Error::TokensFile {
        path: path.to_path_buf(),
        line,
        reason,
    };
    match std::fs::read(path) {
        Ok(text) => parse_tokens(&text).map_err(|(line, why)| fail(Some(line), why.to_string())),
        Err(e) => Err(fail(None, e.to_string())),
    }
}

/// Parses the text of a tokens file; an error names the line (counting from
/// 1, every line included) and what is wrong with it.
pub fn parse_tokens(text: &[u8]) -> Result<Vec<Grant>, (usize, &'static str)> {
    let mut grants = Vec::new();
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = std::str::from_utf8(raw).map_err(|_| (index + 1, "not UTF-8"))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        grants.push(parse_grant_line(line).map_err(|reason| (index + 1, reason))?);
    }
    Ok(grants)
}

fn parse_grant_line(line: &str) -> Result<Grant, &'static str> {
    let mut fields = line.split(':');
    let user = fields.next().unwrap_or_default();
    let token = fields.next().ok_or("expected USER:TOKEN[:EXPIRES]")?;
    let expires = match fields.next() {
        None => None,
        Some(e) => Some(e.parse().map_err(|_| "EXPIRES is not Unix seconds")?),
    };
    if fields.next().is_some() {
        return Err("too many ':' (expected USER:TOKEN[:EXPIRES])");
    }
    if user.is_empty() || user.chars().any(char::is_whitespace) {
        return Err("USER is empty or has spaces");
    }
    if !is_valid_token(token) {
        return Err("TOKEN must be printable ASCII without spaces or ':'");
    }
    Ok(Grant {
        user: user.to_string(),
        token: token.to_string(),
        expires,
    })
}

/// A random URL-safe token with 192 bits from the operating system.
pub fn random_token() -> Result<String, Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut token = String::with_capacity(32);
    for chunk in bytes.chunks(3) {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            token.push(ALPHABET[(n >> shift & 63) as usize] as char);
        }
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_file_errors_name_the_line() {
        let text = b"# comment\n\nalice:secret\nbob\n";
        assert_eq!(parse_tokens(text).expect_err("this input is refused").0, 4);
        assert_eq!(
            parse_tokens(b"a:b:c:d")
                .expect_err("this input is refused")
                .0,
            1
        );
        assert_eq!(
            parse_tokens(b"a:b:soon")
                .expect_err("this input is refused")
                .0,
            1
        );
        assert_eq!(
            parse_tokens(b"a:b\r\n\xff:c\n").expect_err("this input is refused"),
            (2, "not UTF-8")
        );
    }

    #[test]
    fn expired_tokens_are_unknown() {
        let store = TokenStore::new(vec![
            Grant {
                user: "old".into(),
                token: "t1".into(),
                expires: Some(unix_now() - 1),
            },
            Grant {
                user: "new".into(),
                token: "t2".into(),
                expires: Some(unix_now() + 60),
            },
        ]);
        assert_eq!(store.authenticate("t1"), None);
        assert_eq!(
            store.authenticate("t2").map(|i| i.user),
            Some("new".to_string())
        );
    }

    #[test]
    fn random_tokens_are_url_safe_and_differ() {
        let (a, b) = (
            random_token().expect("valid in this test"),
            random_token().expect("valid in this test"),
        );
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}
