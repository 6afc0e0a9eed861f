//! The bus's metrics (feature `redis`), shown once a bus is configured.

use super::{add, families, family, get, sample};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The bus's families, in the order of `render`'s values: name, type, help.
const FAMILIES: &str = "\
wsauth_bus_connected gauge 1 while the Redis subscription is up.
wsauth_bus_reconnects_total counter Times the Redis subscription came back after being lost.
wsauth_bus_messages_received_total counter Messages received from the Redis bus.
wsauth_bus_publish_failures_total counter Publications the bus did not take (answered 503, or an error).";

/// Counters of the Redis bus.
#[derive(Debug, Default)]
pub(super) struct BusCounters {
    configured: AtomicBool,
    connected: AtomicBool,
    reconnects: AtomicU64,
    received: AtomicU64,
    publish_failures: AtomicU64,
}

impl super::Metrics {
    /// A bus runs: its metrics are shown from now on.
    pub(crate) fn bus_configured(&self) {
        self.bus.configured.store(true, Ordering::Relaxed);
    }

    /// The subscription is up, or down.
    pub(crate) fn bus_connected(&self, up: bool) {
        self.bus.connected.store(up, Ordering::Relaxed);
    }

    /// The subscription came back after being lost.
    pub(crate) fn bus_reconnected(&self) {
        add(&self.bus.reconnects, 1);
    }

    /// A message arrived from the bus.
    pub(crate) fn bus_message_received(&self) {
        add(&self.bus.received, 1);
    }

    /// A publication the bus did not take.
    pub(crate) fn bus_publish_failed(&self) {
        add(&self.bus.publish_failures, 1);
    }
}

impl BusCounters {
    /// The bus's families, if a bus is configured.
    pub(super) fn render(&self, out: &mut String) {
        if !self.configured.load(Ordering::Relaxed) {
            return;
        }
        let values = [
            u64::from(self.connected.load(Ordering::Relaxed)),
            get(&self.reconnects),
            get(&self.received),
            get(&self.publish_failures),
        ];
        for ((name, kind, help), value) in families(FAMILIES).zip(values) {
            family(out, name, kind, help);
            sample(out, name, None, value);
        }
    }
}
