//! The playout controller (docs/design/quality.md §3.3): decides, frame by
//! frame, what the receiver plays — decode, stretch, rebuild from FEC,
//! conceal — from when frames arrived and how much audio is buffered.
//!
//! Sans-IO: arrivals carry their time (integer ms from any origin), pulls
//! count samples, the packets and the decoder stay with the shell
//! (`phone/media.rs`, the browser's playout worklet), which keeps each packet
//! keyed by its frame number `n` (n = group·50 + object, CALLS.md §6) while
//! [`Controller::holds`] says so. The shell's loop for every 20 ms pull:
//!
//! ```text
//! while ctl.fifo_samples() < 960 {
//!     match ctl.next() {
//!         Idle => break,                       // nothing to play: silence
//!         Decode(n) => fifo += decode(pkt[n]),
//!         Accelerate{n,..} | Expand(n) => { pcm = stretch(decode(pkt[n])); ctl.stretched(n, delta); fifo += pcm }
//!         DecodeFec{lost, from} => fifo += decode_fec(pkt[from]),
//!         DecodeRedundant(n) => fifo += decode(red[n]),
//!         Conceal(_) => fifo += plc(),
//!     }
//! }
//! play(fifo.take(960)); ctl.pulled(960);
//! ```
//!
//! Every op except `Idle` puts 960 samples in the FIFO (plus what
//! [`Controller::stretched`] reports). Decisions, in order, for the frame due
//! (`next`):
//! - nothing at or after it buffered → `Conceal` (an underrun, counted once
//!   per run when the stream resumes — a stream that ends did not underrun —
//!   and only if the level had reached `low` since the start or
//!   the last resume: before, the buffer is still filling — with no prefill,
//!   the second frame can miss its pull by a hair; a concealed frame there is
//!   the one-frame hold the design saved, paid only when needed) for up to
//!   [`Config::hold_conceal_frames`], then `Idle`. The due
//!   frame is *held*, not given up: if it arrives it plays (the gap became
//!   delay, which accelerate removes); if a later frame arrives first, the
//!   controller skips to it and decodes at once — after an outage audio
//!   returns one one-way delay after the link does.
//! - buffered far beyond the target (a queue delivered at once) → skip
//!   ahead to the target, counted in `skipped`.
//! - the frame is here → `Decode`, or `Accelerate`/`Expand` when the
//!   smoothed level is outside `[low, high)` (NetEQ's thresholds, §3.2);
//! - a redundant copy is here → `DecodeRedundant`;
//! - the next frame is here → `DecodeFec` (libopus falls back to PLC inside
//!   when that packet has no LBRR);
//! - else → `Conceal` (a loss).
//!
//! **Level** (deviation from §3.3, why): L = (newest buffered frame − due
//! frame)·20 ms + FIFO. The design counted the due frame too; but the
//! frame being decided is not slack — the slack that lets frame n+k arrive
//! late is what lies beyond it, and it must cover the relative delay's
//! 95th percentile, the target. With the due frame counted, a 60 ms jitter
//! needed a target of 80 to play 60 ms late frames.
//!
//! **Smoothing** (deviation from §3.3, why): the level is an EWMA of weight
//! 1/16 per frame (NetEQ's BufferLevelFilter runs at about that weight), and
//! a stretch moves the smoothed level by what it added or removed at once
//! (as NetEQ compensates its filtered level for time-stretched samples). With
//! weight 1/4 and no compensation, the smoothed level lagged the FIFO it had
//! just changed: under 60 ms jitter the controller accelerated, then expanded
//! what it had just removed — 1.7 s of stretching per 30 s call in the quality
//! bench's model, against 0.1 s with both changes.
//!
//! Bounded against hostile frame numbers: at most [`Config::buffer_frames`]
//! frames (and as many redundant copies) are held; numbers above 2^53 − 1
//! (the TypeScript port's exact integers) are refused; a frame more than
//! [`Config::far_frames`] ahead or [`Config::stale_frames`] behind is a
//! stray, dropped, unless [`Config::stray_run`] strays come in a row (a
//! sender that restarted its numbering): then the controller rebases on it.
//! A LOC capture time that jumps by more than 200 ms against the frame
//! numbers (hold/unhold, a restart) resets the estimator (as NetEQ does after
//! long expansions).

pub mod estimator;

use estimator::{Estimator, Limits};
use std::collections::BTreeSet;

