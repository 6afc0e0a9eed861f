//! `cargo bench` (or `cargo bench -- --quick` for a smoke run): wsauth against
//! a raw TCP echo floor, both served by child processes so that their CPU
//! time and memory can be read from `/proc/<pid>` apart from the clients'.
//!
//! * wsauth is the crate's own binary (`CARGO_BIN_EXE_wsauth`), or the one
//!   named by `WSAUTH_BENCH_BIN` (to try a build of an experimental copy).
//!   `WSAUTH_BENCH_SERVER_ENV="NAME=VALUE ..."` adds variables to its
//!   environment (e.g. `MALLOC_ARENA_MAX=1`).
//! * The floor is this bench binary itself, re-executed with
//!   `WSAUTH_BENCH_RAW_SERVER=1`: a thread per connection (the same 128 KiB
//!   stack), `TCP_NODELAY`, no framing, every byte read written back.
//! * The clients are tungstenite clients (wsauth) or plain `TcpStream`s (the
//!   floor), one thread per connection, in this process.
//!
//! Server CPU is `utime + stime` of the server process (`/proc/<pid>/stat`,
//! exited threads included) over the measured window, divided by the
//! operations completed in it: on a shared machine this holds better than
//! rates or latencies, which depend on what else runs.
//!
//! Idle sessions: the clients open 1,000 then 10,000 authenticated sessions
//! (four opener threads, the sockets kept in a `Vec`), each does one echo,
//! and the server's `VmRSS` growth per session is read; then a quiet hold
//! measures the server CPU they cost, and one more echo on every session
//! checks that all of them are still there.
//!
//! Options after `--`: `--quick` (smaller counts, shorter windows),
//! `--only GROUP[,GROUP]` (only the groups `session1`, `session16`, `reject`,
//! `echo1`, `echo16`, `echo256`, `echo16k`, `idle`; `session` and `echo`
//! select all of theirs), `--rounds N`, `--secs S` (measured window of one
//! run), `--idle N[,N]` (idle session counts), `--hold S` (the quiet hold, in
//! seconds), `--skip-raw` (wsauth only, to compare builds).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Bytes, HandshakeError, Message, WebSocket};

/// Set in the environment of the re-executed bench binary that serves raw TCP.
const RAW_SERVER_ENV: &str = "WSAUTH_BENCH_RAW_SERVER";
/// The token wsauth accepts (for user `alice`).
const TOKEN: &str = "bench-0123456789abcdef";
/// A well-formed token it does not know.
const WRONG_TOKEN: &str = "bench-fedcba9876543210";
/// Stack of each raw-server connection thread: the same as wsauth's.
const RAW_STACK_BYTES: usize = 128 * 1024;
/// The raw server's receive buffer: one 16 KiB message in one read.
const RAW_BUFFER_BYTES: usize = 16 * 1024;
/// Stack of each client thread.
const CLIENT_STACK_BYTES: usize = 256 * 1024;
/// How long a client waits for any answer before calling it an error.
const CLIENT_PATIENCE: Duration = Duration::from_secs(30);
/// Descriptors wanted: 10,000 idle sessions need 10,000 on the client side and
/// at least as many in the server (which inherits the limit).
const WANT_OPEN_FILES: libc::rlim_t = 65536;

/// The groups that need both servers running under load (`idle` starts its own).
const LOAD_GROUPS: [&str; 7] = [
    "session1",
    "session16",
    "reject",
    "echo1",
    "echo16",
    "echo256",
    "echo16k",
];

