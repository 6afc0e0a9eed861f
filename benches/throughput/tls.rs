//! What TLS costs (`cargo bench --features tls`): a session with a full
//! handshake (ECDSA P-256), echo round trips over wss, and idle wss
//! sessions, each beside plain wsauth of the same run (in the table's
//! "raw TCP" column for the echo and idle rows, which say so).

use crate::idle::{Idle, idle_test};
use crate::load::compare;
use crate::plan::Plan;
use crate::scenarios::run_echo;
use crate::servers::{Kind, ServerProc};
use crate::table::{Row, Summary, Unit};
use crate::tls_pair::server_args;

/// The echo groups over wss: (name, message size), at 16 connections.
const TLS_ECHO_GROUPS: [(&str, usize); 2] = [("tls_echo16", 32), ("tls_echo16k", 16 * 1024)];

/// Echo round trips over wss beside the same over ws on `plain`.
pub fn echo_rows(plan: &Plan, plain: &ServerProc, details: &mut Vec<String>) -> Vec<Row> {
    if !TLS_ECHO_GROUPS.iter().any(|(g, _)| plan.runs(g)) {
        return Vec::new();
    }
    let tls = ServerProc::wsauth(plan, &server_args());
    let mut rows = Vec::new();
    for (group, size) in TLS_ECHO_GROUPS {
        if !plan.runs(group) {
            continue;
        }
        let name = format!("wss/ws echo {size} B x16");
        let (t, p) = compare(plan, [&tls, plain], details, &name, |server| {
            run_echo(plan, server, 16, size)
        });
        rows.extend(tls_echo_rows(size, &t, &p));
    }
    rows
}

fn tls_echo_rows(size: usize, t: &Summary, p: &Summary) -> Vec<Row> {
    let label = if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    };
    let cpu = Row::new(
        format!("  wss echo {label} x16: server CPU per round trip (ws in the next column)"),
        Unit::Micros,
        t.cpu_ns(),
        Some(p.cpu_ns()),
    );
    let ratio = t.cpu_ns() / p.cpu_ns();
    vec![if size == 32 {
        cpu.target("<= 1.5x ws", ratio <= 1.5)
    } else {
        cpu
    }]
}

/// Idle sessions over wss, beside the plain ones of the same run.
pub fn idle_rows(plan: &Plan, plain: &Idle) -> Vec<Row> {
    let tls = idle_test(plan, Kind::WsauthTls);
    let mut rows: Vec<Row> = tls
        .points
        .iter()
        .enumerate()
        .map(|(i, &(n, per, _))| {
            let plain_per = plain.points.get(i).map_or(f64::NAN, |p| p.1);
            Row::new(
                format!("RSS per idle wss session, {n} sessions (ws in the next column)"),
                Unit::KiB,
                per,
                Some(plain_per),
            )
            .target("<= 2x ws", per <= 2.0 * plain_per)
        })
        .collect();
    rows.push(
        Row::new(
            format!("wss sessions held at once, {} wanted", tls.wanted),
            Unit::Count,
            tls.held as f64,
            Some(plain.held as f64),
        )
        .target(
            "all, no error",
            tls.held == tls.wanted && tls.first_error.is_none(),
        ),
    );
    if let Some(e) = &tls.first_error {
        println!("idle wss: first error: {e}");
    }
    rows
}
