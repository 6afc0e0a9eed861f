//! The summaries of runs, the rows they make, and the table they are printed in.

use crate::idle::Idle;
use crate::load::Run;
use crate::plan::Plan;
use crate::scenarios::SessionCase;
use std::fmt::Write as _;

/// Medians over rounds.
pub struct Summary {
    rate: f64,
    cpu_ns: f64,
    p50: f64,
    p99: f64,
    ops: u64,
    errors: u64,
}

/// The middle value (mean of the two middle ones); NaN for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

impl Summary {
    /// Median server CPU per operation, in nanoseconds.
    pub fn cpu_ns(&self) -> f64 {
        self.cpu_ns
    }

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

/// What a row's numbers measure, and so how they are written.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Operations per second.
    Rate,
    /// A time given in nanoseconds, written in microseconds.
    Micros,
    /// Memory in KiB.
    KiB,
    /// A share of one core.
    Percent,
    /// A count of things.
    Count,
}

impl Unit {
    /// The value as a cell; `-` for one that was not measured (NaN).
    pub fn format(self, value: f64) -> String {
        if !value.is_finite() {
            return "-".into();
        }
        match self {
            Unit::Rate | Unit::Count => format!("{value:.0}"),
            Unit::Micros => format!("{:.1} us", value / 1e3),
            Unit::KiB => format!("{value:.1} KiB"),
            Unit::Percent => format!("{value:.2} %"),
        }
    }

    /// Whether wsauth / floor means something (not for counts or a near-idle core).
    fn has_ratio(self) -> bool {
        matches!(self, Unit::Rate | Unit::Micros | Unit::KiB)
    }
}

/// One line of the table.
pub struct Row {
    cells: [String; 5],
    met: Option<bool>,
}

impl Row {
    /// The one way to make a row: wsauth's value and the floor's (`None` where
    /// the floor does not take part), both in `unit`, the ratio of the two
    /// where the unit has one; no target until [`Row::target`] sets it.
    pub fn new(scenario: impl Into<String>, unit: Unit, wsauth: f64, raw: Option<f64>) -> Row {
        let ratio = match raw {
            Some(raw) if unit.has_ratio() && (wsauth / raw).is_finite() => {
                format!("{:.2}x", wsauth / raw)
            }
            _ => "-".into(),
        };
        Row {
            cells: [
                scenario.into(),
                unit.format(wsauth),
                raw.map_or_else(|| "-".into(), |raw| unit.format(raw)),
                ratio,
                "-".into(),
            ],
            met: None,
        }
    }

    /// The row's target, and whether wsauth met it.
    pub fn target(mut self, text: impl Into<String>, met: bool) -> Row {
        self.cells[4] = text.into();
        self.met = Some(met);
        self
    }

    /// [`Row::target`] for rows where `applies`; the others keep none.
    pub fn target_if(self, applies: bool, text: &str, met: bool) -> Row {
        if applies {
            self.target(text, met)
        } else {
            self
        }
    }
}

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

/// Prints the rows as a markdown table, what its columns mean, and the targets met.
pub fn print_table(rows: &[Row]) {
    let headers = ["scenario", "wsauth", "raw TCP", "ratio", "target", "met?"].map(String::from);
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            };
            let [a, b, c, d, e] = r.cells.clone();
            [a, b, c, d, e, met.into()]
        })
        .collect();
    let mut widths = headers.each_ref().map(String::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: &[String; 6]| {
        let mut out = String::from("|");
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i == 0 {
                let _ = write!(out, " {c:<w$} |");
            } else {
                let _ = write!(out, " {c:>w$} |");
            }
        }
        out
    };
    println!("{}", line(&headers));
    println!("{}", line(&widths.map(|w| "-".repeat(w))));
    for row in &cells {
        println!("{}", line(row));
    }
    println!(
        "\nwsauth: the wsauth binary in a child process; raw TCP: a thread-per-connection echo \
         server (no framing) in a child process, the floor.\nratio = wsauth / raw TCP. Sessions: \
         connect, upgrade with the token, greeting, one 32-byte echo, close (raw: connect, one \
         32-byte echo, close). Echo: binary messages, round trips one at a time per connection.\n\
         Server CPU = utime+stime of the server process over the measured window / operations; \
         RSS = growth of the server's VmRSS / sessions (each authenticated, one echo done, idle)."
    );
    let targets = rows.iter().filter(|r| r.met.is_some()).count();
    let met = rows.iter().filter(|r| r.met == Some(true)).count();
    println!("\ntargets met: {met} of {targets}");
}
