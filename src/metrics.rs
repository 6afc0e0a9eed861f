//! Counters for `GET /metrics` (`--metrics`), rendered in the Prometheus text
//! format. Every count is one relaxed atomic add: no lock on the message path.
//! Labels come only from bounded sets (a rejection reason; a close code of
//! the protocol, or one of at most 64 application codes), never from a user
//! name, a token or anything else a client chose freely, so no client can
//! make the label set grow past its bound.

use closes::CloseCounts;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The `Content-Type` of [`Metrics::render`]'s text, as Prometheus reads it
/// (the text is ASCII, so no charset is needed).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// The server's counters. Share one (in an `Arc` or a shared struct) among
/// all connection threads.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_opened: AtomicU64,
    connections_closed: AtomicU64,
    sessions_opened: AtomicU64,
    sessions_closed: AtomicU64,
    rejections: [AtomicU64; RejectionReason::COUNT],
    messages_received: AtomicU64,
    messages_sent: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    session_closes: CloseCounts,
    publish_requests: [AtomicU64; PublishResult::COUNT],
    push_messages: AtomicU64,
    /// Frames dropped with the outbox of a session closed as too slow.
    push_dropped: AtomicU64,
    /// Sessions closed as too slow.
    closed_slow: AtomicU64,
    #[cfg(feature = "redis")]
    bus: bus::BusCounters,
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
    /// The first close with a new application code claims its line: a scan
    /// of at most 64 slots, no lock.
    pub fn session_ended(&self, code: Option<u16>) {
        add(self.session_closes.counter(code), 1);
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

    /// Counts one publish API request by how it ended.
    pub fn publish_request(&self, result: PublishResult) {
        add(&self.publish_requests[result as usize], 1);
    }

    /// Counts `n` messages handed to sessions by a publish (one per session
    /// that took it).
    pub fn pushed(&self, n: usize) {
        add(&self.push_messages, n as u64);
    }

    /// Counts a session closed as too slow, and the frames its outbox lost.
    pub fn closed_slow(&self, dropped: usize) {
        add(&self.closed_slow, 1);
        add(&self.push_dropped, dropped as u64);
    }

    /// The text for `GET /metrics`: every wsauth metric, then the process's.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(4096);
        let out = &mut text;
        for (name, kind, help) in families(FAMILIES) {
            family(out, name, kind, help);
            let value = match name {
                "wsauth_connections_open" => {
                    open(&self.connections_opened, &self.connections_closed)
                }
                "wsauth_sessions_open" => open(&self.sessions_opened, &self.sessions_closed),
                "wsauth_sessions_total" => get(&self.sessions_opened),
                "wsauth_messages_received_total" => get(&self.messages_received),
                "wsauth_messages_sent_total" => get(&self.messages_sent),
                "wsauth_bytes_received_total" => get(&self.bytes_received),
                "wsauth_bytes_sent_total" => get(&self.bytes_sent),
                "wsauth_push_messages_total" => get(&self.push_messages),
                "wsauth_push_dropped_total" => get(&self.push_dropped),
                "wsauth_sessions_closed_slow_total" => get(&self.closed_slow),
                "wsauth_rejections_total" => {
                    let labels = ("reason", RejectionReason::LABELS);
                    labelled(out, name, labels, &self.rejections);
                    continue;
                }
                "wsauth_publish_requests_total" => {
                    let labels = ("result", PublishResult::LABELS);
                    labelled(out, name, labels, &self.publish_requests);
                    continue;
                }
                "wsauth_session_closes_total" => {
                    self.session_closes.render(out, name);
                    continue;
                }
                _ => continue,
            };
            sample(out, name, None, value);
        }
        #[cfg(feature = "redis")]
        self.bus.render(out);
        render_process(out);
        text
    }
}

/// Every wsauth family but the bus's, in the order rendered: its name, its
/// type and its help, one a line.
const FAMILIES: &str = "\
wsauth_connections_open gauge Connections open now, HTTP and WebSocket together.
wsauth_sessions_open gauge WebSocket sessions open now.
wsauth_sessions_total counter WebSocket sessions opened.
wsauth_rejections_total counter Connections and upgrades refused, by reason.
wsauth_messages_received_total counter Data messages received from clients.
wsauth_messages_sent_total counter Data messages sent to clients, greetings included.
wsauth_bytes_received_total counter Payload bytes of data messages received.
wsauth_bytes_sent_total counter Payload bytes of data messages sent.
wsauth_session_closes_total counter Sessions ended, by close code (none: no close frame).
wsauth_publish_requests_total counter POST /publish and /disconnect requests, by result.
wsauth_push_messages_total counter Messages handed to sessions by a push or a publish, one per session.
wsauth_push_dropped_total counter Frames dropped with the outbox of a session closed as too slow.
wsauth_sessions_closed_slow_total counter Sessions closed with 1008 too slow: their outbox overflowed.";

/// A gauge of what is open: opened less closed. The closes are read first,
/// so that a close never appears without its open.
fn open(opened: &AtomicU64, closed: &AtomicU64) -> u64 {
    let closed = get(closed);
    get(opened).saturating_sub(closed)
}

/// One sample per label value: `labels` is the label's name and its values,
/// space-separated, in the order of `counters`.
fn labelled(out: &mut String, name: &str, (key, labels): (&str, &str), counters: &[AtomicU64]) {
    for (label, counter) in labels.split(' ').zip(counters) {
        sample(out, name, Some((key, label)), get(counter));
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
    let values = [
        process.resident_bytes.map(Reading::Whole),
        process.open_fds.map(Reading::Whole),
        process.cpu_seconds,
        process.start_time,
    ];
    for ((name, kind, help), value) in families(PROCESS).zip(values) {
        if let Some(value) = value {
            family(out, name, kind, help);
            sample(out, name, None, value);
        }
    }
}

/// The process families, in the order of [`render_process`]'s values.
const PROCESS: &str = "\
process_resident_memory_bytes gauge Resident memory size in bytes.
process_open_fds gauge Number of open file descriptors.
process_cpu_seconds_total counter Total user and system CPU time spent in seconds.
process_start_time_seconds gauge Start time of the process since unix epoch in seconds.";

/// The families of a table like [`FAMILIES`]: each line's name, type and help.
fn families(
    table: &'static str,
) -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    table.lines().filter_map(|line| {
        let (name, rest) = line.split_once(' ')?;
        let (kind, help) = rest.split_once(' ')?;
        Some((name, kind, help))
    })
}

#[cfg(feature = "redis")]
mod bus;
mod closes;
mod labels;
mod process;

pub use labels::{PublishResult, RejectionReason};

#[cfg(test)]
mod tests;
