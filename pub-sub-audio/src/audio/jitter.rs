//! Adaptive jitter buffer, sans-IO: packets go in with their sequence number
//! and arrival time; every 20 ms the playout clock asks what to play.
//!
//! Playout starts once `target` frames are buffered. A missing frame is
//! rebuilt from the next packet's Opus FEC when that packet is already here,
//! else concealed (PLC). The target depth grows by a frame on each underrun
//! and shrinks again when the buffer has stayed deeper than needed for a
//! second, by skipping one frame — so latency follows the network's jitter.

use std::collections::BTreeMap;

/// What to hand the decoder for the next 20 ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Not started (or nothing received yet): play silence.
    Idle,
    Frame(Vec<u8>),
    /// The frame is missing but the next packet is here: decode it with FEC.
    Fec(Vec<u8>),
    /// Missing and nothing to rebuild it from: conceal.
    Conceal,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub played: u64,
    pub fec: u64,
    pub concealed: u64,
    /// Concealments because the buffer ran dry.
    pub underruns: u64,
    pub late: u64,
    pub skipped: u64,
}

pub struct JitterBuffer {
    frames: BTreeMap<u64, Vec<u8>>,
    next: Option<u64>,
    playing: bool,
    target: usize,
    min_target: usize,
    max_target: usize,
    /// Smallest depth seen in the current one-second window.
    window_min: usize,
    window_pops: u32,
    pub stats: Stats,
}

impl JitterBuffer {
    /// `min_frames`..`max_frames` bound the target depth (20 ms each).
    pub fn new(min_frames: usize, max_frames: usize) -> Self {
        let min_target = min_frames.max(1);
        Self {
            frames: BTreeMap::new(),
            next: None,
            playing: false,
            target: min_target,
            min_target,
            max_target: max_frames.max(min_target),
            window_min: usize::MAX,
            window_pops: 0,
            stats: Stats::default(),
        }
    }

    /// Current target depth in frames.
    pub fn target(&self) -> usize {
        self.target
    }

    /// Sequence number of the frame the last [`Self::pop`] was about.
    pub fn last_seq(&self) -> Option<u64> {
        self.next.and_then(|n| n.checked_sub(1))
    }

    pub fn depth(&self) -> usize {
        self.frames.len()
    }

    /// A packet arrived. Bounded: at most `2 * max_target` frames are kept.
    pub fn push(&mut self, seq: u64, packet: Vec<u8>) {
        if self.next.is_some_and(|n| seq < n) {
            self.stats.late += 1;
            return;
        }
        self.frames.insert(seq, packet);
        while self.frames.len() > 2 * self.max_target {
            self.frames.pop_first();
            if let (Some(n), Some((&first, _))) = (self.next, self.frames.first_key_value()) {
                self.next = Some(n.max(first));
            }
        }
    }

    /// The next 20 ms.
    pub fn pop(&mut self) -> Playout {
        if !self.playing {
            if self.frames.len() < self.target {
                // Refilling after an underrun: keep concealing, never a hole.
                if self.next.is_some() {
                    self.stats.concealed += 1;
                    return Playout::Conceal;
                }
                return Playout::Idle;
            }
            self.playing = true;
            // Resume at the oldest buffered frame (never before what was played).
            let first = self.frames.keys().next().copied();
            self.next = match (self.next, first) {
                (Some(n), Some(f)) => Some(n.max(f)),
                (None, f) => f,
                (n, None) => n,
            };
        }
        // May skip a frame (advancing `next`) when latency is in excess.
        self.track_depth();
        let Some(seq) = self.next else { return Playout::Idle };
        self.next = Some(seq + 1);
        if let Some(p) = self.frames.remove(&seq) {
            self.stats.played += 1;
            return Playout::Frame(p);
        }
        if let Some(p) = self.frames.get(&(seq + 1)) {
            self.stats.fec += 1;
            return Playout::Fec(p.clone());
        }
        self.stats.concealed += 1;
        if self.frames.is_empty() {
            // Ran dry: the network is later than we allowed for.
            self.stats.underruns += 1;
            self.target = (self.target + 1).min(self.max_target);
            self.playing = false;
            self.next = Some(seq + 1);
        }
        Playout::Conceal
    }