/// Samples per frame (48 kHz × 20 ms).
pub const FRAME_SAMPLES: u64 = 960;
/// Milliseconds per frame.
pub const FRAME_MS: u64 = 20;
/// Largest frame number accepted (2^53 − 1).
pub const MAX_N: u64 = (1 << 53) - 1;
/// The low threshold is max(¾·target, target − this), ms: NetEQ's
/// deceleration offset (85 ms), so the buffer runs between ¾ of the target
/// and the target, as NetEQ's does. It was 10 — the level then sat at the
/// target itself, ~¼ higher than needed (bench/quality/playout-sim.mjs,
/// jitter 60 ms: 133 → 126 ms mouth-to-ear, same PESQ, no underrun; plain
/// WebRTC holds ~52 ms against our 75 on bench/quality's jitter60).
pub const LOW_OFFSET_MS: f64 = 85.0;

/// Thresholds; the vectors (docs/vectors/playout.json) pin the defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Target before anything is known, ms (NetEQ starts at 80).
    pub start_target_ms: u64,
    /// Floor of the target, ms. 40, not the design's 20 (why): the shell's
    /// 20 ms pull clock jitters too — on a loaded 2-core host tokio's
    /// interval fires late and then in a burst — which no arrival time
    /// shows; with a 20 ms floor the loopback call test saw an underrun in
    /// 3 of 4 calls, with 40 (the old buffer's two frames) none.
    pub min_target_ms: u64,
    pub max_target_ms: u64,
    /// Added to the histogram's quantile, ms.
    pub margin_ms: u64,
    /// LOC capture time against frame numbers: a jump above this resets, ms.
    pub discontinuity_ms: u64,
    /// EWMA weight of a new level sample, per op. 1/32: NetEQ's
    /// BufferLevelFilter keeps 251–254/256 per 10 ms (1/26 to 1/43 per
    /// 20 ms op); with 1/16 the level followed 60 ms jitter's clumps and
    /// crossed the thresholds, stretching speech ~10 times as often as NetEQ
    /// (bench/quality jitter60: 250 ms of expansion per 30 s call against
    /// NetEQ's 26); bench/quality/playout-sim.mjs, voice a, jitter 60 ms,
    /// 5 seeds: PESQ 3.86 at 1/16, 4.17 at 1/32 (4.17 on a clean link).
    pub level_alpha: f64,
    /// Buffered this far beyond the target, skip ahead instead of stretching, ms.
    pub max_excess_ms: u64,
    /// Concealed frames in an underrun before going silent.
    pub hold_conceal_frames: u64,
    /// Frames held at most.
    pub buffer_frames: usize,
    /// A frame this far ahead of the due one is a stray.
    pub far_frames: u64,
    /// A frame this far behind the due one is a stray (not just late).
    pub stale_frames: u64,
    /// Strays in a row that make the controller rebase on the last one.
    pub stray_run: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            start_target_ms: 40,
            min_target_ms: 40,
            max_target_ms: 400,
            margin_ms: 10,
            discontinuity_ms: 200,
            level_alpha: 1.0 / 32.0,
            max_excess_ms: 300,
            hold_conceal_frames: 5,
            buffer_frames: 64,
            far_frames: 1500,
            stale_frames: 50,
            stray_run: 10,
        }
    }
}

/// What the shell does next (one 20 ms frame each, except `Idle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Decode(u64),
    /// Frame `lost` rebuilt from the in-band FEC of packet `from` (= lost + 1).
    DecodeFec {
        lost: u64,
        from: u64,
    },
    /// Frame `n` from a REDUNDANT_FRAME copy (§4.2).
    DecodeRedundant(u64),
    /// Packet loss concealment for frame `n`'s slot.
    Conceal(u64),
    /// Decode `n` and remove a pitch period (two when `fast`).
    Accelerate {
        n: u64,
        fast: bool,
    },
    /// Decode `n` and insert a pitch period.
    Expand(u64),
    /// Nothing to play: silence, no samples enter the FIFO.
    Idle,
}

