/**
 * Pitch-period time-stretch of decoded PCM (docs/design/quality.md §3.3
 * "Stretcher"), the TypeScript twin of pub-sub-audio/src/audio/stretch.rs:
 * the playout controller changes the buffer's depth by removing one pitch
 * period from a frame (accelerate) or inserting one (preemptive expand), so
 * latency follows the network without the audible holes or repeats of
 * dropping or duplicating whole frames (the idea is NetEQ's time stretch).
 *
 * Same algorithm, constants and loop order as the Rust code — every sum in
 * f64 (JS numbers), samples stored as f32 — so both produce the same lag and
 * samples; docs/vectors/stretch.json pins that. For a frame `x` of `m`
 * samples:
 * 1. coarse lag at 4 kHz (`x` decimated ×12 by a 12-sample mean): the first
 *    maximum of the normalised autocorrelation over lags 10..=60 (2.5–15 ms);
 * 2. refined at 48 kHz over ±6 samples on the very segments the splice would
 *    cross-fade;
 * 3. accepted if their correlation is ≥ 0.85 (accelerate) / ≥ 0.6 (expand),
 *    or if the frame is background (RMS ≤ 2× the 10th percentile of 5 s of
 *    frame RMS, or below ≈ −70 dBFS);
 * 4. spliced at the frame's end by a triangular cross-fade of one period.
 * Analysis uses the new frame only: samples already played cannot change.
 */

/** Decimation factor 48 kHz → 4 kHz. */
export const DECIMATE = 12;
/** Coarse lags at 4 kHz: 2.5 ms ..= 15 ms. */
export const MIN_LAG_4K = 10;
export const MAX_LAG_4K = 60;
/** The refinement searches ± this many samples at 48 kHz. */
export const REFINE = 6;
/** Fewest overlapping 4 kHz samples a coarse lag is judged on (5 ms). */
const MIN_WINDOW_4K = 20;
/** Shortest cross-fade, in 48 kHz samples (1.25 ms): below it a splice clicks. */
export const MIN_FADE = 60;
/** Correlation needed to remove a period. */
export const ACCELERATE_CORR = 0.85;
/** Correlation needed to insert one (a repeated period is less audible than a removed one). */
export const EXPAND_CORR = 0.6;
/** Frames of RMS history for the background level (5 s of 20 ms frames). */
export const NOISE_FRAMES = 250;
/** Frames needed before the background rule applies (0.5 s). */
export const NOISE_MIN_FRAMES = 25;
/** A frame at most this many times the background RMS is background (≈ +6 dB). */
export const NOISE_FACTOR = 2.0;
/** Below this RMS (≈ −70 dBFS) a frame is silence: always stretchable. */
export const SILENCE_RMS = 3.0e-4;

/** What the playout controller asked for. */
export type StretchKind = "accelerate" | "fast-accelerate" | "expand";

/** What {@link Stretcher.stretch} did. */
export interface StretchOutcome {
  /** Samples added (> 0), removed (< 0), or 0 when declined. */
  delta: number;
  /** The pitch period found at 48 kHz (0 if the frame was too short to analyse). */
  lag: number;
  /** Normalised correlation of the two cross-faded segments. */
  corr: number;
  /** The frame counted as background, so correlation did not matter. */
  background: boolean;
}

/** Root mean square, summed in index order. */
export function rms(x: ArrayLike<number>): number {
  if (x.length === 0) return 0;
  let e = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    e += v * v;
  }
  return Math.sqrt(e / x.length);
}

/** Normalised cross-correlation of `x[a..a+l]` and `x[b..b+l]`; 0 when either has no energy. */
function ncorr(x: Float32Array, a: number, b: number, l: number): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < l; i++) {
    const u = x[a + i] as number;
    const v = x[b + i] as number;
    ab += u * v;
    aa += u * u;
    bb += v * v;
  }
  const d = aa * bb;
  return d <= 0 ? 0 : ab / Math.sqrt(d);
}

/** The 4 kHz signal: each output is the mean of 12 input samples (a trailing partial block is dropped). */
function decimate(x: Float32Array): Float64Array {
  const out = new Float64Array(Math.floor(x.length / DECIMATE));
  for (let j = 0; j < out.length; j++) {
    let s = 0;
    for (let i = 0; i < DECIMATE; i++) s += x[j * DECIMATE + i] as number;
    out[j] = s / DECIMATE;
  }
  return out;
}