fn main() {
    if std::env::var_os(RAW_SERVER_ENV).is_some() {
        raw_server_main();
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test --benches` runs bench targets without `--bench`: do nothing then.
    if !args.iter().any(|a| a == "--bench" || a == "--quick") {
        println!("throughput: run with `cargo bench` (or `cargo bench -- --quick`)");
        return;
    }
    let plan = Plan::from_args(&args);
    let started = Instant::now();
    let open_files = raise_open_files(WANT_OPEN_FILES);
    print_machine(&plan, open_files);

    let mut rows = Vec::new();
    let mut details = Vec::new();
    if LOAD_GROUPS.iter().any(|g| plan.runs(g)) {
        let wsauth = ServerProc::wsauth(&plan);
        let raw = ServerProc::raw();
        for clients in [1, 16] {
            if plan.runs(&format!("session{clients}")) {
                let name = format!("session x{clients}");
                let r = compare(&plan, &wsauth, &raw, &mut details, &name, |server| {
                    run_sessions(&plan, server, clients)
                });
                session_rows(&mut rows, clients, &r);
            }
        }
        if plan.runs("reject") {
            let clients = 16;
            let mut runs = Vec::new();
            for _ in 0..plan.rounds {
                let run = run_rejections(&plan, &wsauth, clients);
                details.push(run.detail("wsauth", &format!("rejection x{clients}")));
                runs.push(run);
            }
            let r = Summary::of(&runs);
            rows.push(Row::new(
                format!("rejections/s, wrong token, {clients} clients"),
                fmt_rate(r.rate),
                "-".into(),
                "-".into(),
                "-".into(),
                None,
            ));
            rows.push(Row::new(
                format!("  server CPU per rejection, {clients} clients"),
                fmt_us(r.cpu_ns),
                "-".into(),
                "-".into(),
                "<= 35 us".into(),
                Some(r.cpu_ns <= 35_000.0 && r.ops > 0),
            ));
        }
        for (group, conns, size) in [
            ("echo1", 1, 32),
            ("echo16", 16, 32),
            ("echo256", 256, 32),
            ("echo16k", 16, 16 * 1024),
        ] {
            if plan.runs(group) {
                let name = format!("echo {size} B x{conns}");
                let r = compare(&plan, &wsauth, &raw, &mut details, &name, |server| {
                    run_echo(&plan, server, conns, size)
                });
                echo_rows(&mut rows, conns, size, &r);
            }
        }
    }
    if plan.runs("idle") {
        let wsauth = idle_test(&plan, Kind::Wsauth);
        let raw = if plan.skip_raw {
            Idle::default()
        } else {
            idle_test(&plan, Kind::Raw)
        };
        idle_rows(&mut rows, &plan, &wsauth, &raw);
    }

    println!();
    println!(
        "details (one line per run; server CPU from /proc/<pid>/stat, client CPU from /proc/self/stat):"
    );
    println!(
        "{:<8} {:<22} {:>9} {:>11} {:>9} {:>9} {:>13} {:>13} {:>6}",
        "server",
        "scenario",
        "ops",
        "ops/s",
        "p50 us",
        "p99 us",
        "srv CPU/op us",
        "cli CPU/op us",
        "errors"
    );
    for line in &details {
        println!("{line}");
    }
    println!();
    print_table(&rows);
    println!(
        "\nload average now: {}; bench run time {:.0} s",
        loadavg(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// What to run

struct Plan {
    quick: bool,
    skip_raw: bool,
    only: Vec<String>,
    rounds: usize,
    warmup: Duration,
    window: Duration,
    idle_counts: Vec<usize>,
    idle_hold: Duration,
    server_bin: String,
    server_env: Vec<(String, String)>,
}

impl Plan {
    fn from_args(args: &[String]) -> Plan {
        let quick = args.iter().any(|a| a == "--quick");
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let mut plan = Plan {
            quick,
            skip_raw: args.iter().any(|a| a == "--skip-raw"),
            only: value("--only")
                .map(|v| v.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
            rounds: if quick { 1 } else { 5 },
            warmup: Duration::from_millis(if quick { 100 } else { 300 }),
            window: Duration::from_millis(if quick { 400 } else { 1200 }),
            idle_counts: if quick {
                vec![200, 1000]
            } else {
                vec![1000, 10_000]
            },
            idle_hold: Duration::from_secs(if quick { 1 } else { 5 }),
            server_bin: std::env::var("WSAUTH_BENCH_BIN")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_wsauth").to_string()),
            server_env: std::env::var("WSAUTH_BENCH_SERVER_ENV")
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        if let Some(n) = value("--rounds").and_then(|v| v.parse().ok()) {
            plan.rounds = n;
        }
        if let Some(s) = value("--secs").and_then(|v| v.parse::<f64>().ok()) {
            plan.window = Duration::from_secs_f64(s);
        }
        if let Some(s) = value("--hold").and_then(|v| v.parse::<f64>().ok()) {
            plan.idle_hold = Duration::from_secs_f64(s);
        }
        if let Some(v) = value("--idle") {
            plan.idle_counts = v.split(',').filter_map(|n| n.parse().ok()).collect();
        }
        plan
    }

    /// Whether a group runs: `--only echo` selects every `echo*` group,
    /// `--only echo16` exactly that one.
    fn runs(&self, group: &str) -> bool {
        self.only.is_empty()
            || self.only.iter().any(|o| {
                group == o || (group.starts_with(o.as_str()) && !o.ends_with(char::is_numeric))
            })
    }
}

fn print_machine(plan: &Plan, open_files: libc::rlim_t) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let nproc = thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "wsauth throughput bench ({})",
        if plan.quick { "quick" } else { "full" }
    );
    println!(
        "machine: nproc {nproc}, CPU {model}, Linux {}, load average {}",
        kernel.trim(),
        loadavg()
    );
    println!(
        "server: {}{}; open files limit {open_files}",
        plan.server_bin,
        if plan.server_env.is_empty() {
            String::new()
        } else {
            format!(
                " with {}",
                plan.server_env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    );
    println!(
        "runs: {} round(s) per scenario, servers alternating, {:.1} s measured after {:.1} s warm-up; medians reported",
        plan.rounds,
        plan.window.as_secs_f64(),
        plan.warmup.as_secs_f64()
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Raises the soft (and, if allowed, hard) limit on open files; returns the
/// soft limit now in force. Children inherit it.
fn raise_open_files(want: libc::rlim_t) -> libc::rlim_t {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_max < want {
            let wanted = libc::rlimit {
                rlim_cur: want,
                rlim_max: want,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                return want;
            }
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

// ---------------------------------------------------------------------------
// The servers under test

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Wsauth,
    Raw,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Wsauth => "wsauth",
            Kind::Raw => "raw TCP",
        }
    }
}

/// A server running as a child process.
struct ServerProc {
    kind: Kind,
    child: Child,
    _stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
    /// Threads right after start, to know when a scenario's have all ended.
    base_threads: u64,
}

impl ServerProc {
    fn wsauth(plan: &Plan) -> ServerProc {
        let mut cmd = Command::new(&plan.server_bin);
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--token",
            &format!("alice:{TOKEN}"),
            "--max-connections",
            "20000",
            "--idle-timeout",
            "0",
            "--max-auth-failures",
            "0",
            "--log-level",
            "warn",
        ]);
        for (k, v) in &plan.server_env {
            cmd.env(k, v);
        }
        ServerProc::spawn(Kind::Wsauth, cmd)
    }

    fn raw() -> ServerProc {
        let mut cmd = Command::new(std::env::current_exe().expect("the bench binary's path"));
        cmd.env(RAW_SERVER_ENV, "1");
        ServerProc::spawn(Kind::Raw, cmd)
    }

    fn spawn(kind: Kind, mut cmd: Command) -> ServerProc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {} server: {e}", kind.name()));
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the listen line");
        let addr = line
            .trim()
            .rsplit_once("http://")
            .and_then(|(_, a)| a.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        let mut server = ServerProc {
            kind,
            child,
            _stdout: stdout,
            addr,
            base_threads: 0,
        };
        thread::sleep(Duration::from_millis(100));
        server.base_threads = server.threads();
        server
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU time of the whole process so far, in nanoseconds.
    fn cpu_ns(&self) -> u64 {
        proc_cpu_ns(&format!("/proc/{}/stat", self.pid())).unwrap_or(0)
    }

    fn status_field(&self, name: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn rss_kib(&self) -> u64 {
        self.status_field("VmRSS:")
    }

    fn threads(&self) -> u64 {
        self.status_field("Threads:")
    }

    /// Waits (a few seconds at most) until the last scenario's connection
    /// threads have ended, or at least stopped using CPU (a server may keep
    /// idle threads for reuse), so that their work is not counted in the next.
    fn wait_quiet(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.threads() > self.base_threads && Instant::now() < deadline {
            let before = self.cpu_ns();
            thread::sleep(Duration::from_millis(100));
            if self.cpu_ns() == before {
                break;
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for ServerProc {
    /// SIGTERM (wsauth shuts down cleanly within 5 s), SIGKILL if it does not.
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.pid()) {
            // SAFETY: signalling our own child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// utime + stime from a `/proc/.../stat` file, in nanoseconds.
fn proc_cpu_ns(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may contain spaces): state is field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 1_000_000_000 / clock_ticks_per_second())
}

fn self_cpu_ns() -> u64 {
    proc_cpu_ns("/proc/self/stat").unwrap_or(0)
}

// ---------------------------------------------------------------------------
// The raw TCP floor (runs in the re-executed bench binary)

fn raw_server_main() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the raw server");
    println!(
        "raw echo listening on http://{}/",
        listener.local_addr().expect("its address")
    );
    let _ = std::io::stdout().flush();
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let spawned = thread::Builder::new()
            .stack_size(RAW_STACK_BYTES)
            .spawn(move || raw_echo(stream));
        if spawned.is_err() {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn raw_echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Received straight into uninitialised heap memory: an idle connection
    // costs only the pages actually written, the least such a server can cost.
    let mut buf: Vec<u8> = Vec::with_capacity(RAW_BUFFER_BYTES);
    loop {
        // SAFETY: recv writes at most the buffer's capacity.
        let n = unsafe {
            libc::recv(
                stream.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                RAW_BUFFER_BYTES,
                0,
            )
        };
        let Ok(n @ 1..) = usize::try_from(n) else {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        };
        // SAFETY: recv initialised the first n bytes.
        unsafe { buf.set_len(n) };
        if stream.write_all(&buf).is_err() {
            return;
        }
        buf.clear();
    }
}

// ---------------------------------------------------------------------------
// Clients

type Ws = WebSocket<TcpStream>;

/// One connection of either kind.
enum Conn {
    Ws(Box<Ws>),
    Raw(TcpStream, Vec<u8>),
}

fn client_config(message_bytes: usize) -> WebSocketConfig {
    // A small read buffer: tungstenite zero-fills all of it before each read.
    WebSocketConfig::default().read_buffer_size((message_bytes + 16).max(4096))
}

fn tcp_connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(CLIENT_PATIENCE)))
        .map_err(|e| format!("socket options: {e}"))?;
    Ok(stream)
}

/// Upgrades with `token`; `Ok(Err(status))` when the server refused.
fn ws_upgrade(
    addr: SocketAddr,
    token: &str,
    message_bytes: usize,
) -> Result<Result<Ws, u16>, String> {
    let stream = tcp_connect(addr)?;
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?,
    );
    match tungstenite::client::client_with_config(
        request,
        stream,
        Some(client_config(message_bytes)),
    ) {
        Ok((ws, _)) => Ok(Ok(ws)),
        Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Ok(Err(response.status().as_u16()))
        }
        Err(e) => Err(format!("handshake: {e}")),
    }
}

/// A session up to and including the greeting.
fn ws_open(addr: SocketAddr, message_bytes: usize) -> Result<Ws, String> {
    let mut ws = ws_upgrade(addr, TOKEN, message_bytes)?
        .map_err(|status| format!("upgrade refused with {status}"))?;
    match ws.read().map_err(|e| format!("greeting: {e}"))? {
        Message::Text(t) if t.starts_with("Hello") => Ok(ws),
        other => Err(format!("expected the greeting, got {other:?}")),
    }
}

fn open(kind: Kind, addr: SocketAddr, message_bytes: usize) -> Result<Conn, String> {
    match kind {
        Kind::Wsauth => Ok(Conn::Ws(Box::new(ws_open(addr, message_bytes)?))),
        Kind::Raw => Ok(Conn::Raw(tcp_connect(addr)?, vec![0; message_bytes])),
    }
}

/// Sends `payload` and waits for it to come back.
fn echo(conn: &mut Conn, payload: &Bytes) -> Result<(), String> {
    match conn {
        Conn::Ws(ws) => {
            ws.send(Message::Binary(payload.clone()))
                .map_err(|e| format!("send: {e}"))?;
            loop {
                match ws.read().map_err(|e| format!("read: {e}"))? {
                    Message::Binary(b) if b.len() == payload.len() => return Ok(()),
                    Message::Ping(_) | Message::Pong(_) => continue,
                    other => return Err(format!("unexpected {other:?}")),
                }
            }
        }
        Conn::Raw(stream, buf) => {
            stream
                .write_all(payload)
                .map_err(|e| format!("write: {e}"))?;
            stream
                .read_exact(&mut buf[..payload.len()])
                .map_err(|e| format!("read: {e}"))
        }
    }
}

/// Ends a connection cleanly: close handshake (wsauth) or half-close
/// (raw), then waits for the server to close the TCP connection.
fn finish(conn: Conn) -> Result<(), String> {
    match conn {
        Conn::Ws(mut ws) => {
            ws.close(None).map_err(|e| format!("close: {e}"))?;
            loop {
                match ws.read() {
                    Ok(_) => continue,
                    Err(tungstenite::Error::ConnectionClosed) => return Ok(()),
                    Err(e) => return Err(format!("closing: {e}")),
                }
            }
        }
        Conn::Raw(mut stream, _) => {
            stream
                .shutdown(std::net::Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
            let mut sink = [0u8; 64];
            loop {
                match stream.read(&mut sink) {
                    Ok(0) => return Ok(()),
                    Ok(_) => continue,
                    Err(e) => return Err(format!("waiting for the close: {e}")),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Load: one thread per connection, a measured window in the middle

/// One run of one scenario against one server.
struct Run {
    ops: u64,
    secs: f64,
    server_cpu_ns: u64,
    client_cpu_ns: u64,
    /// Completion times of the operations in the window, in nanoseconds.
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    fn cpu_per_op(&self) -> f64 {
        self.server_cpu_ns as f64 / self.ops.max(1) as f64
    }
    fn percentile(&self, p: usize) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = (self.latencies.len() * p / 100).min(self.latencies.len() - 1);
        self.latencies[i] as f64
    }
    fn detail(&self, server: &str, scenario: &str) -> String {
        let mut line = format!(
            "{:<8} {:<22} {:>9} {:>11} {:>9.1} {:>9.1} {:>13.1} {:>13.1} {:>6}",
            server,
            scenario,
            self.ops,
            fmt_rate(self.rate()),
            self.percentile(50) / 1e3,
            self.percentile(99) / 1e3,
            self.cpu_per_op() / 1e3,
            self.client_cpu_ns as f64 / self.ops.max(1) as f64 / 1e3,
            self.errors
        );
        if let Some(e) = &self.first_error {
            let _ = write!(line, "  first error: {e}");
        }
        line
    }
}

/// Runs `threads` clients against `server`: each calls `setup` once, then
/// `op` in a loop; operations completed inside the window are counted.
fn drive<C, S, O>(plan: &Plan, server: &ServerProc, threads: usize, setup: S, op: O) -> Run
where
    S: Fn(usize) -> Result<C, String> + Sync,
    O: Fn(&mut C) -> Result<(), String> + Sync,
{
    server.wait_quiet();
    let ready = Barrier::new(threads + 1);
    let measuring = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let errors = Mutex::new((0u64, None::<String>));
    let fail = |e: String| {
        let mut errors = errors.lock().unwrap();
        errors.0 += 1;
        errors.1.get_or_insert(e);
    };
    let mut ops = 0;
    let mut latencies = Vec::new();
    let (mut secs, mut server_cpu_ns, mut client_cpu_ns) = (0.0, 0, 0);
    thread::scope(|scope| {
        let mut handles = Vec::new();
        for i in 0..threads {
            let (ready, measuring, stop, setup, op, fail) =
                (&ready, &measuring, &stop, &setup, &op, &fail);
            let handle = thread::Builder::new()
                .stack_size(CLIENT_STACK_BYTES)
                .spawn_scoped(scope, move || {
                    let state = setup(i);
                    ready.wait();
                    let mut state = match state {
                        Ok(state) => state,
                        Err(e) => {
                            fail(e);
                            return (0u64, Vec::new());
                        }
                    };
                    let mut ops = 0;
                    let mut latencies = Vec::with_capacity(4096);
                    while !stop.load(Ordering::Relaxed) {
                        let t0 = Instant::now();
                        let result = op(&mut state);
                        let took = t0.elapsed();
                        if let Err(e) = result {
                            fail(e);
                            // A broken connection cannot go on; a failed session can retry.
                            thread::sleep(Duration::from_millis(10));
                            match setup(i) {
                                Ok(fresh) => state = fresh,
                                Err(e) => {
                                    fail(e);
                                    break;
                                }
                            }
                            continue;
                        }
                        if measuring.load(Ordering::Relaxed) {
                            ops += 1;
                            latencies.push(took.as_nanos() as u64);
                        }
                    }
                    (ops, latencies)
                })
                .expect("start a client thread");
            handles.push(handle);
        }
        ready.wait();
        thread::sleep(plan.warmup);
        let (cpu0, self0, t0) = (server.cpu_ns(), self_cpu_ns(), Instant::now());
        measuring.store(true, Ordering::SeqCst);
        thread::sleep(plan.window);
        measuring.store(false, Ordering::SeqCst);
        let (cpu1, self1) = (server.cpu_ns(), self_cpu_ns());
        secs = t0.elapsed().as_secs_f64();
        server_cpu_ns = cpu1.saturating_sub(cpu0);
        client_cpu_ns = self1.saturating_sub(self0);
        stop.store(true, Ordering::SeqCst);
        for handle in handles {
            let (n, lat) = handle.join().expect("client thread");
            ops += n;
            latencies.extend(lat);
        }
    });
    latencies.sort_unstable();
    let (errors, first_error) = errors.into_inner().unwrap();
    Run {
        ops,
        secs,
        server_cpu_ns,
        client_cpu_ns,
        latencies,
        errors,
        first_error,
    }
}

/// Complete sessions: connect, upgrade with the token, greeting, one 32-byte
/// echo, close. The floor: connect, one 32-byte echo, close.
fn run_sessions(plan: &Plan, server: &ServerProc, clients: usize) -> Run {
    let payload = Bytes::from(vec![b's'; 32]);
    let (kind, addr) = (server.kind, server.addr);
    drive(
        plan,
        server,
        clients,
        |_| Ok(()),
        |()| {
            let mut conn = open(kind, addr, 32)?;
            echo(&mut conn, &payload)?;
            finish(conn)
        },
    )
}

/// Upgrades with a wrong token, answered 401.
fn run_rejections(plan: &Plan, server: &ServerProc, clients: usize) -> Run {
    let addr = server.addr;
    drive(
        plan,
        server,
        clients,
        |_| Ok(()),
        |()| match ws_upgrade(addr, WRONG_TOKEN, 32)? {
            Err(401) => Ok(()),
            Err(status) => Err(format!("expected 401, got {status}")),
            Ok(_) => Err("a wrong token was accepted".into()),
        },
    )
}

/// Round trips of `size`-byte messages on `conns` open connections.
fn run_echo(plan: &Plan, server: &ServerProc, conns: usize, size: usize) -> Run {
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

// ---------------------------------------------------------------------------
// Summaries and the table

/// Medians over rounds.
struct Summary {
    rate: f64,
    cpu_ns: f64,
    p50: f64,
    p99: f64,
    ops: u64,
    errors: u64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

impl Summary {
    fn of(runs: &[Run]) -> Summary {
        Summary {
            rate: median(runs.iter().map(Run::rate).collect()),
            cpu_ns: median(runs.iter().map(Run::cpu_per_op).collect()),
            p50: median(runs.iter().map(|r| r.percentile(50)).collect()),
            p99: median(runs.iter().map(|r| r.percentile(99)).collect()),
            ops: runs.iter().map(|r| r.ops).sum(),
            errors: runs.iter().map(|r| r.errors).sum(),
        }
    }
}

/// Runs a scenario `rounds` times on each server, alternating which goes first.
fn compare(
    plan: &Plan,
    wsauth: &ServerProc,
    raw: &ServerProc,
    details: &mut Vec<String>,
    name: &str,
    scenario: impl Fn(&ServerProc) -> Run,
) -> (Summary, Summary) {
    let (mut ws_runs, mut raw_runs) = (Vec::new(), Vec::new());
    for round in 0..plan.rounds {
        let order = if round % 2 == 0 {
            [raw, wsauth]
        } else {
            [wsauth, raw]
        };
        for server in order {
            if plan.skip_raw && server.kind == Kind::Raw {
                continue;
            }
            let run = scenario(server);
            details.push(run.detail(server.kind.name(), name));
            match server.kind {
                Kind::Wsauth => ws_runs.push(run),
                Kind::Raw => raw_runs.push(run),
            }
        }
    }
    (Summary::of(&ws_runs), Summary::of(&raw_runs))
}

struct Row {
    scenario: String,
    wsauth: String,
    raw: String,
    ratio: String,
    target: String,
    met: Option<bool>,
}

impl Row {
    fn new(
        scenario: String,
        wsauth: String,
        raw: String,
        ratio: String,
        target: String,
        met: Option<bool>,
    ) -> Row {
        Row {
            scenario,
            wsauth,
            raw,
            ratio,
            target,
            met,
        }
    }
}

fn fmt_rate(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.0}")
    } else {
        "-".into()
    }
}

fn fmt_us(ns: f64) -> String {
    if ns.is_finite() {
        format!("{:.1} us", ns / 1e3)
    } else {
        "-".into()
    }
}

fn fmt_kib(kib: f64) -> String {
    if kib.is_finite() {
        format!("{kib:.1} KiB")
    } else {
        "-".into()
    }
}

fn fmt_ratio(a: f64, b: f64) -> (f64, String) {
    let r = a / b;
    (
        r,
        if r.is_finite() {
            format!("{r:.2}x")
        } else {
            "-".into()
        },
    )
}

fn session_rows(rows: &mut Vec<Row>, clients: usize, (ws, raw): &(Summary, Summary)) {
    let ok = ws.errors == 0;
    rows.push(Row::new(
        format!("sessions/s, {clients} client(s) (raw: connect+echo+close)"),
        fmt_rate(ws.rate),
        fmt_rate(raw.rate),
        fmt_ratio(ws.rate, raw.rate).1,
        "-".into(),
        None,
    ));
    rows.push(Row::new(
        format!("  server CPU per session, {clients} client(s)"),
        fmt_us(ws.cpu_ns),
        fmt_us(raw.cpu_ns),
        fmt_ratio(ws.cpu_ns, raw.cpu_ns).1,
        "<= 90 us".into(),
        Some(ok && ws.cpu_ns <= 90_000.0),
    ));
}

fn echo_rows(rows: &mut Vec<Row>, conns: usize, size: usize, (ws, raw): &(Summary, Summary)) {
    let label = if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    };
    let ok = ws.errors == 0 && ws.ops > 0;
    let (rate_ratio, rate_text) = fmt_ratio(ws.rate, raw.rate);
    let (cpu_ratio, cpu_text) = fmt_ratio(ws.cpu_ns, raw.cpu_ns);
    let (p99_ratio, p99_text) = fmt_ratio(ws.p99, raw.p99);
    let targeted = conns == 16 && size == 32;
    rows.push(Row::new(
        format!("echo {label} x{conns} conns: round trips/s"),
        fmt_rate(ws.rate),
        fmt_rate(raw.rate),
        rate_text,
        if targeted { ">= 0.70x" } else { "-" }.into(),
        targeted.then_some(ok && rate_ratio >= 0.7),
    ));
    rows.push(Row::new(
        format!("  p50 round trip, x{conns}"),
        fmt_us(ws.p50),
        fmt_us(raw.p50),
        fmt_ratio(ws.p50, raw.p50).1,
        "-".into(),
        None,
    ));
    let p99_targeted = conns == 256;
    rows.push(Row::new(
        format!("  p99 round trip, x{conns}"),
        fmt_us(ws.p99),
        fmt_us(raw.p99),
        p99_text,
        if p99_targeted { "<= 1.5x" } else { "-" }.into(),
        p99_targeted.then_some(ok && p99_ratio <= 1.5),
    ));
    rows.push(Row::new(
        format!("  server CPU per round trip, x{conns}"),
        fmt_us(ws.cpu_ns),
        fmt_us(raw.cpu_ns),
        cpu_text,
        if targeted { "<= 1.5x" } else { "-" }.into(),
        targeted.then_some(ok && cpu_ratio <= 1.5),
    ));
}

fn print_table(rows: &[Row]) {
    let headers = ["scenario", "wsauth", "raw TCP", "ratio", "target", "met?"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                r.wsauth.clone(),
                r.raw.clone(),
                r.ratio.clone(),
                r.target.clone(),
                match r.met {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => String::new(),
                },
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: [&str; 6]| {
        let mut out = String::from("|");
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i == 0 {
                let _ = write!(out, " {c:<w$} |");
            } else {
                let _ = write!(out, " {c:>w$} |");
            }
        }
        out
    };
    println!("{}", line(headers));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!(
        "{}",
        line([&rule[0], &rule[1], &rule[2], &rule[3], &rule[4], &rule[5]])
    );
    for row in &cells {
        println!(
            "{}",
            line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]])
        );
    }
    println!(
        "\nwsauth: the wsauth binary in a child process; raw TCP: a thread-per-connection echo \
         server (no framing) in a child process, the floor.\nratio = wsauth / raw TCP. Sessions: \
         connect, upgrade with the token, greeting, one 32-byte echo, close (raw: connect, one \
         32-byte echo, close). Echo: binary messages, round trips one at a time per connection.\n\
         Server CPU = utime+stime of the server process over the measured window / operations; \
         RSS = growth of the server's VmRSS / sessions (each authenticated, one echo done, idle)."
    );
    let targets = rows.iter().filter(|r| r.met.is_some()).count();
    let met = rows.iter().filter(|r| r.met == Some(true)).count();
    println!("\ntargets met: {met} of {targets}");
}

// ---------------------------------------------------------------------------
// Idle connections: memory and CPU of a server holding many of them

#[derive(Default)]
struct Idle {
    /// (connections, RSS growth per connection in KiB, server threads)
    points: Vec<(usize, f64, u64)>,
    held: usize,
    wanted: usize,
    cpu_percent: f64,
    hold_secs: f64,
    first_error: Option<String>,
    smaps: String,
}

fn idle_test(plan: &Plan, kind: Kind) -> Idle {
    let server = match kind {
        Kind::Wsauth => ServerProc::wsauth(plan),
        Kind::Raw => ServerProc::raw(),
    };
    let addr = server.addr;
    let payload = Bytes::from(vec![b'i'; 32]);
    let base_rss = server.rss_kib();
    let mut conns: Vec<Conn> = Vec::new();
    let mut points = Vec::new();
    let mut first_error = None;
    let wanted = plan.idle_counts.iter().copied().max().unwrap_or(0);
    let opener_threads = 4;
    let started = Instant::now();
    for &count in &plan.idle_counts {
        let need = count.saturating_sub(conns.len());
        let opened = Mutex::new(Vec::with_capacity(need));
        let error = Mutex::new(None);
        thread::scope(|scope| {
            for t in 0..opener_threads {
                let (opened, error, payload) = (&opened, &error, &payload);
                let share = need / opener_threads + usize::from(t < need % opener_threads);
                scope.spawn(move || {
                    let mut mine = Vec::with_capacity(share);
                    for _ in 0..share {
                        // Opened, then one echo: an authenticated session that has
                        // done its work and now waits.
                        match open(kind, addr, 32)
                            .and_then(|mut c| echo(&mut c, payload).map(|()| c))
                        {
                            Ok(c) => mine.push(c),
                            Err(e) => {
                                error.lock().unwrap().get_or_insert(e);
                                break;
                            }
                        }
                    }
                    opened.lock().unwrap().extend(mine);
                });
            }
        });
        conns.extend(opened.into_inner().unwrap());
        if let Some(e) = error.into_inner().unwrap() {
            first_error.get_or_insert(e);
        }
        // Let every connection thread block in its read before measuring.
        thread::sleep(Duration::from_millis(if plan.quick { 300 } else { 1000 }));
        let rss = server.rss_kib();
        let per = (rss.saturating_sub(base_rss)) as f64 / conns.len().max(1) as f64;
        points.push((conns.len(), per, server.threads()));
        if conns.len() < count {
            break;
        }
    }
    eprintln!(
        "  idle {}: {} connections opened in {:.1} s",
        kind.name(),
        conns.len(),
        started.elapsed().as_secs_f64()
    );
    // The quiet hold.
    let cpu0 = server.cpu_ns();
    let t0 = Instant::now();
    thread::sleep(plan.idle_hold);
    let cpu1 = server.cpu_ns();
    let hold_secs = t0.elapsed().as_secs_f64();
    let cpu_percent = cpu1.saturating_sub(cpu0) as f64 / 1e9 / hold_secs * 100.0;
    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", server.pid()))
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            ["Rss:", "Anonymous:", "Pss_Anon:", "Private_Dirty:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ");
    // Still alive, every one of them: one more echo each.
    let mut held = 0;
    for conn in &mut conns {
        match echo(conn, &payload) {
            Ok(()) => held += 1,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    drop(conns);
    Idle {
        points,
        held,
        wanted,
        cpu_percent,
        hold_secs,
        first_error,
        smaps,
    }
}

fn idle_rows(rows: &mut Vec<Row>, plan: &Plan, ws: &Idle, raw: &Idle) {
    let top = plan.idle_counts.iter().copied().max().unwrap_or(0);
    for (i, &(n, per, threads)) in ws.points.iter().enumerate() {
        let raw_per = raw.points.get(i).map_or(f64::NAN, |p| p.1);
        let targeted = n >= 10_000;
        rows.push(Row::new(
            format!("RSS per idle session, {n} sessions ({threads} server threads)"),
            fmt_kib(per),
            fmt_kib(raw_per),
            fmt_ratio(per, raw_per).1,
            if targeted { "<= 16 KiB" } else { "-" }.into(),
            targeted.then_some(per <= 16.0),
        ));
    }
    rows.push(Row::new(
        format!("sessions held at once (echo on each after the hold), {top} wanted"),
        ws.held.to_string(),
        raw.held.to_string(),
        "-".into(),
        format!("all {top}, no error"),
        Some(ws.held == ws.wanted && ws.first_error.is_none()),
    ));
    rows.push(Row::new(
        format!(
            "server CPU, {} idle sessions over {:.0} s (% of one core)",
            ws.held, ws.hold_secs
        ),
        format!("{:.2} %", ws.cpu_percent),
        format!("{:.2} %", raw.cpu_percent),
        "-".into(),
        if top >= 10_000 { "<= 2 %" } else { "-" }.into(),
        (top >= 10_000).then_some(ws.cpu_percent <= 2.0),
    ));
    println!();
    for (name, idle) in [("wsauth", ws), ("raw TCP", raw)] {
        println!("idle {name}: smaps_rollup at the top count: {}", idle.smaps);
        if let Some(e) = &idle.first_error {
            println!("idle {name}: first error: {e}");
        }
    }
}
