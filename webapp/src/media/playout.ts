/**
 * The playout controller (docs/design/quality.md §3.3), the TypeScript twin
 * of pub-sub-audio/src/audio/playout/mod.rs (same decisions, same numbers;
 * docs/vectors/playout.json pins both): decides, frame by frame, what the
 * receiver plays — decode, stretch, rebuild from FEC, conceal — from when
 * frames arrived and how much audio is buffered.
 *
 * Sans-IO: arrivals carry their time (integer ms from any origin), pulls
 * count samples; the packets and the decoder stay with the shell
 * (receiver.ts in the playout worklet), which keeps each packet keyed by its
 * frame number n (n = group·50 + object, CALLS.md §6) while
 * {@link PlayoutController.holds} says so. The shell's loop per pull:
 *
 *   while (ctl.fifoSamples() < pull) { op = ctl.next(); if idle break; run op into the FIFO }
 *   play(fifo.take(pull)); ctl.pulled(pull)
 *
 * Every op except `idle` puts 960 samples in the FIFO (plus what
 * {@link PlayoutController.stretched} reports). For the frame due:
 * - nothing at or after it buffered → `conceal` (an underrun, counted once
 *   per run when the stream resumes — a stream that ends did not underrun —
 *   and only if the level had been built since the start or the last
 *   resume) for up to `holdConcealFrames`, then `idle`. The due frame is
 *   held, not given up: if it arrives it plays (the gap became delay, which
 *   accelerate removes); if a later frame arrives first the controller skips
 *   to it and decodes at once — audio returns one one-way delay after the
 *   link does;
 * - buffered far beyond the target (a queue delivered at once) → skip ahead
 *   to the target (`skipped`);
 * - the frame is here → `decode`, or `accelerate`/`expand` when the smoothed
 *   level is outside [low, high) (NetEQ's thresholds, §3.2);
 * - a redundant copy is here → `redundant`;
 * - the next frame is here → `fec` (libopus conceals inside when that packet
 *   has no LBRR);
 * - else → `conceal` (a loss).
 *
 * Level L = (newest buffered frame − due frame)·20 ms + FIFO: the due frame
 * itself is not slack, what lies beyond it is, and that must cover the
 * relative delay's 95th percentile (the target) — so the minimum target
 * (40 ms, see {@link PlayoutConfig.minTargetMs}) keeps the next packet, and
 * with it the FEC copy, at hand.
 *
 * Bounded against hostile frame numbers: at most `bufferFrames` held (and as
 * many redundant copies); numbers above 2^53 − 1 refused; a frame more than
 * `farFrames` ahead or `staleFrames` behind is a stray, dropped, unless
 * `strayRun` come in a row (a sender that restarted its numbering): then the
 * controller rebases on it. A LOC capture time that jumps by more than
 * 200 ms against the frame numbers (hold/unhold, a restart) resets the
 * estimator, as NetEQ does after long expansions.
 */

import { Estimator } from "./estimator.js";

export const FRAME_SAMPLES = 960;
export const FRAME_MS = 20;
/** Largest frame number accepted (2^53 − 1). */
export const MAX_N = Number.MAX_SAFE_INTEGER;
/** low = max(¾·target, target − this), ms: NetEQ's deceleration offset (playout/mod.rs LOW_OFFSET_MS says why). */
export const LOW_OFFSET_MS = 85;

