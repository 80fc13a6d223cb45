/**
 * The playout controller of the web phone (docs/design/quality.md §3.3), a
 * NetEQ-like decision maker, sans-IO: arrivals carry their time, pulls carry
 * how much audio the shell still holds, and nothing here reads a clock. The
 * codec and the PCM stay outside: the shell (the playout worklet) keeps each
 * packet keyed by its frame number `n` (CALLS.md §6: n = group·50 + object),
 * asks {@link PlayoutController.next} what to do whenever its output FIFO
 * runs low, and does it (decode, decode FEC, conceal, stretch).
 *
 * - Media clock: n × 20 ms, exact whatever the sender's tick jitter. The LOC
 *   capture timestamp only detects discontinuities (hold, a sender restart):
 *   a jump of more than 200 ms against n resets the estimator.
 * - Target delay T from a histogram of relative delays: d = (arrival − 20·n)
 *   − the smallest such value over the last 2 s of media; each 250 ms of
 *   arrivals puts its largest d into 5 ms buckets that forget old mass
 *   (half-life {@link PlayoutConfig.halfLifeMs}, faster in the first 2 s);
 *   T = the 95th percentile's bucket end + a margin, in [20, 400] ms. A d
 *   above T raises T at once (fast attack, at most 60 ms per second).
 * - Depth is changed only by time-stretch: level L (media buffered ahead +
 *   the FIFO, smoothed) against low = max(¾T, T − 10) and high = max(T, low
 *   + 20): L ≥ 4·high → accelerate two periods, ≥ high → one, < low →
 *   expand; never on a FEC, redundant or concealed frame.
 * - Loss: n missing → its redundant copy, else FEC from n+1, else PLC. For
 *   10 s after a missing frame T is at least 40 ms + margin, so that n+1 is
 *   usually here when n is due and FEC, not PLC, covers a single loss.
 * - No prefill: the first object plays at once and expands build the level.
 *   Run dry, it conceals without moving on (the delay grows by what it
 *   concealed); the first object at or after the due frame is then skipped
 *   to and played at once (those in between are gone).
 */

export const FRAME_MS = 20;
export const SAMPLES_PER_MS = 48;

export interface PlayoutConfig {
  /** Media time over which the fastest arrival is the delay reference. */
  windowMs: number;
  /** Arrival time per histogram entry (its largest relative delay). */
  intervalMs: number;
  bucketMs: number;
  buckets: number;
  /** Old histogram mass halves in this much arrival time… */
  halfLifeMs: number;
  /** …and in this much during the first {@link warmupMs} after a reset. */
  warmupHalfLifeMs: number;
  warmupMs: number;
  quantile: number;
  /** Added to the percentile: the render quantum (2.7 ms) and the port hop. */
  marginMs: number;
  minTargetMs: number;
  maxTargetMs: number;
  startTargetMs: number;
  /** Fast attack: T rises by at most this much per second of arrivals. */
  attackMsPerS: number;
  /** |Δcapture − Δn·20 ms| above this is a discontinuity. */
  discontinuityMs: number;
  /** EWMA weight of a new level sample (per op). */
  levelAlpha: number;
  /** Frames of PLC after the buffer ran dry; then silence until audio comes back. */
  maxConcealFrames: number;
  /** Buffered media above T by more than this is dropped at once (a flood after a stall). */
  flushMs: number;
  /**
   * While frames go missing (seen missing when due, with later ones here, or
   * skipped after running dry), T is at least this + the margin: the due frame
   * and the next one, whose packet carries the due one's FEC copy. Without
   * it a calm lossy link sits at T = 20 ms and every loss is an underrun
   * that only PLC can cover.
   */
  lossFloorMs: number;
  /** How long (media time) after the last missing frame the loss floor holds. */
  lossHoldMs: number;
}

export const DEFAULT_CONFIG: Readonly<PlayoutConfig> = {
  windowMs: 2000,
  intervalMs: 250,
  bucketMs: 5,
  buckets: 200,
  halfLifeMs: 1500,
  warmupHalfLifeMs: 500,
  warmupMs: 2000,
  quantile: 0.95,
  marginMs: 3,
  minTargetMs: 20,
  maxTargetMs: 400,
  startTargetMs: 40,
  attackMsPerS: 60,
  discontinuityMs: 200,
  levelAlpha: 0.25,
  maxConcealFrames: 5,
  flushMs: 600,
  lossFloorMs: 40,
  lossHoldMs: 10000,
};