/// Counters for people and benches (moq-phone prints them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames decoded from their own packet (stretched or not).
    pub played: u64,
    pub fec: u64,
    pub redundant: u64,
    /// Frames concealed (losses and underruns).
    pub concealed: u64,
    pub concealed_ms: u64,
    /// Runs of "nothing buffered" after the level had been reached, counted
    /// when the stream resumes: a gap inside the stream (its end is none).
    pub underruns: u64,
    /// Frames that came after their turn.
    pub late: u64,
    /// Frames jumped over (after an outage, a queue, an overflow).
    pub skipped: u64,
    /// Frames refused: beyond 2^53, too far ahead, evicted, strays.
    pub refused: u64,
    /// Estimator resets (discontinuities, rebases).
    pub resets: u64,
    pub accel_ms: u64,
    pub expand_ms: u64,
    pub target_ms: u64,
    /// Smoothed level at the last decision, ms.
    pub level_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Controller {
    cfg: Config,
    est: Estimator,
    held: BTreeSet<u64>,
    redundant: BTreeSet<u64>,
    /// The frame due; None before the first object.
    next: Option<u64>,
    /// Nothing was buffered at the last decision (an underrun or outage).
    holding: bool,
    /// The level has reached `low` since the start or the last resume: an
    /// empty buffer now is an underrun, before it is the start filling up.
    primed: bool,
    /// The current hold began primed: counted as an underrun if it resumes.
    hold_primed: bool,
    hold_frames: u64,
    /// Samples the shell's FIFO holds.
    fifo: u64,
    /// Smoothed level, ms; None until the next decision re-seeds it.
    level: Option<f64>,
    /// Frame number and LOC capture time (µs) of the last arrival that had one.
    last_capture: Option<(u64, u64)>,
    strays: u32,
    /// Bit i: frame `next − 1 − i` was played from its own packet, so a copy
    /// of it arriving now is a duplicate, not a late frame.
    played_bits: u64,
    accel_samples: u64,
    expand_samples: u64,
    stats: Stats,
}

impl Default for Controller {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl Controller {
    pub fn new(cfg: Config) -> Self {
        let lim = Limits { start_ms: cfg.start_target_ms, min_ms: cfg.min_target_ms, max_ms: cfg.max_target_ms, margin_ms: cfg.margin_ms };
        Self {
            cfg,
            est: Estimator::new(lim),
            held: BTreeSet::new(),
            redundant: BTreeSet::new(),
            next: None,
            holding: false,
            primed: false,
            hold_primed: false,
            hold_frames: 0,
            fifo: 0,
            level: None,
            last_capture: None,
            strays: 0,
            played_bits: 0,
            accel_samples: 0,
            expand_samples: 0,
            stats: Stats::default(),
        }
    }

    /// Object `n` arrived at `now_ms`, with its LOC capture time if it had
    /// one. Returns whether the shell should keep its packet (false: late,
    /// duplicate, refused). Afterwards the shell drops every packet for
    /// which [`Self::holds`] is false (cheap: only when it keeps more than
    /// [`Self::held_len`]).
    pub fn on_object(&mut self, n: u64, capture_us: Option<u64>, now_ms: u64) -> bool {
        if n > MAX_N {
            self.stats.refused += 1;
            return false;
        }
        let discontinuity = self.capture_jump(n, capture_us);
        let Some(next) = self.next else {
            self.next = Some(n);
            self.held.insert(n);
            self.est.arrival(n, now_ms);
            return true;
        };
        if discontinuity {
            self.stats.resets += 1;
            self.est.reset();
            if n < next {
                return self.rebase(n, now_ms);
            }
        }
        if n >= next + self.cfg.far_frames || n + self.cfg.stale_frames < next {
            // Too far from the stream to be a frame of it: a stray, unless a
            // run of them says the stream itself moved.
            self.strays += 1;
            if self.strays >= self.cfg.stray_run {
                self.stats.resets += 1;
                return self.rebase(n, now_ms);
            }
            self.stats.refused += 1;
            return false;
        }
        self.strays = 0;
        if n < next {
            let back = next - 1 - n;
            if back < 64 && self.played_bits & (1 << back) != 0 {
                // A duplicate of a frame already played: its arrival time
                // says nothing about the network's delay.
                return false;
            }
            self.stats.late += 1;
            self.est.arrival(n, now_ms);
            return false;
        }
        if !self.held.insert(n) {
            return false;
        }
        self.est.arrival(n, now_ms);
        self.redundant.remove(&n);
        self.bound();
        self.held.contains(&n)
    }

