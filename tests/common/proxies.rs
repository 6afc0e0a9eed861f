//! nginx and HAProxy in front of test servers, run with the very files in
//! `deploy/`: only the placeholders `@LISTEN@`, `@UPSTREAM1@` and
//! `@UPSTREAM2@` are filled in. Each runs as an ordinary foreground child
//! on a free loopback port, everything it writes under a temporary folder,
//! and is stopped by its PID when dropped.
//!
//! Where the program is missing, [`Proxy::start`] prints `SKIPPED` on
//! stderr and returns `None`, unless `WSAUTH_PROXY_TESTS=required` (as in
//! `.ci/run`), which makes it a failure. `apt-get install -y nginx haproxy`.

use super::PATIENCE;
use std::fs::{self, File};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Which proxy, with which file of `deploy/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    /// `deploy/nginx/wsauth.conf`, under `deploy/nginx/nginx-test.conf`.
    Nginx,
    /// `deploy/haproxy/haproxy.cfg` (HTTP mode, `X-Forwarded-For`).
    Haproxy,
    /// `deploy/haproxy/haproxy-proxy-protocol.cfg` (TCP mode, PROXY v2): for
    /// servers that expect a PROXY header.
    HaproxyProxyProtocol,
}

impl ProxyKind {
    /// The program's name.
    pub fn program(self) -> &'static str {
        match self {
            ProxyKind::Nginx => "nginx",
            ProxyKind::Haproxy | ProxyKind::HaproxyProxyProtocol => "haproxy",
        }
    }

    /// The `deploy/` file with the placeholders.
    fn template(self) -> &'static str {
        match self {
            ProxyKind::Nginx => "deploy/nginx/wsauth.conf",
            ProxyKind::Haproxy => "deploy/haproxy/haproxy.cfg",
            ProxyKind::HaproxyProxyProtocol => "deploy/haproxy/haproxy-proxy-protocol.cfg",
        }
    }
}

/// A running proxy; stopped (SIGTERM, then SIGKILL) and cleaned up on drop.
pub struct Proxy {
    kind: ProxyKind,
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Proxy {
    /// Starts `kind` on a free loopback port in front of `upstreams` and waits
    /// until it accepts connections. `None` (after a loud `SKIPPED` line) when
    /// the program is not installed and proxy tests are not required; `test`
    /// names the caller in that line.
    ///
    /// ```ignore
    /// let (one, two) = (common::start(Config::default()), common::start(Config::default()));
    /// let Some(nginx) = Proxy::start(ProxyKind::Nginx, [one.local_addr(), two.local_addr()], "page")
    /// else { return };
    /// let answer = common::get(nginx.addr(), "/", &[]);
    /// ```
    pub fn start(kind: ProxyKind, upstreams: [SocketAddr; 2], test: &str) -> Option<Proxy> {
        let program = program_or_skip(kind.program(), test)?;
        // A free port can be taken by someone else before the proxy binds it: try again.
        let mut last_failure = String::new();
        for _ in 0..3 {
            match launch(kind, &program, upstreams) {
                Ok(proxy) => return Some(proxy),
                Err(failure) => last_failure = failure,
            }
        }
        panic!("{} did not start: {last_failure}", kind.program());
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the proxy wrote on stderr so far (its error and access log).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// Which proxy this is.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// SIGTERM (nginx and HAProxy then stop their workers too), SIGKILL if it
/// is still running after a few seconds; always reaped.
fn stop(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill only sends a signal to our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The program's path; `None` after a `SKIPPED` line if it is missing and
/// proxy tests are not required; a panic if they are.
fn program_or_skip(name: &str, test: &str) -> Option<PathBuf> {
    if let Some(path) = find_program(name) {
        return Some(path);
    }
    let why = format!("no {name} in PATH or /usr/sbin (apt-get install -y nginx haproxy)");
    if std::env::var("WSAUTH_PROXY_TESTS").as_deref() == Ok("required") {
        panic!("WSAUTH_PROXY_TESTS=required, but {why}");
    }
    // Straight to stderr: the test harness captures eprintln! of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: proxy test {test}: {why}; set WSAUTH_PROXY_TESTS=required to fail instead"
    );
    None
}

/// `name` in `PATH`, or in the sbin folders an ordinary user's `PATH` lacks.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// One attempt: a folder, the filled-in files, the child, the wait.
fn launch(kind: ProxyKind, program: &Path, upstreams: [SocketAddr; 2]) -> Result<Proxy, String> {
    let addr = free_port();
    let dir = fresh_dir(kind);
    let config = write_config(kind, &dir, addr, upstreams);
    let mut command = Command::new(program);
    match kind {
        ProxyKind::Nginx => {
            let prefix = format!("{}/", dir.display());
            command.args(["-p", &prefix, "-c"]).arg(&config).args([
                "-e",
                "stderr",
                "-g",
                "daemon off;",
            ]);
        }
        ProxyKind::Haproxy | ProxyKind::HaproxyProxyProtocol => {
            command.arg("-db").arg("-f").arg(&config);
        }
    }
    let log = File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
    let child = command
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    let mut proxy = Proxy {
        kind,
        child,
        addr,
        dir,
    };
    wait_until_accepting(&mut proxy).map(|()| proxy)
}

/// Connects until the proxy accepts; fails if it exits or [`PATIENCE`] passes.
fn wait_until_accepting(proxy: &mut Proxy) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if TcpStream::connect_timeout(&proxy.addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = proxy.child.try_wait() {
            return Err(format!("it exited with {status}:\n{}", proxy.log()));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "not accepting on {} after {PATIENCE:?}:\n{}",
                proxy.addr,
                proxy.log()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback address with a port nobody listens on right now.
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// An empty folder of its own under the system's temporary folder.
fn fresh_dir(kind: ProxyKind) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wsauth-{}-{}-{}",
        kind.program(),
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("tmp")).expect("a temporary folder");
    dir
}

/// Writes the deploy file with its placeholders filled in (and, for nginx,
/// the test main configuration that includes it); returns the file to run.
fn write_config(
    kind: ProxyKind,
    dir: &Path,
    listen: SocketAddr,
    upstreams: [SocketAddr; 2],
) -> PathBuf {
    let template = fs::read_to_string(repo_file(kind.template())).expect("the deploy file");
    let filled = fill_placeholders(&template, listen, upstreams);
    let name = Path::new(kind.template()).file_name().expect("a file name");
    fs::write(dir.join(name), filled).expect("writing the config");
    match kind {
        ProxyKind::Nginx => {
            let main = dir.join("nginx-test.conf");
            fs::copy(repo_file("deploy/nginx/nginx-test.conf"), &main)
                .expect("copying nginx-test.conf");
            main
        }
        ProxyKind::Haproxy | ProxyKind::HaproxyProxyProtocol => dir.join(name),
    }
}

/// The template with `@LISTEN@`, `@UPSTREAM1@` and `@UPSTREAM2@` replaced, and
/// nothing else changed; each must occur.
pub fn fill_placeholders(template: &str, listen: SocketAddr, upstreams: [SocketAddr; 2]) -> String {
    let mut text = template.to_string();
    for (placeholder, addr) in [
        ("@LISTEN@", listen),
        ("@UPSTREAM1@", upstreams[0]),
        ("@UPSTREAM2@", upstreams[1]),
    ] {
        assert!(
            text.contains(placeholder),
            "{placeholder} missing from the template"
        );
        text = text.replace(placeholder, &addr.to_string());
    }
    text
}

/// A file of this repository.
fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}
