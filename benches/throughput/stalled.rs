//! SPEC's stalled-client scenario: 1,000 sessions of which 10 never read,
//! 100 broadcasts of 1 KiB, against the same run with no stalled session.
//!
//! Each run is a fresh child process (this bench binary again, told so by
//! [`STALLED_ENV`]) holding the server (the library, since a broadcast is a
//! library call) and all the clients, so that its peak memory belongs to
//! that run alone. On loopback the kernel would take megabytes toward a
//! client that never reads (the MSS is 64 KiB, and the send buffer grows
//! with it), so a stalled client here is one a slow link makes: a 536-byte
//! MSS and a 4 KiB receive buffer, set before it connects. The server runs
//! with a 2 s write timeout and an 8 KiB outbox (`--max-message-bytes 4096`),
//! so that 100 KiB fill what a stalled socket takes, and so that the build
//! before the outbox (each stalled session holding the broadcast up for the
//! write timeout) ends in seconds rather than minutes.

use crate::plan::Plan;
use crate::servers::TOKEN;
use crate::table::{Row, Unit, median};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};
use wsauth::{Config, Echo, Grant, Server, Sessions, TokenStore};

/// Set (to the number of stalled sessions) in the child that runs one scenario.
pub const STALLED_ENV: &str = "WSAUTH_BENCH_STALLED";
/// Sessions in all.
const SESSIONS: usize = 1000;
/// Of which this many never read.
const STALLED: usize = 10;
/// Broadcasts, and their size.
const BROADCASTS: usize = 100;
const MESSAGE: usize = 1024;
/// The server's outbox bound in this scenario.
const OUTBOX: usize = 8 * 1024;
/// Client threads reading, each a share of the healthy sessions.
const READERS: usize = 8;

/// What one child run measured.
#[derive(Clone, Copy, Default)]
struct Outcome {
    /// From the first broadcast until every healthy session read all 100, in ns.
    healthy_ns: f64,
    /// Stalled sessions no longer registered at the end (closed as too slow).
    closed: usize,
    /// The process's peak resident memory, in KiB.
    peak_kib: f64,
}

/// The scenario's medians: with no stalled session, then with 10.
pub struct Stalled {
    base: Outcome,
    with: Outcome,
}

/// Runs each variant `plan.rounds` times (at most 3) in child processes.
pub fn stalled_test(plan: &Plan) -> Stalled {
    let rounds = plan.rounds.clamp(1, 3);
    let variant = |stalled: usize| {
        let runs: Vec<Outcome> = (0..rounds).map(|_| child_run(stalled)).collect();
        Outcome {
            healthy_ns: median(runs.iter().map(|r| r.healthy_ns).collect()),
            closed: runs.iter().map(|r| r.closed).min().unwrap_or(0),
            peak_kib: median(runs.iter().map(|r| r.peak_kib).collect()),
        }
    };
    Stalled {
        base: variant(0),
        with: variant(STALLED),
    }
}

