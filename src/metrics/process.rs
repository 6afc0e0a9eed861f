//! Reading `/proc/self` for the process metrics, in whole numbers (no
//! floating point, whose formatting code is large in a small binary).

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
    let per_second = crate::sys::clock_ticks_per_second();
    // Clock ticks, with how many make a second.
    let ticks = |ticks: Option<u64>| {
        let (ticks, per_second) = ticks.zip(per_second)?;
        Some(Reading::Ticks { ticks, per_second })
    };
    let cpu_seconds = ticks(field(11).zip(field(12)).map(|(user, system)| user + system));
    let since_boot = field(19).zip(boot_time()).zip(per_second);
    let start_time = ticks(since_boot.map(|((start, boot), per_second)| boot * per_second + start));
    let fds = std::fs::read_dir("/proc/self/fd");
    Process {
        resident_bytes: resident_bytes(),
        open_fds: fds.ok().map(|d| d.count() as u64),
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
    Some(pages * crate::sys::page_size()? as u64)
}

/// The system's boot time in Unix seconds (`btime` in `/proc/stat`).
fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}
