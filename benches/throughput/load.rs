//! Load: one client thread per connection, a measured window in the middle,
//! and the rounds that alternate between the two servers.

use crate::plan::Plan;
use crate::servers::{Kind, ServerProc, self_cpu_ns};
use crate::table::{Summary, Unit, median};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Stack of each client thread.
const CLIENT_STACK_BYTES: usize = 256 * 1024;

/// One run of one scenario against one server.
pub struct Run {
    /// Operations completed inside the window.
    pub ops: u64,
    secs: f64,
    server_cpu_ns: u64,
    client_cpu_ns: u64,
    /// Completion times of the operations in the window, in nanoseconds.
    latencies: Vec<u64>,
    /// Failed operations, in the window or not.
    pub errors: u64,
    first_error: Option<String>,
}

impl Run {
    /// Operations per second in the window.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }

    /// Server CPU nanoseconds per operation.
    pub fn cpu_per_op(&self) -> f64 {
        self.server_cpu_ns as f64 / self.ops.max(1) as f64
    }

    /// The `p`th percentile latency in nanoseconds; NaN without operations.
    pub fn percentile(&self, p: usize) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = (self.latencies.len() * p / 100).min(self.latencies.len() - 1);
        self.latencies[i] as f64
    }

    /// The run's line in the details.
    pub fn detail(&self, server: &str, scenario: &str) -> String {
        let mut line = format!(
            "{:<8} {:<22} {:>9} {:>11} {:>9.1} {:>9.1} {:>13.1} {:>13.1} {:>6}",
            server,
            scenario,
            self.ops,
            Unit::Rate.format(self.rate()),
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

/// Runs a scenario `rounds` times on each server, alternating which goes
/// first; a line per run goes to `details`. Returns wsauth's and the floor's.
pub fn compare(
    plan: &Plan,
    [wsauth, raw]: [&ServerProc; 2],
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
            // By place, not kind: the TLS rows compare two wsauth servers.
            if std::ptr::eq(server, wsauth) {
                ws_runs.push(run);
            } else {
                raw_runs.push(run);
            }
        }
    }
    (Summary::of(&ws_runs), Summary::of(&raw_runs))
}

/// Failed operations: how many, and the first one's error.
type Errors = Mutex<(u64, Option<String>)>;

/// Flags the client threads share with the timekeeper.
struct Window {
    ready: Barrier,
    measuring: AtomicBool,
    stop: AtomicBool,
    errors: Errors,
}

impl Window {
    /// Counts a failure, keeping the first error.
    fn fail(&self, e: String) {
        let mut errors = self.errors.lock().unwrap();
        errors.0 += 1;
        errors.1.get_or_insert(e);
    }
}

/// Runs `threads` clients against `server`: each calls `setup` once, then
/// `op` in a loop; operations completed inside the window are counted.
pub fn drive<C, S, O>(plan: &Plan, server: &ServerProc, threads: usize, setup: S, op: O) -> Run
where
    S: Fn(usize) -> Result<C, String> + Sync,
    O: Fn(&mut C) -> Result<(), String> + Sync,
{
    server.wait_quiet();
    let window = Window {
        ready: Barrier::new(threads + 1),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        errors: Mutex::new((0, None)),
    };
    let (mut ops, mut latencies) = (0, Vec::new());
    let (mut secs, mut server_cpu_ns, mut client_cpu_ns) = (0.0, 0, 0);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (window, setup, op) = (&window, &setup, &op);
                thread::Builder::new()
                    .stack_size(CLIENT_STACK_BYTES)
                    .spawn_scoped(scope, move || client_loop(window, i, setup, op))
                    .expect("start a client thread")
            })
            .collect();
        window.ready.wait();
        thread::sleep(plan.warmup);
        let (cpu0, self0, t0) = (server.cpu_ns(), self_cpu_ns(), Instant::now());
        window.measuring.store(true, Ordering::SeqCst);
        thread::sleep(plan.window);
        window.measuring.store(false, Ordering::SeqCst);
        let (cpu1, self1) = (server.cpu_ns(), self_cpu_ns());
        secs = t0.elapsed().as_secs_f64();
        server_cpu_ns = cpu1.saturating_sub(cpu0);
        client_cpu_ns = self1.saturating_sub(self0);
        window.stop.store(true, Ordering::SeqCst);
        for handle in handles {
            let (n, lat) = handle.join().expect("client thread");
            ops += n;
            latencies.extend(lat);
        }
    });
    latencies.sort_unstable();
    let (errors, first_error) = window.errors.into_inner().unwrap();
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

/// One client thread of [`drive`]: its operations and their latencies
/// inside the window.
fn client_loop<C>(
    window: &Window,
    i: usize,
    setup: &(impl Fn(usize) -> Result<C, String> + Sync),
    op: &(impl Fn(&mut C) -> Result<(), String> + Sync),
) -> (u64, Vec<u64>) {
    let state = setup(i);
    window.ready.wait();
    let mut state = match state {
        Ok(state) => state,
        Err(e) => {
            window.fail(e);
            return (0, Vec::new());
        }
    };
    let mut ops = 0;
    let mut latencies = Vec::with_capacity(4096);
    while !window.stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        let result = op(&mut state);
        let took = t0.elapsed();
        if let Err(e) = result {
            window.fail(e);
            // A broken connection cannot go on; a failed session can retry.
            thread::sleep(Duration::from_millis(10));
            match setup(i) {
                Ok(fresh) => state = fresh,
                Err(e) => {
                    window.fail(e);
                    break;
                }
            }
            continue;
        }
        if window.measuring.load(Ordering::Relaxed) {
            ops += 1;
            latencies.push(took.as_nanos() as u64);
        }
    }
    (ops, latencies)
}

impl Summary {
    /// The medians of `runs` (NaN where there are none), their ops and errors summed.
    pub fn of(runs: &[Run]) -> Summary {
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
