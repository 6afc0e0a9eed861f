//! Pushing from a backend: `POST /publish` to one session and to all of
//! 1,000, against the binary in a child process (`--publish-key-file`), each
//! publish one request on its own connection, as SPEC has it. A publish
//! counts once it is answered `200 delivered N` and the session(s) read it.

use crate::clients::{Ws, bearer, ws_upgrade};
use crate::plan::Plan;
use crate::servers::{Kind, ServerProc};
use crate::table::{Row, Unit, median};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// The publish key the bench's servers are started with.
pub const KEY: &str = "bench-publish-key-0123456789abcdef0123456789abcdef";
/// The token of the one session the single-session publishes go to.
pub const BOB: &str = "bench-bob-0123456789abcdef";
/// Client threads reading the publishes to all (each owns a share).
const READERS: usize = 8;
/// Bytes of each published message.
const MESSAGE: usize = 32;

/// A file holding [`KEY`], written once per bench run; its path.
pub fn key_file() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let path: PathBuf =
            std::env::temp_dir().join(format!("wsauth-bench-{}.key", std::process::id()));
        std::fs::write(&path, KEY).expect("writing the bench's publish key");
        path.to_string_lossy().into_owned()
    })
}

/// What publishing cost (medians over rounds).
pub struct Publish {
    /// Publishes per second to one session: one publisher, then four at once.
    one_rate: [f64; 2],
    /// Server CPU per publish to one session, in ns (four publishers).
    one_cpu_ns: f64,
    /// Sessions of the publishes to all.
    sessions: usize,
    /// Publishes to all per second, each read by every session before the next round.
    all_rate: f64,
    /// Server CPU per delivered message of the publishes to all, in ns.
    all_cpu_ns: f64,
}

/// Runs both: to one session on one server, to all on another.
pub fn publish_test(plan: &Plan) -> Publish {
    let (one_rate, one_cpu_ns) = to_one(plan);
    let sessions = if plan.quick { 200 } else { 1000 };
    let (all_rate, all_cpu_ns) = to_all(plan, sessions);
    Publish {
        one_rate,
        one_cpu_ns,
        sessions,
        all_rate,
        all_cpu_ns,
    }
}

/// The bench's wsauth with the publish key and the token of bob.
fn publishing_server(plan: &Plan) -> ServerProc {
    let args = [
        "--publish-key-file",
        key_file(),
        "--token",
        &format!("bob:{BOB}"),
    ]
    .map(String::from);
    ServerProc::wsauth(plan, &args)
}

/// A greeted session of `token`'s user.
pub fn session(addr: SocketAddr, token: &str) -> Ws {
    let mut ws = ws_upgrade(Kind::Wsauth, addr, &bearer(token), MESSAGE)
        .expect("connect")
        .expect("upgrade");
    match ws.read() {
        Ok(Message::Text(t)) if t.starts_with("Hello") => ws,
        other => panic!("expected the greeting, got {other:?}"),
    }
}

/// One `POST` of `body` to `target` on a connection of its own; the answer's
/// body, or why there is none.
pub fn post(addr: SocketAddr, target: &str, body: &[u8]) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    stream
        .write_all(&request)
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(format!("answer {answer:?}")),
    }
}

