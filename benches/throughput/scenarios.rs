//! The scenarios under load: complete sessions, rejections, echo round trips.
//! A new kind of session row (another credential, other server flags) is one
//! more [`SessionCase`] in [`session_cases`].

use crate::clients::{Credential, bearer, echo, echo_as, finish, open, open_with, ws_upgrade};
use crate::load::{Run, compare, drive};
use crate::plan::Plan;
use crate::servers::{ServerProc, TOKEN, WRONG_TOKEN};
use crate::table::Summary;
use tungstenite::Bytes;

/// One group of session rows: how wsauth is started for it and what each of
/// its clients sends to authenticate.
pub struct SessionCase {
    /// The group's name for `--only`; start it with `session` so that
    /// `--only session` selects it too.
    pub group: String,
    /// Names the variant in the table (`with an HS256 JWT`); none for the plain rows.
    pub label: Option<String>,
    /// Clients at once.
    pub clients: usize,
    /// Added to wsauth's command line; a case with any gets a server of its own.
    server_args: Vec<String>,
    /// The headers of each upgrade.
    credential: Credential,
    /// The most server CPU per session that meets the target, in nanoseconds.
    pub cpu_target_ns: Option<f64>,
    /// Whether the server greets (the echo does; `--exec` does not).
    greeted: bool,
    /// Whether the echo is a text message (binary otherwise).
    text: bool,
}

impl SessionCase {
    /// The plain session: the bench's token as a bearer header, at most 90 us
    /// of server CPU per session.
    pub fn plain(clients: usize) -> SessionCase {
        SessionCase {
            group: format!("session{clients}"),
            label: None,
            clients,
            server_args: Vec::new(),
            credential: bearer(TOKEN),
            cpu_target_ns: Some(90_000.0),
            greeted: true,
            text: false,
        }
    }
}

#[allow(dead_code, reason = "the extension point for new session rows")]
impl SessionCase {
    /// A variant named `label` in the table, selected by `--only group`; the
    /// bench's token and no target until the setters below change them.
    pub fn variant(group: &str, label: &str, clients: usize) -> SessionCase {
        SessionCase {
            group: group.to_string(),
            label: Some(label.to_string()),
            cpu_target_ns: None,
            ..SessionCase::plain(clients)
        }
    }

    /// Arguments added to wsauth's command line after the bench's own.
    pub fn server_args(mut self, args: &[&str]) -> SessionCase {
        self.server_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// What the clients send instead of the bench's token (e.g. [`bearer`]).
    pub fn credential(mut self, credential: Credential) -> SessionCase {
        self.credential = credential;
        self
    }

    /// A server that sends no greeting and echoes text only (`--exec cat`).
    pub fn text_without_greeting(mut self) -> SessionCase {
        self.greeted = false;
        self.text = true;
        self
    }

    /// A target for server CPU per session, in microseconds.
    pub fn cpu_target_us(mut self, most: f64) -> SessionCase {
        self.cpu_target_ns = Some(most * 1e3);
        self
    }
}

impl SessionCase {
    /// The scenario's name in the details.
    fn detail_name(&self) -> String {
        match &self.label {
            None => format!("session x{}", self.clients),
            Some(label) => format!("session {label} x{}", self.clients),
        }
    }

