//! The limits on how many threads this process can have at once, read at
//! start: a thread per connection cannot go past the lowest of them,
//! whatever `--max-connections` says, so a setting above it gets one
//! warning. (Past it, new connections get 503: see `listener`.) Every
//! thread of ours starts through [`spawn`], which refuses one that would
//! take the process past `vm.max_map_count`.

use std::fs;
use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// Threads beside the connections': the main thread, the tick, the
/// signals, an `--exec` program's pipes now and then.
const OTHER_THREADS: usize = 8;

/// Warns once when `max_connections` threads cannot exist at once here.
pub fn warn_if_below(max_connections: usize) {
    let cgroups = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let cgroup = pids_max(&cgroups, "/sys/fs/cgroup");
    let limits = [
        ("kernel.threads-max", number("/proc/sys/kernel/threads-max")),
        ("kernel.pid_max", number("/proc/sys/kernel/pid_max")),
        ("vm.max_map_count", Some(map_budget())),
        ("RLIMIT_NPROC", crate::sys::process_limit()),
        ("the cgroup's pids.max", cgroup),
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

/// Mappings a thread adds: its stack and guard page, and the signal stack
/// (with its guard page) that std maps in every thread it starts.
const MAPS_PER_THREAD: usize = 4;
/// Mappings kept for everything else: the allocator's arenas, large messages.
const MAPS_KEPT: usize = 2048;

/// Threads alive, and the most that may be.
struct Budget {
    alive: AtomicUsize,
    most: OnceLock<usize>,
}

/// Ours: as many threads as this process's mappings allow.
static OURS: Budget = Budget {
    alive: AtomicUsize::new(0),
    most: OnceLock::new(),
};

/// Threads this process can start before its mappings run out.
fn map_budget() -> usize {
    *OURS.most.get_or_init(|| {
        let used = fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count());
        number("/proc/sys/vm/max_map_count").map_or(usize::MAX, |max| {
            max.saturating_sub(used + MAPS_KEPT) / MAPS_PER_THREAD
        })
    })
}

/// Starts a thread, refused as the OS refuses one past the other limits when
/// it would take the process past `vm.max_map_count`: there std could not
/// map the new thread's signal stack, and would abort the whole process.
pub fn spawn(name: &str, stack_bytes: usize, run: Box<dyn FnOnce() + Send>) -> io::Result<()> {
    map_budget();
    OURS.spawn(name, stack_bytes, run)
}

impl Budget {
    fn spawn(
        &'static self,
        name: &str,
        stack_bytes: usize,
        run: Box<dyn FnOnce() + Send>,
    ) -> io::Result<()> {
        /// Counts its thread out however the thread ends.
        struct Alive(&'static Budget);
        impl Drop for Alive {
            fn drop(&mut self) {
                self.0.alive.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let most = self.most.get().copied().unwrap_or(usize::MAX);
        if self.alive.fetch_add(1, Ordering::SeqCst) >= most {
            self.alive.fetch_sub(1, Ordering::SeqCst);
            return Err(io::Error::other(
                "no mappings left for a thread (vm.max_map_count)",
            ));
        }
        let alive = Alive(self);
        thread::Builder::new()
            .name(name.into())
            .stack_size(stack_bytes)
            .spawn(move || {
                let _alive = alive;
                run();
            })
            .map(drop)
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
