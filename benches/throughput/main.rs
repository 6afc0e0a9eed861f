//! `cargo bench` (or `cargo bench -- --quick` for a smoke run): wsauth against
//! a raw TCP echo floor, both served by child processes so that their CPU
//! time and memory can be read from `/proc/<pid>` apart from the clients'.
//!
//! * wsauth is the crate's own binary (`CARGO_BIN_EXE_wsauth`), or the one
//!   named by `WSAUTH_BENCH_BIN` (to try a build of an experimental copy).
//!   `WSAUTH_BENCH_SERVER_ENV="NAME=VALUE ..."` adds variables to its
//!   environment (e.g. `MALLOC_ARENA_MAX=1`), and
//!   `WSAUTH_BENCH_SERVER_ARGS="--flag ..."` to its arguments (e.g. `--metrics`).
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
//! `--only GROUP[,GROUP]` (only the groups `session1`, `session16`,
//! `session_publish16`, `session_exec16`, `session_jwt_{hs256,rs256,es256,eddsa}16` (with
//! `--features jwt`), `reject`, `echo1`, `echo16`, `echo256`, `echo16k`,
//! `broadcast`, `publish`, `stalled`, `idle`; `session` and `echo`
//! select all of theirs), `--rounds N`, `--secs S` (measured window of one
//! run), `--idle N[,N]` (idle session counts), `--hold S` (the quiet hold, in
//! seconds), `--skip-raw` (wsauth only, to compare builds). `--only
//! capacity` alone runs [`capacity`]: the most sessions one instance holds.
//!
//! Where things are: [`plan`] (the options), [`servers`] and [`raw_floor`]
//! (the child processes), [`clients`], [`load`] (the measured window),
//! [`scenarios`] (add a session row there), [`idle`], [`table`].
//!
//! With `cargo bench --features redis`, the group `bus` runs two instances
//! on a `redis-server` beside one without a bus.
//!
//! With `cargo bench --features tls`, the groups `tls_session16`,
//! `tls_echo16`, `tls_echo16k` and `tls_idle` (`--only tls` for all) measure
//! the same over TLS, beside plain wsauth of the same run.

mod broadcast;
#[cfg(feature = "redis")]
mod bus;
mod capacity;
mod chart;
mod clients;
mod idle;
mod load;
mod machine;
mod plan;
mod publish;
mod raw_floor;
mod rows;
mod scenarios;
mod servers;
mod stalled;
mod table;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
mod tls_pair;

use idle::{Idle, idle_test, print_idle_notes};
use load::compare;
use machine::{loadavg, print_machine, raise_open_files};
use plan::Plan;
use rows::{echo_rows, idle_rows, reject_rows, session_rows};
use scenarios::{run_echo, run_rejections, session_cases};
use servers::{Kind, ServerProc};
use std::time::Instant;
use table::{Row, Summary, print_table};

/// Descriptors wanted: 10,000 idle sessions need 10,000 on the client side and
/// at least as many in the server (which inherits the limit).
const WANT_OPEN_FILES: libc::rlim_t = 65536;

/// The echo groups: (name, connections, message size).
const ECHO_GROUPS: [(&str, usize, usize); 4] = [
    ("echo1", 1, 32),
    ("echo16", 16, 32),
    ("echo256", 256, 32),
    ("echo16k", 16, 16 * 1024),
];

/// Clients of the rejection group.
const REJECT_CLIENTS: usize = 16;