    /// A REDUNDANT_FRAME copy of frame `n` arrived at `now_ms` (§4.2).
    /// Returns whether the shell should keep it ([`Self::holds_redundant`]).
    ///
    /// A copy of a frame whose own packet is not here is that frame's first
    /// arrival, and the estimator is told, as of a late packet: a copy that
    /// rides k frames behind arrives about k·20 ms after its frame, so on a
    /// bursty link the target grows until the copies come in time to be
    /// played (with a 20 ms floor they came after their turn:
    /// bench/quality/playout-sim.mjs, bursty 5 %, k = 2 — 18 underruns per
    /// 30 s, 6 with this). A copy of a frame played from its own packet says
    /// nothing.
    pub fn on_redundant(&mut self, n: u64, now_ms: u64) -> bool {
        let Some(next) = self.next else { return false };
        if n > MAX_N {
            return false;
        }
        if n < next {
            let back = next - 1 - n;
            if back < self.cfg.stale_frames && !(back < 64 && self.played_bits & (1 << back) != 0) {
                self.est.arrival(n, now_ms);
            }
            return false;
        }
        if n >= next + self.cfg.buffer_frames as u64 || self.held.contains(&n) {
            return false;
        }
        if !self.redundant.contains(&n) {
            self.est.arrival(n, now_ms);
        }
        self.redundant.insert(n);
        while self.redundant.len() > self.cfg.buffer_frames {
            self.redundant.pop_first();
        }
        self.redundant.contains(&n)
    }

    /// Is the packet of frame `n` still wanted?
    pub fn holds(&self, n: u64) -> bool {
        self.held.contains(&n)
    }

    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    pub fn holds_redundant(&self, n: u64) -> bool {
        self.redundant.contains(&n)
    }

    pub fn redundant_len(&self) -> usize {
        self.redundant.len()
    }

    /// Samples the controller believes the shell's FIFO holds.
    pub fn fifo_samples(&self) -> u64 {
        self.fifo
    }

    /// The shell played `samples` from its FIFO.
    pub fn pulled(&mut self, samples: u64) {
        self.fifo = self.fifo.saturating_sub(samples);
    }

    /// What the stretcher did with the frame of an `Accelerate`/`Expand`:
    /// samples added (> 0) or removed (< 0); 0 = declined. The smoothed level
    /// moves by as much at once: it is a fact, not a noisy sample to average.
    pub fn stretched(&mut self, _n: u64, delta_samples: i64) {
        self.fifo = (self.fifo as i64 + delta_samples).max(0) as u64;
        if let Some(level) = self.level.as_mut() {
            *level = (*level + delta_samples as f64 / (FRAME_SAMPLES / FRAME_MS) as f64).max(0.0);
        }
        if delta_samples < 0 {
            self.accel_samples += delta_samples.unsigned_abs();
        } else {
            self.expand_samples += delta_samples as u64;
        }
    }

    pub fn target_ms(&self) -> u64 {
        self.est.target_ms()
    }

    /// True before the first object and while silent after an underrun:
    /// the shell may re-phase its pull clock on the next arrival.
    pub fn is_idle(&self) -> bool {
        self.next.is_none() || (self.holding && self.hold_frames >= self.cfg.hold_conceal_frames)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            accel_ms: self.accel_samples / (FRAME_SAMPLES / FRAME_MS),
            expand_ms: self.expand_samples / (FRAME_SAMPLES / FRAME_MS),
            target_ms: self.est.target_ms(),
            level_ms: self.level.map_or(0, |l| l as u64),
            ..self.stats
        }
    }

