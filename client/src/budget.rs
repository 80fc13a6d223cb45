//! A byte budget shared by a session's data streams: each stream holds
//! what its partly received object buffers, and gives it back as objects
//! complete or the stream ends. Why: per-object limits bound one stream,
//! not the number of streams a hostile peer opens at once
//! (`session::PARTIAL_BUDGET`).

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub const fn new(limit: usize) -> Self {
        Self { used: AtomicUsize::new(0), limit }
    }

    /// Bytes held now, over all holders.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// A holder for one stream, holding nothing yet.
    pub fn holder(&self) -> Held<'_> {
        Held { budget: self, held: 0 }
    }
}

/// One stream's share of a [`Budget`]; given back when dropped.
#[derive(Debug)]
pub struct Held<'a> {
    budget: &'a Budget,
    held: usize,
}

impl Held<'_> {
    /// Sets this stream's share to `bytes`; `false` (and nothing taken) if
    /// growing to it would pass the budget.
    pub fn set(&mut self, bytes: usize) -> bool {
        if bytes == self.held {
            // The usual case, objects arriving whole: no shared write per read.
            return true;
        }
        if bytes < self.held {
            self.budget.used.fetch_sub(self.held - bytes, Ordering::Relaxed);
            self.held = bytes;
            return true;
        }
        let more = bytes - self.held;
        let ok = self
            .budget
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| u.checked_add(more).filter(|n| *n <= self.budget.limit))
            .is_ok();
        if ok {
            self.held = bytes;
        }
        ok
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_share_the_budget_and_give_it_back() {
        let b = Budget::new(100);
        let mut one = b.holder();
        let mut two = b.holder();
        assert!(one.set(60));
        assert!(!two.set(41), "past the budget");
        assert_eq!(b.used(), 60, "a refused request takes nothing");
        assert!(two.set(40));
        assert!(one.set(10), "shrinking always works");
        assert!(two.set(90));
        assert_eq!(b.used(), 100);
        drop(two);
        assert_eq!(b.used(), 10);
        drop(one);
        assert_eq!(b.used(), 0);
    }
}
