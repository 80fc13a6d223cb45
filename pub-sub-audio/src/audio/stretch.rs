//! Pitch-period time-stretch of decoded PCM (docs/design/quality.md §3.3
//! "Stretcher"): the playout controller changes the buffer's depth by
//! removing one pitch period from a frame (accelerate) or inserting one
//! (preemptive expand), so latency follows the network without the audible
//! holes or repeats of dropping or duplicating whole frames. The idea is
//! NetEQ's (`time_stretch.cc`); the code is ours.
//!
//! Sans-IO and deterministic: f32 samples in and out, every sum in f64 in a
//! fixed loop order, only `+ - * /` and `sqrt` (correctly rounded in every
//! IEEE-754 language), so the TypeScript port (`webapp/src/media/stretch.ts`)
//! produces the same lag and the same samples; `docs/vectors/stretch.json`
//! pins both.
//!
//! Algorithm, for a frame `x` of `m` samples (960 at 48 kHz):
//! 1. **Coarse lag** at 4 kHz: `x` decimated ×12 by a 12-sample average;
//!    normalised autocorrelation `c(k)` over the overlapping part of the
//!    frame for lags `k` = 10..=60 (2.5–15 ms, one pitch period of a voice);
//!    the first maximum wins (the shorter of equal periods).
//! 2. **Refine** at 48 kHz: lags `12k−6 ..= 12k+6`; for each, the splice
//!    segments below are correlated and the best lag is kept.
//! 3. **Accept** if that correlation is ≥ 0.85 (accelerate) / ≥ 0.6 (expand),
//!    or if the frame is background: RMS ≤ 2 × (≈ +6 dB) the 10th percentile
//!    of the last 5 s of frame RMS, or below an absolute silence floor.
//! 4. **Splice** by a triangular cross-fade of length `L` = one period.
//!
//! Deviation from §3.3 (why): the design fed "the decoded 960 samples plus
//! the FIFO's last 15 ms"; but samples already handed to the sound card
//! cannot be changed, so every splice must lie inside the new frame anyway.
//! Analysis uses the new frame alone (no context to keep in two shells); for
//! lags above 10 ms the coarse window shrinks (≥ 5 ms at 15 ms) and the
//! cross-fade is `m − Q` samples instead of a full period. The acceptance
//! test is on the exact samples that get cross-faded, so a poor coarse
//! estimate costs a declined stretch, never an audible one.

/// Decimation factor 48 kHz → 4 kHz.
pub const DECIMATE: usize = 12;
/// Coarse lags at 4 kHz: 2.5 ms ..= 15 ms.
pub const MIN_LAG_4K: usize = 10;
pub const MAX_LAG_4K: usize = 60;
/// The refinement searches ± this many samples at 48 kHz.
pub const REFINE: usize = 6;
/// Fewest overlapping 4 kHz samples a coarse lag is judged on (5 ms).
const MIN_WINDOW_4K: usize = 20;
/// Shortest cross-fade, in 48 kHz samples (1.25 ms): below it a splice clicks.
pub const MIN_FADE: usize = 60;
/// Correlation needed to remove a period.
pub const ACCELERATE_CORR: f64 = 0.85;
/// Correlation needed to insert one (a repeated period is less audible
/// than a removed one, as NetEQ's thresholds also say).
pub const EXPAND_CORR: f64 = 0.6;
/// Frames of RMS history for the background level (5 s of 20 ms frames).
pub const NOISE_FRAMES: usize = 250;
/// Frames needed before the background rule applies (0.5 s).
pub const NOISE_MIN_FRAMES: usize = 25;
/// A frame at most this many times the background RMS is background
/// (2 ≈ +6 dB, the design's margin, kept exact for the port).
pub const NOISE_FACTOR: f64 = 2.0;
/// Below this RMS (≈ −70 dBFS) a frame is silence: always stretchable.
pub const SILENCE_RMS: f64 = 3.0e-4;

/// What the playout controller asked for (quality.md §3.3 decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Remove one period.
    Accelerate,
    /// Remove two periods (the level is ≥ 4 × the high threshold); falls back
    /// to one when two do not fit or do not match.
    FastAccelerate,
    /// Insert one period.
    Expand,
}

/// What [`Stretcher::stretch`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Samples added (> 0), removed (< 0), or 0 when declined.
    pub delta: i32,
    /// The pitch period found at 48 kHz (0 if the frame was too short to analyse).
    pub lag: usize,
    /// Normalised correlation of the two cross-faded segments.
    pub corr: f64,
    /// The frame counted as background (noise rule), so correlation did not matter.
    pub background: bool,
}

/// Keeps the background-noise history; one per playout stream.
#[derive(Debug, Clone)]
pub struct Stretcher {
    rms: Vec<f64>,
    /// Next slot of the ring `rms`.
    pos: usize,
}

impl Default for Stretcher {
    fn default() -> Self {
        Self::new()
    }
}

/// Root mean square in f64, summed in index order.
pub fn rms(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let mut e = 0.0f64;
    for &v in x {
        e += v as f64 * v as f64;
    }
    (e / x.len() as f64).sqrt()
}

