//! The machine the bench runs on: its description, its load, its open-files limit.

use crate::plan::Plan;
use std::thread;

/// Prints what the numbers depend on: the CPU, the kernel, the load, the
/// server binary and how the runs are timed.
pub fn print_machine(plan: &Plan, open_files: libc::rlim_t) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let nproc = thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "wsauth throughput bench ({})",
        if plan.quick { "quick" } else { "full" }
    );
    println!(
        "machine: nproc {nproc}, CPU {model}, Linux {}, load average {}",
        kernel.trim(),
        loadavg()
    );
    let env = plan
        .server_env
        .iter()
        .map(|(k, v)| format!(" {k}={v}"))
        .collect::<String>();
    let with = if env.is_empty() {
        String::new()
    } else {
        format!(" with{env}")
    };
    println!(
        "server: {}{with}; open files limit {open_files}",
        plan.server_bin
    );
    println!(
        "runs: {} round(s) per scenario, servers alternating, {:.1} s measured after {:.1} s warm-up; medians reported",
        plan.rounds,
        plan.window.as_secs_f64(),
        plan.warmup.as_secs_f64()
    );
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` states them.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Raises the soft (and, if allowed, hard) limit on open files; returns the
/// soft limit now in force. Children inherit it.
pub fn raise_open_files(want: libc::rlim_t) -> libc::rlim_t {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_max < want {
            let wanted = libc::rlimit {
                rlim_cur: want,
                rlim_max: want,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                return want;
            }
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}
