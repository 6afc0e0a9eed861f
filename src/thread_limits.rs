//! The limits on how many threads this process can have at once, read at
//! start: a thread per connection cannot go past the lowest of them,
//! whatever `--max-connections` says, so a setting above it gets one
//! warning. (Past it, new connections get 503: see `listener`.)

use std::fs;
use std::path::Path;

/// Threads beside the connections': the main thread, the tick, the
/// signals, an `--exec` program's pipes now and then.
const OTHER_THREADS: usize = 8;

/// Warns once when `max_connections` threads cannot exist at once here.
pub fn warn_if_below(max_connections: usize) {
    let wanted = max_connections.saturating_add(OTHER_THREADS);
    let Some(limit) = lowest() else {
        return;
    };
    if limit.threads < wanted {
        log::warn!(
            "--max-connections {max_connections} is past what {} {} allows (about {} threads, one per connection); past that, new connections get 503",
            limit.name,
            limit.value,
            limit.threads
        );
    }
}

/// One limit: its name, its value, and how many threads it allows.
#[derive(Debug, PartialEq)]
struct Limit {
    name: &'static str,
    value: usize,
    threads: usize,
}

/// The lowest of the limits that apply to this process.
fn lowest() -> Option<Limit> {
    let limit = |name, value: Option<usize>, per_thread: usize| {
        value.map(|value| Limit {
            name,
            value,
            threads: value / per_thread,
        })
    };
    let number = |path: &str| fs::read_to_string(path).ok()?.trim().parse().ok();
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let cgroups = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    [
        limit(
            "kernel.threads-max",
            number("/proc/sys/kernel/threads-max"),
            1,
        ),
        limit("kernel.pid_max", number("/proc/sys/kernel/pid_max"), 1),
        // A thread's stack is two mappings: the stack and its guard page.
        limit("vm.max_map_count", number("/proc/sys/vm/max_map_count"), 2),
        // Not enforced for root.
        limit(
            "RLIMIT_NPROC",
            nproc(&limits).filter(|_| !is_root(&status)),
            1,
        ),
        limit(
            "the cgroup's pids.max",
            pids_max(&cgroups, Path::new("/sys/fs/cgroup")),
            1,
        ),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|limit| limit.threads)
}

/// Whether the real user is root, from `/proc/self/status`.
fn is_root(status: &str) -> bool {
    let uid = status.lines().find_map(|line| line.strip_prefix("Uid:"));
    uid.and_then(|ids| ids.split_whitespace().next()) == Some("0")
}

/// The soft limit on processes (threads, on Linux) from
/// `/proc/self/limits`; `None` when unlimited.
fn nproc(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max processes"))?;
    line["Max processes".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The lowest `pids.max` of this process's cgroup and its ancestors, from
/// `/proc/self/cgroup` (v1's `pids` controller, or v2), under `root`.
fn pids_max(cgroups: &str, root: &Path) -> Option<usize> {
    let mut lowest = None;
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next(), fields.next()?, fields.next()?);
        let base = match controllers {
            "" => root.to_path_buf(),
            c if c.split(',').any(|c| c == "pids") => root.join("pids"),
            _ => continue,
        };
        let mut dir = Some(Path::new(path));
        while let Some(at) = dir {
            let file = base
                .join(at.strip_prefix("/").unwrap_or(at))
                .join("pids.max");
            let value = fs::read_to_string(file).ok();
            if let Some(max) = value.and_then(|v| v.trim().parse::<usize>().ok()) {
                lowest = Some(lowest.map_or(max, |l: usize| l.min(max)));
            }
            dir = at.parent();
        }
    }
    lowest
}

#[cfg(test)]
mod tests;
