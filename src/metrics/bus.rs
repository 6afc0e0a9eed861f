//! The bus's metrics (feature `redis`), shown once a bus is configured.

use super::{add, family, get, sample};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
        let name = "wsauth_bus_connected";
        family(out, name, "gauge", "1 while the Redis subscription is up.");
        sample(
            out,
            name,
            None,
            u64::from(self.connected.load(Ordering::Relaxed)),
        );
        let counters = [
            (
                "wsauth_bus_reconnects_total",
                "Times the Redis subscription came back after being lost.",
                &self.reconnects,
            ),
            (
                "wsauth_bus_messages_received_total",
                "Messages received from the Redis bus.",
                &self.received,
            ),
            (
                "wsauth_bus_publish_failures_total",
                "Publications the bus did not take (answered 503, or an error).",
                &self.publish_failures,
            ),
        ];
        for (name, help, counter) in counters {
            family(out, name, "counter", help);
            sample(out, name, None, get(counter));
        }
    }
}