    fn track_depth(&mut self) {
        self.window_min = self.window_min.min(self.frames.len());
        self.window_pops += 1;
        if self.window_pops < 50 {
            return;
        }
        // Deeper than the target for a whole second: shed a frame of latency.
        if self.window_min > self.target + 1 {
            if let Some((seq, _)) = self.frames.pop_first() {
                self.stats.skipped += 1;
                self.next = Some(seq + 1);
            }
        } else if self.window_min > 0 && self.target > self.min_target && self.stats.underruns == 0 {
            self.target -= 1;
        }
        self.window_min = usize::MAX;
        self.window_pops = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(i: u64) -> Vec<u8> {
        vec![i as u8]
    }

    #[test]
    fn in_order_stream_plays_every_frame_after_prefill() {
        let mut jb = JitterBuffer::new(2, 10);
        let mut out = Vec::new();
        for i in 0..100 {
            jb.push(i, pkt(i));
            out.push(jb.pop());
        }
        assert_eq!(out[0], Playout::Idle);
        let played: Vec<_> = out.iter().filter_map(|p| if let Playout::Frame(f) = p { Some(f[0]) } else { None }).collect();
        assert_eq!(played, (0..played.len() as u8).collect::<Vec<_>>());
        assert_eq!((jb.stats.concealed, jb.stats.underruns), (0, 0));
    }

    #[test]
    fn loss_uses_fec_from_next_packet_then_plc() {
        let mut jb = JitterBuffer::new(3, 10);
        for i in [0, 1, 3, 4] {
            jb.push(i, pkt(i));
        }
        assert_eq!(jb.pop(), Playout::Frame(pkt(0)));
        assert_eq!(jb.pop(), Playout::Frame(pkt(1)));
        assert_eq!(jb.pop(), Playout::Fec(pkt(3)), "frame 2 rebuilt from 3's FEC");
        assert_eq!(jb.pop(), Playout::Frame(pkt(3)));
        assert_eq!(jb.pop(), Playout::Frame(pkt(4)));
        assert_eq!(jb.pop(), Playout::Conceal);
        assert_eq!(jb.stats.underruns, 1);
        assert_eq!(jb.target(), 4, "an underrun deepens the buffer");
    }

    #[test]
    fn reordering_within_the_target_is_invisible_and_late_packets_drop() {
        let mut jb = JitterBuffer::new(3, 10);
        for i in [1, 0, 2] {
            jb.push(i, pkt(i));
        }
        assert_eq!(jb.pop(), Playout::Frame(pkt(0)));
        jb.push(4, pkt(4));
        jb.push(3, pkt(3));
        for i in 1..5 {
            assert_eq!(jb.pop(), Playout::Frame(pkt(i)));
        }
        jb.push(2, pkt(2));
        assert_eq!(jb.stats.late, 1);
    }

    #[test]
    fn excess_depth_is_shed_and_memory_is_bounded() {
        let mut jb = JitterBuffer::new(2, 5);
        for i in 0..1000 {
            jb.push(i, pkt(i));
        }
        assert!(jb.depth() <= 10, "a flood is bounded");
        // A steady stream arriving 8 frames early: latency is shed.
        let mut jb = JitterBuffer::new(2, 10);
        for i in 0..8 {
            jb.push(i, pkt(i));
        }
        for i in 8..500 {
            jb.pop();
            jb.push(i, pkt(i));
        }
        assert!(jb.stats.skipped >= 3, "skipped {}", jb.stats.skipped);
        assert!(jb.depth() <= jb.target() + 2, "depth {} target {}", jb.depth(), jb.target());
    }
}
