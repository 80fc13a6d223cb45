/**
 * The playout jitter buffer of the web phone, sans-IO: decoded 20 ms frames
 * go in by frame number (docs/CALLS.md §6: n = group·50 + object), 128-sample
 * render quanta come out (AudioWorklet). Runs inside the playout worklet;
 * unit-tested under Node.
 *
 * - Start: playout begins once {@link PlayoutBuffer.target} frames are
 *   buffered.
 * - Target: measured, not guessed. Each frame's arrival time (the worklet's
 *   clock) minus n·20 ms is its offset; over the last {@link JITTER_FRAMES}
 *   frames, the spread between the earliest offset and the
 *   {@link JITTER_PERCENTILE}th percentile is the network and pipeline
 *   jitter, and the target is that many frames plus one (the render clock
 *   takes 10 ms at a time), between {@link MIN_TARGET} and {@link MAX_TARGET}.
 * - Loss: a missing frame with later ones waiting is concealed (the last
 *   frame, faded) and skipped; a frame arriving after its turn is dropped.
 * - Underrun: nothing buffered at all means the peer's audio is late; play
 *   silence, raise the target by one frame and wait for it again.
 * - Latency: the buffer keeps `target - 1` frames of margin. Each
 *   {@link WINDOW} frames it looks at the fewest frames it held while
 *   playing; more than the margin is latency nobody needed (a start-up
 *   burst, a stall that caught up, clock drift), and that many of the oldest
 *   frames are dropped. More than {@link HARD_LIMIT} frames are never kept.
 */

export const FRAME_SAMPLES = 960;
export const MIN_TARGET = 2;
export const MAX_TARGET = 10;
/** Frames between two looks at the buffer's low-water mark (1 s). */
export const WINDOW = 50;
/** Frames whose arrival times make the jitter estimate (5 s). */
export const JITTER_FRAMES = 250;
/** Late outliers above this percentile are left to concealment. */
export const JITTER_PERCENTILE = 98;
/** Without arrival times (or before enough of them), 5 s of clean playout lowers the target by one frame. */
export const CALM_FRAMES = 250;
const FRAME_MS = 20;
/** Frames kept at most, whatever happens. */
export const HARD_LIMIT = MAX_TARGET + 5;

export interface PlayoutStats {
  received: number;
  played: number;
  concealed: number;
  late: number;
  dropped: number;
  underruns: number;
  target: number;
  depth: number;
}

export class PlayoutBuffer {
  private readonly frames = new Map<number, Float32Array>();
  /** The frame being played, and the position in it. */
  private current: Float32Array | undefined;
  private pos = 0;
  /** The next frame number to play; `undefined` until playout starts. */
  private next: number | undefined;
  /** Frames below this were played or skipped: arriving now, they are late. */
  private floor = 0;
  private last: Float32Array | undefined;
  private fade = 1;
  private calm = 0;
  /** Fewest frames buffered at a frame boundary in this window, and the window's length so far. */
  private low = Infinity;
  private seen = 0;
  /** Recent arrival offsets (arrival ms - n·20), oldest first. */
  private readonly offsets: number[] = [];
  target = MIN_TARGET;
  readonly stats: PlayoutStats = { received: 0, played: 0, concealed: 0, late: 0, dropped: 0, underruns: 0, target: MIN_TARGET, depth: 0 };

  /** A decoded frame `n`; `nowMs` is when it arrived, on the playout clock. */
  push(n: number, pcm: Float32Array, nowMs?: number): void {
    this.stats.received++;
    if (nowMs !== undefined) {
      this.offsets.push(nowMs - n * FRAME_MS);
      if (this.offsets.length > JITTER_FRAMES) this.offsets.shift();
    }
    if (n < this.floor || this.frames.has(n)) {
      this.stats.late++;
      return;
    }
    this.frames.set(n, pcm);
    while (this.frames.size > HARD_LIMIT) this.dropOldest();
  }

