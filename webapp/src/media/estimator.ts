/**
 * The target delay: how much audio the playout should hold so that nearly
 * every frame arrives before its turn (docs/design/quality.md §3.3
 * "Estimator", after NetEQ's relative delay and underrun histogram, §3.2).
 * The TypeScript twin of pub-sub-audio/src/audio/playout/estimator.rs: same
 * integer-ms times, the same f64 operations in the same order, so both pass
 * docs/vectors/playout.json.
 *
 * - Relative delay d_n = a_n − min(a), a_n = arrival − 20·n ms, the minimum
 *   over the last 2 s of media time (100 frames): the frame number is the
 *   media clock (CALLS.md §6), so the sender's tick jitter is not network
 *   jitter.
 * - Per 250 ms of arrival time the interval's largest d enters a histogram
 *   of 5 ms buckets (0–1 s) with exponential forgetting (half-life 2 s,
 *   0.5 s for the first 8 intervals); the target is the upper edge of the
 *   bucket holding the 95th percentile plus a margin, clamped. (The design's
 *   5 s half-life could not bring a calm link back under 30 ms within 10 s.)
 *   The price: one interval's weight (1 − 0.917 = 8 %) exceeds 5 %, so a
 *   single bad interval moves the 95th percentile for ~1.5 s (the fast
 *   attack raises it anyway); a released queue (frames ~1 s late) thus lifts
 *   the target towards the clamp for that long.
 * - Fast attack: a d above the target raises it at once, by at most 60 ms
 *   per second of arrivals; the raise fades with the histogram's forgetting.
 */

export const BUCKET_MS = 5;
export const BUCKETS = 200;
export const INTERVAL_MS = 250;
/** Media window of the minimum a, in frames (2 s). */
export const WINDOW_FRAMES = 100;
/** Forgetting per interval: half-life 2 s, 0.5^(250/2000) (the exact double). */
export const FORGET = 0.9170040432046712;
/** Forgetting during the first {@link START_INTERVALS}: half-life 0.5 s, 0.5^(1/2). */
export const FORGET_START = 0.7071067811865476;
export const START_INTERVALS = 8;
export const QUANTILE = 0.95;
/** Fast attack budget: at most this many ms of raise per second. */
export const ATTACK_MS_PER_S = 60;

/** Targets and margin, ms. */
export interface Limits {
  startMs: number;
  minMs: number;
  maxMs: number;
  marginMs: number;
}

export class Estimator {
  private readonly hist = new Float64Array(BUCKETS);
  private pushes = 0;
  /** (n, a_n) of recent arrivals, slot n % WINDOW_FRAMES. */
  private readonly ring: Array<[number, number] | undefined> = new Array(WINDOW_FRAMES).fill(undefined);
  private newest: number | undefined;
  /** Start (ms) and largest d of the open interval. */
  private interval: [number, number] | undefined;
  /** Fast-attack floor of the target, ms (fades per interval). */
  private peak = 0;
  /** Attack budget left, µs, and when it was last refilled. */
  private creditUs = ATTACK_MS_PER_S * 1000;
  private creditAt: number | undefined;
  /** Target from the histogram (before the peak and the clamp), ms. */
  private histTarget = 0;

  constructor(private readonly lim: Limits) {
    this.reset();
  }

  /** Forgets everything (hold, a sender restart): all the histogram's mass where the start target is. */
  reset(): void {
    this.hist.fill(0);
    const start = Math.floor(Math.max(0, this.lim.startMs - this.lim.marginMs) / BUCKET_MS);
    this.hist[Math.min(Math.max(0, start - 1), BUCKETS - 1)] = 1;
    this.pushes = 0;
    this.ring.fill(undefined);
    this.newest = undefined;
    this.interval = undefined;
    this.peak = 0;
    this.creditUs = ATTACK_MS_PER_S * 1000;
    this.creditAt = undefined;
    this.histTarget = this.quantileMs();
  }

  /** The target delay, ms. */
  targetMs(): number {
    return Math.min(this.lim.maxMs, Math.max(this.lim.minMs, Math.max(this.histTarget, Math.trunc(this.peak))));
  }

  /** Frame `n` arrived at `nowMs` (integer ms, any origin). Returns its relative delay, ms. */
  arrival(n: number, nowMs: number): number {
    const a = nowMs - n * 20;
    const newest = this.newest === undefined ? n : Math.max(this.newest, n);
    this.newest = newest;
    const slot = n % WINDOW_FRAMES;
    const old = this.ring[slot];
    if (n + WINDOW_FRAMES > newest && (old === undefined || old[0] < n)) this.ring[slot] = [n, a];
    let min = a;
    for (const r of this.ring) if (r !== undefined && r[0] + WINDOW_FRAMES > newest && r[1] < min) min = r[1];
    const d = a - min;
    const iv = this.interval;
    if (iv !== undefined && nowMs < iv[0] + INTERVAL_MS) this.interval = [iv[0], Math.max(iv[1], d)];
    else {
      if (iv !== undefined) this.push(iv[1]);
      this.interval = [nowMs, d];
    }
    this.attack(d, nowMs);
    return d;
  }

  private attack(d: number, nowMs: number): void {
    const elapsed = this.creditAt === undefined ? 0 : Math.max(0, nowMs - this.creditAt);
    this.creditAt = nowMs;
    this.creditUs = Math.min(this.creditUs + Math.min(elapsed, 1000) * ATTACK_MS_PER_S, ATTACK_MS_PER_S * 1000);
    const want = d + this.lim.marginMs;
    const cur = this.targetMs();
    if (want > cur) {
      const raise = Math.min(want - cur, Math.floor(this.creditUs / 1000));
      this.creditUs -= raise * 1000;
      this.peak = Math.max(this.peak, cur + raise);
    }
  }

  private push(maxD: number): void {
    const f = this.pushes < START_INTERVALS ? FORGET_START : FORGET;
    for (let i = 0; i < BUCKETS; i++) this.hist[i] = (this.hist[i] as number) * f;
    const bucket = Math.min(Math.floor(maxD / BUCKET_MS), BUCKETS - 1);
    this.hist[bucket] = (this.hist[bucket] as number) + (1 - f);
    this.pushes++;
    this.peak *= f;
    this.histTarget = this.quantileMs();
  }

  /** Upper edge of the bucket holding the quantile, plus the margin. */
  private quantileMs(): number {
    let total = 0;
    for (let i = 0; i < BUCKETS; i++) total += this.hist[i] as number;
    let sum = 0;
    for (let i = 0; i < BUCKETS; i++) {
      sum += this.hist[i] as number;
      if (sum >= QUANTILE * total) return (i + 1) * BUCKET_MS + this.lim.marginMs;
    }
    return BUCKETS * BUCKET_MS + this.lim.marginMs;
  }
}
