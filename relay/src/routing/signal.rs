//! How the async shell learns that the core's state changed, without the core
//! naming an executor: a change counter plus the `std::task::Waker`s of the
//! tasks waiting on it.
//!
//! The core bumps a [`Signal`] after it changed something (a track's phase, a
//! session's outbound queue, the set of routable names); a waiter remembers
//! the generation it last looked at, re-reads the state, and waits for
//! [`Signal::changed_since`] that generation. Because the generation is read
//! before the state, a change between the two is never missed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Inner {
    generation: u64,
    /// One waker per waiting task: `will_wake` duplicates are not stored, so
    /// the list is bounded by the number of distinct waiting tasks and is
    /// emptied by every [`Signal::notify`].
    wakers: Vec<Waker>,
}

#[derive(Default)]
pub struct Signal {
    inner: Mutex<Inner>,
}

impl Signal {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current generation; read it *before* reading the state it guards.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Something changed: wakes every waiter.
    pub fn notify(&self) {
        let wakers = {
            let mut s = self.lock();
            s.generation += 1;
            std::mem::take(&mut s.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Resolves with the new generation once it differs from `seen`.
    pub fn changed_since(&self, seen: u64) -> Changed<'_> {
        Changed { signal: self, seen }
    }
}

/// Future of [`Signal::changed_since`].
pub struct Changed<'a> {
    signal: &'a Signal,
    seen: u64,
}

impl Future for Changed<'_> {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let mut s = self.signal.lock();
        if s.generation != self.seen {
            return Poll::Ready(s.generation);
        }
        if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            s.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    #[test]
    fn a_change_after_the_generation_was_read_is_seen() {
        let s = Signal::new();
        let g = s.generation();
        let mut f = pin!(s.changed_since(g));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(f.as_mut().poll(&mut cx).is_pending());
        s.notify();
        assert_eq!(f.as_mut().poll(&mut cx), Poll::Ready(g + 1));
        // A waiter that read the old generation resolves at once.
        let mut late = pin!(s.changed_since(g));
        assert!(late.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn one_waker_per_task_however_often_it_polls() {
        let s = Signal::new();
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..100 {
            let mut f = pin!(s.changed_since(0));
            assert!(f.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(s.lock().wakers.len(), 1);
        s.notify();
        assert!(s.lock().wakers.is_empty());
    }
}