/** Thresholds; the vectors pin the defaults. */
export interface PlayoutConfig {
  /** Target before anything is known, ms (NetEQ starts at 80). */
  startTargetMs: number;
  /**
   * Floor of the target, ms. 40, not the design's 20 (as in Rust): the
   * shell's 20 ms pull clock jitters too on a loaded host, which no arrival
   * time shows; with a 20 ms floor the loopback call test underran in 3 of
   * 4 calls, with 40 (the old buffer's two frames) none.
   */
  minTargetMs: number;
  maxTargetMs: number;
  /**
   * Added to the histogram's quantile, ms. 10 in the worklet too: Chromium
   * renders a worklet's quanta in bursts of ~10 ms (measured: 3–4 quanta per
   * wake-up), not one quantum at a time as §3.3 assumed with its 3 ms.
   */
  marginMs: number;
  /** LOC capture time against frame numbers: a jump above this resets, ms. */
  discontinuityMs: number;
  /**
   * EWMA weight of a new level sample, per op. 1/32, as NetEQ's BufferLevelFilter (251–254/256 per 10 ms):
   * with 1/16 the level followed 60 ms jitter's clumps and stretched speech ~10 times as often as NetEQ
   * (playout/mod.rs has the numbers).
   */
  levelAlpha: number;
  /** Buffered this far beyond the target, skip ahead instead of stretching, ms. */
  maxExcessMs: number;
  /** Concealed frames in an underrun before going silent. */
  holdConcealFrames: number;
  /** Frames held at most. */
  bufferFrames: number;
  /** A frame this far ahead of the due one is a stray. */
  farFrames: number;
  /** A frame this far behind the due one is a stray (not just late). */
  staleFrames: number;
  /** Strays in a row that make the controller rebase on the last one. */
  strayRun: number;
}

export const DEFAULT_CONFIG: Readonly<PlayoutConfig> = {
  startTargetMs: 40,
  minTargetMs: 40,
  maxTargetMs: 400,
  marginMs: 10,
  discontinuityMs: 200,
  levelAlpha: 1 / 32,
  maxExcessMs: 300,
  holdConcealFrames: 5,
  bufferFrames: 64,
  farFrames: 1500,
  staleFrames: 50,
  strayRun: 10,
};

/** What the shell does next (one 20 ms frame each, except `idle`). */
export type Op =
  | { op: "decode"; n: number }
  /** Frame `lost` rebuilt from the in-band FEC of packet `from` (= lost + 1). */
  | { op: "fec"; lost: number; from: number }
  /** Frame `n` from a REDUNDANT_FRAME copy (§4.2). */
  | { op: "redundant"; n: number }
  /** Packet loss concealment for frame `n`'s slot. */
  | { op: "conceal"; n: number }
  /** Decode `n` and remove a pitch period (two when `fast`). */
  | { op: "accelerate"; n: number; fast: boolean }
  /** Decode `n` and insert a pitch period. */
  | { op: "expand"; n: number }
  /** Nothing to play: silence, no samples enter the FIFO. */
  | { op: "idle" };

/** Counters for people and benches. */
export interface PlayoutStats {
  /** Frames decoded from their own packet (stretched or not). */
  played: number;
  fec: number;
  redundant: number;
  /** Frames concealed (losses and underruns). */
  concealed: number;
  concealedMs: number;
  /**
   * Runs of "nothing buffered" after the level had been reached, counted
   * when the stream resumes: a gap inside the stream (its end is none).
   */
  underruns: number;
  /** Frames that came after their turn. */
  late: number;
  /** Frames jumped over (after an outage, a queue, an overflow). */
  skipped: number;
  /** Frames refused: beyond 2^53, too far ahead, evicted, strays. */
  refused: number;
  /** Estimator resets (discontinuities, rebases). */
  resets: number;
  accelMs: number;
  expandMs: number;
  targetMs: number;
  /** Smoothed level at the last decision, ms. */
  levelMs: number;
}

/** A sorted set of frame numbers (small: at most `bufferFrames`). */
class Frames {
  private v: number[] = [];
  get size(): number {
    return this.v.length;
  }
  first(): number | undefined {
    return this.v[0];
  }
  last(): number | undefined {
    return this.v[this.v.length - 1];
  }
  has(n: number): boolean {
    return this.v.includes(n);
  }
  /** False if already there. */
  insert(n: number): boolean {
    let i = this.v.length;
    while (i > 0 && (this.v[i - 1] as number) > n) i--;
    if (i > 0 && this.v[i - 1] === n) return false;
    this.v.splice(i, 0, n);
    return true;
  }
  remove(n: number): boolean {
    const i = this.v.indexOf(n);
    if (i < 0) return false;
    this.v.splice(i, 1);
    return true;
  }
  popFirst(): number | undefined {
    return this.v.shift();
  }
  /** Drops everything below `n`. */
  dropBelow(n: number): void {
    this.v = this.v.filter((m) => m >= n);
  }
  /** The first at or above `n`. */
  atOrAbove(n: number): number | undefined {
    return this.v.find((m) => m >= n);
  }
  clear(): void {
    this.v = [];
  }
}

