//! The test page in a real browser: headless Chromium, driven through
//! Playwright by `tests/browser/page.mjs`, against servers started in-process.
//!
//! These need node and Chromium (`apt-get install -y chromium`). Where either
//! is missing they print `SKIPPED` on stderr and pass, unless
//! `WSAUTH_BROWSER_TESTS=required` (as in `.ci/run`), which makes it a failure.
//! Screenshots of each state land in `target/browser-screenshots/`.

mod common;

use common::{ALICE, start};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use wsauth::{Config, Server};

/// The driver script's folder, with its package.json and node_modules.
const DRIVER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

/// What a scenario needs from the machine.
struct Browser {
    chromium: PathBuf,
}

/// Finds Chromium and node, and installs Playwright once if it is missing.
fn browser() -> Result<&'static Browser, &'static str> {
    static BROWSER: OnceLock<Result<Browser, String>> = OnceLock::new();
    BROWSER
        .get_or_init(find_browser)
        .as_ref()
        .map_err(String::as_str)
}

fn find_browser() -> Result<Browser, String> {
    let chromium = PathBuf::from(
        std::env::var_os("WSAUTH_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()),
    );
    if !chromium.exists() {
        return Err(format!(
            "no Chromium at {} (apt-get install -y chromium)",
            chromium.display()
        ));
    }
    succeeds(Command::new("node").arg("--version")).map_err(|e| format!("no node: {e}"))?;
    let driver = Path::new(DRIVER_DIR);
    if !driver.join("node_modules/playwright-core").is_dir() {
        // A fresh checkout: install the locked playwright-core (no browser download).
        succeeds(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(driver),
        )
        .map_err(|e| format!("`npm ci` in tests/browser failed: {e}"))?;
    }
    Ok(Browser { chromium })
}

/// Runs a command to its end; an error says why it did not succeed.
fn succeeds(command: &mut Command) -> Result<Output, String> {
    let output = command.output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `Some` when the browser is there; otherwise says so loudly, and fails when
/// browser tests are required.
fn browser_or_skip(test: &str) -> Option<&'static Browser> {
    match browser() {
        Ok(browser) => Some(browser),
        Err(why) if std::env::var("WSAUTH_BROWSER_TESTS").as_deref() == Ok("required") => {
            panic!("WSAUTH_BROWSER_TESTS=required, but {why}")
        }
        Err(why) => {
            // Straight to stderr: the test harness captures eprintln! of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: browser test {test}: {why}; set WSAUTH_BROWSER_TESTS=required to fail instead"
            );
            None
        }
    }
}

/// Which servers a scenario runs against.
#[derive(Clone, Copy)]
enum Servers {
    /// One server with the default settings: the page and its socket.
    Default,
    /// One server that also takes the token in the first message.
    FirstMessage,
    /// The page from one server, its socket to another that does not allow
    /// the page's origin.
    ForeignOrigin,
    /// The same, with the page's origin allowed by the socket's server.
    AllowedForeignOrigin,
    /// One default server over TLS: the page over https, its socket over wss.
    #[cfg(feature = "tls")]
    Tls,
}

impl Servers {
    /// Starts them; returns the page's server and, where it differs, the socket's.
    fn start(self) -> (Server, Option<Server>) {
        match self {
            Servers::Default => (start(Config::default()), None),
            Servers::FirstMessage => {
                let mut config = Config::default();
                config.first_message_auth = true;
                (start(config), None)
            }
            Servers::ForeignOrigin => (start(Config::default()), Some(start(Config::default()))),
            Servers::AllowedForeignOrigin => {
                let foreign = start(Config::default());
                let mut config = Config::default();
                config.allowed_origins = vec![format!("http://{}", foreign.local_addr())];
                (foreign, Some(start(config)))
            }
            #[cfg(feature = "tls")]
            Servers::Tls => {
                let mut config = Config::default();
                config.tls = Some(test_certificate());
                (start(config), None)
            }
        }
    }

    /// The page's scheme.
    fn scheme(self) -> &'static str {
        match self {
            #[cfg(feature = "tls")]
            Servers::Tls => "https",
            _ => "http",
        }
    }
}

/// A fresh self-signed certificate for 127.0.0.1, kept under the target
/// folder (the browser is told to accept it: `WSAUTH_IGNORE_CERT_ERRORS`).
#[cfg(feature = "tls")]
fn test_certificate() -> std::sync::Arc<wsauth::tls::TlsSettings> {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("browser-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a certificate folder");
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    std::sync::Arc::new(wsauth::tls::TlsSettings::load(&cert, &key).expect("the pair loads"))
}

/// One run of the driver script.
struct Scenario {
    /// `load`, `echo`, `refused` or `closed`: what the script does and checks.
    script: &'static str,
    /// Names the screenshot.
    name: &'static str,
    token: &'static str,
    /// `subprotocol`, `query` or `first-message`.
    method: &'static str,
    /// For `refused`, the HTTP status behind it; for `closed`, "CODE reason".
    expect: &'static str,
    servers: Servers,
}