fn main() {
    if child_role() {
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

    let mut details = Vec::new();
    let (mut rows, echo16_cpu) = load_groups(&plan, &mut details);
    rows.extend(own_server_groups(&plan, echo16_cpu));
    if plan.only.iter().any(|o| o == "capacity") {
        capacity::capacity_test(&plan);
    }
    idle_groups(&plan, &mut rows);
    print_details(&details);
    println!();
    print_table(&rows);
    write_chart(&plan, &rows);
    println!(
        "\nload average now: {}; bench run time {:.0} s",
        loadavg(),
        started.elapsed().as_secs_f64()
    );
}

/// Runs this binary's part when it was re-executed as a child (the raw
/// floor, or one stalled-client run); whether it was.
fn child_role() -> bool {
    if std::env::var_os(raw_floor::RAW_SERVER_ENV).is_some() {
        raw_floor::raw_server_main();
        return true;
    }
    if std::env::var_os(stalled::STALLED_ENV).is_some() {
        stalled::child_main();
        return true;
    }
    false
}

/// The groups that start servers of their own: broadcast and publish
/// (beside wsauth's echo x16 round trip, when measured), bus, stalled.
fn own_server_groups(plan: &Plan, echo16_cpu: Option<f64>) -> Vec<Row> {
    let mut rows = Vec::new();
    if plan.runs("broadcast") {
        rows.extend(broadcast::broadcast_rows(
            &broadcast::broadcast_test(plan),
            echo16_cpu,
        ));
    }
    if plan.runs("publish") {
        rows.extend(publish::publish_rows(
            &publish::publish_test(plan),
            echo16_cpu,
        ));
    }
    #[cfg(feature = "redis")]
    if plan.runs("bus")
        && let Some(bus) = bus::bus_test(plan)
    {
        rows.extend(bus::bus_rows(&bus));
    }
    if plan.runs("stalled") {
        rows.extend(stalled::stalled_rows(&stalled::stalled_test(plan)));
    }
    rows
}

/// The idle groups: plain, then over TLS (beside plain wsauth, measured
/// for them if the plain group did not run).
fn idle_groups(plan: &Plan, rows: &mut Vec<Row>) {
    let plain_idle = plan.runs("idle").then(|| idle_group(plan, rows));
    #[cfg(feature = "tls")]
    if plan.runs("tls_idle") {
        let plain = plain_idle.unwrap_or_else(|| idle_test(plan, Kind::Wsauth));
        rows.extend(tls::idle_rows(plan, &plain));
    }
    #[cfg(not(feature = "tls"))]
    drop(plain_idle);
}

/// The groups run under load against one wsauth and one floor started for
/// them all (a session case with server flags of its own starts its own);
/// also wsauth's CPU per 32-byte round trip at 16 connections, when measured.
fn load_groups(plan: &Plan, details: &mut Vec<String>) -> (Vec<Row>, Option<f64>) {
    let cases = session_cases();
    let any = cases.iter().any(|c| plan.runs(&c.group))
        || plan.runs("reject")
        || ECHO_GROUPS.iter().any(|(g, ..)| plan.runs(g))
        || ["tls_echo16", "tls_echo16k"].iter().any(|g| plan.runs(g));
    if !any {
        return (Vec::new(), None);
    }
    let (wsauth, raw) = (ServerProc::wsauth(plan, &[]), ServerProc::raw());
    let servers = [&wsauth, &raw];
    let mut rows = Vec::new();
    let mut echo16_cpu = None;
    for case in cases.iter().filter(|c| plan.runs(&c.group)) {
        rows.extend(session_rows(case, &case.measure(plan, servers, details)));
    }
    if plan.runs("reject") {
        let runs: Vec<_> = (0..plan.rounds)
            .map(|_| {
                let run = run_rejections(plan, &wsauth, REJECT_CLIENTS);
                details.push(run.detail("wsauth", &format!("rejection x{REJECT_CLIENTS}")));
                run
            })
            .collect();
        rows.extend(reject_rows(REJECT_CLIENTS, &Summary::of(&runs)));
    }
    for (group, conns, size) in ECHO_GROUPS {
        if plan.runs(group) {
            let name = format!("echo {size} B x{conns}");
            let summaries = compare(plan, servers, details, &name, |server| {
                run_echo(plan, server, conns, size)
            });
            if group == "echo16" {
                echo16_cpu = Some(summaries.0.cpu_ns());
            }
            rows.extend(echo_rows(conns, size, &summaries));
        }
    }
    #[cfg(feature = "tls")]
    rows.extend(tls::echo_rows(plan, &wsauth, details));
    (rows, echo16_cpu)
}

/// The idle group: each server on a fresh process of its own. Returns
/// wsauth's, for the TLS rows.
fn idle_group(plan: &Plan, rows: &mut Vec<Row>) -> Idle {
    let wsauth = idle_test(plan, Kind::Wsauth);
    let raw = if plan.skip_raw {
        Idle::default()
    } else {
        idle_test(plan, Kind::Raw)
    };
    rows.extend(idle_rows(plan, &wsauth, &raw));
    print_idle_notes(&wsauth, &raw);
    wsauth
}

/// Prints a line per run, under its header.
fn print_details(details: &[String]) {
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
    for line in details {
        println!("{line}");
    }
}

/// Writes the chart of this run's ratios to `--chart PATH`, or to
/// `target/throughput.svg`.
fn write_chart(plan: &Plan, rows: &[Row]) {
    let path = plan.chart.clone().unwrap_or_else(|| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        format!("{target}/throughput.svg")
    });
    let title = format!(
        "wsauth's cost / the baseline's, cargo bench ({} rounds{}): below 1x, wsauth costs less",
        plan.rounds,
        if plan.quick { ", quick" } else { "" }
    );
    match std::fs::write(&path, chart::chart_svg(rows, &title)) {
        Ok(()) => println!("chart: {path}"),
        Err(e) => println!("chart: {path}: {e}"),
    }
}
