//! Audio heard before the call is established with its sender
//! (docs/CALLS.md §6, "Before the answer"). The caller subscribes to the
//! `audio` of every ringing device and a device sends from its own
//! `answer`, so frames can overtake the `answer` event or come from a
//! device that loses the race. Only the device the call is established with
//! is played; until then the newest [`KEPT_FRAMES`] of each sender are kept
//! and the winner's are played first, in order. Sans-IO and generic over
//! the frame, so the Rust phone's driver and tests share it (the web
//! phone's `call/early.ts` is the same rule).

use std::collections::{BTreeMap, VecDeque};

/// Frames kept per sender before the answer: 100 ms of 20 ms frames,
/// enough to cover an `answer` event that a datagram overtook without
/// adding more than that to the delay of the first words (CALLS.md §7).
pub const KEPT_FRAMES: usize = 5;

/// A sender: the callee device a caller hears, or `None` (the caller, at a callee).
pub type Sender = Option<String>;

#[derive(Debug)]
pub struct EarlyAudio<T> {
    /// The sender the call is established with, once it is.
    peer: Option<Sender>,
    kept: BTreeMap<Sender, VecDeque<T>>,
}

impl<T> Default for EarlyAudio<T> {
    fn default() -> Self {
        Self { peer: None, kept: BTreeMap::new() }
    }
}

impl<T> EarlyAudio<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A frame from `sender`: returned when it is to be played now (the
    /// established peer); otherwise kept (before establishment, the oldest
    /// beyond [`KEPT_FRAMES`] dropped) or dropped (another sender after it).
    pub fn frame(&mut self, sender: &Sender, frame: T) -> Option<T> {
        match &self.peer {
            Some(p) if p == sender => Some(frame),
            Some(_) => None,
            None => {
                let q = self.kept.entry(sender.clone()).or_default();
                if q.len() == KEPT_FRAMES {
                    q.pop_front();
                }
                q.push_back(frame);
                None
            }
        }
    }

    /// The call is established with `sender`: its kept frames, oldest
    /// first, to play now; every other sender's are dropped.
    pub fn established(&mut self, sender: &Sender) -> Vec<T> {
        self.peer = Some(sender.clone());
        let mine = self.kept.remove(sender).map(Vec::from).unwrap_or_default();
        self.kept.clear();
        mine
    }

    /// Whether `sender` is the established peer.
    pub fn is_peer(&self, sender: &Sender) -> bool {
        self.peer.as_ref() == Some(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Sender {
        Some(s.into())
    }

    #[test]
    fn the_winners_newest_frames_play_first_in_order_the_losers_are_dropped() {
        let mut e = EarlyAudio::new();
        for n in 0..7 {
            assert_eq!(e.frame(&d("d1"), n), None);
        }
        assert_eq!(e.frame(&d("d2"), 100), None);
        assert!(!e.is_peer(&d("d1")));
        assert_eq!(e.established(&d("d1")), vec![2, 3, 4, 5, 6]);
        assert!(e.is_peer(&d("d1")));
        assert_eq!(e.frame(&d("d1"), 7), Some(7));
        assert_eq!(e.frame(&d("d2"), 101), None);
        // Nothing of d2 was kept for later either.
        assert_eq!(e.established(&d("d2")), Vec::<i32>::new());
    }

    #[test]
    fn a_winner_that_sent_nothing_early_starts_empty() {
        let mut e = EarlyAudio::new();
        assert_eq!(e.frame(&d("d2"), 1), None);
        assert_eq!(e.established(&None), Vec::<i32>::new());
        assert_eq!(e.frame(&None, 2), Some(2));
    }
}
