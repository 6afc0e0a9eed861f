//! Unit tests of the parent module.

use super::*;

#[test]
fn render_has_the_exact_text_format() {
    let metrics = Metrics::default();
    metrics.connection_accepted();
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
    assert_eq!(lines, 12);
    for label in RejectionReason::LABELS.split(' ') {
        let line = format!("wsauth_rejections_total{{reason=\"{label}\"}} 0");
        assert!(text.contains(&line), "{line}");
    }
}

#[test]
fn gauges_return_to_zero_when_connections_close_and_guards_drop() {
    let metrics = Metrics::default();
    {
        metrics.connection_accepted();
        let _session = metrics.session_opened();
        assert!(metrics.render().contains("\nwsauth_sessions_open 1\n"));
        metrics.connection_closed();
    }
    let text = metrics.render();
    assert!(text.contains("\nwsauth_connections_open 0\n"), "{text}");
    assert!(text.contains("\nwsauth_sessions_open 0\n"), "{text}");
    assert!(text.contains("\nwsauth_sessions_total 1\n"), "{text}");
}

/// The `wsauth_session_closes_total` samples, by their `code` label.
fn closes(metrics: &Metrics) -> Vec<(String, u64)> {
    let prefix = "wsauth_session_closes_total{code=\"";
    metrics
        .render()
        .lines()
        .filter_map(|line| {
            let (code, count) = line.strip_prefix(prefix)?.split_once("\"} ")?;
            Some((code.to_string(), count.parse().ok()?))
        })
        .collect()
}

fn count_of(closes: &[(String, u64)], code: &str) -> Option<u64> {
    let mut found = closes.iter().filter(|(c, _)| c == code);
    let count = found.next().map(|(_, n)| *n);
    assert!(found.next().is_none(), "two lines for {code}: {closes:?}");
    count
}

#[test]
fn close_codes_fall_into_a_bounded_label_set() {
    let metrics = Metrics::default();
    for code in [
        Some(1000),
        Some(1000),
        Some(1009),
        Some(1005),
        Some(1015),
        None,
        Some(4000),
        Some(999),
        Some(1016),
        Some(2999),
        Some(5000),
        Some(u16::MAX),
    ] {
        metrics.session_ended(code);
    }
    let closes = closes(&metrics);
    for (code, count) in [
        ("1000", 2),
        ("1009", 1),
        ("1005", 1),
        ("1015", 1),
        ("1014", 0),
        ("none", 1),
        ("4000", 1),
        ("other", 5),
    ] {
        assert_eq!(count_of(&closes, code), Some(count), "{code}: {closes:?}");
    }
    // 1000-1015, the one application code, none and other.
    assert_eq!(closes.len(), 16 + 1 + 2, "{closes:?}");
}

#[test]
fn application_codes_are_counted_by_their_number() {
    let metrics = Metrics::default();
    for code in [4001, 3000, 4001, 4999] {
        metrics.session_ended(Some(code));
    }
    let closes = closes(&metrics);
    assert_eq!(count_of(&closes, "4001"), Some(2), "{closes:?}");
    assert_eq!(count_of(&closes, "3000"), Some(1), "{closes:?}");
    assert_eq!(count_of(&closes, "4999"), Some(1), "{closes:?}");
    assert_eq!(count_of(&closes, "other"), Some(0), "{closes:?}");
    // A code that never occurred has no line.
    assert_eq!(count_of(&closes, "4002"), None, "{closes:?}");
}

#[test]
fn past_64_application_codes_the_rest_count_as_other() {
    let metrics = Metrics::default();
    for code in 3000..3070 {
        metrics.session_ended(Some(code));
    }
    metrics.session_ended(Some(3000));
    metrics.session_ended(Some(3069));
    let closes = closes(&metrics);
    assert_eq!(count_of(&closes, "3000"), Some(2), "{closes:?}");
    assert_eq!(count_of(&closes, "3063"), Some(1), "{closes:?}");
    assert_eq!(count_of(&closes, "3064"), None, "{closes:?}");
    assert_eq!(count_of(&closes, "other"), Some(7), "{closes:?}");
    assert_eq!(closes.len(), 16 + 64 + 2, "{closes:?}");
}

#[test]
fn codes_claimed_at_once_from_many_threads_get_one_line_each() {
    let metrics = Metrics::default();
    std::thread::scope(|scope| {
        for thread in 0..8u16 {
            let metrics = &metrics;
            scope.spawn(move || {
                for i in 0..64u16 {
                    // Each thread meets the codes in another order.
                    metrics.session_ended(Some(3000 + (i * 7 + thread * 13) % 64));
                }
            });
        }
    });
    let closes = closes(&metrics);
    for code in 3000..3064 {
        assert_eq!(count_of(&closes, &code.to_string()), Some(8), "{closes:?}");
    }
    assert_eq!(count_of(&closes, "other"), Some(0), "{closes:?}");
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

#[test]
fn a_rejection_moves_its_reason() {
    let metrics = Metrics::default();
    metrics.rejected(RejectionReason::MissingToken);
    let text = metrics.render();
    assert!(text.contains("wsauth_rejections_total{reason=\"missing_token\"} 1\n"));
}
