//! The Redis bus (`cargo bench --features redis`): two wsauth instances on
//! one `redis-server` (started here on a free port, without persistence),
//! each `POST /publish` made on instance A, beside the same on one instance
//! without a bus (a local publish). Skipped, with a line saying so, where
//! `redis-server` is not installed.

use crate::clients::Ws;
use crate::plan::Plan;
use crate::publish::{BOB, post, session};
use crate::servers::{ServerProc, TOKEN};
use crate::table::{Row, Unit, median};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tungstenite::Message;

/// Client threads reading, each a share of the sessions.
const READERS: usize = 8;

/// A `redis-server` child, killed on drop.
struct RedisProc(Child, u16);

impl RedisProc {
    fn start() -> Option<RedisProc> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
        Some(RedisProc(child, port))
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A publishing instance, on the bus at `redis` if given.
fn instance(plan: &Plan, redis: Option<u16>) -> ServerProc {
    let mut args = vec![
        "--publish-key-file".to_string(),
        crate::publish::key_file().to_string(),
        "--token".to_string(),
        format!("bob:{BOB}"),
    ];
    if let Some(port) = redis {
        args.extend(["--redis".to_string(), format!("redis://127.0.0.1:{port}/0")]);
    }
    let server = ServerProc::wsauth(plan, &args);
    if redis.is_some() {
        // The subscription joins in the background: wait until a publish is taken.
        let deadline = Instant::now() + Duration::from_secs(10);
        while post(server.addr, "/publish?user=nobody", b"").as_deref() != Ok("published\n") {
            assert!(Instant::now() < deadline, "the bus never joined");
            thread::sleep(Duration::from_millis(20));
        }
    }
    server
}

/// What a fan-out cost: time to the last delivery, CPU per delivered message.
#[derive(Clone, Copy)]
struct FanOut {
    last_ns: f64,
    cpu_ns: f64,
}

/// The bus's figures beside the local ones.
pub struct Bus {
    /// (sessions, over the bus, local)
    fan_outs: Vec<(usize, FanOut, FanOut)>,
    /// Publishes per second to one session, four publishers: bus, local.
    rate: [f64; 2],
    /// One publish's latency to a reading session, p50 and p99: bus, local.
    latency: [[f64; 2]; 2],
}

/// Runs every bus scenario, or returns `None` without `redis-server`.
pub fn bus_test(plan: &Plan) -> Option<Bus> {
    let Some(redis) = RedisProc::start() else {
        println!(
            "bus: no redis-server here (apt-get install -y redis-server); its rows are left out"
        );
        return None;
    };
    let counts: &[usize] = if plan.quick {
        &[200, 1000]
    } else {
        &[1000, 10_000]
    };
    let mut fan_outs = Vec::new();
    for &sessions in counts {
        let bus = fan_out(plan, sessions, Some(redis.1));
        let local = fan_out(plan, sessions, None);
        fan_outs.push((sessions, bus, local));
    }
    let (bus_rate, bus_latency) = one_session(plan, Some(redis.1));
    let (local_rate, local_latency) = one_session(plan, None);
    Some(Bus {
        fan_outs,
        rate: [bus_rate, local_rate],
        latency: [bus_latency, local_latency],
    })
}

/// `sessions` sessions, split over two instances on the bus (or all on one
/// without it), and one publish to all at a time made on the first: time
/// until every session has read it, and the instances' CPU per delivered message.
fn fan_out(plan: &Plan, sessions: usize, redis: Option<u16>) -> FanOut {
    let servers = instances(plan, redis);
    let mut shares: Vec<Vec<Ws>> = (0..READERS).map(|_| Vec::new()).collect();
    for n in 0..sessions {
        let server = &servers[n % servers.len()];
        shares[n % READERS].push(session(server.addr, TOKEN));
    }
    // Enough rounds for the CPU time (read in clock ticks) to mean something.
    let rounds = plan.rounds.max(3) * 4;
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
                        match ws.read() {
                            Ok(Message::Text(t)) if t.len() == 32 => {}
                            other => panic!("expected the publish, got {other:?}"),
                        }
                    }
                    done.wait();
                }
            })
        })
        .collect();
    let cpu = || servers.iter().map(ServerProc::cpu_ns).sum::<u64>();
    let (mut last, mut spent) = (Vec::new(), 0);
    for _ in 0..rounds {
        for server in &servers {
            server.wait_quiet();
        }
        start.wait();
        let (began, before) = (Instant::now(), cpu());
        let answer = post(servers[0].addr, "/publish?all", &[b'f'; 32]);
        assert!(answer.is_ok(), "a publish to all: {answer:?}");
        done.wait();
        last.push(began.elapsed().as_nanos() as f64);
        spent += cpu() - before;
    }
    for reader in readers {
        reader.join().expect("every session read every publish");
    }
    FanOut {
        last_ns: median(last),
        cpu_ns: spent as f64 / (rounds * sessions) as f64,
    }
}

