//! A real `redis-server` for the bus tests: started on a free loopback port,
//! without persistence, everything it writes under a temporary folder, and
//! stopped by its PID (SIGKILL when a test wants it killed, then started
//! again on the same port). Plus two stand-ins for a Redis gone wrong: one
//! that accepts and never answers, and a relay that can freeze.
//!
//! Where `redis-server` is missing, [`Redis::start`] prints `SKIPPED` and
//! returns `None`, unless `WSAUTH_REDIS_TESTS=required` (as in `.ci/run`),
//! which makes it a failure. `apt-get install -y redis-server`.

#![allow(dead_code, reason = "each test file uses its share")]

use super::PATIENCE;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `redis-server`; killed and its folder removed on drop.
pub struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    /// A certificate and key: then it speaks TLS only, on its port.
    tls: Option<(PathBuf, PathBuf)>,
}

impl Redis {
    /// Starts `redis-server` on a free port with `extra` arguments (say
    /// `--requirepass`), and waits until it is ready. `None` after a loud
    /// `SKIPPED` when it is not installed and Redis tests are not required.
    pub fn start(test: &str, extra: &[&str]) -> Option<Redis> {
        Redis::start_with(test, extra, None)
    }

    /// [`Redis::start`] speaking TLS only, with this certificate and key
    /// (its own CA too, as redis-server wants one; clients are not asked).
    pub fn start_tls(test: &str, cert: PathBuf, key: PathBuf) -> Option<Redis> {
        Redis::start_with(test, &[], Some((cert, key)))
    }

    fn start_with(test: &str, extra: &[&str], tls: Option<(PathBuf, PathBuf)>) -> Option<Redis> {
        if !installed(test) {
            return None;
        }
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            match Redis::on_port(test, port, extra, tls.clone()) {
                Ok(redis) => return Some(redis),
                Err(why) => last = why,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// Starts it on `port`, which must be free.
    fn on_port(
        test: &str,
        port: u16,
        extra: &[&str],
        tls: Option<(PathBuf, PathBuf)>,
    ) -> Result<Redis, String> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("wsauth-redis-{}-{test}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut redis = Redis {
            child: None,
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            tls,
        };
        redis.launch()?;
        Ok(redis)
    }

    /// Runs the server (again) on its port and waits for "Ready".
    fn launch(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let _ = std::fs::remove_file(&log);
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &port]),
            Some((cert, key)) => command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key)
                .arg("--tls-ca-cert-file")
                .arg(cert),
        };
        command
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = command.spawn().map_err(|e| format!("redis-server: {e}"))?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Ready to accept connections") {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited {status}: {text}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("not ready in time: {text}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// SIGKILL, and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.launch() {
                Ok(()) => return,
                // The port may linger a moment after the kill.
                Err(why) if Instant::now() > deadline => panic!("restarting redis: {why}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// `redis-cli -p PORT ARGS...`: its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs (it comes with redis-server)");
        assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `redis-cli -p PORT -x ARGS...`: `last` from its stdin as the last
    /// argument (bytes a command line cannot carry); its stdout.
    pub fn cli_with_last(&self, args: &[&str], last: &[u8]) -> String {
        let mut child = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "-x"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli runs");
        child.stdin.take().unwrap().write_all(last).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `redis-server` can run; `SKIPPED` (or a panic, when required) if not.
fn installed(test: &str) -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    let why = "no redis-server in PATH (apt-get install -y redis-server)";
    if std::env::var("WSAUTH_REDIS_TESTS").as_deref() == Ok("required") {
        panic!("WSAUTH_REDIS_TESTS=required, but {why}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: redis test {test}: {why}; set WSAUTH_REDIS_TESTS=required to fail instead"
    );
    false
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// A "Redis" that accepts connections and never answers, holding each.
pub struct Silent {
    pub addr: SocketAddr,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Silent {
    pub fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = held.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        Silent { addr, held }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

/// A relay in front of a Redis that can freeze: from [`Relay::freeze`] on,
/// the connections it carries stay open and carry nothing, as a dead link
/// would; after [`Relay::thaw`] new connections are carried again (the
/// frozen ones never are).
pub struct Relay {
    pub addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
}

impl Relay {
    pub fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let (f, g) = (frozen.clone(), generation.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let born = g.load(Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let live = {
                    let (f, g) = (f.clone(), g.clone());
                    move || !f.load(Ordering::SeqCst) && g.load(Ordering::SeqCst) == born
                };
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    live.clone(),
                );
                pump(server, client, live);
            }
        });
        Relay {
            addr,
            frozen,
            generation,
        }
    }

    /// From now on nothing passes, and nothing is closed.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// New connections pass again; the frozen ones stay dead.
    pub fn thaw(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.frozen.store(false, Ordering::SeqCst);
    }

    /// `redis://127.0.0.1:PORT/0` of the relay.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.addr.port())
    }
}

/// Copies `from` to `to` while `live()`; once it is not, holds both open
/// and idle until the peer goes.
fn pump(mut from: TcpStream, mut to: TcpStream, live: impl Fn() -> bool + Send + 'static) {
    std::thread::spawn(move || {
        from.set_read_timeout(Some(Duration::from_millis(20))).ok();
        let mut buf = [0u8; 16 * 1024];
        loop {
            if !live() {
                // Dead link: keep both sockets, pass nothing, for a minute at most.
                std::thread::sleep(Duration::from_secs(60));
                break;
            }
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if !live() {
                        continue;
                    }
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if super::is_timeout(&e) => {}
                Err(_) => break,
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