export class PlayoutController {
  private readonly cfg: PlayoutConfig;
  private readonly est: Estimator;
  private readonly held = new Frames();
  private readonly redundantCopies = new Frames();
  /** The frame due; undefined before the first object. */
  private due: number | undefined;
  /** Nothing was buffered at the last decision (an underrun or outage). */
  private holding = false;
  private holdFrames = 0;
  /**
   * The level reached `low` since the last time the buffer ran dry: only
   * then is running dry an underrun (a stream that never got going, or one
   * still refilling after an outage, is not counted again).
   */
  private primed = false;
  /** The current hold began primed: counted as an underrun if it resumes. */
  private holdPrimed = false;
  /** Samples the shell's FIFO holds. */
  private fifo = 0;
  /** Smoothed level, ms; undefined until the next decision re-seeds it. */
  private level: number | undefined;
  /** Frame number and LOC capture time (µs) of the last arrival that had one. */
  private lastCapture: [number, number] | undefined;
  private strays = 0;
  /**
   * Bit i: frame `due − 1 − i` was played from its own packet, so a copy of
   * it arriving now is a duplicate, not a late frame (u64, as in Rust).
   */
  private playedBits = 0n;
  private accelSamples = 0;
  private expandSamples = 0;
  private readonly counts = { played: 0, fec: 0, redundant: 0, concealed: 0, concealedMs: 0, underruns: 0, late: 0, skipped: 0, refused: 0, resets: 0 };

  constructor(config: Partial<PlayoutConfig> = {}) {
    this.cfg = { ...DEFAULT_CONFIG, ...config };
    this.est = new Estimator({ startMs: this.cfg.startTargetMs, minMs: this.cfg.minTargetMs, maxMs: this.cfg.maxTargetMs, marginMs: this.cfg.marginMs });
  }

  /**
   * Object `n` arrived at `nowMs` (integer ms), with its LOC capture time if
   * it had one. Whether the shell should keep its packet (false: late,
   * duplicate, refused); afterwards the shell drops every packet for which
   * {@link holds} is false.
   */
  onObject(n: number, captureUs: number | undefined, nowMs: number): boolean {
    if (!Number.isSafeInteger(n) || n < 0) {
      this.counts.refused++;
      return false;
    }
    const discontinuity = this.captureJump(n, captureUs);
    const next = this.due;
    if (next === undefined) {
      this.due = n;
      this.held.insert(n);
      this.est.arrival(n, nowMs);
      return true;
    }
    if (discontinuity) {
      this.counts.resets++;
      this.est.reset();
      if (n < next) return this.rebase(n, nowMs);
    }
    if (n >= next + this.cfg.farFrames || n + this.cfg.staleFrames < next) {
      // Too far from the stream to be a frame of it: a stray, unless a run says the stream moved.
      this.strays++;
      if (this.strays >= this.cfg.strayRun) {
        this.counts.resets++;
        return this.rebase(n, nowMs);
      }
      this.counts.refused++;
      return false;
    }
    this.strays = 0;
    if (n < next) {
      const back = next - 1 - n;
      // A duplicate of a frame already played: its arrival says nothing about the network's delay.
      if (back < 64 && (this.playedBits >> BigInt(back)) & 1n) return false;
      this.counts.late++;
      this.est.arrival(n, nowMs);
      return false;
    }
    if (!this.held.insert(n)) return false;
    this.est.arrival(n, nowMs);
    this.redundantCopies.remove(n);
    this.bound();
    return this.held.has(n);
  }

  /**
   * A REDUNDANT_FRAME copy of frame `n` arrived at `nowMs` (§4.2): whether to keep it.
   *
   * A copy of a frame whose own packet is not here is that frame's first arrival, and the estimator
   * is told, as of a late packet: a copy that rides k frames behind arrives about k·20 ms after its
   * frame, so on a bursty link the target grows until the copies come in time to be played (with the
   * 20 ms floor they came after their turn: bench/quality/playout-sim.mjs, bursty 5 %, k = 2 — 18
   * underruns per 30 s). A copy of a frame played from its own packet says nothing.
   */
  onRedundant(n: number, nowMs: number): boolean {
    const next = this.due;
    if (next === undefined || !Number.isSafeInteger(n) || n < 0) return false;
    if (n < next) {
      const back = next - 1 - n;
      if (back < this.cfg.staleFrames && !(back < 64 && (this.playedBits >> BigInt(back)) & 1n)) this.est.arrival(n, nowMs);
      return false;
    }
    if (n >= next + this.cfg.bufferFrames || this.held.has(n)) return false;
    if (!this.redundantCopies.has(n)) this.est.arrival(n, nowMs);
    this.redundantCopies.insert(n);
    while (this.redundantCopies.size > this.cfg.bufferFrames) this.redundantCopies.popFirst();
    return this.redundantCopies.has(n);
  }