  /** Forgets everything (a new call). */
  reset(): void {
    this.frames.clear();
    this.current = undefined;
    this.next = undefined;
    this.floor = 0;
    this.last = undefined;
    this.target = MIN_TARGET;
    this.calm = 0;
    this.low = Infinity;
    this.seen = 0;
    this.offsets.length = 0;
  }

  get depth(): number {
    return this.frames.size;
  }

  private dropOldest(): void {
    const oldest = Math.min(...this.frames.keys());
    this.frames.delete(oldest);
    this.stats.dropped++;
    this.floor = Math.max(this.floor, oldest + 1);
    if (this.next !== undefined && oldest >= this.next) this.next = oldest + 1;
  }

  /** Frames of jitter the recent arrivals need, or `undefined` without enough of them. */
  jitterFrames(): number | undefined {
    if (this.offsets.length < WINDOW) return undefined;
    const sorted = [...this.offsets].sort((a, b) => a - b);
    const spread = (sorted[Math.floor(((sorted.length - 1) * JITTER_PERCENTILE) / 100)] as number) - (sorted[0] as number);
    return Math.ceil(spread / FRAME_MS) + 1;
  }

  /** At a frame boundary: track the low-water mark, drop what was never needed. */
  private watchLatency(): void {
    this.low = Math.min(this.low, this.frames.size);
    if (++this.seen < WINDOW) return;
    const measured = this.jitterFrames();
    if (measured !== undefined) this.target = Math.max(MIN_TARGET, Math.min(MAX_TARGET, measured));
    const excess = this.low - (this.target - 1);
    for (let i = 0; i < excess && this.frames.size > 0; i++) this.dropOldest();
    this.low = Infinity;
    this.seen = 0;
  }

  /** Fills `out` (one render quantum) with the next samples. */
  render(out: Float32Array): void {
    let i = 0;
    while (i < out.length) {
      if (!this.current && !this.advance()) {
        out.fill(0, i);
        return;
      }
      const cur = this.current as Float32Array;
      const n = Math.min(out.length - i, cur.length - this.pos);
      out.set(cur.subarray(this.pos, this.pos + n), i);
      i += n;
      this.pos += n;
      if (this.pos >= cur.length) {
        this.current = undefined;
        this.pos = 0;
      }
    }
  }

  /** Picks the next frame to play; false means "play silence for now". */
  private advance(): boolean {
    if (this.next === undefined) {
      if (this.frames.size < this.target) return false;
      this.next = Math.min(...this.frames.keys());
    }
    const n = this.next;
    const f = this.frames.get(n);
    if (f) {
      this.frames.delete(n);
      this.play(f);
      this.fade = 1;
      if (++this.calm >= CALM_FRAMES && this.target > MIN_TARGET && this.offsets.length < WINDOW) {
        this.target--;
        this.calm = 0;
      }
      this.watchLatency();
      return true;
    }
    if (this.frames.size > 0) {
      // Lost (a later frame is here): conceal with the last frame, fading out.
      this.fade *= 0.5;
      const c = new Float32Array(FRAME_SAMPLES);
      if (this.last) for (let k = 0; k < c.length; k++) c[k] = (this.last[k] as number) * this.fade;
      this.stats.concealed++;
      this.current = c;
      this.pos = 0;
      this.next = n + 1;
      this.floor = n + 1;
      return true;
    }
    // Nothing buffered: underrun. Wait until the (higher) target is met again.
    this.stats.underruns++;
    this.calm = 0;
    this.target = Math.min(MAX_TARGET, this.target + 1);
    this.next = undefined;
    this.low = Infinity;
    this.seen = 0;
    return false;
  }

  private play(f: Float32Array): void {
    this.stats.played++;
    this.current = f;
    this.last = f;
    this.pos = 0;
    this.next = (this.next as number) + 1;
    this.floor = this.next;
    this.stats.target = this.target;
    this.stats.depth = this.frames.size;
  }
}
