//! The limits on how many threads this process can have at once, read at
//! start: a thread per connection cannot go past the lowest of them,
//! whatever `--max-connections` says, so a setting above it gets one
//! warning. (Past it, new connections get 503: see `listener`.)

use std::fs;

/// Threads beside the connections': the main thread, the tick, the
/// signals, an `--exec` program's pipes now and then.
const OTHER_THREADS: usize = 8;

/// Warns once when `max_connections` threads cannot exist at once here.
pub fn warn_if_below(max_connections: usize) {
    let cgroups = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let limits = [
        ("kernel.threads-max", number("/proc/sys/kernel/threads-max")),
        ("kernel.pid_max", number("/proc/sys/kernel/pid_max")),
        // A thread's stack is two mappings: the stack and its guard page.
        (
            "vm.max_map_count",
            number("/proc/sys/vm/max_map_count").map(|n| n / 2),
        ),
        ("RLIMIT_NPROC", crate::sys::process_limit()),
        (
            "the cgroup's pids.max",
            pids_max(&cgroups, "/sys/fs/cgroup"),
        ),
    ];
    let mut lowest = ("", usize::MAX);
    for (name, threads) in limits {
        if let Some(threads) = threads.filter(|&t| t < lowest.1) {
            lowest = (name, threads);
        }
    }
    let (name, threads) = lowest;
    if threads < max_connections.saturating_add(OTHER_THREADS) {
        log::warn!(
            "--max-connections {max_connections} is past {name}: {threads} threads; past that, new connections get 503"
        );
    }
}

/// The number a file holds; `None` if unreadable or not a number (`max`).
fn number(path: &str) -> Option<usize> {
    let value: u64 = fs::read_to_string(path).ok()?.trim().parse().ok()?;
    usize::try_from(value).ok()
}

/// The `pids.max` of this process's own cgroup, from `/proc/self/cgroup`
/// (v1's `pids` controller, or v2), under `root`.
fn pids_max(cgroups: &str, root: &str) -> Option<usize> {
    cgroups.lines().find_map(|line| {
        let (_, rest) = line.split_once(':')?;
        let (controllers, path) = rest.split_once(':')?;
        let controller = match controllers {
            "" => "",
            "pids" => "/pids",
            _ => return None,
        };
        number(&format!("{root}{controller}{path}/pids.max"))
    })
}

#[cfg(test)]
mod tests;