/// Runs the scenario with `stalled` never-reading sessions in a child, and
/// reads back its one result line.
fn child_run(stalled: usize) -> Outcome {
    let output = Command::new(std::env::current_exe().expect("the bench binary's path"))
        .env(STALLED_ENV, stalled.to_string())
        .output()
        .expect("running the stalled-client scenario");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("stalled-result "));
    let fields: Vec<f64> = line
        .unwrap_or_else(|| {
            panic!(
                "the stalled-client child said {stdout:?} {:?}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    Outcome {
        healthy_ns: fields[0],
        closed: fields[1] as usize,
        peak_kib: fields[2],
    }
}

/// The child's whole run: prints `stalled-result HEALTHY_NS CLOSED PEAK_KIB`.
pub fn child_main() {
    let stalled: usize = std::env::var(STALLED_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let server = start_server();
    let addr = server.local_addr();
    let mut shares: Vec<Vec<Client>> = (0..READERS).map(|_| Vec::new()).collect();
    for n in 0..SESSIONS - stalled {
        shares[n % READERS].push(upgrade(TcpStream::connect(addr).expect("connect"), addr));
    }
    let never_read: Vec<_> = (0..stalled)
        .map(|_| upgrade(slow_link(addr), addr))
        .collect();
    let hub = server.sessions();
    wait_while(|| hub.list().len() < SESSIONS);
    let (healthy_ns, healthy) = broadcast_to(&hub, shares);
    wait_while(|| hub.list().len() > SESSIONS - stalled);
    let closed = SESSIONS - hub.list().len();
    let peak = status_kib("VmHWM:");
    println!("stalled-result {healthy_ns} {closed} {peak}");
    drop((never_read, healthy));
    server.stop();
}

/// A client session of the scenario.
type Client = WebSocket<TcpStream>;

/// The in-process server: room for every session, no idle timeout, a 2 s
/// write timeout and the scenario's outbox bound, echoing nothing back.
fn start_server() -> Server {
    let mut config = Config::default();
    config.max_connections = SESSIONS + 64;
    config.idle_timeout = None;
    config.max_pending_per_ip = 0;
    config.write_timeout = Duration::from_secs(2);
    config.max_message_bytes = 4096;
    config.max_outbox_bytes = Some(OUTBOX);
    let tokens = TokenStore::new(vec![Grant {
        user: "alice".into(),
        token: TOKEN.into(),
        expires: None,
    }]);
    let quiet = Echo::each_session("", Echo::PREFIX);
    Server::start_with_handler("127.0.0.1:0", config, tokens, quiet).expect("in-process server")
}

/// Waits, 30 s at most, while `busy` holds.
fn wait_while(busy: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while busy() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
}

/// The broadcasts, each share of the healthy sessions read on a thread of
/// its own: ns from the first broadcast until the last of them has read
/// every one, and the healthy sessions, still open.
fn broadcast_to(hub: &Sessions, shares: Vec<Vec<Client>>) -> (u128, Vec<Vec<Client>>) {
    let start = Arc::new(Barrier::new(READERS + 1));
    let readers: Vec<_> = shares
        .into_iter()
        .map(|share| read_broadcasts(share, start.clone()))
        .collect();
    start.wait();
    let began = Instant::now();
    for _ in 0..BROADCASTS {
        hub.broadcast(vec![b'b'; MESSAGE]);
    }
    let (ended, healthy): (Vec<Instant>, Vec<_>) = readers
        .into_iter()
        .map(|r| {
            r.join()
                .expect("every healthy session read every broadcast")
        })
        .unzip();
    let last = ended.into_iter().max().unwrap_or(began);
    (last.duration_since(began).as_nanos(), healthy)
}

/// A reader of `share`: after `start`, every broadcast on each session;
/// returns when it finished, and the sessions.
fn read_broadcasts(
    mut share: Vec<Client>,
    start: Arc<Barrier>,
) -> JoinHandle<(Instant, Vec<Client>)> {
    thread::spawn(move || {
        start.wait();
        for _ in 0..BROADCASTS {
            for ws in &mut share {
                match ws.read() {
                    Ok(Message::Binary(b)) if b.len() == MESSAGE => {}
                    other => panic!("expected a broadcast, got {other:?}"),
                }
            }
        }
        // The sessions stay open until the count of closed ones.
        (Instant::now(), share)
    })
}

/// An upgraded, authenticated client on `stream`, with a patient read timeout.
fn upgrade(stream: TcpStream, addr: SocketAddr) -> Client {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/ws"))
            .expect("request");
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    tungstenite::client(request, stream).expect("upgrade").0
}

/// A connection as a slow link makes it: a 536-byte MSS and a 4 KiB receive
/// buffer, set before the SYN so that the server's side is sized by them.
fn slow_link(addr: SocketAddr) -> TcpStream {
    let SocketAddr::V4(v4) = addr else {
        panic!("the bench listens on IPv4 loopback")
    };
    let set = |fd: libc::c_int, level: libc::c_int, name: libc::c_int, value: libc::c_int| {
        // SAFETY: setsockopt reads one c_int from the pointer we pass.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "setsockopt {name}");
    };
    // SAFETY: a fresh socket, owned by the TcpStream made from it below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket");
    set(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 4096);
    set(fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG, 536);
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: connect reads a sockaddr_in of the length we pass.
    let rc = unsafe {
        libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "connect");
    // SAFETY: fd is a connected socket that nothing else owns.
    unsafe { TcpStream::from_raw_fd(fd) }
}

/// A KiB field of `/proc/self/status`.
fn status_kib(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The rows: the healthy sessions' time with and without the stalled ones,
/// how many of these were closed, and the peak memory of both runs.
pub fn stalled_rows(s: &Stalled) -> Vec<Row> {
    let healthy = SESSIONS - STALLED;
    let ratio = s.with.healthy_ns / s.base.healthy_ns;
    let growth = s.with.peak_kib - s.base.peak_kib;
    let bound = (STALLED * OUTBOX) as f64 / 1024.0;
    vec![
        Row::new(
            format!(
                "{BROADCASTS} broadcasts of 1 KiB to {SESSIONS}, {STALLED} never read: \
                 the {healthy} have all in (2nd column: none stalled)"
            ),
            Unit::Micros,
            s.with.healthy_ns,
            Some(s.base.healthy_ns),
        )
        .target("<= 1.5x", ratio <= 1.5),
        Row::new(
            format!("  stalled sessions closed as too slow (of {STALLED})"),
            Unit::Count,
            s.with.closed as f64,
            None,
        )
        .target(format!("{STALLED}"), s.with.closed == STALLED),
        Row::new(
            "  peak memory of the run, clients included (2nd column: none stalled)",
            Unit::KiB,
            s.with.peak_kib,
            Some(s.base.peak_kib),
        )
        .target(
            format!("+ <= {bound:.0} KiB (10 outboxes) + 1 MiB"),
            growth <= bound + 1024.0,
        ),
    ]
}
