//! Idle sessions: the memory and CPU of a server holding many of them, and
//! whether it still holds every one after a quiet hold.

use crate::clients::{Conn, echo, open};
use crate::plan::Plan;
use crate::servers::{Kind, ServerProc};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::Bytes;

/// Threads opening the idle sessions.
const OPENER_THREADS: usize = 4;

/// What one server did with the idle sessions.
#[derive(Default)]
pub struct Idle {
    /// (connections, RSS growth per connection in KiB, server threads)
    pub points: Vec<(usize, f64, u64)>,
    /// Sessions that answered the echo after the hold.
    pub held: usize,
    /// Sessions wanted at the top count.
    pub wanted: usize,
    /// Server CPU over the hold, in % of one core.
    pub cpu_percent: f64,
    /// How long the hold lasted.
    pub hold_secs: f64,
    /// The first thing that went wrong, if anything did.
    pub first_error: Option<String>,
    /// Where the server's memory went, at the top count.
    smaps: String,
}

/// Opens the plan's idle counts of sessions on a fresh server of `kind`,
/// reads its RSS at each, holds them quietly, then echoes once on each.
pub fn idle_test(plan: &Plan, kind: Kind) -> Idle {
    let server = ServerProc::start(kind, plan);
    let payload = Bytes::from(vec![b'i'; 32]);
    let base_rss = server.rss_kib();
    let mut conns: Vec<Conn> = Vec::new();
    let mut idle = Idle {
        wanted: plan.idle_counts.iter().copied().max().unwrap_or(0),
        ..Idle::default()
    };
    let started = Instant::now();
    for &count in &plan.idle_counts {
        let need = count.saturating_sub(conns.len());
        let (opened, error) = open_idle(kind, server.addr, need, &payload);
        conns.extend(opened);
        if let Some(e) = error {
            idle.first_error.get_or_insert(e);
        }
        // Let every connection thread block in its read before measuring.
        thread::sleep(Duration::from_millis(if plan.quick { 300 } else { 1000 }));
        let rss = server.rss_kib();
        let per = (rss.saturating_sub(base_rss)) as f64 / conns.len().max(1) as f64;
        idle.points.push((conns.len(), per, server.threads()));
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
    idle.hold_secs = t0.elapsed().as_secs_f64();
    idle.cpu_percent = cpu1.saturating_sub(cpu0) as f64 / 1e9 / idle.hold_secs * 100.0;
    idle.smaps = server.smaps_summary();
    // Still alive, every one of them: one more echo each.
    for conn in &mut conns {
        match echo(conn, &payload) {
            Ok(()) => idle.held += 1,
            Err(e) => {
                idle.first_error.get_or_insert(e);
            }
        }
    }
    idle
}

/// Opens `need` sessions from [`OPENER_THREADS`] threads, each with one echo
/// done: authenticated sessions that have done their work and now wait.
/// Returns those opened and the first error, after which a thread stops.
fn open_idle(
    kind: Kind,
    addr: SocketAddr,
    need: usize,
    payload: &Bytes,
) -> (Vec<Conn>, Option<String>) {
    let opened = Mutex::new(Vec::with_capacity(need));
    let error = Mutex::new(None);
    thread::scope(|scope| {
        for t in 0..OPENER_THREADS {
            let (opened, error) = (&opened, &error);
            let share = need / OPENER_THREADS + usize::from(t < need % OPENER_THREADS);
            scope.spawn(move || {
                let mut mine = Vec::with_capacity(share);
                for _ in 0..share {
                    match open(kind, addr, 32).and_then(|mut c| echo(&mut c, payload).map(|()| c)) {
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
    (opened.into_inner().unwrap(), error.into_inner().unwrap())
}

/// Prints where each server's memory went and its first error, if any.
pub fn print_idle_notes(ws: &Idle, raw: &Idle) {
    println!();
    for (name, idle) in [("wsauth", ws), ("raw TCP", raw)] {
        println!("idle {name}: smaps_rollup at the top count: {}", idle.smaps);
        if let Some(e) = &idle.first_error {
            println!("idle {name}: first error: {e}");
        }
    }
}
