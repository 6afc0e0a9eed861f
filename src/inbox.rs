//! A session's receive buffer. One read of the socket takes up to
//! [`INBOX_BYTES`] at once; tungstenite then takes it out in reads of its own
//! small buffer's size. The inbox is whole pages, touched only as far as
//! data comes in, and given back to the OS ([`Inbox::release`]) while the
//! session is quiet: a busy session reads large messages in few system
//! calls, an idle one holds none of it. A thread keeps the inbox of its last
//! session for its next one, so that no session pays to allocate and zero one
//! (see docs/performance.md).

use crate::sys::{self, PAGE_BYTES, Page};
use std::cell::Cell;
use std::io::{self, Read};

/// Most bytes one read of the socket takes.
pub const INBOX_BYTES: usize = 4 * PAGE_BYTES;

thread_local! {
    /// The pages of this thread's last session, for its next one.
    static SPARE: Cell<Vec<Page>> = const { Cell::new(Vec::new()) };
}

/// Bytes read from the socket and not yet handed on.
#[derive(Default)]
pub struct Inbox {
    /// Allocated at the first read.
    pages: Vec<Page>,
    /// The unread bytes are `start..end`.
    start: usize,
    end: usize,
}

impl Inbox {
    fn bytes(&mut self) -> &mut [u8] {
        sys::page_bytes(&mut self.pages)
    }

    /// Fills `out` from what was read before, or else from one read of
    /// `source` (which may block; its errors come back as they are).
    pub fn read(&mut self, mut source: impl Read, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if self.pages.is_empty() {
                self.pages = SPARE.take();
            }
            if self.pages.is_empty() {
                self.pages = fresh_pages();
            }
            let n = source.read(self.bytes())?;
            (self.start, self.end) = (0, n);
        }
        let n = out.len().min(self.end - self.start);
        let start = self.start;
        out[..n].copy_from_slice(&self.bytes()[start..start + n]);
        self.start += n;
        Ok(n)
    }

    /// Gives the inbox's pages back to the OS, if it holds nothing unread;
    /// the next read touches only the pages its data needs.
    pub fn release(&mut self) {
        if self.start != self.end || self.pages.is_empty() {
            return;
        }
        // Nothing unread: zeros are as good as the old contents.
        sys::discard_pages(self.bytes());
    }
}

impl Drop for Inbox {
    /// Leaves the pages to the thread's next session.
    fn drop(&mut self) {
        let pages = std::mem::take(&mut self.pages);
        if !pages.is_empty() {
            let _ = SPARE.try_with(|spare| spare.set(pages));
        }
    }
}

/// The inbox's zeroed pages. Never inlined: the page-sized value it starts
/// from would make the frame of every read a page deeper, and each read
/// would touch that page (a stack probe) while the session waits.
#[cold]
#[inline(never)]
fn fresh_pages() -> Vec<Page> {
    vec![Page([0; PAGE_BYTES]); INBOX_BYTES / PAGE_BYTES]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_reads_get_every_byte_in_order_across_releases() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let mut source = data.as_slice();
        let mut inbox = Inbox::default();
        let mut got = Vec::new();
        let mut chunk = [0u8; 1000];
        loop {
            let n = inbox.read(&mut source, &mut chunk).expect("a slice reads");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
            inbox.release();
        }
        assert_eq!(got, data);
    }

    #[test]
    fn unread_bytes_survive_a_release() {
        let mut source: &[u8] = b"hello world";
        let mut inbox = Inbox::default();
        let mut five = [0u8; 5];
        assert_eq!(inbox.read(&mut source, &mut five).expect("reads"), 5);
        inbox.release();
        let mut rest = [0u8; 20];
        let n = inbox.read(&mut source, &mut rest).expect("reads");
        assert_eq!(&rest[..n], b" world");
    }
}
