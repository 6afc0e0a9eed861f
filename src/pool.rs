//! Connection threads kept for reuse: a thread that finished its connection
//! waits a while for the next one instead of exiting.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Connection threads that finished their connection wait a while for the
/// next one, so that a busy server does not create and destroy a thread for
/// every connection: each creation and exit maps, protects and unmaps stack
/// and signal-stack pages, and every such change interrupts the other CPUs
/// (a TLB shootdown) - about half of what a rejected upgrade costs.
pub struct Pool<T> {
    state: Mutex<PoolState<T>>,
    ready: Condvar,
}

struct PoolState<T> {
    jobs: VecDeque<T>,
    idle: usize,
}

/// How long a connection thread with nothing to do waits for a connection.
const IDLE_THREAD_WAIT: Duration = Duration::from_secs(10);
/// Most connection threads kept waiting.
const MAX_IDLE_THREADS: usize = 64;

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            state: Mutex::new(PoolState {
                jobs: VecDeque::new(),
                idle: 0,
            }),
            ready: Condvar::new(),
        }
    }
}

impl<T> Pool<T> {
    /// Hands a connection to a waiting thread, or gives it back if none waits.
    pub fn offer(&self, job: T) -> Option<T> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.idle > state.jobs.len() {
            state.jobs.push_back(job);
            self.ready.notify_one();
            None
        } else {
            Some(job)
        }
    }

    /// The next connection for a thread that finished one; `None`: exit.
    pub fn next(&self, stopping: &AtomicBool) -> Option<T> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.idle >= MAX_IDLE_THREADS {
            return None;
        }
        state.idle += 1;
        let deadline = Instant::now() + IDLE_THREAD_WAIT;
        let job = loop {
            if let Some(job) = state.jobs.pop_front() {
                break Some(job);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || stopping.load(Ordering::SeqCst) {
                break None;
            }
            state = self
                .ready
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        state.idle -= 1;
        job
    }

    /// Lets the waiting threads go (the server is stopping).
    pub fn release(&self) {
        let _state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.ready.notify_all();
    }
}

/// Stack for each connection thread: the deepest path (handshake, logging)
/// needs a fraction of it, and only touched pages cost memory.
const CONNECTION_STACK_BYTES: usize = 128 * 1024;
pub fn spawn_worker(name: &str, work: impl FnOnce() + Send + 'static) {
    let spawned = thread::Builder::new()
        .name(name.into())
        .stack_size(CONNECTION_STACK_BYTES)
        .spawn(work);
    if let Err(e) = spawned {
        log::warn!("cannot start a {name} thread: {e}");
    }
}

/// A pooled thread: does its job, then the next one from `pool`, until none
/// comes for a while.
pub fn worker<T>(first: T, pool: &Pool<T>, stopping: &AtomicBool, work: fn(T)) {
    let mut job = first;
    loop {
        work(job);
        match pool.next(stopping) {
            Some(next) => job = next,
            None => return,
        }
    }
}
