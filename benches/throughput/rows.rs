//! The rows of the session, rejection, echo and idle measurements.

use crate::idle::Idle;
use crate::plan::Plan;
use crate::scenarios::SessionCase;
use crate::table::{Row, Summary, Unit};

/// Sessions per second and server CPU per session of one case.
pub fn session_rows(case: &SessionCase, (ws, raw): &(Summary, Summary)) -> Vec<Row> {
    let clients = case.clients;
    let label = case
        .label
        .as_ref()
        .map_or(String::new(), |l| format!(" {l}"));
    let cpu = Row::new(
        format!("  server CPU per session{label}, {clients} client(s)"),
        Unit::Micros,
        ws.cpu_ns,
        Some(raw.cpu_ns),
    );
    let cpu = match case.cpu_target_ns {
        Some(most) => cpu.target(
            format!("<= {:.0} us", most / 1e3),
            ws.errors == 0 && ws.cpu_ns <= most,
        ),
        None => cpu,
    };
    vec![
        Row::new(
            format!("sessions/s{label}, {clients} client(s) (raw: connect+echo+close)"),
            Unit::Rate,
            ws.rate,
            Some(raw.rate),
        ),
        cpu,
    ]
}

/// Rejections per second and server CPU per rejection (wsauth alone).
pub fn reject_rows(clients: usize, r: &Summary) -> Vec<Row> {
    vec![
        Row::new(
            format!("rejections/s, wrong token, {clients} clients"),
            Unit::Rate,
            r.rate,
            None,
        ),
        Row::new(
            format!("  server CPU per rejection, {clients} clients"),
            Unit::Micros,
            r.cpu_ns,
            None,
        )
        .target("<= 35 us", r.cpu_ns <= 35_000.0 && r.ops > 0),
    ]
}

/// Round trips per second, their p50 and p99, and server CPU per round trip.
pub fn echo_rows(conns: usize, size: usize, (ws, raw): &(Summary, Summary)) -> Vec<Row> {
    let label = if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    };
    let ok = ws.errors == 0 && ws.ops > 0;
    let targeted = conns == 16 && size == 32;
    vec![
        Row::new(
            format!("echo {label} x{conns} conns: round trips/s"),
            Unit::Rate,
            ws.rate,
            Some(raw.rate),
        )
        .target_if(targeted, ">= 0.70x", ok && ws.rate / raw.rate >= 0.7),
        Row::new(
            format!("  p50 round trip, x{conns}"),
            Unit::Micros,
            ws.p50,
            Some(raw.p50),
        ),
        Row::new(
            format!("  p99 round trip, x{conns}"),
            Unit::Micros,
            ws.p99,
            Some(raw.p99),
        )
        .target_if(conns == 256, "<= 1.5x", ok && ws.p99 / raw.p99 <= 1.5),
        Row::new(
            format!("  server CPU per round trip, x{conns}"),
            Unit::Micros,
            ws.cpu_ns,
            Some(raw.cpu_ns),
        )
        .target_if(targeted, "<= 1.5x", ok && ws.cpu_ns / raw.cpu_ns <= 1.5),
    ]
}

/// RSS per idle session at each count, sessions held, and CPU over the hold.
pub fn idle_rows(plan: &Plan, ws: &Idle, raw: &Idle) -> Vec<Row> {
    let top = plan.idle_counts.iter().copied().max().unwrap_or(0);
    let mut rows: Vec<Row> = ws
        .points
        .iter()
        .enumerate()
        .map(|(i, &(n, per, threads))| {
            let raw_per = raw.points.get(i).map_or(f64::NAN, |p| p.1);
            Row::new(
                format!("RSS per idle session, {n} sessions ({threads} server threads)"),
                Unit::KiB,
                per,
                Some(raw_per),
            )
            .target_if(n >= 10_000, "<= 16 KiB", per <= 16.0)
        })
        .collect();
    rows.push(
        Row::new(
            format!("sessions held at once (echo on each after the hold), {top} wanted"),
            Unit::Count,
            ws.held as f64,
            Some(raw.held as f64),
        )
        .target(
            format!("all {top}, no error"),
            ws.held == ws.wanted && ws.first_error.is_none(),
        ),
    );
    rows.push(
        Row::new(
            format!(
                "server CPU, {} idle sessions over {:.0} s (% of one core)",
                ws.held, ws.hold_secs
            ),
            Unit::Percent,
            ws.cpu_percent,
            Some(raw.cpu_percent),
        )
        .target_if(top >= 10_000, "<= 2 %", ws.cpu_percent <= 2.0),
    );
    rows
}