    /// The next frame's op. (Not an `Iterator`: `Idle` is not the end.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Op {
        let Some(mut n) = self.next else { return Op::Idle };
        let first = match (self.held.first().copied(), self.redundant.first().copied()) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => {
                // Nothing buffered: the due frame is late or the link is down.
                if !self.holding {
                    self.holding = true;
                    self.hold_frames = 0;
                    self.hold_primed = self.primed;
                    self.primed = false;
                }
                if self.hold_frames >= self.cfg.hold_conceal_frames {
                    return Op::Idle;
                }
                self.hold_frames += 1;
                return self.conceal(n);
            }
        };
        if self.holding {
            // Resume on what came first after the gap: those before it are
            // gone. The gap was inside the stream: an underrun.
            self.holding = false;
            if self.hold_primed {
                self.stats.underruns += 1;
            }
            self.level = None;
            if first > n {
                self.skip_to(first);
                n = first;
            }
        }
        let target = self.est.target_ms();
        let mut raw = self.raw_level(n);
        if raw > (target + self.cfg.max_excess_ms) as f64 {
            // A queue delivered at once: keep the target's worth, skip the rest.
            let newest = *self.held.last().unwrap_or(&n);
            let keep = target.div_ceil(FRAME_MS);
            let to = newest.saturating_sub(keep).max(n);
            let to = self.held.range(to..).next().copied().unwrap_or(newest);
            self.skip_to(to);
            n = to;
            self.level = None;
            raw = self.raw_level(n);
        }
        let level = match self.level {
            Some(l) => l + self.cfg.level_alpha * (raw - l),
            None => raw,
        };
        self.level = Some(level);
        self.next = Some(n + 1);
        let own = self.held.remove(&n);
        self.played_bits = (self.played_bits << 1) | own as u64;
        if own {
            self.fifo += FRAME_SAMPLES;
            self.redundant.remove(&n);
            self.stats.played += 1;
            let t = target as f64;
            let low = (0.75 * t).max(t - LOW_OFFSET_MS);
            let high = t.max(low + 20.0);
            self.primed |= level >= low;
            return if level >= 4.0 * high {
                Op::Accelerate { n, fast: true }
            } else if level >= high {
                Op::Accelerate { n, fast: false }
            } else if level < low {
                Op::Expand(n)
            } else {
                Op::Decode(n)
            };
        }
        if self.redundant.remove(&n) {
            self.fifo += FRAME_SAMPLES;
            self.stats.redundant += 1;
            return Op::DecodeRedundant(n);
        }
        if self.held.contains(&(n + 1)) {
            self.fifo += FRAME_SAMPLES;
            self.stats.fec += 1;
            return Op::DecodeFec { lost: n, from: n + 1 };
        }
        self.conceal(n)
    }

    /// PLC for `n`'s slot. The due frame and the played bits are the
    /// caller's: a decision has advanced them already (advancing here too
    /// shifted the bits twice, and a duplicate of the frame before a
    /// concealment counted as late), a hold does not advance them.
    fn conceal(&mut self, n: u64) -> Op {
        self.stats.concealed += 1;
        self.stats.concealed_ms += FRAME_MS;
        self.fifo += FRAME_SAMPLES;
        Op::Conceal(n)
    }

    /// Media buffered beyond frame `n`, plus the FIFO, ms.
    fn raw_level(&self, n: u64) -> f64 {
        let newest = self.held.last().copied().unwrap_or(n).max(self.redundant.last().copied().unwrap_or(n));
        ((newest.max(n) - n) * FRAME_MS) as f64 + self.fifo as f64 / (FRAME_SAMPLES / FRAME_MS) as f64
    }

    /// Jumps the due frame forward to `to`, forgetting what lies before.
    fn skip_to(&mut self, to: u64) {
        let Some(n) = self.next else { return };
        if to <= n {
            return;
        }
        self.stats.skipped += to - n;
        self.played_bits = self.played_bits.checked_shl((to - n).min(64) as u32).unwrap_or(0);
        self.held = self.held.split_off(&to);
        self.redundant = self.redundant.split_off(&to);
        self.next = Some(to);
    }

    /// Keeps at most `buffer_frames` held: the oldest go (skipped if due).
    fn bound(&mut self) {
        while self.held.len() > self.cfg.buffer_frames {
            let Some(old) = self.held.pop_first() else { break };
            self.stats.refused += 1;
            if let Some(n) = self.next.filter(|&n| old >= n) {
                self.stats.skipped += old + 1 - n;
                self.played_bits = self.played_bits.checked_shl((old + 1 - n).min(64) as u32).unwrap_or(0);
                self.next = Some(old + 1);
                self.redundant = self.redundant.split_off(&(old + 1));
            }
        }
    }

    /// Starts the stream over at `n` (a sender that restarted numbering).
    fn rebase(&mut self, n: u64, now_ms: u64) -> bool {
        self.est.reset();
        self.held.clear();
        self.redundant.clear();
        self.next = Some(n);
        self.holding = false;
        self.primed = false;
        self.level = None;
        self.strays = 0;
        self.played_bits = 0;
        self.held.insert(n);
        self.est.arrival(n, now_ms);
        true
    }

    /// Does the LOC capture time of `n` jump against the frame numbers?
    /// Compared with the newest frame's, and only for a newer frame or one
    /// far behind (a restart): a frame reordered across a hold would
    /// otherwise jump back and reset again.
    fn capture_jump(&mut self, n: u64, capture_us: Option<u64>) -> bool {
        let Some(cap) = capture_us.filter(|&c| c <= MAX_N) else { return false };
        let Some((ln, lcap)) = self.last_capture else {
            self.last_capture = Some((n, cap));
            return false;
        };
        if n <= ln && n + self.cfg.stale_frames >= ln {
            return false;
        }
        self.last_capture = Some((n, cap));
        let dn = n as i64 - ln as i64;
        if dn.unsigned_abs() > 1_000_000 {
            return true;
        }
        let jump = (cap as i64 - lcap as i64) - dn * (FRAME_MS as i64 * 1000);
        jump.unsigned_abs() > self.cfg.discontinuity_ms * 1000
    }
}

#[cfg(test)]
mod tests;