/// Bob's one session on the second instance (the only one without a bus),
/// publishes made on the first: publishes per second with four publishers
/// for the plan's window, then the latency of single publishes, each timed
/// from the request until bob has read it.
fn one_session(plan: &Plan, redis: Option<u16>) -> (f64, [f64; 2]) {
    let servers = instances(plan, redis);
    let (first, last) = (servers[0].addr, servers[servers.len() - 1].addr);
    let (rate, mut bob) = publish_rate(plan, first, session(last, BOB));
    bob.get_ref()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    (rate, publish_latency(plan, first, &mut bob))
}

/// Two instances on the bus at `redis`, or one without a bus.
fn instances(plan: &Plan, redis: Option<u16>) -> Vec<ServerProc> {
    match redis {
        Some(_) => vec![instance(plan, redis), instance(plan, redis)],
        None => vec![instance(plan, None)],
    }
}

/// Rate: four publishers to bob on `first` for the window, bob reading all
/// the while; publishes per second, and bob once he has read them all.
fn publish_rate(plan: &Plan, first: SocketAddr, bob: Ws) -> (f64, Ws) {
    bob.get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a read timeout");
    let wanted = Arc::new(AtomicU64::new(u64::MAX));
    let reader = read_until_wanted(bob, wanted.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut done = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let answer = post(first, "/publish?user=bob", &[b'r'; 32]);
                    assert!(answer.is_ok(), "a publish to bob: {answer:?}");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let began = Instant::now();
    thread::sleep(plan.window * plan.rounds.max(1) as u32);
    stop.store(true, Ordering::SeqCst);
    let published: u64 = publishers.into_iter().map(|p| p.join().unwrap()).sum();
    let rate = published as f64 / began.elapsed().as_secs_f64();
    wanted.store(published, Ordering::SeqCst);
    (rate, reader.join().expect("bob read every publish"))
}

/// Bob reading on a thread of his own until he has read `wanted` messages
/// (`u64::MAX` until the publishers have stopped); returns him.
fn read_until_wanted(bob: Ws, wanted: Arc<AtomicU64>) -> JoinHandle<Ws> {
    thread::spawn(move || {
        let mut bob = bob;
        let (mut read, mut quiet_since) = (0, Instant::now());
        // A read times out after the client's patience: until the count
        // is known, a quiet stretch only means the publishers have stopped.
        while read < wanted.load(Ordering::SeqCst) {
            match bob.read() {
                Ok(Message::Text(_)) => (read, quiet_since) = (read + 1, Instant::now()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        && quiet_since.elapsed() < Duration::from_secs(60) => {}
                Err(e) => panic!("bob stopped reading after {read}: {e}"),
            }
        }
        bob
    })
}

/// Latency: one publish at a time, from the request on `first` until bob
/// has read it; p50 and p99.
fn publish_latency(plan: &Plan, first: SocketAddr, bob: &mut Ws) -> [f64; 2] {
    let count = if plan.quick { 100 } else { 500 };
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let began = Instant::now();
        post(first, "/publish?user=bob", b"latency").expect("a publish");
        match bob.read() {
            Ok(Message::Text(t)) if t.as_str() == "latency" => {}
            other => panic!("expected the publish, got {other:?}"),
        }
        latencies.push(began.elapsed().as_nanos() as f64);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    [at(50), at(99)]
}

/// The rows: each beside its local counterpart in the second column.
pub fn bus_rows(b: &Bus) -> Vec<Row> {
    let mut rows = Vec::new();
    for (n, bus, local) in &b.fan_outs {
        rows.push(Row::new(
            format!("bus: one publish to {n} sessions on 2 instances, last delivery (2nd: local, 1 instance)"),
            Unit::Micros,
            bus.last_ns,
            Some(local.last_ns),
        ));
        rows.push(Row::new(
            format!("bus: server CPU per delivered message, {n} sessions (2nd: local)"),
            Unit::Micros,
            bus.cpu_ns,
            Some(local.cpu_ns),
        ));
    }
    rows.push(Row::new(
        "bus: publishes/s to one session on the other instance, 4 publishers (2nd: local)",
        Unit::Rate,
        b.rate[0],
        Some(b.rate[1]),
    ));
    rows.push(Row::new(
        "bus: p50 publish-to-read latency (2nd: local)",
        Unit::Micros,
        b.latency[0][0],
        Some(b.latency[1][0]),
    ));
    rows.push(Row::new(
        "bus: p99 publish-to-read latency (2nd: local)",
        Unit::Micros,
        b.latency[0][1],
        Some(b.latency[1][1]),
    ));
    rows
}