/** Best coarse lag at 4 kHz (first maximum), or undefined when the frame is too short to analyse. */
function coarseLag(x4: Float64Array): number | undefined {
  let bestK: number | undefined;
  let bestC = 0;
  for (let k = MIN_LAG_4K; k <= MAX_LAG_4K; k++) {
    if (x4.length < k + MIN_WINDOW_4K) break;
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let i = 0; i < x4.length - k; i++) {
      const u = x4[i] as number;
      const v = x4[i + k] as number;
      ab += u * v;
      aa += u * u;
      bb += v * v;
    }
    const d = aa * bb;
    const c = d <= 0 ? 0 : ab / Math.sqrt(d);
    if (bestK === undefined || c > bestC) {
      bestK = k;
      bestC = c;
    }
  }
  return bestK;
}

/**
 * Where a splice of lag `q` sits in a frame of `m` samples: the cross-fade
 * compares `x[s..s+l]` with `x[s+q..s+q+l]`, `l` one period when it fits,
 * at the frame's end (next to the samples still to come).
 */
function placement(m: number, q: number): [number, number] | undefined {
  if (q >= m) return undefined;
  const l = Math.min(q, m - q);
  if (l < MIN_FADE) return undefined;
  return [m - q - l, l];
}

/** Triangular cross-fade from `x[from..]` to `x[to..]` over `l` samples into `out` at `at`. */
function fade(x: Float32Array, from: number, to: number, l: number, out: Float32Array, at: number): void {
  for (let i = 0; i < l; i++) {
    const w = (i + 1) / (l + 1);
    out[at + i] = (1 - w) * (x[from + i] as number) + w * (x[to + i] as number);
  }
}

/** Keeps the background-noise history; one per playout stream. */
export class Stretcher {
  private readonly history: number[] = [];
  /** Next slot of the ring `history`. */
  private pos = 0;

  /** A frame that was played without a stretch: feeds the background level. */
  observe(frame: Float32Array): void {
    const r = rms(frame);
    if (this.history.length < NOISE_FRAMES) this.history.push(r);
    else this.history[this.pos] = r;
    this.pos = (this.pos + 1) % NOISE_FRAMES;
  }

  /** The 10th percentile of the history's frame RMS; undefined until 0.5 s is known. */
  background(): number | undefined {
    if (this.history.length < NOISE_MIN_FRAMES) return undefined;
    const v = Float64Array.from(this.history).sort();
    return v[Math.floor(v.length / 10)];
  }

  /**
   * Stretches `frame` as asked, or declines: the new samples (the input
   * itself when declined) and what was done. The frame also feeds the
   * background history.
   */
  stretch(frame: Float32Array, kind: StretchKind): { pcm: Float32Array; outcome: StretchOutcome } {
    this.observe(frame);
    const level = rms(frame);
    const bg = this.background();
    const background = level < SILENCE_RMS || (bg !== undefined && level <= NOISE_FACTOR * bg);
    const declined = (lag: number, corr: number) => ({ pcm: frame, outcome: { delta: 0, lag, corr, background } });
    const m = frame.length;
    const k = coarseLag(decimate(frame));
    if (k === undefined) return declined(0, 0);
    const centre = k * DECIMATE;
    // One period; for a fast accelerate the splice spans two.
    const refine = (periods: number): [number, number] | undefined => {
      let best: [number, number] | undefined;
      for (let p = centre - REFINE; p <= centre + REFINE; p++) {
        const at = placement(m, periods * p);
        if (!at) continue;
        const c = ncorr(frame, at[0], at[0] + periods * p, at[1]);
        if (best === undefined || c > best[1]) best = [p, c];
      }
      return best;
    };
    const threshold = kind === "expand" ? EXPAND_CORR : ACCELERATE_CORR;
    const ok = (c: number) => background || c >= threshold;
    let double: [number, number] | undefined;
    if (kind === "fast-accelerate") {
      const d = refine(2);
      if (d && ok(d[1])) double = d;
    }
    let lag: number;
    let q: number;
    let corr: number;
    const single = refine(1);
    if (double) [lag, q, corr] = [double[0], 2 * double[0], double[1]];
    else if (single) [lag, q, corr] = [single[0], single[0], single[1]];
    else return declined(centre, 0);
    if (!ok(corr)) return declined(lag, corr);
    const at = placement(m, q);
    if (!at) return declined(lag, corr);
    const [s, l] = at;
    let out: Float32Array;
    if (kind === "expand") {
      out = new Float32Array(m + q);
      out.set(frame.subarray(0, s + q), 0);
      fade(frame, s + q, s, l, out, s + q);
      out.set(frame.subarray(s + l), s + q + l);
    } else {
      out = new Float32Array(m - q);
      out.set(frame.subarray(0, s), 0);
      fade(frame, s, s + q, l, out, s);
      out.set(frame.subarray(s + q + l), s + l);
    }
    return { pcm: out, outcome: { delta: out.length - m, lag, corr, background } };
  }
}