/// Alice's token by subprotocol on one default server, connected and echoed:
/// what each scenario below changes.
const ECHO: Scenario = Scenario {
    script: "echo",
    name: "",
    token: ALICE,
    method: "subprotocol",
    expect: "",
    servers: Servers::Default,
};

impl Scenario {
    /// Runs the scenario in Chromium (or skips it) and asserts it passed.
    fn run(&self) {
        let Some(browser) = browser_or_skip(self.name) else {
            return;
        };
        let (page_server, socket_server) = self.servers.start();
        let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target directory")
            .join("browser-screenshots");
        std::fs::create_dir_all(&screenshots).expect("a screenshot folder");
        let mut command = Command::new("node");
        command
            .arg("page.mjs")
            .arg(self.script)
            .current_dir(DRIVER_DIR)
            .env("WSAUTH_CHROMIUM", &browser.chromium)
            .env(
                "WSAUTH_PAGE_URL",
                format!("{}://{}/", self.servers.scheme(), page_server.local_addr()),
            )
            .env(
                "WSAUTH_IGNORE_CERT_ERRORS",
                (self.servers.scheme() == "https").to_string(),
            )
            .env("WSAUTH_TOKEN", self.token)
            .env("WSAUTH_METHOD", self.method)
            .env("WSAUTH_EXPECT", self.expect)
            .env(
                "WSAUTH_SCREENSHOT",
                screenshots.join(format!("{}.png", self.name)),
            );
        if let Some(other) = &socket_server {
            command.env("WSAUTH_SOCKET_HOST", other.local_addr().to_string());
        }
        let output = command.output().expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.starts_with(&format!("PASS {}", self.script)),
            "browser scenario {} failed ({}):\n{stdout}\n{stderr}",
            self.name,
            output.status
        );
        println!("{stdout}");
    }
}

/// A `#[test]` for each row: its name states the rule, the scenario checks it.
macro_rules! scenarios {
    ($($(#[$doc:meta])* $test:ident: $scenario:expr,)*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $test() {
                $scenario.run();
            }
        )*
    };
}

scenarios! {
    page_loads_without_console_errors_or_csp_violations:
        Scenario { script: "load", name: "page-loaded", ..ECHO },
    token_by_subprotocol_connects_greets_and_echoes:
        Scenario { name: "subprotocol-connected", ..ECHO },
    token_by_query_connects_greets_and_echoes:
        Scenario { name: "query-connected", method: "query", ..ECHO },
    token_by_first_message_connects_greets_and_echoes: Scenario {
        name: "first-message-connected",
        method: "first-message",
        servers: Servers::FirstMessage,
        ..ECHO
    },
    wrong_token_by_subprotocol_shows_the_server_refused: Scenario {
        script: "refused",
        name: "subprotocol-wrong-token",
        token: "not-the-token",
        expect: "401",
        ..ECHO
    },
    wrong_token_by_query_shows_the_server_refused: Scenario {
        script: "refused",
        name: "query-wrong-token",
        token: "not-the-token",
        method: "query",
        expect: "401",
        ..ECHO
    },
    wrong_token_by_first_message_shows_close_1008_invalid_token: Scenario {
        script: "closed",
        name: "first-message-wrong-token",
        token: "not-the-token",
        method: "first-message",
        expect: "1008 invalid token",
        servers: Servers::FirstMessage,
    },
    first_message_without_the_server_flag_shows_the_server_refused: Scenario {
        script: "refused",
        name: "first-message-not-enabled",
        method: "first-message",
        expect: "401",
        ..ECHO
    },
    page_from_a_foreign_origin_is_refused: Scenario {
        script: "refused",
        name: "foreign-origin-refused",
        expect: "403",
        servers: Servers::ForeignOrigin,
        ..ECHO
    },
    /// The control for the test above: the same page, once its origin is allowed.
    page_from_an_allowed_foreign_origin_connects: Scenario {
        name: "foreign-origin-allowed",
        servers: Servers::AllowedForeignOrigin,
        ..ECHO
    },
}

#[cfg(feature = "tls")]
scenarios! {
    /// Its socket goes to wss: because the page came over https.
    page_over_https_loads_without_console_errors_or_csp_violations:
        Scenario { script: "load", name: "https-page-loaded", servers: Servers::Tls, ..ECHO },
    page_over_https_connects_over_wss_greets_and_echoes:
        Scenario { name: "https-subprotocol-connected", servers: Servers::Tls, ..ECHO },
    page_over_https_refuses_a_wrong_token_over_wss: Scenario {
        script: "refused",
        name: "https-wrong-token",
        token: "not-the-token",
        expect: "401",
        servers: Servers::Tls,
        ..ECHO
    },
}
