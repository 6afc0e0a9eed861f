//! The failed-authentication limit: at most N failures per client (see
//! [`ClientKey`]) in any 60 seconds. The table has a fixed size, and a check
//! touches one small bucket of it, under that bucket's own lock: a flood of
//! new addresses costs every other client's check nothing.

use crate::client_key::ClientKey;
use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Buckets in the table; a client's key picks one by a keyed hash.
const BUCKETS: usize = 4096;
/// Clients one bucket remembers: 65,536 in all.
const WAYS: usize = 16;

/// One remembered client: its failures in the window, oldest first (at most
/// `limit` of them: a failure past the limit is answered 429, not counted).
struct Slot {
    key: ClientKey,
    failures: VecDeque<Instant>,
}

impl Slot {
    /// Forgets failures that have left the window.
    fn expire(&mut self, now: Instant) {
        let old = |at: &Instant| now.duration_since(*at) >= WINDOW;
        while self.failures.front().is_some_and(old) {
            self.failures.pop_front();
        }
    }

    /// When at `limit` failures: seconds until the oldest is 60 s old,
    /// rounded up, at least 1.
    fn retry_after(&self, limit: usize, now: Instant) -> Option<u64> {
        if self.failures.len() < limit {
            return None;
        }
        let oldest = *self.failures.front()?;
        let wait = WINDOW.saturating_sub(now.duration_since(oldest));
        Some((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
    }

    /// Which slot a new client takes first: one not throttled before one
    /// that is, then the one whose newest failure is oldest (an empty or
    /// expired slot first of all).
    fn eviction_rank(&self, limit: usize) -> (bool, Option<Instant>) {
        (self.failures.len() >= limit, self.failures.back().copied())
    }
}

type Bucket = Vec<Slot>;

/// Counts failed authentications per client.
pub struct Throttle {
    limit: usize,
    /// Keyed per server, so that no client can aim its keys at one bucket.
    hasher: RandomState,
    /// Made at the first failure: a server nobody fails at pays nothing.
    buckets: OnceLock<Box<[Mutex<Bucket>]>>,
}

impl Throttle {
    /// A throttle allowing `limit` failures a minute; 0 disables it.
    pub fn new(limit: usize) -> Self {
        Throttle {
            limit,
            hasher: RandomState::new(),
            buckets: OnceLock::new(),
        }
    }

    /// When `ip`'s client is at the limit, the seconds until it may try again.
    pub fn retry_after(&self, ip: IpAddr) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        let key = ClientKey::from(ip);
        let now = Instant::now();
        let mut bucket = self.bucket(key, self.buckets.get()?);
        let slot = bucket.iter_mut().find(|s| s.key == key)?;
        slot.expire(now);
        slot.retry_after(self.limit, now)
    }

    /// Records a failed authentication from `ip` in the same step as the
    /// check: `None` when it was counted (answer it as the failure it is),
    /// the seconds to put in `Retry-After` when the client is already at the
    /// limit (answer 429; the attempt is not counted, so concurrent attempts
    /// never get more than `limit` answers that tell them anything).
    #[must_use]
    pub fn record_failure(&self, ip: IpAddr) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        let key = ClientKey::from(ip);
        let now = Instant::now();
        let buckets = self.buckets.get_or_init(new_table);
        let mut bucket = self.bucket(key, buckets);
        let slot = slot_for(&mut bucket, key, self.limit, now);
        slot.expire(now);
        if let Some(wait) = slot.retry_after(self.limit, now) {
            return Some(wait);
        }
        slot.failures.push_back(now);
        None
    }

    /// The locked bucket `key` belongs in.
    fn bucket<'a>(&self, key: ClientKey, buckets: &'a [Mutex<Bucket>]) -> MutexGuard<'a, Bucket> {
        let index = (self.hasher.hash_one(key) % BUCKETS as u64) as usize;
        buckets[index].lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn new_table() -> Box<[Mutex<Bucket>]> {
    (0..BUCKETS).map(|_| Mutex::new(Vec::new())).collect()
}

