//! The target delay: how much audio the playout should hold so that nearly
//! every frame arrives before its turn (docs/design/quality.md §3.3
//! "Estimator", after NetEQ's relative delay + underrun histogram, §3.2).
//!
//! - Relative delay `d_n = a_n − min(a)` where `a_n = arrival − 20·n` ms and
//!   the minimum runs over the last 2 s of media time (100 frames). The
//!   frame number is the media clock (CALLS.md §6), so the sender's tick
//!   jitter does not count as network jitter.
//! - Per 250 ms of arrival time the interval's largest `d` enters a
//!   histogram of 5 ms buckets (0–1 s) with exponential forgetting; the
//!   target is the bucket holding the 95th percentile (its upper edge) plus
//!   a margin, clamped.
//! - Fast attack: a `d` above the target raises it at once (at most 60 ms
//!   per second of arrival time), so a jitter burst is not averaged away;
//!   that raise fades with the histogram's forgetting.
//!
//! Deviation from §3.3 (why): the design's 5 s half-life cannot give its own
//! "calm link back to 20–30 ms within ~10 s" — after a long jittery spell the
//! old mass must fall under 5 %, which takes 4.3 half-lives. The half-life
//! is 2 s here (0.5 s during the first 2 s), so a calm link is back after
//! ≈ 9 s. The price: one interval's weight (1 − 0.917 = 8 %) exceeds 5 %,
//! so a single bad interval moves the 95th percentile for ~1.5 s (the
//! design's fast attack raises it anyway); a released queue (frames ~1 s
//! late) thus lifts the target towards the clamp for that long.
//!
//! Portable arithmetic: times are integer ms, the histogram is f64 updated
//! by multiplications and additions only (constants below are the exact
//! doubles of 0.5^(1/8) = 0.9170040432046712 and 0.5^(1/2) =
//! 0.7071067811865476), so the TypeScript port matches.

/// Histogram bucket width, ms.
pub const BUCKET_MS: u64 = 5;
/// Buckets: 0 .. 1 s.
pub const BUCKETS: usize = 200;
/// Interval whose largest relative delay enters the histogram, ms.
pub const INTERVAL_MS: u64 = 250;
/// Media window of the minimum `a`, in frames (2 s).
pub const WINDOW_FRAMES: u64 = 100;
/// Forgetting per interval: half-life 2 s (0.5^(250/2000)).
pub const FORGET: f64 = 0.917_004_043_204_671_2;
/// Forgetting during the first [`START_INTERVALS`]: half-life 0.5 s.
pub const FORGET_START: f64 = std::f64::consts::FRAC_1_SQRT_2;
pub const START_INTERVALS: u64 = 8;
/// The quantile the target covers.
pub const QUANTILE: f64 = 0.95;
/// Fast attack budget: at most this many ms of raise per second.
pub const ATTACK_MS_PER_S: u64 = 60;

/// Targets and margins, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub start_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
    pub margin_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Estimator {
    lim: Limits,
    hist: Vec<f64>,
    pushes: u64,
    /// `(n, a_n)` of recent arrivals, slot `n % WINDOW_FRAMES`.
    ring: Vec<Option<(u64, i64)>>,
    newest: Option<u64>,
    /// Start (ms) and largest `d` of the open interval.
    interval: Option<(u64, u64)>,
    /// Fast-attack floor of the target, ms (fades per interval).
    peak: f64,
    /// Attack budget left, µs, and when it was last refilled.
    credit_us: u64,
    credit_at: Option<u64>,
    /// Target from the histogram (before the peak and the clamp), ms.
    hist_target: u64,
}

impl Estimator {
    pub fn new(lim: Limits) -> Self {
        let mut e = Self {
            lim,
            hist: vec![0.0; BUCKETS],
            pushes: 0,
            ring: vec![None; WINDOW_FRAMES as usize],
            newest: None,
            interval: None,
            peak: 0.0,
            credit_us: ATTACK_MS_PER_S * 1000,
            credit_at: None,
            hist_target: 0,
        };
        e.reset();
        e
    }

    /// Forgets everything (a discontinuity: hold, a sender restart): the
    /// histogram restarts with all its mass where the start target is.
    pub fn reset(&mut self) {
        self.hist.iter_mut().for_each(|b| *b = 0.0);
        let start = self.lim.start_ms.saturating_sub(self.lim.margin_ms) / BUCKET_MS;
        self.hist[(start.saturating_sub(1) as usize).min(BUCKETS - 1)] = 1.0;
        self.pushes = 0;
        self.ring.iter_mut().for_each(|s| *s = None);
        self.newest = None;
        self.interval = None;
        self.peak = 0.0;
        self.credit_us = ATTACK_MS_PER_S * 1000;
        self.credit_at = None;
        self.hist_target = self.quantile_ms();
    }

    /// The target delay, ms.
    pub fn target_ms(&self) -> u64 {
        self.hist_target.max(self.peak as u64).clamp(self.lim.min_ms, self.lim.max_ms)
    }

    /// Frame `n` arrived at `now_ms` (`n` < 2^53). Returns its relative delay, ms.
    pub fn arrival(&mut self, n: u64, now_ms: u64) -> u64 {
        let a = now_ms as i64 - (n as i64) * 20;
        let newest = self.newest.map_or(n, |m| m.max(n));
        self.newest = Some(newest);
        let slot = (n % WINDOW_FRAMES) as usize;
        if n + WINDOW_FRAMES > newest && self.ring[slot].is_none_or(|(m, _)| m < n) {
            self.ring[slot] = Some((n, a));
        }
        let mut min = a;
        for &(m, am) in self.ring.iter().flatten() {
            if m + WINDOW_FRAMES > newest && am < min {
                min = am;
            }
        }
        let d = (a - min) as u64;
        match self.interval {
            Some((start, max)) if now_ms < start + INTERVAL_MS => self.interval = Some((start, max.max(d))),
            Some((_, max)) => {
                self.push(max);
                self.interval = Some((now_ms, d));
            }
            None => self.interval = Some((now_ms, d)),
        }
        self.attack(d, now_ms);
        d
    }

