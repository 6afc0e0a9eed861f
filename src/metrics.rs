//! Counters for `GET /metrics` (`--metrics`), rendered in the Prometheus text
//! format. Every count is one relaxed atomic add: no lock on the message path.
//! Labels come only from fixed sets (a rejection reason, a close code from a
//! bounded list), never from a user name, a token or anything a client chose
//! freely, so no client can make the label set grow.
//!
//! ```
//! use wsauth::metrics::{Metrics, RejectionReason};
//! let metrics = Metrics::default();
//! metrics.rejected(RejectionReason::MissingToken);
//! let text = metrics.render();
//! assert!(text.contains("wsauth_rejections_total{reason=\"missing_token\"} 1\n"));
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The `Content-Type` of [`Metrics::render`]'s text, as SPEC writes it (the
/// text is ASCII, so no charset is needed).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Why a connection or an upgrade was refused: one label value of
/// `wsauth_rejections_total` each. Every refusal moves exactly one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionReason {
    /// No token in any source: 401.
    MissingToken,
    /// An unknown, expired or malformed token, or a failed first-message
    /// authentication: 401 or close 1008.
    InvalidToken,
    /// Too many failed authentications from the client IP: 429.
    Throttled,
    /// An `Origin` that is not allowed: 403.
    Origin,
    /// Only token subprotocols offered: 400.
    Subprotocol,
    /// Every connection slot is a session: 503.
    Busy,
    /// Any other 400: a malformed head or upgrade.
    BadRequest,
    /// A head over 8192 bytes: 431.
    HeadTooLarge,
    /// No complete head (or PROXY header) in time.
    Timeout,
    /// Past `--max-pending-per-ip`: closed without an answer.
    PendingPerIp,
    /// The oldest connection not yet a session, closed to make room.
    Evicted,
}

impl RejectionReason {
    /// Every reason, in the order they are rendered.
    pub const ALL: [RejectionReason; 11] = [
        RejectionReason::MissingToken,
        RejectionReason::InvalidToken,
        RejectionReason::Throttled,
        RejectionReason::Origin,
        RejectionReason::Subprotocol,
        RejectionReason::Busy,
        RejectionReason::BadRequest,
        RejectionReason::HeadTooLarge,
        RejectionReason::Timeout,
        RejectionReason::PendingPerIp,
        RejectionReason::Evicted,
    ];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            RejectionReason::MissingToken => "missing_token",
            RejectionReason::InvalidToken => "invalid_token",
            RejectionReason::Throttled => "throttled",
            RejectionReason::Origin => "origin",
            RejectionReason::Subprotocol => "subprotocol",
            RejectionReason::Busy => "busy",
            RejectionReason::BadRequest => "bad_request",
            RejectionReason::HeadTooLarge => "head_too_large",
            RejectionReason::Timeout => "timeout",
            RejectionReason::PendingPerIp => "pending_per_ip",
            RejectionReason::Evicted => "evicted",
        }
    }
}

/// Close codes counted under their own number; any other is `other`.
/// 1000–1014 are every code RFC 6455 and the IANA registry define for the
/// protocol itself (1005 stands for an empty close frame).
const CLOSE_CODES: std::ops::RangeInclusive<u16> = 1000..=1014;
/// Slots of `session_closes`: the codes, then `none`, then `other`.
const CLOSE_SLOTS: usize = 17;
const CLOSE_NONE: usize = 15;
const CLOSE_OTHER: usize = 16;

/// The server's counters. Share one (in an `Arc` or a shared struct) among
/// all connection threads.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_opened: AtomicU64,
    connections_closed: AtomicU64,
    sessions_opened: AtomicU64,
    sessions_closed: AtomicU64,
    rejections: [AtomicU64; RejectionReason::ALL.len()],
    messages_received: AtomicU64,
    messages_sent: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    session_closes: [AtomicU64; CLOSE_SLOTS],
}

