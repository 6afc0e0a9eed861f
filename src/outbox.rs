//! A session's outbox: the bytes of whole frames its socket could not take
//! at once, in order, waiting for the socket to drain. Only the counts live
//! in the session; the bytes are allocated when the first ones must wait
//! and freed as soon as the last are written, so an idle session keeps none.

/// Bytes written out of the front before the buffer is compacted.
const COMPACT_AFTER: usize = 64 * 1024;

/// The frames of one session that are not yet wholly on the wire.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Bytes of every frame ever handed to the session.
    accepted: u64,
    /// Bytes of those that are on the wire.
    written: u64,
    /// The bytes still to write; `None` while there are none.
    waiting: Option<Box<Waiting>>,
}

#[derive(Debug)]
struct Waiting {
    bytes: Vec<u8>,
    /// Where the unwritten bytes start in `bytes`.
    head: usize,
    /// Where each frame not yet wholly written ends (counted in `accepted`),
    /// from `ends[first]` on.
    ends: Vec<u64>,
    first: usize,
    /// Where the first of those frames starts.
    start: u64,
}

impl Outbox {
    /// Whether every byte handed over is written.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_none()
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        (self.accepted - self.written) as usize
    }

    /// Takes one whole frame of which the first `sent` bytes are already
    /// written; returns where it ends, for [`Outbox::has_written`].
    pub fn push(&mut self, frame: &[u8], sent: usize) -> u64 {
        let start = self.accepted;
        self.accepted += frame.len() as u64;
        self.written += sent as u64;
        if sent < frame.len() {
            let waiting = self.waiting.get_or_insert_with(|| {
                Box::new(Waiting {
                    bytes: Vec::new(),
                    head: 0,
                    ends: Vec::new(),
                    first: 0,
                    start,
                })
            });
            waiting.bytes.extend_from_slice(&frame[sent..]);
            waiting.ends.push(self.accepted);
        }
        self.accepted
    }

    /// The bytes to write next (empty when none wait).
    pub fn front(&self) -> &[u8] {
        self.waiting
            .as_ref()
            .map_or(&[][..], |w| &w.bytes[w.head..])
    }

    /// Notes that the first `n` bytes of [`Outbox::front`] are written.
    pub fn written(&mut self, n: usize) {
        let Some(waiting) = self.waiting.as_mut() else {
            return;
        };
        let n = n.min(waiting.bytes.len() - waiting.head);
        self.written += n as u64;
        waiting.head += n;
        while let Some(&end) = waiting
            .ends
            .get(waiting.first)
            .filter(|&&end| end <= self.written)
        {
            waiting.start = end;
            waiting.first += 1;
        }
        if waiting.head == waiting.bytes.len() {
            self.waiting = None;
        } else if waiting.head >= COMPACT_AFTER && waiting.head * 2 >= waiting.bytes.len() {
            waiting.bytes.drain(..waiting.head);
            waiting.head = 0;
            waiting.ends.drain(..waiting.first);
            waiting.first = 0;
        }
    }

    /// Whether everything up to `end` (from [`Outbox::push`]) is written.
    pub fn has_written(&self, end: u64) -> bool {
        self.written >= end
    }

    /// Where the last frame handed over ends.
    pub fn end(&self) -> u64 {
        self.accepted
    }

    /// Whether no frame is partly on the wire: another frame may follow
    /// what is written without corrupting the stream.
    pub fn between_frames(&self) -> bool {
        self.waiting
            .as_ref()
            .is_none_or(|w| w.start == self.written)
    }

    /// Gives up on every waiting byte; returns the frames not wholly
    /// written. The memory is freed.
    pub fn clear(&mut self) -> usize {
        let dropped = self.waiting.take().map_or(0, |w| w.ends.len() - w.first);
        self.accepted = self.written;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_written_at_once_leaves_nothing_behind() {
        let mut outbox = Outbox::default();
        let end = outbox.push(b"abc", 3);
        assert!(outbox.is_empty() && outbox.has_written(end));
        assert_eq!(outbox.len(), 0);
        assert!(outbox.between_frames());
    }

    #[test]
    fn the_rest_of_a_frame_waits_and_leaves_in_order() {
        let mut outbox = Outbox::default();
        let first = outbox.push(b"abcd", 1);
        let second = outbox.push(b"ef", 0);
        assert_eq!(outbox.front(), b"bcdef");
        assert_eq!(outbox.len(), 5);
        assert!(!outbox.between_frames());
        outbox.written(3);
        assert!(outbox.has_written(first) && !outbox.has_written(second));
        assert!(outbox.between_frames());
        assert_eq!(outbox.front(), b"ef");
        outbox.written(2);
        assert!(outbox.is_empty() && outbox.has_written(second));
        assert!(outbox.waiting.is_none(), "the memory is freed");
    }

    #[test]
    fn clearing_counts_the_frames_not_wholly_written() {
        let mut outbox = Outbox::default();
        outbox.push(b"abcd", 2);
        outbox.push(b"ef", 0);
        outbox.push(b"gh", 0);
        outbox.written(1);
        assert_eq!(outbox.clear(), 3);
        assert!(outbox.is_empty());
        assert_eq!(outbox.len(), 0);
    }

    #[test]
    fn a_long_backlog_is_compacted_as_it_drains() {
        let mut outbox = Outbox::default();
        let frame = vec![7u8; 1000];
        let mut last = 0;
        for _ in 0..200 {
            last = outbox.push(&frame, 0);
        }
        outbox.written(150_000);
        let waiting = outbox.waiting.as_ref().expect("bytes wait");
        assert_eq!(waiting.head, 0, "compacted");
        assert_eq!(waiting.bytes.len(), 50_000);
        assert!(outbox.between_frames());
        outbox.written(50_000);
        assert!(outbox.has_written(last) && outbox.is_empty());
    }
}