/** What the shell does next for one 20 ms frame (or nothing). */
export type Op =
  | { op: "decode"; n: number }
  /** n is lost; its LBRR copy is in n+1 (libopus conceals when there is none). */
  | { op: "fec"; n: number; from: number }
  | { op: "redundant"; n: number }
  | { op: "conceal"; n: number }
  /** Decode n, then remove `periods` pitch periods (2: the level is far above target). */
  | { op: "accelerate"; n: number; periods: 1 | 2 }
  /** Decode n, then insert one pitch period. */
  | { op: "expand"; n: number }
  /** Nothing to play: silence. */
  | { op: "idle" };

export interface PlayoutStats {
  /** Objects handed to the controller (late and duplicates included). */
  received: number;
  /** Frames decoded from their own packet (stretched ones included). */
  played: number;
  fec: number;
  redundant: number;
  /** Frames concealed by PLC (loss and underrun). */
  concealed: number;
  concealedMs: number;
  /** Times the buffer ran dry (once per run of empty pulls). */
  underruns: number;
  /** Objects that came after their turn. */
  late: number;
  /** Frames jumped over to resume (after an underrun) or flushed. */
  skipped: number;
  accelMs: number;
  expandMs: number;
  targetMs: number;
  levelMs: number;
}

export class PlayoutController {
  private readonly cfg: PlayoutConfig;
  /** Frame numbers buffered (the packets live in the shell). */
  private readonly buffered = new Set<number>();
  private readonly redundantCopies = new Set<number>();
  private newest: number | undefined;
  /** The next frame to play; undefined before the first object. */
  private due: number | undefined;
  /** After an underrun: resume at the first object at or after {@link due}. */
  private resync = false;
  private dryRun = 0;
  private level: number | undefined;
  // Estimator.
  private readonly recent: Array<{ n: number; a: number }> = [];
  private hist: Float64Array;
  private histStartMs: number | undefined;
  private intervalStart: number | undefined;
  private intervalMax = 0;
  private histTargetMs: number;
  /** Fast attack's hold: T is at least this until the histogram forgets. */
  private peakMs = 0;
  private attackStart = 0;
  private attacked = 0;
  private lastCapture: { n: number; us: number } | undefined;
  /** The loss floor holds while the due frame is below this. */
  private lossyUntil = -Infinity;
  readonly stats: PlayoutStats;

  constructor(config: Partial<PlayoutConfig> = {}) {
    this.cfg = { ...DEFAULT_CONFIG, ...config };
    this.hist = new Float64Array(this.cfg.buckets);
    this.histTargetMs = this.cfg.startTargetMs;
    this.stats = { received: 0, played: 0, fec: 0, redundant: 0, concealed: 0, concealedMs: 0, underruns: 0, late: 0, skipped: 0, accelMs: 0, expandMs: 0, targetMs: this.cfg.startTargetMs, levelMs: 0 };
  }

  /** The next frame the controller will ask for (packets below it are of no more use). */
  get position(): number | undefined {
    return this.due;
  }

  get targetMs(): number {
    return this.stats.targetMs;
  }

  /** Frames buffered ahead of playout. */
  get depth(): number {
    return this.buffered.size;
  }

  /**
   * Object `n` arrived at `nowMs` (any monotonic ms clock, the same for every
   * arrival), with its LOC capture time if it had one. False: late or a
   * duplicate, the shell drops the packet.
   */
  onObject(n: number, captureUs: number | undefined, nowMs: number): boolean {
    this.stats.received++;
    if (captureUs !== undefined) {
      const last = this.lastCapture;
      const jump = last !== undefined && Math.abs((captureUs - last.us) / 1000 - (n - last.n) * FRAME_MS) > this.cfg.discontinuityMs;
      if (jump) this.discontinuity(n);
      if (!last || jump || n > last.n) this.lastCapture = { n, us: captureUs };
    }
    this.estimate(n, nowMs);
    if (this.due !== undefined && n < this.due) {
      this.stats.late++;
      return false;
    }
    if (this.buffered.has(n)) return false;
    this.buffered.add(n);
    if (this.newest === undefined || n > this.newest) this.newest = n;
    return true;
  }