  /** Is the packet of frame `n` still wanted? */
  holds(n: number): boolean {
    return this.held.has(n);
  }

  heldLen(): number {
    return this.held.size;
  }

  holdsRedundant(n: number): boolean {
    return this.redundantCopies.has(n);
  }

  /** Samples the controller believes the shell's FIFO holds. */
  fifoSamples(): number {
    return this.fifo;
  }

  /** The shell played `samples` from its FIFO. */
  pulled(samples: number): void {
    this.fifo = Math.max(0, this.fifo - samples);
  }

  /**
   * What the stretcher did with an `accelerate`/`expand` frame: samples added (> 0) or removed (< 0); 0 = declined.
   * The smoothed level moves by as much at once (as NetEQ compensates its filtered level): without it the
   * level lagged the FIFO it had just changed, and accelerate and expand undid each other under jitter.
   */
  stretched(_n: number, deltaSamples: number): void {
    this.fifo = Math.max(0, this.fifo + deltaSamples);
    if (this.level !== undefined) this.level = Math.max(0, this.level + deltaSamples / (FRAME_SAMPLES / FRAME_MS));
    if (deltaSamples < 0) this.accelSamples += -deltaSamples;
    else this.expandSamples += deltaSamples;
  }

  targetMs(): number {
    return this.est.targetMs();
  }

  /** True before the first object and while silent after an underrun. */
  isIdle(): boolean {
    return this.due === undefined || (this.holding && this.holdFrames >= this.cfg.holdConcealFrames);
  }

  stats(): PlayoutStats {
    const perMs = FRAME_SAMPLES / FRAME_MS;
    return {
      ...this.counts,
      accelMs: Math.floor(this.accelSamples / perMs),
      expandMs: Math.floor(this.expandSamples / perMs),
      targetMs: this.est.targetMs(),
      levelMs: this.level === undefined ? 0 : Math.trunc(this.level),
    };
  }

  /** The next frame's op. */
  next(): Op {
    let n = this.due;
    if (n === undefined) return { op: "idle" };
    const h = this.held.first();
    const r = this.redundantCopies.first();
    const first = h === undefined ? r : r === undefined ? h : Math.min(h, r);
    if (first === undefined) {
      // Nothing buffered: the due frame is late or the link is down.
      if (!this.holding) {
        this.holding = true;
        this.holdFrames = 0;
        this.holdPrimed = this.primed;
        this.primed = false;
      }
      if (this.holdFrames >= this.cfg.holdConcealFrames) return { op: "idle" };
      this.holdFrames++;
      return this.conceal(n);
    }
    if (this.holding) {
      // Resume on what came first after the gap: those before it are gone.
      // The gap was inside the stream: an underrun.
      this.holding = false;
      if (this.holdPrimed) this.counts.underruns++;
      this.level = undefined;
      if (first > n) {
        this.skipTo(first);
        n = first;
      }
    }
    const target = this.est.targetMs();
    let raw = this.rawLevel(n);
    if (raw > target + this.cfg.maxExcessMs) {
      // A queue delivered at once: keep the target's worth, skip the rest.
      const newest = this.held.last() ?? n;
      const keep = Math.ceil(target / FRAME_MS);
      const from = Math.max(Math.max(0, newest - keep), n);
      const to = this.held.atOrAbove(from) ?? newest;
      this.skipTo(to);
      n = to;
      this.level = undefined;
      raw = this.rawLevel(n);
    }
    const level = this.level === undefined ? raw : this.level + this.cfg.levelAlpha * (raw - this.level);
    this.level = level;
    this.due = n + 1;
    const own = this.held.remove(n);
    this.playedBits = BigInt.asUintN(64, (this.playedBits << 1n) | (own ? 1n : 0n));
    if (own) {
      this.fifo += FRAME_SAMPLES;
      this.redundantCopies.remove(n);
      this.counts.played++;
      const low = Math.max(0.75 * target, target - LOW_OFFSET_MS);
      const high = Math.max(target, low + 20);
      this.primed ||= level >= low;
      if (level >= 4 * high) return { op: "accelerate", n, fast: true };
      if (level >= high) return { op: "accelerate", n, fast: false };
      if (level < low) return { op: "expand", n };
      return { op: "decode", n };
    }
    if (this.redundantCopies.remove(n)) {
      this.fifo += FRAME_SAMPLES;
      this.counts.redundant++;
      return { op: "redundant", n };
    }
    if (this.held.has(n + 1)) {
      this.fifo += FRAME_SAMPLES;
      this.counts.fec++;
      return { op: "fec", lost: n, from: n + 1 };
    }
    return this.conceal(n);
  }

