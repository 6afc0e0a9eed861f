//! The servers under test, each a child process whose CPU time, memory and
//! threads are read from `/proc/<pid>` apart from the clients'.

use crate::plan::Plan;
use crate::raw_floor::RAW_SERVER_ENV;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The token wsauth accepts (for user `alice`).
pub const TOKEN: &str = "bench-0123456789abcdef";
/// A well-formed token it does not know.
pub const WRONG_TOKEN: &str = "bench-fedcba9876543210";

/// Which server a process is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The wsauth binary.
    Wsauth,
    /// The raw TCP echo floor.
    Raw,
    /// The wsauth binary with a certificate: https and wss.
    #[cfg(feature = "tls")]
    WsauthTls,
}

impl Kind {
    /// The name in the table's header and the details.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Wsauth => "wsauth",
            Kind::Raw => "raw TCP",
            #[cfg(feature = "tls")]
            Kind::WsauthTls => "wss",
        }
    }
}

/// A server running as a child process, stopped when dropped.
pub struct ServerProc {
    /// Which server it is.
    pub kind: Kind,
    child: Child,
    _stdout: BufReader<ChildStdout>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Threads right after start, to know when a scenario's have all ended.
    base_threads: u64,
}

impl ServerProc {
    /// Starts wsauth with the bench's token and limits, then `extra_args`
    /// (which may override them: wsauth takes the last of a flag).
    pub fn wsauth(plan: &Plan, extra_args: &[String]) -> ServerProc {
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
            // Hundreds of clients from one loopback address open at once.
            "--max-pending-per-ip",
            "0",
            "--log-level",
            "warn",
        ]);
        cmd.args(&plan.server_args);
        cmd.args(extra_args);
        for (k, v) in &plan.server_env {
            cmd.env(k, v);
        }
        #[cfg(feature = "tls")]
        if extra_args.iter().any(|a| a == "--tls-cert") {
            return ServerProc::spawn(Kind::WsauthTls, cmd);
        }
        ServerProc::spawn(Kind::Wsauth, cmd)
    }

    /// Starts the raw TCP floor: this bench binary again, told so by its environment.
    pub fn raw() -> ServerProc {
        let mut cmd = Command::new(std::env::current_exe().expect("the bench binary's path"));
        cmd.env(RAW_SERVER_ENV, "1");
        ServerProc::spawn(Kind::Raw, cmd)
    }

    /// Starts either kind, as the plan configures it.
    pub fn start(kind: Kind, plan: &Plan) -> ServerProc {
        match kind {
            Kind::Wsauth => ServerProc::wsauth(plan, &[]),
            Kind::Raw => ServerProc::raw(),
            #[cfg(feature = "tls")]
            Kind::WsauthTls => ServerProc::wsauth(plan, &crate::tls_pair::server_args()),
        }
    }

    /// Spawns `cmd` and reads the address from its first stdout line.
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
            .rsplit_once("://")
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

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU time of the whole process so far, in nanoseconds.
    pub fn cpu_ns(&self) -> u64 {
        proc_cpu_ns(&format!("/proc/{}/stat", self.pid())).unwrap_or(0)
    }

    /// A number field of `/proc/<pid>/status`, 0 when unreadable.
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

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_field("VmRSS:")
    }

    /// Threads now.
    pub fn threads(&self) -> u64 {
        self.status_field("Threads:")
    }

    /// The memory lines of `/proc/<pid>/smaps_rollup` that tell where RSS went.
    pub fn smaps_summary(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/smaps_rollup", self.pid()))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                ["Rss:", "Anonymous:", "Pss_Anon:", "Private_Dirty:"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Waits (a few seconds at most) until the last scenario's connection
    /// threads have ended, or at least stopped using CPU (a server may keep
    /// idle threads for reuse), so that their work is not counted in the next.
    pub fn wait_quiet(&self) {
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

/// The kernel's clock ticks per second, the unit of `/proc/.../stat` times.
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

/// CPU time of this bench process (the clients) so far, in nanoseconds.
pub fn self_cpu_ns() -> u64 {
    proc_cpu_ns("/proc/self/stat").unwrap_or(0)
}
