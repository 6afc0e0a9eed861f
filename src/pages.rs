//! Memory pages a session gives back to the OS while it is quiet, so that an
//! idle session holds only what it needs to wait: its thread's stack pages
//! below the current frame (the handshake's deep calls, a log line ran down
//! there) and its inbox (see `inbox`).

/// Bytes below the caller's frame left alone: the red zone and the frames
/// of the call that releases the rest.
const KEPT_BELOW: usize = 1024;

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
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let Ok(page) = usize::try_from(page) else {
        return;
    };
    let end = here.saturating_sub(KEPT_BELOW) & !(page - 1);
    if end <= low {
        return;
    }
    // SAFETY: [low, end) is this thread's own stack, below every live frame
    // (the red zone and madvise's own frame stay above `end`).
    unsafe { discard(low as *mut u8, end - low) };
}

/// Elsewhere the pages stay; nothing is lost but memory.
#[cfg(not(target_os = "linux"))]
pub fn release_unused_stack() {}

/// Gives the whole pages of `[start, start + len)` back to the OS; they read
/// back as zeros, and cost memory again only once written.
///
/// # Safety
/// The range must be private memory of this process whose contents nobody
/// needs any more, `start` page-aligned.
#[cfg(target_os = "linux")]
pub unsafe fn discard(start: *mut u8, len: usize) {
    // SAFETY: as the caller promises; MADV_DONTNEED on private anonymous
    // memory only replaces its pages with zero pages on the next touch.
    unsafe { libc::madvise(start.cast(), len, libc::MADV_DONTNEED) };
}

/// Elsewhere the pages stay; nothing is lost but memory.
///
/// # Safety
/// None needed; kept for the same signature as on Linux.
#[cfg(not(target_os = "linux"))]
pub unsafe fn discard(_start: *mut u8, _len: usize) {}

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
}