  /** PLC for `n`'s slot (the due frame and the played bits are the caller's: a hold does not advance them). */
  private conceal(n: number): Op {
    this.counts.concealed++;
    this.counts.concealedMs += FRAME_MS;
    this.fifo += FRAME_SAMPLES;
    return { op: "conceal", n };
  }

  /** Media buffered beyond frame `n`, plus the FIFO, ms. */
  private rawLevel(n: number): number {
    const newest = Math.max(this.held.last() ?? n, this.redundantCopies.last() ?? n);
    return (Math.max(newest, n) - n) * FRAME_MS + this.fifo / (FRAME_SAMPLES / FRAME_MS);
  }

  /** Jumps the due frame forward to `to`, forgetting what lies before. */
  private skipTo(to: number): void {
    const n = this.due;
    if (n === undefined || to <= n) return;
    this.counts.skipped += to - n;
    this.playedBits = shifted(this.playedBits, to - n);
    this.held.dropBelow(to);
    this.redundantCopies.dropBelow(to);
    this.due = to;
  }

  /** Keeps at most `bufferFrames` held: the oldest go (skipped if due). */
  private bound(): void {
    while (this.held.size > this.cfg.bufferFrames) {
      const old = this.held.popFirst();
      if (old === undefined) break;
      this.counts.refused++;
      const n = this.due;
      if (n !== undefined && old >= n) {
        this.counts.skipped += old + 1 - n;
        this.playedBits = shifted(this.playedBits, old + 1 - n);
        this.due = old + 1;
        this.redundantCopies.dropBelow(old + 1);
      }
    }
  }

  /** Starts the stream over at `n` (a sender that restarted numbering). */
  private rebase(n: number, nowMs: number): boolean {
    this.est.reset();
    this.held.clear();
    this.redundantCopies.clear();
    this.due = n;
    this.holding = false;
    this.primed = false;
    this.level = undefined;
    this.strays = 0;
    this.playedBits = 0n;
    this.held.insert(n);
    this.est.arrival(n, nowMs);
    return true;
  }

  /** Does the LOC capture time of `n` jump against the frame numbers? Updates the reference. */
  private captureJump(n: number, captureUs: number | undefined): boolean {
    if (captureUs === undefined || !Number.isSafeInteger(captureUs) || captureUs < 0) return false;
    const last = this.lastCapture;
    if (!last) {
      this.lastCapture = [n, captureUs];
      return false;
    }
    // An older frame (reordered, a duplicate) neither moves the reference nor jumps.
    if (n <= last[0] && n + this.cfg.staleFrames >= last[0]) return false;
    this.lastCapture = [n, captureUs];
    const dn = n - last[0];
    if (Math.abs(dn) > 1_000_000) return true;
    const jump = captureUs - last[1] - dn * FRAME_MS * 1000;
    return Math.abs(jump) > this.cfg.discontinuityMs * 1000;
  }
}

/** `bits << k` in 64 bits; 0 when k ≥ 64 (Rust's `checked_shl(k).unwrap_or(0)` for k ≤ 64). */
function shifted(bits: bigint, k: number): bigint {
  return k >= 64 ? 0n : BigInt.asUintN(64, bits << BigInt(k));
}