    /// Runs the case on wsauth (`shared`, or its own when it has arguments)
    /// and on the floor.
    pub fn measure(
        &self,
        plan: &Plan,
        [shared, raw]: [&ServerProc; 2],
        details: &mut Vec<String>,
    ) -> (Summary, Summary) {
        let own =
            (!self.server_args.is_empty()).then(|| ServerProc::wsauth(plan, &self.server_args));
        let wsauth = own.as_ref().unwrap_or(shared);
        compare(
            plan,
            [wsauth, raw],
            details,
            &self.detail_name(),
            |server| run_sessions(plan, server, self),
        )
    }
}

/// Every group of session rows, in the table's order. A variant is a few
/// lines more, for instance:
///
/// ```text
/// SessionCase::variant("session_jwt16", "with an HS256 JWT", 16)
///     .server_args(&["--jwt-hs256-secret-file", "bench/secret"])
///     .credential(Box::new(|| vec![("Authorization".into(), format!("Bearer {}", hs256_jwt()))])),
/// ```
pub fn session_cases() -> Vec<SessionCase> {
    vec![
        SessionCase::plain(1),
        SessionCase::plain(16),
        // The publish API enabled: the upgrade path must cost what it did.
        SessionCase::variant("session_publish16", "with --publish-key-file", 16)
            .server_args(&["--publish-key-file", crate::publish::key_file()]),
        // A process per session: what `--exec cat` adds to a session.
        SessionCase::variant("session_exec16", "with --exec cat", 16)
            .server_args(&["--exec", "cat"])
            .text_without_greeting(),
        // wss: a full TLS handshake (ECDSA P-256) per session.
        #[cfg(feature = "tls")]
        tls_session_case(),
    ]
    .into_iter()
    .chain(jwt_cases())
    .collect()
}

/// Sessions opened with JWTs minted by PyJWT (the test fixtures), one case
/// per algorithm, each against the key file that verifies it; run with
/// `cargo bench --features jwt`.
#[cfg(feature = "jwt")]
fn jwt_cases() -> Vec<SessionCase> {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt/");
    [
        (
            "hs256",
            "HS256",
            "--jwt-secret-file",
            "hs256.secret",
            "pyjwt_hs256.jwt",
        ),
        (
            "rs256",
            "RS256",
            "--jwt-public-key",
            "rsa.pub.pem",
            "pyjwt_rs256.jwt",
        ),
        (
            "es256",
            "ES256",
            "--jwt-public-key",
            "ec256.pub.pem",
            "pyjwt_es256_kid.jwt",
        ),
        (
            "eddsa",
            "EdDSA",
            "--jwt-public-key",
            "ed25519.pub.pem",
            "pyjwt_eddsa_kid.jwt",
        ),
    ]
    .into_iter()
    .map(|(group, alg, flag, key, token)| {
        let token = std::fs::read_to_string(format!("{fixtures}{token}"))
            .expect("the JWT fixtures")
            .trim()
            .to_string();
        SessionCase::variant(
            &format!("session_jwt_{group}16"),
            &format!("with a {alg} JWT"),
            16,
        )
        .server_args(&[flag, &format!("{fixtures}{key}")])
        .credential(bearer(&token))
    })
    .collect()
}

/// Without the feature, no JWT rows.
#[cfg(not(feature = "jwt"))]
fn jwt_cases() -> Vec<SessionCase> {
    Vec::new()
}

/// Complete sessions: connect, upgrade with the case's credential, greeting,
/// one 32-byte echo, close. The floor: connect, one 32-byte echo, close.
fn run_sessions(plan: &Plan, server: &ServerProc, case: &SessionCase) -> Run {
    let payload = Bytes::from(vec![b's'; 32]);
    let (kind, addr) = (server.kind, server.addr);
    drive(
        plan,
        server,
        case.clients,
        |_| Ok(()),
        |()| {
            let mut conn = open_with(kind, addr, &case.credential, 32, case.greeted)?;
            echo_as(&mut conn, &payload, case.text)?;
            finish(conn)
        },
    )
}

/// Upgrades with a wrong token, answered 401.
pub fn run_rejections(plan: &Plan, server: &ServerProc, clients: usize) -> Run {
    let addr = server.addr;
    let wrong = bearer(WRONG_TOKEN);
    drive(
        plan,
        server,
        clients,
        |_| Ok(()),
        |()| match ws_upgrade(server.kind, addr, &wrong, 32)? {
            Err(401) => Ok(()),
            Err(status) => Err(format!("expected 401, got {status}")),
            Ok(_) => Err("a wrong token was accepted".into()),
        },
    )
}

/// Round trips of `size`-byte messages on `conns` open connections.
pub fn run_echo(plan: &Plan, server: &ServerProc, conns: usize, size: usize) -> Run {
    let payload = Bytes::from(vec![b'e'; size]);
    let (kind, addr) = (server.kind, server.addr);
    drive(
        plan,
        server,
        conns,
        |_| open(kind, addr, size),
        |conn| echo(conn, &payload),
    )
}

#[cfg(feature = "tls")]
/// Sessions over wss: the plain session of 16 clients, with a full TLS handshake.
fn tls_session_case() -> SessionCase {
    let args = crate::tls_pair::server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    SessionCase::variant(
        "tls_session16",
        "over TLS (full handshake, ECDSA P-256)",
        16,
    )
    .server_args(&args)
}
