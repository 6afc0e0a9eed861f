//! Processes and descriptors as std does not offer them: signals to a
//! process group, an exit seen without reaping, a descriptor that becomes
//! readable at an exit, pipes made non-blocking and asked what they hold,
//! a system constant, the limits of open files and of processes.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Sends `signal` to every process of group `pgid` (`killpg(2)`; errors,
/// such as a group that is gone, are ignored). Which group is the caller's
/// affair: 0 is the caller's own.
#[inline]
pub fn kill_group(pgid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: killpg takes no pointers; a signal is no memory access.
    unsafe { libc::killpg(pgid, signal) };
}

/// Whether child `pid` has exited, and if so whether it succeeded (exit
/// status 0), without reaping it: it can still be waited for.
pub fn peek_exit(pid: u32) -> Option<bool> {
    let flags = libc::WEXITED | libc::WNOWAIT | libc::WNOHANG;
    // SAFETY: siginfo_t is plain data, for which all zeros is a valid value;
    // waitid writes only into the one we pass, and WNOWAIT leaves the child
    // to be reaped later, WNOHANG makes it return at once.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        if libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) != 0 || info.si_pid() == 0
        {
            return None;
        }
        Some(info.si_code == libc::CLD_EXITED && info.si_status() == 0)
    }
}

/// A descriptor that becomes readable when process `pid` exits
/// (`pidfd_open(2)`, Linux 5.3); `None` on older kernels.
pub fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers, and returns a
    // new descriptor (close-on-exec) that nothing else owns, so the
    // `OwnedFd` may own it from here on.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0);
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd as RawFd))
    }
}

/// Makes a descriptor non-blocking (`O_NONBLOCK`); errors are ignored.
pub fn set_nonblocking(fd: impl AsFd) {
    let fd = fd.as_fd();
    // SAFETY: F_GETFL and F_SETFL take and return plain flags, no pointers;
    // the descriptor is open for the borrow's lifetime.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// Bytes waiting in a pipe now (`FIONREAD`); 0 if it cannot tell, or if
/// `fd` is not a pipe.
pub fn bytes_waiting(fd: impl AsFd) -> usize {
    let fd = fd.as_fd();
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes one stat into the one we pass; the descriptor is
    // open for the borrow's lifetime.
    if unsafe { libc::fstat(fd.as_raw_fd(), stat.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: fstat succeeded, so it filled `stat`.
    let mode = unsafe { stat.assume_init_ref() }.st_mode;
    if mode & libc::S_IFMT != libc::S_IFIFO {
        return 0;
    }
    let mut waiting: libc::c_int = 0;
    // SAFETY: on a pipe (checked above: a device's driver could read the
    // request otherwise), FIONREAD writes one int into the one we pass.
    let ok = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut waiting) } == 0;
    if ok {
        usize::try_from(waiting).unwrap_or(0)
    } else {
        0
    }
}

/// Clock ticks per second (`_SC_CLK_TCK`), the unit of a process's CPU
/// times in `/proc`.
pub fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let value = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(value).ok().filter(|&v| v > 0)
}

/// Raises this process's soft limit of open files (`RLIMIT_NOFILE`) to its
/// hard limit: each connection needs a descriptor, and a session a second
/// one (its wake-up clone). Errors are ignored; the limit then stays.
pub fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only write and read the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// How many processes (threads, on Linux) this process's user may have:
/// the soft `RLIMIT_NPROC`; `None` when unlimited, or not enforced (root).
pub fn process_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: geteuid takes nothing; getrlimit only writes the struct we pass.
    let (root, got) = unsafe {
        (
            libc::geteuid() == 0,
            libc::getrlimit(libc::RLIMIT_NPROC, &mut limit),
        )
    };
    let unlimited = root || got != 0 || limit.rlim_cur == libc::RLIM_INFINITY;
    (!unlimited).then(|| usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn a_pipe_tells_what_it_holds_and_other_descriptors_nothing() {
        let (reader, mut writer) = std::io::pipe().expect("a pipe");
        writer.write_all(b"hello").expect("written");
        assert_eq!(bytes_waiting(reader.as_fd()), 5);
        let file = std::fs::File::open("/proc/self/stat").expect("a file");
        assert_eq!(bytes_waiting(file.as_fd()), 0);
    }
}