/// Publishes to bob's one session for the plan's window, with one publisher
/// and then four; the rates, and the server CPU per publish with four.
fn to_one(plan: &Plan) -> ([f64; 2], f64) {
    let server = publishing_server(plan);
    // Its client's read timeout (30 s) ends the reader once the server is gone.
    let mut ws = session(server.addr, BOB);
    let read = Arc::new(AtomicU64::new(0));
    let counted = read.clone();
    let reader = thread::spawn(move || {
        while let Ok(message) = ws.read() {
            if let Message::Text(t) = message
                && t.len() == MESSAGE
            {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let mut sent = 0;
    let mut result = [0.0; 2];
    let mut cpu = Vec::new();
    for (slot, publishers) in [1, 4].into_iter().enumerate() {
        let mut rates = Vec::new();
        for _ in 0..plan.rounds {
            let (count, total, elapsed, cpu_ns) = publish_window(plan, &server, publishers);
            sent += total;
            wait_for(&read, sent, "bob's session to read every publish");
            rates.push(count as f64 / elapsed.as_secs_f64());
            if publishers == 4 {
                cpu.push(cpu_ns as f64 / count as f64);
            }
            server.wait_quiet();
        }
        result[slot] = median(rates);
    }
    drop(server);
    let _ = reader.join();
    (result, median(cpu))
}

/// `publishers` threads publishing to bob back to back for the plan's window
/// (after its warm-up); how many were answered `delivered 1` in the window
/// and in all, in what time, with what server CPU.
fn publish_window(
    plan: &Plan,
    server: &ServerProc,
    publishers: usize,
) -> (u64, u64, Duration, u64) {
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let (done, all) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let threads: Vec<_> = (0..publishers)
        .map(|_| {
            let (stop, measuring) = (stop.clone(), measuring.clone());
            let (done, all) = (done.clone(), all.clone());
            thread::spawn(move || {
                let body = [b'p'; MESSAGE];
                while !stop.load(Ordering::SeqCst) {
                    let answer = post(addr, "/publish?user=bob", &body);
                    assert_eq!(answer.as_deref(), Ok("delivered 1\n"), "a publish to bob");
                    all.fetch_add(1, Ordering::SeqCst);
                    if measuring.load(Ordering::SeqCst) {
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    thread::sleep(plan.warmup);
    let (began, cpu_before) = (Instant::now(), server.cpu_ns());
    measuring.store(true, Ordering::SeqCst);
    thread::sleep(plan.window);
    let count = done.load(Ordering::SeqCst);
    let (elapsed, cpu) = (began.elapsed(), server.cpu_ns() - cpu_before);
    stop.store(true, Ordering::SeqCst);
    for publisher in threads {
        publisher.join().expect("a publisher");
    }
    (count, all.load(Ordering::SeqCst), elapsed, cpu)
}

/// Waits until `counter` reaches `want` (a minute at most).
fn wait_for(counter: &AtomicU64, want: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter.load(Ordering::SeqCst) < want {
        assert!(Instant::now() < deadline, "waited too long for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Publishes to all of `sessions` sessions, one publisher, a burst of 50 per
/// round read by every session before the next; publishes per second and
/// server CPU per delivered message.
fn to_all(plan: &Plan, sessions: usize) -> (f64, f64) {
    let server = publishing_server(plan);
    let burst = if plan.quick { 10 } else { 50 };
    let mut shares: Vec<Vec<Ws>> = (0..READERS).map(|_| Vec::new()).collect();
    for n in 0..sessions {
        shares[n % READERS].push(session(server.addr, crate::servers::TOKEN));
    }
    let rounds = plan.rounds.max(3);
    let (start, done) = (
        Arc::new(Barrier::new(READERS + 1)),
        Arc::new(Barrier::new(READERS + 1)),
    );
    let readers: Vec<_> = shares
        .into_iter()
        .map(|mut share| {
            let (start, done) = (start.clone(), done.clone());
            thread::spawn(move || {
                for _ in 0..rounds {
                    start.wait();
                    for ws in &mut share {
                        for _ in 0..burst {
                            match ws.read() {
                                Ok(Message::Text(t)) if t.len() == MESSAGE => {}
                                other => panic!("expected the publish, got {other:?}"),
                            }
                        }
                    }
                    done.wait();
                }
            })
        })
        .collect();
    let want = format!("delivered {sessions}\n");
    // CPU summed over the rounds: one round is a few clock ticks of /proc.
    let (mut rates, mut cpu) = (Vec::new(), 0);
    for _ in 0..rounds {
        server.wait_quiet();
        start.wait();
        let (began, cpu_before) = (Instant::now(), server.cpu_ns());
        for _ in 0..burst {
            let answer = post(server.addr, "/publish?all", &[b'a'; MESSAGE]);
            assert_eq!(answer.as_deref(), Ok(want.as_str()), "a publish to all");
        }
        done.wait();
        let (elapsed, spent) = (began.elapsed(), server.cpu_ns() - cpu_before);
        rates.push(burst as f64 / elapsed.as_secs_f64());
        cpu += spent;
    }
    for reader in readers {
        reader.join().expect("every session read every publish");
    }
    (
        median(rates),
        cpu as f64 / (rounds * burst * sessions) as f64,
    )
}

/// The publish rows; `echo_cpu_ns` (wsauth's echo x16 round trip, when the
/// echo group ran) beside the CPU per delivered message, for scale.
pub fn publish_rows(p: &Publish, echo_cpu_ns: Option<f64>) -> Vec<Row> {
    let n = p.sessions;
    vec![
        Row::new(
            "POST /publish to 1 session, 1 publisher: publishes/s",
            Unit::Rate,
            p.one_rate[0],
            None,
        ),
        Row::new(
            "POST /publish to 1 session, 4 publishers at once: publishes/s",
            Unit::Rate,
            p.one_rate[1],
            None,
        ),
        Row::new(
            "POST /publish to 1 session: server CPU per publish (2nd column: echo x16 round trip)",
            Unit::Micros,
            p.one_cpu_ns,
            echo_cpu_ns,
        ),
        Row::new(
            format!("POST /publish?all to {n}, read by all: publishes/s"),
            Unit::Rate,
            p.all_rate,
            None,
        ),
        Row::new(
            format!(
                "POST /publish?all to {n}: server CPU per delivered message (2nd column: echo x16 round trip)"
            ),
            Unit::Micros,
            p.all_cpu_ns,
            echo_cpu_ns,
        ),
    ]
}