  /** A redundant copy of frame `n` arrived (quality.md §4.2, REDUNDANT_FRAME). False: of no use. */
  onRedundant(n: number, _nowMs: number): boolean {
    if ((this.due !== undefined && n < this.due) || this.buffered.has(n)) return false;
    this.redundantCopies.add(n);
    return true;
  }

  /** What to do next; `fifoSamples` is what the shell still holds unplayed. */
  next(fifoSamples: number): Op {
    if (this.due === undefined) {
      if (this.buffered.size === 0) return { op: "idle" };
      this.due = Math.min(...this.buffered);
      this.level = undefined;
    }
    if (this.resync) {
      let resume: number | undefined;
      for (const m of this.buffered) if (m >= this.due && (resume === undefined || m < resume)) resume = m;
      if (resume !== undefined) {
        this.stats.skipped += resume - this.due;
        if (resume > this.due) this.lossyUntil = resume + this.cfg.lossHoldMs / FRAME_MS;
        this.due = resume;
        this.resync = false;
        this.dryRun = 0;
        this.level = undefined;
      }
    }
    this.flush(fifoSamples);
    const n = this.due;
    this.setTarget();
    const ahead = this.newest !== undefined && this.newest >= n ? (this.newest + 1 - n) * FRAME_MS : 0;
    const sample = ahead + fifoSamples / SAMPLES_PER_MS;
    this.level = this.level === undefined ? sample : this.level + this.cfg.levelAlpha * (sample - this.level);
    this.stats.levelMs = this.level;
    if (this.buffered.delete(n)) {
      this.advance(n);
      this.dryRun = 0;
      this.stats.played++;
      const t = this.stats.targetMs;
      const low = Math.max(0.75 * t, t - 10);
      const high = Math.max(t, low + 20);
      if (this.level >= 4 * high) return { op: "accelerate", n, periods: 2 };
      if (this.level >= high) return { op: "accelerate", n, periods: 1 };
      if (this.level < low) return { op: "expand", n };
      return { op: "decode", n };
    }
    // From here on n is missing (unless the buffer is merely dry, below).
    if (this.redundantCopies.has(n) || this.buffered.size > 0) this.lossyUntil = n + this.cfg.lossHoldMs / FRAME_MS;
    if (this.redundantCopies.has(n)) {
      this.advance(n);
      this.stats.redundant++;
      return { op: "redundant", n };
    }
    if (this.buffered.has(n + 1)) {
      this.advance(n);
      this.stats.fec++;
      return { op: "fec", n, from: n + 1 };
    }
    if (this.buffered.size > 0) {
      this.advance(n);
      this.conceal();
      return { op: "conceal", n };
    }
    // Dry: conceal a little, then silence until audio comes back. The due frame stays due:
    // if it was only late, it plays when it comes (the delay grew by what was concealed,
    // as NetEQ's expand does); if it was lost, the next one to arrive is resumed at.
    if (this.dryRun === 0) this.stats.underruns++;
    this.resync = true;
    if (this.dryRun >= this.cfg.maxConcealFrames) return { op: "idle" };
    this.dryRun++;
    this.conceal();
    return { op: "conceal", n };
  }

  /** What the stretcher really did with frame `n`: samples added (> 0) or removed (< 0); 0 = declined. */
  stretched(_n: number, deltaSamples: number): void {
    if (deltaSamples > 0) this.stats.expandMs += deltaSamples / SAMPLES_PER_MS;
    else this.stats.accelMs -= deltaSamples / SAMPLES_PER_MS;
  }

  /** Forgets the stream (a new call): the estimator starts again too. */
  reset(): void {
    this.buffered.clear();
    this.redundantCopies.clear();
    this.newest = undefined;
    this.due = undefined;
    this.resync = false;
    this.dryRun = 0;
    this.level = undefined;
    this.lastCapture = undefined;
    this.lossyUntil = -Infinity;
    this.resetEstimator();
    this.stats.targetMs = this.cfg.startTargetMs;
  }

  private advance(n: number): void {
    this.due = n + 1;
    for (const r of this.redundantCopies) if (r <= n) this.redundantCopies.delete(r);
  }

  private conceal(): void {
    this.stats.concealed++;
    this.stats.concealedMs += FRAME_MS;
  }