/// An open connection or session, counted while this lives: dropping it (at
/// the end of its thread, or in a panic's unwinding) counts the close, so
/// the gauges return to 0.
#[derive(Debug)]
#[must_use = "the connection counts as closed when this is dropped"]
pub struct Tracked<'a> {
    closed: &'a AtomicU64,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        add(self.closed, 1);
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Metrics {
    /// Counts an accepted connection for a holder that cannot keep a borrow
    /// (the server's connection slot); [`Metrics::connection_closed`] ends it.
    pub fn connection_accepted(&self) {
        add(&self.connections_opened, 1);
    }

    /// Counts the end of a connection counted by [`Metrics::connection_accepted`].
    pub fn connection_closed(&self) {
        add(&self.connections_closed, 1);
    }

    /// Counts an accepted connection (HTTP or WebSocket) until the guard drops.
    pub fn connection_opened(&self) -> Tracked<'_> {
        add(&self.connections_opened, 1);
        Tracked {
            closed: &self.connections_closed,
        }
    }

    /// Counts a session (after the 101) until the guard drops; also moves
    /// `wsauth_sessions_total`.
    pub fn session_opened(&self) -> Tracked<'_> {
        add(&self.sessions_opened, 1);
        Tracked {
            closed: &self.sessions_closed,
        }
    }

    /// Counts how a session ended: the close code sent or received (1005 for
    /// an empty close frame), or `None` when no close frame was exchanged.
    pub fn session_ended(&self, code: Option<u16>) {
        let slot = match code {
            None => CLOSE_NONE,
            Some(code) if CLOSE_CODES.contains(&code) => usize::from(code - CLOSE_CODES.start()),
            Some(_) => CLOSE_OTHER,
        };
        add(&self.session_closes[slot], 1);
    }

    /// Counts one refusal.
    pub fn rejected(&self, reason: RejectionReason) {
        add(&self.rejections[reason as usize], 1);
    }

    /// Counts one data message (text or binary) from a client.
    pub fn message_received(&self, payload_bytes: usize) {
        add(&self.messages_received, 1);
        add(&self.bytes_received, payload_bytes as u64);
    }

    /// Counts one data message (text or binary, the greeting too) to a client.
    pub fn message_sent(&self, payload_bytes: usize) {
        add(&self.messages_sent, 1);
        add(&self.bytes_sent, payload_bytes as u64);
    }

    /// The text for `GET /metrics`: every wsauth metric, then the process's.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let open = |opened: &AtomicU64, closed: &AtomicU64| {
            // Read the closes first: a close never appears without its open.
            let closed = get(closed);
            get(opened).saturating_sub(closed)
        };
        let connections = open(&self.connections_opened, &self.connections_closed);
        let sessions = open(&self.sessions_opened, &self.sessions_closed);
        family(
            &mut out,
            "wsauth_connections_open",
            "gauge",
            "Connections open now, HTTP and WebSocket together.",
        );
        sample(&mut out, "wsauth_connections_open", None, connections);
        family(
            &mut out,
            "wsauth_sessions_open",
            "gauge",
            "WebSocket sessions open now.",
        );
        sample(&mut out, "wsauth_sessions_open", None, sessions);
        self.render_counters(&mut out);
        render_process(&mut out);
        out
    }

    /// The counters, with their labelled families.
    fn render_counters(&self, out: &mut String) {
        let plain = [
            (
                "wsauth_sessions_total",
                "WebSocket sessions opened.",
                &self.sessions_opened,
            ),
            (
                "wsauth_messages_received_total",
                "Data messages received from clients.",
                &self.messages_received,
            ),
            (
                "wsauth_messages_sent_total",
                "Data messages sent to clients, greetings included.",
                &self.messages_sent,
            ),
            (
                "wsauth_bytes_received_total",
                "Payload bytes of data messages received.",
                &self.bytes_received,
            ),
            (
                "wsauth_bytes_sent_total",
                "Payload bytes of data messages sent.",
                &self.bytes_sent,
            ),
        ];
        let (name, help, counter) = plain[0];
        family(out, name, "counter", help);
        sample(out, name, None, get(counter));
        let name = "wsauth_rejections_total";
        family(
            out,
            name,
            "counter",
            "Connections and upgrades refused, by reason.",
        );
        for reason in RejectionReason::ALL {
            let value = get(&self.rejections[reason as usize]);
            sample(out, name, Some(("reason", reason.label())), value);
        }
        for (name, help, counter) in &plain[1..] {
            family(out, name, "counter", help);
            sample(out, name, None, get(counter));
        }
        let name = "wsauth_session_closes_total";
        family(
            out,
            name,
            "counter",
            "Sessions ended, by close code (none: no close frame).",
        );
        for (slot, counter) in self.session_closes.iter().enumerate() {
            let code = close_label(slot);
            sample(out, name, Some(("code", &code)), get(counter));
        }
    }
}

