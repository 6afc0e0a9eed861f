//! The server's one background thread: it writes sessions' outboxes out as
//! their sockets drain, and once a second runs the server's upkeep. It
//! `poll`s, for `POLLOUT`, only the sockets of sessions with bytes waiting,
//! so no session needs a thread or a descriptor of its own for its outbox,
//! and with none waiting it sleeps until the next second. A session leaves
//! the list as soon as its outbox is empty.

use crate::sys::pollfd;
use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How [`Backlog::flush_queued`] left a session's outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Empty (or given up on): the flusher lets go of it.
    Done,
    /// Bytes still wait for the socket.
    More,
    /// The socket could take bytes, but the TLS state was busy.
    Stuck,
}

/// What the thread writes out: a session's link while its outbox holds
/// bytes. A trait, so that the flusher needs nothing of the link but this
/// (generic, not `dyn`: no call through a vtable on the write path).
pub trait Backlog: Send + Sync + std::fmt::Debug + 'static {
    /// The socket to wait on for room.
    fn socket(&self) -> RawFd;
    /// When an outbox that has not moved is given up on.
    fn flush_deadline(&self) -> Instant;
    /// Writes what the socket takes now.
    fn flush_queued(&self) -> Flushed;
}

/// How often the upkeep runs.
const TICK: Duration = Duration::from_secs(1);

/// Shared by a server's sessions: hands sessions with a backlog to the thread.
#[derive(Debug)]
pub struct Flusher<B> {
    /// Largest outbox, in bytes.
    limit: usize,
    list: Mutex<List<B>>,
}

#[derive(Debug)]
struct List<B> {
    /// Sessions handed over since the thread last looked.
    added: Vec<Arc<B>>,
    thread: Option<JoinHandle<()>>,
    /// Wakes the thread's `poll`; holds at most one byte.
    wake: Option<PipeWriter>,
    woken: bool,
    stopped: bool,
}

impl<B> List<B> {
    /// Wakes the thread's `poll` (the pipe then holds its one byte).
    fn wake(&mut self) {
        self.woken = true;
        if let Some(wake) = self.wake.as_mut() {
            let _ = wake.write(&[1]);
        }
    }
}

impl<B: Backlog> Flusher<B> {
    /// A flusher for outboxes of at most `limit` bytes; its thread runs
    /// from [`Flusher::start`].
    pub fn new(limit: usize) -> Arc<Flusher<B>> {
        Arc::new(Flusher {
            limit,
            list: Mutex::new(List {
                added: Vec::new(),
                thread: None,
                wake: None,
                woken: false,
                stopped: false,
            }),
        })
    }

    /// Largest outbox, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn list(&self) -> MutexGuard<'_, List<B>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `link`'s outbox out from now on, until it is empty. `false`
    /// when the server is stopping.
    pub fn add(&self, link: Arc<B>) -> bool {
        let mut list = self.list();
        if list.stopped {
            return false;
        }
        list.added.push(link);
        if !list.woken {
            list.wake();
        }
        true
    }

    /// Starts the thread (`wsauth-tick`), which also calls `upkeep` once a
    /// second until [`Flusher::stop`].
    pub fn start(self: &Arc<Self>, upkeep: impl Fn() + Send + 'static) -> std::io::Result<()> {
        let (reader, writer) = std::io::pipe()?;
        let flusher = self.clone();
        let thread = std::thread::Builder::new()
            .name("wsauth-tick".into())
            .spawn(move || flusher.run(reader, &upkeep))?;
        let mut list = self.list();
        list.thread = Some(thread);
        list.wake = Some(writer);
        // Sessions handed over before the pipe existed.
        list.wake();
        Ok(())
    }

    /// Ends the thread (if it started) and lets go of every session.
    pub fn stop(&self) {
        let mut list = self.list();
        list.stopped = true;
        list.added.clear();
        list.wake();
        let thread = list.thread.take();
        drop(list);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    fn run(&self, mut wake: PipeReader, upkeep: &dyn Fn()) {
        let mut links: Vec<Arc<B>> = Vec::new();
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut next_tick = Instant::now() + TICK;
        while self.take_added(&mut wake, &mut links) {
            if wait_for_room(&wake, &links, &mut fds, next_tick).is_err() {
                // A signal: look again.
                continue;
            }
            if flush_ready(&mut links, &fds) {
                // The socket takes bytes but another thread holds the TLS
                // state for a moment: do not spin on it.
                std::thread::sleep(Duration::from_millis(1));
            }
            if Instant::now() >= next_tick {
                upkeep();
                next_tick = Instant::now() + TICK;
            }
        }
    }

    /// Moves the sessions handed over since the last look into `links`;
    /// `false` once the flusher is stopped.
    fn take_added(&self, wake: &mut PipeReader, links: &mut Vec<Arc<B>>) -> bool {
        let mut list = self.list();
        if list.stopped {
            return false;
        }
        if list.woken {
            // The one byte `add` wrote: the read cannot block.
            let _ = wake.read(&mut [0u8; 8]);
            list.woken = false;
        }
        links.append(&mut list.added);
        true
    }
}

/// Waits until the pipe is woken, a socket in `links` takes bytes, the
/// first flush deadline or `next_tick`; `fds` holds the pipe, then one
/// entry per link, in order.
fn wait_for_room<B: Backlog>(
    wake: &PipeReader,
    links: &[Arc<B>],
    fds: &mut Vec<libc::pollfd>,
    next_tick: Instant,
) -> std::io::Result<usize> {
    fds.clear();
    fds.push(pollfd(wake.as_raw_fd(), libc::POLLIN));
    let room = |link: &Arc<B>| pollfd(link.socket(), libc::POLLOUT);
    fds.extend(links.iter().map(room));
    let first = links.iter().map(|link| link.flush_deadline()).min();
    let until = first.map_or(next_tick, |at| at.min(next_tick));
    crate::sys::poll(fds, Some(until.saturating_duration_since(Instant::now())))
}

/// Flushes each link whose socket has room or whose deadline passed, and
/// lets go of those with nothing left; whether one was stuck on its lock.
fn flush_ready<B: Backlog>(links: &mut Vec<Arc<B>>, fds: &[libc::pollfd]) -> bool {
    let now = Instant::now();
    let mut stuck = false;
    let mut index = 0;
    links.retain(|link| {
        index += 1;
        if fds[index].revents == 0 && link.flush_deadline() > now {
            return true;
        }
        match link.flush_queued() {
            Flushed::Done => false,
            Flushed::More => true,
            Flushed::Stuck => {
                stuck = true;
                true
            }
        }
    });
    stuck
}
