//! The failed-authentication limit: at most N failures per client IP in any
//! 60 seconds, in a table that cannot grow without bound.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most client addresses remembered at once; past it the stalest is forgotten.
const MAX_ADDRESSES: usize = 65536;

/// Counts failed authentications per client IP.
pub struct Throttle {
    limit: usize,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Throttle {
    /// A throttle allowing `limit` failures a minute; 0 disables it.
    pub fn new(limit: usize) -> Self {
        Throttle {
            limit,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// When `ip` is over the limit, the seconds until it may try again.
    pub fn retry_after(&self, ip: IpAddr) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        let now = Instant::now();
        let table = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let times = table.get(&normalize(ip))?;
        let recent: Vec<&Instant> = times
            .iter()
            .filter(|t| now.duration_since(**t) < WINDOW)
            .collect();
        if recent.len() < self.limit {
            return None;
        }
        let wait = WINDOW.saturating_sub(now.duration_since(*recent[0]));
        Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).map(|s| s.max(1))
    }

    /// Records one failed authentication from `ip`.
    pub fn record_failure(&self, ip: IpAddr) {
        if self.limit == 0 {
            return;
        }
        let now = Instant::now();
        let mut table = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= MAX_ADDRESSES && !table.contains_key(&normalize(ip)) {
            prune(&mut table, now);
            if table.len() >= MAX_ADDRESSES {
                forget_stalest(&mut table);
            }
        }
        let times = table.entry(normalize(ip)).or_default();
        times.push_back(now);
        // Only the newest `limit` failures decide anything.
        while times.len() > self.limit {
            times.pop_front();
        }
    }

    /// Forgets failures older than the window; the server calls this each second.
    pub fn prune(&self) {
        let mut table = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        prune(&mut table, Instant::now());
    }
}

fn prune(table: &mut HashMap<IpAddr, VecDeque<Instant>>, now: Instant) {
    table.retain(|_, times| {
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        !times.is_empty()
    });
}

fn forget_stalest(table: &mut HashMap<IpAddr, VecDeque<Instant>>) {
    let stalest = table
        .iter()
        .min_by_key(|(_, times)| times.back().copied())
        .map(|(ip, _)| *ip);
    if let Some(ip) = stalest {
        table.remove(&ip);
    }
}

/// An IPv4 address reached over IPv6 counts as the IPv4 address.
fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_applies_per_address() {
        let throttle = Throttle::new(2);
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("valid in this test"),
            "10.0.0.2".parse().expect("valid in this test"),
        );
        throttle.record_failure(a);
        assert_eq!(throttle.retry_after(a), None);
        throttle.record_failure(a);
        let wait = throttle.retry_after(a).expect("valid in this test");
        assert!((59..=60).contains(&wait), "{wait}");
        assert_eq!(throttle.retry_after(b), None);
    }

    #[test]
    fn zero_disables_the_limit() {
        let throttle = Throttle::new(0);
        let a: IpAddr = "10.0.0.1".parse().expect("valid in this test");
        throttle.record_failure(a);
        assert_eq!(throttle.retry_after(a), None);
    }
}