/// Normalised cross-correlation of `a` and `b` (same length); 0 when either
/// has no energy.
fn ncorr(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for i in 0..a.len().min(b.len()) {
        let (x, y) = (a[i] as f64, b[i] as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    let d = aa * bb;
    if d <= 0.0 {
        0.0
    } else {
        ab / d.sqrt()
    }
}

/// The 4 kHz signal: each output is the mean of 12 input samples.
fn decimate(x: &[f32]) -> Vec<f64> {
    x.chunks_exact(DECIMATE)
        .map(|c| {
            let mut s = 0.0f64;
            for &v in c {
                s += v as f64;
            }
            s / DECIMATE as f64
        })
        .collect()
}

/// Best coarse lag at 4 kHz (first maximum of the normalised
/// autocorrelation), or None when the frame is too short to analyse.
fn coarse_lag(x4: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for k in MIN_LAG_4K..=MAX_LAG_4K {
        if x4.len() < k + MIN_WINDOW_4K {
            break;
        }
        let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..x4.len() - k {
            ab += x4[i] * x4[i + k];
            aa += x4[i] * x4[i];
            bb += x4[i + k] * x4[i + k];
        }
        let d = aa * bb;
        let c = if d <= 0.0 { 0.0 } else { ab / d.sqrt() };
        if best.is_none_or(|(_, b)| c > b) {
            best = Some((k, c));
        }
    }
    best.map(|(k, _)| k)
}

/// Where a splice of lag `q` sits in a frame of `m` samples: the cross-fade
/// compares `x[s..s+l]` with `x[s+q..s+q+l]`, `l` = one period when it fits.
/// The splice is at the frame's end, next to the samples still to come.
fn placement(m: usize, q: usize) -> Option<(usize, usize)> {
    if q >= m {
        return None;
    }
    let l = q.min(m - q);
    if l < MIN_FADE {
        return None;
    }
    Some((m - q - l, l))
}

impl Stretcher {
    pub fn new() -> Self {
        Self { rms: Vec::with_capacity(NOISE_FRAMES), pos: 0 }
    }

    /// A frame that was played without a stretch: feeds the background level.
    pub fn observe(&mut self, frame: &[f32]) {
        let r = rms(frame);
        if self.rms.len() < NOISE_FRAMES {
            self.rms.push(r);
        } else {
            self.rms[self.pos] = r;
        }
        self.pos = (self.pos + 1) % NOISE_FRAMES;
    }

    /// The background level: the 10th percentile of the history's frame RMS
    /// (index `len / 10` of the sorted values), None until 0.5 s is known.
    pub fn background(&self) -> Option<f64> {
        if self.rms.len() < NOISE_MIN_FRAMES {
            return None;
        }
        let mut v = self.rms.clone();
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 10])
    }

    /// Stretches `frame` as asked, or declines. Returns the new samples (the
    /// input unchanged when declined) and what was done. The frame also
    /// feeds the background history.
    pub fn stretch(&mut self, frame: &[f32], kind: Kind) -> (Vec<f32>, Outcome) {
        self.observe(frame);
        let level = rms(frame);
        let background = level < SILENCE_RMS || self.background().is_some_and(|b| level <= NOISE_FACTOR * b);
        let declined = |lag, corr| (frame.to_vec(), Outcome { delta: 0, lag, corr, background });
        let m = frame.len();
        let Some(k) = coarse_lag(&decimate(frame)) else { return declined(0, 0.0) };
        let centre = k * DECIMATE;
        // Refine one period; for a fast accelerate the splice spans two.
        let refine = |periods: usize| -> Option<(usize, f64)> {
            let mut best: Option<(usize, f64)> = None;
            for p in centre - REFINE..=centre + REFINE {
                let Some((s, l)) = placement(m, periods * p) else { continue };
                let c = ncorr(&frame[s..s + l], &frame[s + periods * p..s + periods * p + l]);
                if best.is_none_or(|(_, b)| c > b) {
                    best = Some((p, c));
                }
            }
            best
        };
        let threshold = if kind == Kind::Expand { EXPAND_CORR } else { ACCELERATE_CORR };
        let ok = |c: f64| background || c >= threshold;
        let double = match kind {
            Kind::FastAccelerate => refine(2).filter(|&(_, c)| ok(c)),
            _ => None,
        };
        let (lag, q, corr) = match (double, refine(1)) {
            (Some((p, c)), _) => (p, 2 * p, c),
            (None, Some((p, c))) => (p, p, c),
            (None, None) => return declined(centre, 0.0),
        };
        if !ok(corr) {
            return declined(lag, corr);
        }
        let Some((s, l)) = placement(m, q) else { return declined(lag, corr) };
        let out = match kind {
            Kind::Accelerate | Kind::FastAccelerate => {
                let mut out = Vec::with_capacity(m - q);
                out.extend_from_slice(&frame[..s]);
                out.extend(fade(&frame[s..s + l], &frame[s + q..s + q + l]));
                out.extend_from_slice(&frame[s + q + l..]);
                out
            }
            Kind::Expand => {
                let mut out = Vec::with_capacity(m + q);
                out.extend_from_slice(&frame[..s + q]);
                out.extend(fade(&frame[s + q..s + q + l], &frame[s..s + l]));
                out.extend_from_slice(&frame[s + l..]);
                out
            }
        };
        let delta = out.len() as i32 - m as i32;
        (out, Outcome { delta, lag, corr, background })
    }
}

/// Triangular cross-fade from `from` to `to`: weight of `to` is
/// (i+1)/(l+1), so neither end repeats a sample.
fn fade<'a>(from: &'a [f32], to: &'a [f32]) -> impl Iterator<Item = f32> + 'a {
    let l = from.len();
    (0..l).map(move |i| {
        let w = (i + 1) as f64 / (l + 1) as f64;
        ((1.0 - w) * from[i] as f64 + w * to[i] as f64) as f32
    })
}

#[cfg(test)]
mod tests;