    fn attack(&mut self, d: u64, now_ms: u64) {
        let elapsed = self.credit_at.map_or(0, |t| now_ms.saturating_sub(t));
        self.credit_at = Some(now_ms);
        self.credit_us = (self.credit_us + elapsed.min(1000) * ATTACK_MS_PER_S).min(ATTACK_MS_PER_S * 1000);
        let (want, cur) = (d + self.lim.margin_ms, self.target_ms());
        if want > cur {
            let raise = (want - cur).min(self.credit_us / 1000);
            self.credit_us -= raise * 1000;
            self.peak = self.peak.max((cur + raise) as f64);
        }
    }

    fn push(&mut self, max_d: u64) {
        let f = if self.pushes < START_INTERVALS { FORGET_START } else { FORGET };
        for b in self.hist.iter_mut() {
            *b *= f;
        }
        let bucket = ((max_d / BUCKET_MS) as usize).min(BUCKETS - 1);
        self.hist[bucket] += 1.0 - f;
        self.pushes += 1;
        self.peak *= f;
        self.hist_target = self.quantile_ms();
    }

    /// Upper edge of the bucket holding the quantile, plus the margin.
    fn quantile_ms(&self) -> u64 {
        let mut total = 0.0;
        for &b in &self.hist {
            total += b;
        }
        let mut sum = 0.0;
        for (i, &b) in self.hist.iter().enumerate() {
            sum += b;
            if sum >= QUANTILE * total {
                return (i as u64 + 1) * BUCKET_MS + self.lim.margin_ms;
            }
        }
        BUCKETS as u64 * BUCKET_MS + self.lim.margin_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIM: Limits = Limits { start_ms: 40, min_ms: 20, max_ms: 400, margin_ms: 10 };

    #[test]
    fn starts_at_the_start_target_and_falls_to_the_floor_on_a_steady_stream() {
        let mut e = Estimator::new(LIM);
        assert_eq!(e.target_ms(), 40);
        for n in 0..100u64 {
            assert_eq!(e.arrival(n, 1000 + 20 * n), 0);
        }
        // 2 s: 7 intervals pushed at the fast start; start mass 0.707^7 > 5 %.
        assert_eq!(e.target_ms(), 40);
        for n in 100..200u64 {
            e.arrival(n, 1000 + 20 * n);
        }
        assert_eq!(e.target_ms(), 20, "margin 10 + bucket 0 (5), clamped to 20");
    }

    #[test]
    fn relative_delay_is_against_the_earliest_arrival_of_the_last_two_seconds() {
        let mut e = Estimator::new(LIM);
        assert_eq!(e.arrival(0, 100), 0);
        assert_eq!(e.arrival(1, 150), 30, "30 ms later than frame 0's pace");
        assert_eq!(e.arrival(2, 140), 0);
        // Frame 0's early arrival leaves the window after 100 frames.
        assert_eq!(e.arrival(99, 100 + 99 * 20 + 7), 7);
        assert_eq!(e.arrival(101, 100 + 101 * 20 + 7), 7, "frame 2 (a = 100) is still in the window");
        assert_eq!(e.arrival(102, 100 + 102 * 20 + 7), 0, "frames 0..=2 have left it");
    }

    #[test]
    fn fast_attack_raises_at_once_within_its_budget_and_fades() {
        let mut e = Estimator::new(LIM);
        for n in 0..200u64 {
            e.arrival(n, 20 * n);
        }
        assert_eq!(e.target_ms(), 20);
        // Frame 200 is 100 ms late: the target jumps by the whole budget (60 ms).
        assert_eq!(e.arrival(200, 4000 + 100), 100);
        assert_eq!(e.target_ms(), 80);
        // The budget is spent: 20 ms later only 1.2 ms has come back.
        e.arrival(201, 4020 + 100);
        assert_eq!(e.target_ms(), 81);
        // Calm again: the raise fades (half-life 2 s), back to 20 within 10 s.
        for n in 202..700u64 {
            e.arrival(n, 20 * n + 100);
        }
        assert_eq!(e.target_ms(), 20);
    }

    #[test]
    fn a_jittery_link_sets_the_95th_percentile_and_a_calm_one_brings_it_back() {
        let mut e = Estimator::new(LIM);
        // Every 250 ms interval sees a frame 40 ms late.
        for n in 0..500u64 {
            let late = if n % 12 == 5 { 40 } else { 0 };
            e.arrival(n, 20 * n + late);
        }
        assert_eq!(e.target_ms(), 55, "bucket 40..45 → 45 + margin 10");
        let mut back = None;
        for n in 500..1100u64 {
            e.arrival(n, 20 * n);
            if back.is_none() && e.target_ms() < 30 {
                back = Some((n - 500) * 20);
            }
        }
        let back = back.expect("came back");
        assert!(back <= 10_000, "back under 30 ms after {back} ms");
    }

    #[test]
    fn reset_forgets_the_histogram_and_the_window() {
        let mut e = Estimator::new(LIM);
        for n in 0..500u64 {
            e.arrival(n, 20 * n + if n % 3 == 0 { 150 } else { 0 });
        }
        assert!(e.target_ms() > 150);
        e.reset();
        assert_eq!(e.target_ms(), 40);
        assert_eq!(e.arrival(7, 5), 0, "no old minimum survives");
    }
}