  /** More buffered than the target can ever need (a flood after a stall): jump ahead to T. */
  private flush(fifoSamples: number): void {
    if (this.due === undefined || this.newest === undefined) return;
    const ahead = (this.newest + 1 - this.due) * FRAME_MS + fifoSamples / SAMPLES_PER_MS;
    if (ahead - this.stats.targetMs <= this.cfg.flushMs) return;
    const to = this.newest + 1 - Math.max(1, Math.ceil(this.stats.targetMs / FRAME_MS));
    for (const m of this.buffered) if (m < to) this.buffered.delete(m);
    this.stats.skipped += to - this.due;
    this.due = to;
    this.level = undefined;
  }

  /** Hold/unhold or a restarted sender: old delays say nothing about the new stream. */
  private discontinuity(n: number): void {
    this.resetEstimator();
    if (this.due !== undefined && n < this.due) {
      // The stream went back in frame numbers: play it from here.
      this.buffered.clear();
      this.redundantCopies.clear();
      this.newest = undefined;
      this.due = n;
      this.resync = false;
      this.dryRun = 0;
      this.level = undefined;
    }
  }

  private resetEstimator(): void {
    this.recent.length = 0;
    this.hist = new Float64Array(this.cfg.buckets);
    this.histStartMs = undefined;
    this.intervalStart = undefined;
    this.intervalMax = 0;
    this.histTargetMs = this.cfg.startTargetMs;
    this.peakMs = 0;
    this.attacked = 0;
    this.setTarget();
  }

  private estimate(n: number, nowMs: number): void {
    const a = nowMs - n * FRAME_MS;
    this.recent.push({ n, a });
    let top = n;
    for (const r of this.recent) top = Math.max(top, r.n);
    const keep = this.cfg.windowMs / FRAME_MS;
    while (this.recent.length > 0 && (this.recent[0] as { n: number }).n <= top - keep) this.recent.shift();
    let min = a;
    for (const r of this.recent) min = Math.min(min, r.a);
    const d = a - min;
    if (this.histStartMs === undefined) this.histStartMs = nowMs;
    if (this.intervalStart === undefined) {
      this.intervalStart = nowMs;
      this.intervalMax = d;
    } else if (nowMs - this.intervalStart >= this.cfg.intervalMs) {
      this.closeInterval(nowMs);
      this.intervalStart = nowMs;
      this.intervalMax = d;
    } else this.intervalMax = Math.max(this.intervalMax, d);
    // Fast attack: a delay beyond the target raises it now, not after the histogram agrees.
    const want = d + this.cfg.marginMs;
    if (want > this.stats.targetMs) {
      if (nowMs - this.attackStart >= 1000) {
        this.attackStart = nowMs;
        this.attacked = 0;
      }
      const raise = Math.min(want - this.stats.targetMs, this.cfg.attackMsPerS - this.attacked);
      if (raise > 0) {
        this.attacked += raise;
        this.peakMs = this.stats.targetMs + raise;
        this.setTarget();
      }
    }
  }

  private closeInterval(nowMs: number): void {
    const c = this.cfg;
    const warm = nowMs - (this.histStartMs ?? nowMs) < c.warmupMs;
    const f = Math.pow(0.5, c.intervalMs / (warm ? c.warmupHalfLifeMs : c.halfLifeMs));
    const k = Math.min(c.buckets - 1, Math.floor(this.intervalMax / c.bucketMs));
    let total = 0;
    for (let i = 0; i < this.hist.length; i++) total += this.hist[i] = (this.hist[i] as number) * f;
    this.hist[k] = (this.hist[k] as number) + (1 - f);
    total += 1 - f;
    let acc = 0;
    let q = c.buckets - 1;
    for (let i = 0; i < this.hist.length; i++) {
      acc += this.hist[i] as number;
      if (acc >= c.quantile * total) {
        q = i;
        break;
      }
    }
    this.histTargetMs = (q + 1) * c.bucketMs + c.marginMs;
    // The fast attack's hold fades with the same forgetting.
    this.peakMs = this.histTargetMs + Math.max(0, this.peakMs - this.histTargetMs) * f;
    this.setTarget();
  }

  private setTarget(): void {
    const c = this.cfg;
    const floor = this.due !== undefined && this.due < this.lossyUntil ? c.lossFloorMs + c.marginMs : c.minTargetMs;
    this.stats.targetMs = Math.max(floor, Math.min(c.maxTargetMs, Math.max(this.histTargetMs, this.peakMs)));
  }
}
