//! Memory a session gives back to the OS while it is quiet, so that an idle
//! session holds only what it needs to wait: its thread's stack pages below
//! the current frame (the handshake's deep calls, a log line ran down there)
//! and the pages of its inbox.

/// The page size of the usual targets, and the size and alignment of a
/// [`Page`]. Where pages are larger, [`discard_pages`] gives back only the
/// whole pages inside what it is given: fewer, or none; no harm.
pub const PAGE_BYTES: usize = 4096;

/// Bytes below the marker in [`release_unused_stack`]'s frame left alone:
/// the rest of that frame, the red zone and the frame of `madvise` itself.
#[cfg(target_os = "linux")]
const KEPT_BELOW: usize = 1024;

/// One page of bytes, aligned to its size, so that a slice of them can be
/// given back page by page.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
pub struct Page(pub [u8; PAGE_BYTES]);

// No padding: a slice of pages is a slice of bytes.
const _: () = assert!(size_of::<Page>() == PAGE_BYTES);

/// The bytes of `pages`, as one slice.
#[inline]
pub fn page_bytes(pages: &mut [Page]) -> &mut [u8] {
    let len = size_of_val(pages);
    // SAFETY: `Page` is `repr(C)` around a byte array and has no padding
    // (asserted above), so `pages` is `len` contiguous, initialised bytes,
    // and any bytes written through the result make valid pages; the result
    // borrows `pages` mutably, so nothing else reaches them meanwhile.
    unsafe { std::slice::from_raw_parts_mut(pages.as_mut_ptr().cast::<u8>(), len) }
}

/// The size of a memory page, from the OS.
#[inline]
pub fn page_size() -> Option<usize> {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).ok().filter(|p| p.is_power_of_two())
}

/// Gives the whole pages inside `bytes` back to the OS: on the heap (private
/// anonymous memory) they read back as zeros, and cost memory again only
/// once written. Bytes on pages that `bytes` covers only in part stay as
/// they are. Does nothing outside Linux, or where the OS refuses.
pub fn discard_pages(bytes: &mut [u8]) {
    #[cfg(target_os = "linux")]
    {
        let Some(page) = page_size() else {
            return;
        };
        let skip = (bytes.as_ptr() as usize).wrapping_neg() & (page - 1);
        let Some(rest) = bytes.len().checked_sub(skip) else {
            return;
        };
        let whole = &mut bytes[skip..skip + (rest & !(page - 1))];
        if !whole.is_empty() {
            // SAFETY: `whole` is whole pages (page-aligned, a multiple of the
            // page size long), so madvise touches no byte outside `bytes`,
            // which we borrow mutably: nobody else reads or writes them
            // meanwhile, and whatever they read back as (zeros, or a file
            // mapping's contents) is a valid `u8`.
            unsafe { discard(whole.as_mut_ptr(), whole.len()) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
}

/// Returns to the OS the pages of the calling thread's stack that lie below
/// the caller's frame (their contents are dead: nothing lives below the
/// stack pointer). They come back, zeroed, when a deeper call touches them
/// again. Does nothing on the main thread or where the stack is unknown.
#[cfg(target_os = "linux")]
#[inline(never)]
pub fn release_unused_stack() {
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    let Some(low) = stack_low() else {
        return;
    };
    let Some(page) = page_size() else {
        return;
    };
    let end = here.saturating_sub(KEPT_BELOW) & !(page - 1);
    if end <= low {
        return;
    }
    // SAFETY: [low, end) is this thread's own stack (`low` is its lowest
    // usable address, above the guard page), page-aligned at both ends and
    // below every live frame: `marker` is in this function's frame, which
    // is not inlined into its caller's, and KEPT_BELOW covers the rest of
    // it, the red zone and madvise's own frame. Nothing there is read back.
    unsafe { discard(low as *mut u8, end - low) };
}

/// Elsewhere the pages stay; nothing is lost but memory.
#[cfg(not(target_os = "linux"))]
pub fn release_unused_stack() {}

/// `madvise(MADV_DONTNEED)`: the pages of `[start, start + len)` are
/// replaced by zero pages (or a file mapping's contents) on the next touch.
///
/// # Safety
/// `start` is page-aligned and `len` a multiple of the page size (the OS
/// would round a partial page up, past the range); the range is memory of
/// this process whose contents nobody will read back as they were.
#[cfg(target_os = "linux")]
unsafe fn discard(start: *mut u8, len: usize) {
    // SAFETY: as the caller promises; madvise only drops the pages of a
    // range of our own mappings (or fails, and nothing changes).
    unsafe { libc::madvise(start.cast(), len, libc::MADV_DONTNEED) };
}

/// The lowest usable address of this thread's stack (above its guard page),
/// looked up once per thread.
#[cfg(target_os = "linux")]
fn stack_low() -> Option<usize> {
    use std::cell::Cell;
    thread_local! {
        static LOW: Cell<Option<usize>> = const { Cell::new(None) };
    }
    LOW.with(|low| {
        if low.get().is_none() {
            low.set(look_up_stack_low());
        }
        low.get()
    })
}

#[cfg(target_os = "linux")]
fn look_up_stack_low() -> Option<usize> {
    // The main thread's stack grows on demand and its bounds come from
    // /proc: leave it alone.
    if std::thread::current().name() == Some("main") {
        return None;
    }
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    let mut addr: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: `attr` is initialised by pthread_getattr_np before use and
    // destroyed after; `addr` and `size` are valid out-pointers.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let got = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if got != 0 {
            return None;
        }
    }
    Some(addr as usize).filter(|_| size > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn deep(n: usize) -> u8 {
        let mut pad = [n as u8; 2048];
        std::hint::black_box(&mut pad);
        if n == 0 {
            pad[7]
        } else {
            deep(n - 1).wrapping_add(pad[3])
        }
    }

    #[test]
    fn a_thread_keeps_working_after_its_unused_stack_is_released() {
        let worker = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(|| {
                let before = deep(20);
                release_unused_stack();
                let after = deep(20);
                release_unused_stack();
                (before, after, stack_low().is_some())
            })
            .expect("a thread");
        let (before, after, known) = worker.join().expect("no crash");
        assert_eq!(before, after);
        assert!(known, "the stack of a spawned thread is known");
    }

    #[test]
    fn discarding_zeroes_only_the_whole_pages_inside() {
        let page = page_size().expect("a page size");
        let mut pages = vec![Page([7; PAGE_BYTES]); 3 * page / PAGE_BYTES + 1];
        let bytes = page_bytes(&mut pages);
        // From the middle of a page to the middle of another.
        let (from, to) = (page / 2, page / 2 + 2 * page);
        discard_pages(&mut bytes[from..to]);
        let zeroed = bytes.iter().filter(|&&b| b == 0).count();
        assert!(bytes[..from].iter().all(|&b| b == 7));
        assert!(bytes[to..].iter().all(|&b| b == 7));
        if cfg!(target_os = "linux") {
            assert!(
                zeroed >= page && zeroed % page == 0,
                "whole pages: {zeroed}"
            );
        }
    }
}
