//! `wsauth_session_closes_total`: how sessions ended, by close code, in a
//! label set that stays bounded whatever codes clients and handlers use.

use super::{get, sample};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Close codes of the protocol itself, each always on a line of its own:
/// every code RFC 6455 and the IANA registry define (1005 stands for an
/// empty close frame, 1015 for a failed TLS handshake).
const PROTOCOL_CODES: RangeInclusive<u16> = 1000..=1015;
const PROTOCOL_CODE_COUNT: usize = (*PROTOCOL_CODES.end() - *PROTOCOL_CODES.start() + 1) as usize;
/// Close codes of applications (3000–3999 registered, 4000–4999 private):
/// each gets a line of its own once it occurred, up to
/// [`APPLICATION_SLOTS`] distinct codes; past them, and for any code outside
/// both ranges, `other`.
const APPLICATION_CODES: RangeInclusive<u16> = 3000..=4999;
/// Most application codes with a line of their own.
const APPLICATION_SLOTS: usize = 64;

/// `wsauth_session_closes_total`: a count per close code.
#[derive(Debug)]
pub(super) struct CloseCounts {
    /// One per code of [`PROTOCOL_CODES`], in order.
    protocol: [AtomicU64; PROTOCOL_CODE_COUNT],
    /// Application codes: each slot's code (0 while free) and its count. A
    /// slot is claimed by compare-and-swap and never freed, so the claimed
    /// slots are always the first ones and a code is never in two.
    application: [(AtomicU32, AtomicU64); APPLICATION_SLOTS],
    /// No close frame was exchanged.
    none: AtomicU64,
    /// Any other code, and application codes once every slot is taken.
    other: AtomicU64,
}

impl Default for CloseCounts {
    fn default() -> Self {
        CloseCounts {
            protocol: Default::default(),
            application: std::array::from_fn(|_| Default::default()),
            none: AtomicU64::new(0),
            other: AtomicU64::new(0),
        }
    }
}

impl CloseCounts {
    /// The counter of `code`.
    pub(super) fn counter(&self, code: Option<u16>) -> &AtomicU64 {
        match code {
            None => &self.none,
            Some(code) if PROTOCOL_CODES.contains(&code) => {
                &self.protocol[usize::from(code - PROTOCOL_CODES.start())]
            }
            Some(code) if APPLICATION_CODES.contains(&code) => {
                self.application(code).unwrap_or(&self.other)
            }
            Some(_) => &self.other,
        }
    }

    /// The counter of application code `code`, claiming a free slot for it
    /// if it has none; `None` when every slot has another code.
    fn application(&self, code: u16) -> Option<&AtomicU64> {
        let code = u32::from(code);
        for (claimed, count) in &self.application {
            let mut holder = claimed.load(Ordering::Relaxed);
            if holder == 0 {
                // Free: ours, unless another thread claims it first (for
                // this code too, perhaps).
                holder =
                    match claimed.compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed) {
                        Ok(_) => code,
                        Err(other) => other,
                    };
            }
            if holder == code {
                return Some(count);
            }
        }
        None
    }

    /// The sample lines: the protocol's codes, the application codes that
    /// occurred (by number), `none` and `other`.
    pub(super) fn render(&self, out: &mut String, name: &str) {
        for (code, counter) in PROTOCOL_CODES.zip(&self.protocol) {
            sample(out, name, Some(("code", &code.to_string())), get(counter));
        }
        let mut application: Vec<(u32, u64)> = self
            .application
            .iter()
            .map(|(code, count)| (code.load(Ordering::Relaxed), get(count)))
            .filter(|(code, _)| *code != 0)
            .collect();
        application.sort_unstable();
        for (code, count) in application {
            sample(out, name, Some(("code", &code.to_string())), count);
        }
        sample(out, name, Some(("code", "none")), get(&self.none));
        sample(out, name, Some(("code", "other")), get(&self.other));
    }
}
