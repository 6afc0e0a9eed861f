//! Capacity (`--only capacity`, never in a default run: it takes the machine
//! to its thread ceiling, and nothing else can start a process meanwhile):
//! how many sessions one instance holds at this machine's limits, every one
//! echo-verified, and what each costs, the kernel's share included.
//!
//! The clients bind 127.0.0.2, 127.0.0.3, … in turn, so that one address's
//! ephemeral ports do not set the limit; they open sessions until the server
//! refuses one (at the thread ceiling it answers 503), then echo once more on
//! every session held.

use crate::clients::{ClientStream, Conn, bearer, echo};
use crate::plan::Plan;
use crate::servers::{ServerProc, TOKEN};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::Bytes;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

/// Threads opening sessions.
const OPENERS: usize = 4;
/// Client source addresses: 127.0.0.2 up to 127.0.0.(1 + SOURCES).
const SOURCES: u32 = 8;
/// The most sessions tried, above any ceiling this bench has met.
const MOST: usize = 200_000;

/// What the capacity run found.
struct Capacity {
    held: usize,
    verified: usize,
    stopped_by: String,
    open_secs: f64,
    server_threads: u64,
    per_session: [f64; 4],
    peak_rss_per_session: f64,
}

/// Runs the capacity scenario and prints its findings.
pub fn capacity_test(plan: &Plan) {
    let limits = ["kernel/pid_max", "kernel/threads-max", "vm/max_map_count"]
        .map(|k| format!("{k} {}", read_trimmed(&format!("/proc/sys/{k}"))));
    println!("\ncapacity: {}", limits.join(", "));
    let before = meminfo();
    let server = ServerProc::wsauth(plan, &["--max-connections".into(), MOST.to_string()]);
    let rss0 = server.rss_kib();
    let found = hold_many(&server, &before, rss0);
    println!(
        "capacity: {} sessions held ({} echo-verified after the ramp), opened in {:.1} s; \
         the next was refused: {}",
        found.held, found.verified, found.open_secs, found.stopped_by
    );
    let [user, stacks, slab, tables] = found.per_session;
    println!(
        "capacity: server threads {}; per session: user RSS {user:.1} KiB, kernel stacks {stacks:.1}, \
         slab {slab:.1} (both ends' sockets), page tables {tables:.2}, total {:.1} KiB; \
         peak RSS while opening {:.1} KiB",
        found.server_threads,
        user + stacks + slab + tables,
        found.peak_rss_per_session
    );
}

/// Opens sessions until the first refusal, measures, then echoes on each.
fn hold_many(server: &ServerProc, before: &[u64; 3], rss0: u64) -> Capacity {
    let started = Instant::now();
    let (mut conns, stopped_by) = open_until_refused(server.addr);
    let open_secs = started.elapsed().as_secs_f64();
    // The sessions' first quiet spell gives their handshake's pages back.
    thread::sleep(Duration::from_secs(2));
    let held = conns.len();
    let n = held.max(1) as f64;
    let after = meminfo();
    let kernel = |i: usize| after[i].saturating_sub(before[i]) as f64 / n;
    let user = server.rss_kib().saturating_sub(rss0) as f64 / n;
    let peak = server_hwm(server).saturating_sub(rss0) as f64 / n;
    let server_threads = server.threads();
    let payload = Bytes::from_static(b"still there?");
    let verified = conns
        .iter_mut()
        .map(|c| echo(c, &payload))
        .filter(Result::is_ok)
        .count();
    Capacity {
        held,
        verified,
        stopped_by,
        open_secs,
        server_threads,
        per_session: [user, kernel(0), kernel(1), kernel(2)],
        peak_rss_per_session: peak,
    }
}

/// Opens echo-verified sessions from [`OPENERS`] threads until one is
/// refused; returns them and what the refusal was.
fn open_until_refused(addr: SocketAddr) -> (Vec<Conn>, String) {
    let opened = Mutex::new(Vec::new());
    let first_error = Mutex::new(None::<String>);
    let stop = AtomicBool::new(false);
    let payload = Bytes::from_static(b"hello, capacity");
    thread::scope(|scope| {
        for t in 0..OPENERS {
            let (opened, first_error, stop, payload) = (&opened, &first_error, &stop, &payload);
            scope.spawn(move || {
                let mut mine = Vec::new();
                let mut k = t;
                while !stop.load(Ordering::Relaxed) && k < MOST {
                    let source =
                        Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 2)) + k as u32 % SOURCES);
                    match open_from(source, addr)
                        .and_then(|mut c| echo(&mut c, payload).map(|()| c))
                    {
                        Ok(conn) => mine.push(conn),
                        Err(e) => {
                            first_error.lock().unwrap().get_or_insert(e);
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    k += OPENERS;
                }
                opened.lock().unwrap().extend(mine);
            });
        }
    });
    let why = first_error
        .into_inner()
        .unwrap()
        .unwrap_or_else(|| format!("none, {MOST} tried"));
    (opened.into_inner().unwrap(), why)
}

/// A session with the bench's token, its TCP connection bound to `source`.
fn open_from(source: Ipv4Addr, addr: SocketAddr) -> Result<Conn, String> {
    let tcp = connect_from(source, addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let (name, value) = bearer(TOKEN)().remove(0);
    request.headers_mut().insert(
        tungstenite::http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?,
        HeaderValue::from_str(&value).map_err(|e| e.to_string())?,
    );
    let config = tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
    match tungstenite::client::client_with_config(request, ClientStream::Tcp(tcp), Some(config)) {
        Ok((mut ws, _)) => match ws.read() {
            Ok(tungstenite::Message::Text(t)) if t.starts_with("Hello") => {
                Ok(Conn::Ws(Box::new(ws)))
            }
            other => Err(format!("expected the greeting, got {other:?}")),
        },
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(format!("HTTP {}", response.status()))
        }
        Err(e) => Err(format!("handshake: {e}")),
    }
}

/// A TCP connection from `source` (port chosen by the kernel) to `addr`.
fn connect_from(source: Ipv4Addr, addr: SocketAddr) -> Result<TcpStream, String> {
    let SocketAddr::V4(to) = addr else {
        return Err("the bench listens on IPv4 loopback".into());
    };
    let sin = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, owned by the TcpStream made from it at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is the socket just made, which nothing else owns.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let (from, to) = (sin(source, 0), sin(*to.ip(), to.port()));
    // SAFETY: bind and connect read a sockaddr_in of the length passed.
    let rc = unsafe {
        if libc::bind(fd, (&from as *const libc::sockaddr_in).cast(), len) != 0 {
            -1
        } else {
            libc::connect(fd, (&to as *const libc::sockaddr_in).cast(), len)
        }
    };
    if rc != 0 {
        return Err(format!(
            "connect from {source}: {}",
            std::io::Error::last_os_error()
        ));
    }
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// KernelStack, Slab and PageTables of `/proc/meminfo`, in KiB.
fn meminfo() -> [u64; 3] {
    let text = read_trimmed("/proc/meminfo");
    ["KernelStack:", "Slab:", "PageTables:"].map(|key| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

/// The server's peak resident memory so far (`VmHWM`), in KiB.
fn server_hwm(server: &ServerProc) -> u64 {
    read_trimmed(&format!("/proc/{}/status", server.pid()))
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}
