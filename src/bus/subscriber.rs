//! The bus's subscription thread: connect (retrying from 100 ms, doubling,
//! then once a second), subscribe, deliver what arrives to this instance's
//! sessions through their outboxes (so that it never waits on a slow
//! client), and ping whenever the connection has been quiet for a second:
//! a dead connection fails its ping within another second, and is replaced.
//! One warning line per outage, not per retry.

use super::Bus;
use crate::message::Message;
use crate::push::Sessions;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Quiet this long, the connection is pinged; unanswered this long, it is dead.
const PING_AFTER: Duration = Duration::from_secs(1);
/// The first retry after a failure, doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a probe may take to come back on a new subscription.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs until the bus stops.
pub(super) fn run(bus: &Bus, sessions: &Sessions, max_message_bytes: usize) {
    let shown = bus.settings.shown.clone();
    let mut outage = Outage {
        backoff: FIRST_BACKOFF,
        since: Instant::now(),
        warned: false,
        ever_up: false,
    };
    while !bus.stopping.load(Ordering::SeqCst) {
        let mut connection = match bus.connect(PING_AFTER) {
            Ok(connection) => connection,
            Err(e) => {
                outage.retry(bus, &format!("cannot reach {shown}: {}", scrub(bus, &e)));
                continue;
            }
        };
        let mut pubsub = connection.as_pubsub();
        let subscribed = subscribe(&mut pubsub, &bus.settings.prefix)
            .map_err(|e| scrub(bus, &e))
            .and_then(|()| confirm(bus, &mut pubsub, sessions, max_message_bytes));
        if let Err(why) = subscribed {
            outage.retry(bus, &format!("cannot subscribe on {shown}: {why}"));
            continue;
        }
        outage.end(bus, &shown);
        let lost = listen(bus, &mut pubsub, sessions, max_message_bytes);
        bus.set_connected(false);
        outage.since = Instant::now();
        if let Some(e) = lost {
            log::warn!("bus: lost {shown}: {}; reconnecting", scrub(bus, &e));
            outage.warned = true;
        }
    }
    bus.set_connected(false);
}

/// The time without a working subscription (or since the start), and
/// whether it was said: one warning per outage, not per retry.
struct Outage {
    backoff: Duration,
    since: Instant,
    warned: bool,
    ever_up: bool,
}

impl Outage {
    /// After a failed attempt: warns the first time, waits, backs off.
    fn retry(&mut self, bus: &Bus, why: &str) {
        if !self.warned {
            log::warn!("bus: {why}; retrying");
            self.warned = true;
        }
        pause(bus, self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// The subscription works: the bus is up, and says so.
    fn end(&mut self, bus: &Bus, shown: &str) {
        bus.set_connected(true);
        if self.ever_up {
            bus.metrics.bus_reconnected();
            let gap = self.since.elapsed();
            log::info!(
                "bus: back on {shown} after {}.{} s",
                gap.as_secs(),
                gap.subsec_millis() / 100
            );
        } else {
            log::info!("bus: subscribed on {shown}");
        }
        (self.ever_up, self.warned, self.backoff) = (true, false, FIRST_BACKOFF);
    }
}

/// One pattern, `P:*`, for every channel: an ACL user limited to
/// `&P:*` may subscribe to exactly that pattern (Redis matches PSUBSCRIBE
/// patterns against the ACL literally).
fn subscribe(pubsub: &mut redis::PubSub<'_>, prefix: &str) -> redis::RedisResult<()> {
    pubsub.psubscribe(format!("{prefix}:*"))
}

/// Proves the subscription works end to end before the bus counts as up:
/// a probe published on `P:probe:ID` must come back within a few seconds.
/// (A PSUBSCRIBE that Redis refused, say by ACL, is not reported back as
/// an error by the client; a refused PUBLISH is.)
fn confirm(
    bus: &Bus,
    pubsub: &mut redis::PubSub<'_>,
    sessions: &Sessions,
    max_message_bytes: usize,
) -> Result<(), String> {
    use std::hash::{BuildHasher, Hasher};
    let id = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let probe = format!("{}:probe:{id:016x}", bus.settings.prefix);
    bus.send(&probe, b"").map_err(|e| scrub(bus, &e))?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    while Instant::now() < deadline && !bus.stopping.load(Ordering::SeqCst) {
        match pubsub.get_message() {
            Ok(message) if message.get_channel_name() == probe => return Ok(()),
            Ok(message) => handle(bus, &message, sessions, max_message_bytes),
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(scrub(bus, &e)),
        }
    }
    Err("the subscription was refused (an ACL without this prefix's channels?)".into())
}

/// Delivers messages until the connection fails (its error) or the bus stops.
fn listen(
    bus: &Bus,
    pubsub: &mut redis::PubSub<'_>,
    sessions: &Sessions,
    max_message_bytes: usize,
) -> Option<redis::RedisError> {
    while !bus.stopping.load(Ordering::SeqCst) {
        match pubsub.get_message() {
            Ok(message) => handle(bus, &message, sessions, max_message_bytes),
            Err(e) if e.is_timeout() => {
                if let Err(e) = pubsub.ping::<redis::Value>() {
                    return Some(e);
                }
            }
            Err(e) => return Some(e),
        }
    }
    None
}

/// Counts a message from the bus and hands it on, unless it is too large.
fn handle(bus: &Bus, message: &redis::Msg, sessions: &Sessions, max_message_bytes: usize) {
    bus.metrics.bus_message_received();
    let name = message.get_channel_name();
    let prefix = &bus.settings.prefix;
    let Some(channel) = name
        .strip_prefix(prefix.as_str())
        .and_then(|c| c.strip_prefix(':'))
    else {
        return;
    };
    let payload = message.get_payload_bytes();
    if payload.len() > max_message_bytes {
        log::warn!(
            "bus: dropped a {} byte message on {name}: over --max-message-bytes",
            payload.len()
        );
        return;
    }
    deliver(sessions, channel, payload);
}

/// Hands what arrived on `channel` (the prefix taken off) to the sessions.
fn deliver(sessions: &Sessions, channel: &str, payload: &[u8]) {
    let as_sent = || match std::str::from_utf8(payload) {
        Ok(text) => Message::Text(text.to_string()),
        Err(_) => Message::Binary(payload.to_vec()),
    };
    let binary = || Message::Binary(payload.to_vec());
    if channel == "all" {
        sessions.broadcast(as_sent());
    } else if channel == "bin:all" {
        sessions.broadcast(binary());
    } else if let Some(user) = channel.strip_prefix("user:") {
        sessions.send_to_user(user, as_sent());
    } else if let Some(user) = channel.strip_prefix("bin:user:") {
        sessions.send_to_user(user, binary());
    } else if let Some(user) = channel.strip_prefix("disconnect:") {
        sessions.close_user(user, 1008, "disconnected");
    }
}

/// Sleeps `pause`, or less if the bus stops meanwhile.
fn pause(bus: &Bus, pause: Duration) {
    let until = Instant::now() + pause;
    while !bus.stopping.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// An error's text with the URL's password, should it ever appear there, masked.
pub(super) fn scrub(bus: &Bus, error: &redis::RedisError) -> String {
    let text = error.to_string();
    match bus
        .settings
        .client
        .get_connection_info()
        .redis_settings()
        .password()
    {
        Some(password) if !password.is_empty() => text.replace(password, "***"),
        _ => text,
    }
}