/// The `code` label of a slot of `session_closes`.
fn close_label(slot: usize) -> String {
    match slot {
        CLOSE_NONE => "none".to_string(),
        CLOSE_OTHER => "other".to_string(),
        _ => (usize::from(*CLOSE_CODES.start()) + slot).to_string(),
    }
}

/// The `# HELP` and `# TYPE` lines of a metric.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample line, with at most one label (values here never need escaping).
fn sample(
    out: &mut String,
    name: &str,
    label: Option<(&str, &str)>,
    value: impl std::fmt::Display,
) {
    match label {
        Some((key, label)) => {
            let _ = writeln!(out, "{name}{{{key}=\"{label}\"}} {value}");
        }
        None => {
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

/// The standard process metrics, from `/proc/self`; one that cannot be read
/// (not Linux, no /proc) is left out, HELP and TYPE included.
fn render_process(out: &mut String) {
    use process::Reading;
    let process = process::read();
    let metrics: [(&str, &str, &str, Option<Reading>); 4] = [
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            process.resident_bytes.map(Reading::Whole),
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            process.open_fds.map(Reading::Whole),
        ),
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            process.cpu_seconds,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            process.start_time,
        ),
    ];
    for (name, kind, help, value) in metrics {
        if let Some(value) = value {
            family(out, name, kind, help);
            sample(out, name, None, value);
        }
    }
}

/// Reading `/proc/self` for the process metrics, in whole numbers (no
/// floating point: its formatting code alone would cost the binary 10 KiB).
mod process {
    use std::fmt;

    /// One value: a whole number, or seconds from clock ticks.
    #[derive(Clone, Copy)]
    pub enum Reading {
        /// A count of bytes or descriptors.
        Whole(u64),
        /// `ticks / per_second` seconds, written with two decimals.
        Ticks { ticks: u64, per_second: u64 },
    }

    impl fmt::Display for Reading {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match *self {
                Reading::Whole(n) => write!(f, "{n}"),
                Reading::Ticks { ticks, per_second } => {
                    let hundredths = u128::from(ticks) * 100 / u128::from(per_second.max(1));
                    write!(f, "{}.{:02}", hundredths / 100, hundredths % 100)
                }
            }
        }
    }

    /// What `/proc` tells about this process; `None` where it could not.
    pub struct Process {
        pub resident_bytes: Option<u64>,
        pub open_fds: Option<u64>,
        pub cpu_seconds: Option<Reading>,
        pub start_time: Option<Reading>,
    }

    /// Reads all four.
    pub fn read() -> Process {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let fields = stat.as_deref().map(stat_fields).unwrap_or_default();
        let field = |n: usize| fields.get(n).and_then(|f| f.parse::<u64>().ok());
        let per_second = sysconf(libc::_SC_CLK_TCK);
        let cpu_seconds =
            field(11)
                .zip(field(12))
                .zip(per_second)
                .map(|((user, system), per_second)| Reading::Ticks {
                    ticks: user + system,
                    per_second,
                });
        let start_time =
            field(19)
                .zip(per_second)
                .zip(boot_time())
                .map(|((start, per_second), boot)| Reading::Ticks {
                    ticks: boot * per_second + start,
                    per_second,
                });
        Process {
            resident_bytes: resident_bytes(),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            cpu_seconds,
            start_time,
        }
    }

    /// The fields of `/proc/self/stat` after the command name, which may hold
    /// spaces and parentheses itself: field 3 of proc(5) is index 0 here.
    fn stat_fields(stat: &str) -> Vec<&str> {
        stat.rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// Resident pages (second field of `/proc/self/statm`) times the page size.
    fn resident_bytes() -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * sysconf(libc::_SC_PAGESIZE)?)
    }

    /// The system's boot time in Unix seconds (`btime` in `/proc/stat`).
    fn boot_time() -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
    }

    fn sysconf(name: libc::c_int) -> Option<u64> {
        // SAFETY: sysconf only reads a system constant.
        let value = unsafe { libc::sysconf(name) };
        u64::try_from(value).ok().filter(|&v| v > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_the_exact_text_format() {
        let metrics = Metrics::default();
        let _connection = metrics.connection_opened();
        metrics.rejected(RejectionReason::Throttled);
        metrics.rejected(RejectionReason::Throttled);
        metrics.message_sent(11);
        let text = metrics.render();
        for expected in [
            "# HELP wsauth_connections_open Connections open now, HTTP and WebSocket together.\n\
             # TYPE wsauth_connections_open gauge\n\
             wsauth_connections_open 1\n",
            "# TYPE wsauth_rejections_total counter\n\
             wsauth_rejections_total{reason=\"missing_token\"} 0\n\
             wsauth_rejections_total{reason=\"invalid_token\"} 0\n\
             wsauth_rejections_total{reason=\"throttled\"} 2\n",
            "\nwsauth_messages_sent_total 1\n",
            "\nwsauth_bytes_sent_total 11\n",
            "wsauth_session_closes_total{code=\"1000\"} 0\n",
            "wsauth_session_closes_total{code=\"none\"} 0\nwsauth_session_closes_total{code=\"other\"} 0\n",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn every_sample_line_has_its_help_and_type_first() {
        let text = Metrics::default().render();
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("name and kind");
                assert!(["gauge", "counter"].contains(&kind), "{line}");
                declared.push(name.to_string());
            } else if !line.starts_with("# HELP ") {
                let name = line.split(['{', ' ']).next().expect("a name");
                assert_eq!(declared.last(), Some(&name.to_string()), "{line}");
                let value = line.rsplit(' ').next().expect("a value");
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
    }

    #[test]
    fn every_rejection_reason_has_one_line() {
        let text = Metrics::default().render();
        let lines = text
            .lines()
            .filter(|l| l.starts_with("wsauth_rejections_total{"))
            .count();
        assert_eq!(lines, 11);
        for reason in RejectionReason::ALL {
            let line = format!("wsauth_rejections_total{{reason=\"{}\"}} 0", reason.label());
            assert!(text.contains(&line), "{line}");
        }
    }

    #[test]
    fn gauges_return_to_zero_when_the_guards_drop() {
        let metrics = Metrics::default();
        {
            let _connection = metrics.connection_opened();
            let _session = metrics.session_opened();
            assert!(metrics.render().contains("\nwsauth_sessions_open 1\n"));
        }
        let text = metrics.render();
        assert!(text.contains("\nwsauth_connections_open 0\n"), "{text}");
        assert!(text.contains("\nwsauth_sessions_open 0\n"), "{text}");
        assert!(text.contains("\nwsauth_sessions_total 1\n"), "{text}");
    }

    #[test]
    fn close_codes_fall_into_a_bounded_label_set() {
        let metrics = Metrics::default();
        for code in [
            Some(1000),
            Some(1000),
            Some(1009),
            Some(1005),
            None,
            Some(4000),
            Some(999),
            Some(u16::MAX),
        ] {
            metrics.session_ended(code);
        }
        let text = metrics.render();
        for expected in [
            "{code=\"1000\"} 2\n",
            "{code=\"1009\"} 1\n",
            "{code=\"1005\"} 1\n",
            "{code=\"none\"} 1\n",
            "{code=\"other\"} 3\n",
            "{code=\"1014\"} 0\n",
        ] {
            assert!(text.contains(expected), "{expected} not in\n{text}");
        }
        let lines = text
            .lines()
            .filter(|l| l.starts_with("wsauth_session_closes_total{"))
            .count();
        assert_eq!(lines, CLOSE_SLOTS);
    }

    #[test]
    fn process_metrics_come_from_proc() {
        let text = Metrics::default().render();
        let value = |name: &str| -> f64 {
            let prefix = format!("\n{name} ");
            let start = text
                .find(&prefix)
                .unwrap_or_else(|| panic!("{name} in\n{text}"))
                + prefix.len();
            text[start..]
                .lines()
                .next()
                .and_then(|v| v.parse().ok())
                .expect("a number")
        };
        assert!(value("process_resident_memory_bytes") > 1e5);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_cpu_seconds_total") >= 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(
            start <= now + 1.0 && start > now - 86400.0,
            "{start} vs {now}"
        );
    }
}
