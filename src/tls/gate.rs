//! A lock that a writer can give up on at its deadline, which a `Mutex`
//! cannot: the TLS state is held by the reader while it flushes its own
//! records, and a push must still return within the write timeout.

use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Guards a value; [`Gate::enter`] waits for it until a deadline at most.
#[derive(Debug)]
pub struct Gate<T> {
    /// Whether someone is inside, and how many wait to be.
    state: Mutex<(bool, u32)>,
    freed: Condvar,
    /// Never contended: only the one inside the gate locks it.
    value: Mutex<T>,
}

/// Access to the guarded value; leaving frees the gate for the next.
pub struct Inside<'a, T> {
    // Declared first, so released before the gate is freed.
    value: MutexGuard<'a, T>,
    gate: &'a Gate<T>,
}

impl<T> Gate<T> {
    pub fn new(value: T) -> Gate<T> {
        Gate {
            state: Mutex::new((false, 0)),
            freed: Condvar::new(),
            value: Mutex::new(value),
        }
    }

    /// Waits until no one else is inside, at most until `deadline`
    /// (`None`: as long as it takes), then enters. `TimedOut` at the deadline.
    pub fn enter(&self, deadline: Option<Instant>) -> io::Result<Inside<'_, T>> {
        let mut state = lock(&self.state)?;
        while state.0 {
            state.1 += 1;
            let waited = match deadline {
                None => self.freed.wait(state).map_err(|_| poisoned()),
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    match self.freed.wait_timeout(state, left) {
                        Ok((state, _)) => Ok(state),
                        Err(_) => Err(poisoned()),
                    }
                }
            };
            state = waited?;
            state.1 -= 1;
            if state.0 && deadline.is_some_and(|at| Instant::now() >= at) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the TLS state stayed busy past the deadline",
                ));
            }
        }
        state.0 = true;
        drop(state);
        let value = lock(&self.value)?;
        Ok(Inside { value, gate: self })
    }
}

impl<T> Drop for Inside<'_, T> {
    fn drop(&mut self) {
        let mut state = self.gate.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = false;
        // No wake-up call when no one waits: the common case costs none.
        if state.1 > 0 {
            self.gate.freed.notify_one();
        }
    }
}

impl<T> std::ops::Deref for Inside<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> std::ops::DerefMut for Inside<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

fn lock<S>(mutex: &Mutex<S>) -> io::Result<MutexGuard<'_, S>> {
    mutex.lock().map_err(|_| poisoned())
}

fn poisoned() -> io::Error {
    io::Error::other("TLS state lost to a panic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn a_waiter_gives_up_at_its_deadline_and_enters_once_free() {
        let gate = Arc::new(Gate::new(0u32));
        let inside = gate.enter(None).expect("an open gate");
        let other = Arc::clone(&gate);
        let started = Instant::now();
        let refused = thread::spawn(move || {
            other
                .enter(Some(Instant::now() + Duration::from_millis(100)))
                .map(|_| ())
        })
        .join()
        .expect("the thread");
        assert_eq!(
            refused.expect_err("refused at its deadline").kind(),
            io::ErrorKind::TimedOut
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(inside);
        *gate.enter(Some(Instant::now())).expect("an open gate") += 1;
        assert_eq!(*gate.enter(None).expect("an open gate"), 1);
    }

    #[test]
    fn waiters_are_woken_when_the_gate_is_freed() {
        let gate = Arc::new(Gate::new(Vec::new()));
        let inside = gate.enter(None).expect("an open gate");
        let waiters: Vec<_> = (0..4)
            .map(|i| {
                let gate = Arc::clone(&gate);
                thread::spawn(move || gate.enter(None).map(|mut v| v.push(i)).is_ok())
            })
            .collect();
        drop(inside);
        assert!(
            waiters
                .into_iter()
                .all(|w| w.join().expect("a waiter thread"))
        );
        assert_eq!(gate.enter(None).expect("an open gate").len(), 4);
    }
}
