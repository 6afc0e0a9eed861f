//! Summaries of runs, rows, and the table they are printed in: below every
//! measurement, so it imports none of them.

use std::fmt::Write as _;

/// Medians over rounds.
pub struct Summary {
    pub rate: f64,
    pub cpu_ns: f64,
    pub p50: f64,
    pub p99: f64,
    pub ops: u64,
    pub errors: u64,
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
    /// wsauth over the baseline, where the unit has a ratio.
    ratio: Option<f64>,
    /// A cost (time, memory): lower is better.
    cost: bool,
}

impl Row {
    /// The one way to make a row: wsauth's value and the floor's (`None` where
    /// the floor does not take part), both in `unit`, the ratio of the two
    /// where the unit has one; no target until [`Row::target`] sets it.
    pub fn new(scenario: impl Into<String>, unit: Unit, wsauth: f64, raw: Option<f64>) -> Row {
        let value = raw
            .map(|raw| wsauth / raw)
            .filter(|ratio| unit.has_ratio() && ratio.is_finite());
        let ratio = value.map_or_else(|| "-".into(), |ratio| format!("{ratio:.2}x"));
        Row {
            cells: [
                scenario.into(),
                unit.format(wsauth),
                raw.map_or_else(|| "-".into(), |raw| unit.format(raw)),
                ratio,
                "-".into(),
            ],
            met: None,
            ratio: value,
            cost: matches!(unit, Unit::Micros | Unit::KiB),
        }
    }

    /// The scenario, as the table shows it (a row under another indented).
    pub fn scenario(&self) -> &str {
        &self.cells[0]
    }

    /// wsauth's ratio to the baseline, for a cost row that has one.
    pub fn cost_ratio(&self) -> Option<f64> {
        self.ratio.filter(|_| self.cost)
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
