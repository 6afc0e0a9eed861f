//! What to run: the options after `cargo bench --`, and the environment.

use std::time::Duration;

/// The options of one bench run.
pub struct Plan {
    /// `--quick`: smaller counts, shorter windows.
    pub quick: bool,
    /// `--skip-raw`: wsauth only, to compare builds.
    pub skip_raw: bool,
    /// `--chart PATH`: where the SVG of the ratios goes [target/throughput.svg].
    pub chart: Option<String>,
    /// `--only GROUP[,GROUP]`; empty runs every group.
    pub only: Vec<String>,
    /// `--rounds N`: runs per scenario and server [5; quick 1].
    pub rounds: usize,
    /// Unmeasured time before the window [300 ms; quick 100 ms].
    pub warmup: Duration,
    /// `--secs S`: the measured window of one run [1.2 s; quick 0.4 s].
    pub window: Duration,
    /// `--idle N[,N]`: idle session counts [1000,10000; quick 200,1000].
    pub idle_counts: Vec<usize>,
    /// `--hold S`: the quiet hold over idle sessions [5 s; quick 1 s].
    pub idle_hold: Duration,
    /// `WSAUTH_BENCH_BIN`, or the crate's own binary.
    pub server_bin: String,
    /// `WSAUTH_BENCH_SERVER_ENV="NAME=VALUE ..."`: added to wsauth's environment.
    pub server_env: Vec<(String, String)>,
    /// `WSAUTH_BENCH_SERVER_ARGS="--flag value ..."`: added to wsauth's
    /// arguments (split at spaces), for an A/B of a flag such as `--metrics`.
    pub server_args: Vec<String>,
}

impl Plan {
    /// Reads the options from the bench's arguments and the environment.
    pub fn from_args(args: &[String]) -> Plan {
        let quick = args.iter().any(|a| a == "--quick");
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let mut plan = Plan {
            quick,
            skip_raw: args.iter().any(|a| a == "--skip-raw"),
            chart: value("--chart"),
            only: value("--only")
                .map(|v| v.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
            rounds: if quick { 1 } else { 5 },
            warmup: Duration::from_millis(if quick { 100 } else { 300 }),
            window: Duration::from_millis(if quick { 400 } else { 1200 }),
            idle_counts: if quick {
                vec![200, 1000]
            } else {
                vec![1000, 10_000]
            },
            idle_hold: Duration::from_secs(if quick { 1 } else { 5 }),
            server_bin: std::env::var("WSAUTH_BENCH_BIN")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_wsauth").to_string()),
            server_env: std::env::var("WSAUTH_BENCH_SERVER_ENV")
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            server_args: std::env::var("WSAUTH_BENCH_SERVER_ARGS")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        };
        if let Some(n) = value("--rounds").and_then(|v| v.parse().ok()) {
            plan.rounds = n;
        }
        if let Some(s) = value("--secs").and_then(|v| v.parse::<f64>().ok()) {
            plan.window = Duration::from_secs_f64(s);
        }
        if let Some(s) = value("--hold").and_then(|v| v.parse::<f64>().ok()) {
            plan.idle_hold = Duration::from_secs_f64(s);
        }
        if let Some(v) = value("--idle") {
            plan.idle_counts = v.split(',').filter_map(|n| n.parse().ok()).collect();
        }
        plan
    }

    /// Whether a group runs: `--only echo` selects every `echo*` group,
    /// `--only echo16` exactly that one.
    pub fn runs(&self, group: &str) -> bool {
        self.only.is_empty()
            || self.only.iter().any(|o| {
                group == o || (group.starts_with(o.as_str()) && !o.ends_with(char::is_numeric))
            })
    }
}
