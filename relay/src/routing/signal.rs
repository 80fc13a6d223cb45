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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

/// A generation counter and the tasks waiting for it to move.
///
/// `notify` is on the forwarding path (every object queued for a session), so
/// with nobody waiting it is two atomic operations: no lock, no allocation.
/// The waker list keeps its capacity across notifications.
#[derive(Default)]
pub struct Signal {
    generation: AtomicU64,
    /// Length of `wakers`, readable without the lock.
    waiting: AtomicUsize,
    /// One waker per waiting task: `will_wake` duplicates are not stored, so
    /// the list is bounded by the number of distinct waiting tasks and is
    /// emptied by every [`Signal::notify`] that finds it non-empty.
    wakers: Mutex<Vec<Waker>>,
}

impl Signal {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current generation; read it *before* reading the state it guards.
    pub fn generation(&self) -> u64 {
        self.generation.load(SeqCst)
    }

    /// Something changed: wakes every waiter.
    pub fn notify(&self) {
        // Paired with `Changed::poll`, which publishes its waker before it
        // reads the generation: one of the two sees the other's write.
        self.generation.fetch_add(1, SeqCst);
        if self.waiting.load(SeqCst) == 0 {
            return;
        }
        let mut w = self.lock();
        self.waiting.store(0, SeqCst);
        // Waking only schedules the task; it does not run it under our lock.
        for waker in w.drain(..) {
            waker.wake();
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
        let g = self.signal.generation();
        if g != self.seen {
            return Poll::Ready(g);
        }
        let mut w = self.signal.lock();
        if !w.iter().any(|x| x.will_wake(cx.waker())) {
            w.push(cx.waker().clone());
        }
        self.signal.waiting.store(w.len(), SeqCst);
        drop(w);
        // A notify between the first read and the store above saw no waiter.
        let g = self.signal.generation();
        if g != self.seen {
            return Poll::Ready(g);
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
        assert_eq!(s.lock().len(), 1);
        s.notify();
        assert!(s.lock().is_empty());
    }

    /// Runs a future to completion on this thread, parking between polls.
    fn block_on<F: Future>(f: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }

    /// The lock-free fast path of `notify` must not lose a wake-up to a
    /// waiter that is registering at the same moment: each round waits for a
    /// notify made from another thread, and a lost one would hang the test.
    #[test]
    fn no_wake_up_is_lost_across_threads() {
        let s = std::sync::Arc::new(Signal::new());
        let (go, rounds) = (std::sync::mpsc::channel::<()>(), 2_000);
        let notifier = {
            let s = s.clone();
            let rx = go.1;
            std::thread::spawn(move || {
                while rx.recv().is_ok() {
                    s.notify();
                }
            })
        };
        for _ in 0..rounds {
            let seen = s.generation();
            go.0.send(()).unwrap();
            assert!(block_on(s.changed_since(seen)) > seen);
        }
        drop(go.0);
        notifier.join().unwrap();
    }
}