/// `key`'s slot in its bucket; a new key takes a free way, or else the one
/// that matters least (see [`Slot::eviction_rank`]).
fn slot_for(bucket: &mut Bucket, key: ClientKey, limit: usize, now: Instant) -> &mut Slot {
    if let Some(i) = bucket.iter().position(|s| s.key == key) {
        return &mut bucket[i];
    }
    let fresh = Slot {
        key,
        failures: VecDeque::new(),
    };
    if bucket.len() < WAYS {
        bucket.push(fresh);
        let last = bucket.len() - 1;
        return &mut bucket[last];
    }
    // At most WAYS slots, each with at most `limit` failures to forget.
    bucket.iter_mut().for_each(|s| s.expire(now));
    let victim = (0..bucket.len())
        .min_by_key(|i| bucket[*i].eviction_rank(limit))
        .unwrap_or(0);
    bucket[victim] = fresh;
    &mut bucket[victim]
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
        assert_eq!(throttle.record_failure(a), None);
        assert_eq!(throttle.retry_after(a), None);
        assert_eq!(throttle.record_failure(a), None);
        let wait = throttle.retry_after(a).expect("valid in this test");
        assert!((59..=60).contains(&wait), "{wait}");
        assert_eq!(throttle.retry_after(b), None);
    }

    #[test]
    fn a_failure_at_the_limit_is_answered_throttled_and_not_counted() {
        let throttle = Throttle::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("valid in this test");
        assert_eq!(throttle.record_failure(a), None);
        assert_eq!(throttle.record_failure(a), None);
        for _ in 0..10 {
            let wait = throttle.record_failure(a).expect("throttled");
            assert!((59..=60).contains(&wait), "{wait}");
        }
        let slots = throttle.bucket(ClientKey::from(a), throttle.buckets.get().expect("made"));
        let slot = slots.iter().find(|s| s.key == ClientKey::from(a));
        assert_eq!(slot.map(|s| s.failures.len()), Some(2));
    }

    #[test]
    fn retry_after_counts_from_the_oldest_failure_in_the_window() {
        let now = Instant::now();
        let at = |secs: u64| now.checked_sub(Duration::from_secs(secs)).expect("uptime");
        let slot = Slot {
            key: ClientKey::V4([10, 0, 0, 1]),
            failures: VecDeque::from([at(45), at(10)]),
        };
        assert_eq!(slot.retry_after(2, now), Some(15));
        assert_eq!(slot.retry_after(3, now), None);
        let nearly = Slot {
            key: ClientKey::V4([10, 0, 0, 1]),
            failures: VecDeque::from([now - Duration::from_millis(59_990)]),
        };
        assert_eq!(nearly.retry_after(1, now), Some(1));
    }

    #[test]
    fn zero_disables_the_limit() {
        let throttle = Throttle::new(0);
        let a: IpAddr = "10.0.0.1".parse().expect("valid in this test");
        assert_eq!(throttle.record_failure(a), None);
        assert_eq!(throttle.retry_after(a), None);
    }

    fn v6(text: &str) -> IpAddr {
        text.parse().expect("valid in this test")
    }

    /// Fails `ip` until it is throttled.
    fn throttle_ip(throttle: &Throttle, ip: IpAddr) {
        while throttle.retry_after(ip).is_none() {
            let _ = throttle.record_failure(ip);
        }
    }

    #[test]
    fn an_ipv6_64_is_one_client() {
        let throttle = Throttle::new(2);
        let _ = throttle.record_failure(v6("2001:db8:1:2::1"));
        let _ = throttle.record_failure(v6("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert!(throttle.retry_after(v6("2001:db8:1:2::7")).is_some());
        assert_eq!(throttle.retry_after(v6("2001:db8:1:3::1")), None);
    }

    #[test]
    fn an_ipv4_mapped_address_is_its_ipv4_address() {
        let throttle = Throttle::new(1);
        let _ = throttle.record_failure(v6("::ffff:1.2.3.4"));
        assert!(throttle.retry_after(v6("1.2.3.4")).is_some());
    }

    #[test]
    fn a_flood_of_new_networks_keeps_each_check_cheap_and_a_throttled_client_throttled() {
        let throttle = Throttle::new(3);
        let tracked = v6("2001:db8::1");
        throttle_ip(&throttle, tracked);
        for n in 0..200_000u64 {
            let network = (0x2001_0db9u64 << 32) | n;
            let _ = throttle.record_failure(IpAddr::from(std::net::Ipv6Addr::from(
                u128::from(network) << 64,
            )));
        }
        // The fastest of a few checks: what one costs, not how loaded the machine is.
        let fastest = (0..50u128)
            .map(|n| {
                let fresh = IpAddr::from(std::net::Ipv6Addr::from(
                    (0x2001_0dbau128 << 96) | (n << 64),
                ));
                let started = Instant::now();
                let _ = throttle.record_failure(fresh);
                assert!(throttle.retry_after(tracked).is_some());
                started.elapsed()
            })
            .min()
            .expect("some checks");
        assert!(fastest < Duration::from_micros(500), "{fastest:?}");
    }
}
