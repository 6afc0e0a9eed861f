//! The run's costs as a chart: an SVG of horizontal bars, one per cost row
//! (CPU, latency, memory) that has a baseline, on a log scale around 1
//! (wsauth equal to the baseline). Written by every run beside the table.

use crate::table::Row;
use std::fmt::Write as _;

const WIDTH: f64 = 960.0;
const LABEL: f64 = 470.0;
const BAR: f64 = 18.0;
/// Ratios shown from 1/8 to 8; beyond, the bar stops at the edge.
const SPAN: f64 = 3.0;

/// The SVG text of `rows`' ratios, titled `title`.
pub fn chart_svg(rows: &[Row], title: &str) -> String {
    let bars = labelled(rows);
    let height = 60.0 + BAR * 1.5 * bars.len() as f64;
    let plot = WIDTH - LABEL - 20.0;
    let x = |ratio: f64| LABEL + plot / 2.0 * (1.0 + (ratio.log2() / SPAN).clamp(-1.0, 1.0));
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">{}</text>\n",
        escape(title)
    );
    for (i, (name, ratio)) in bars.iter().enumerate() {
        let name = name.as_str();
        let y = 40.0 + BAR * 1.5 * i as f64;
        let (from, to) = (x(1.0).min(x(*ratio)), x(1.0).max(x(*ratio)));
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{from:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{BAR}\" fill=\"#4a7ab5\"/>\
             <text x=\"{:.1}\" y=\"{}\">{ratio:.2}x</text>",
            LABEL - 8.0,
            y + 13.0,
            escape(name),
            (to - from).max(1.0),
            to + 4.0,
            y + 13.0
        );
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"30\" y2=\"{1}\" stroke=\"black\"/>\
         <text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">1x: equal to the baseline (log scale, 1/8x to 8x)</text>\n</svg>",
        x(1.0),
        height - 20.0,
        height - 6.0
    );
    svg
}

/// The cost rows, each named with the group it is indented under
/// (`echo 16 KiB x16 conns: p50 round trip, x16`).
fn labelled(rows: &[Row]) -> Vec<(String, f64)> {
    let mut group = "";
    let mut bars = Vec::new();
    for row in rows {
        let name = row.scenario();
        if !name.starts_with(' ') {
            group = name.split([':', ',']).next().unwrap_or(name);
        }
        if let Some(ratio) = row.cost_ratio() {
            let label = match name.strip_prefix(' ') {
                Some(child) => format!("{group}: {}", child.trim()),
                None => name.to_string(),
            };
            bars.push((label, ratio));
        }
    }
    bars
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
