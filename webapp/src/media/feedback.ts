/**
 * What a listener tells the sender about the audio it receives
 * (docs/design/quality.md §4.1): the {@link RxReport} that rides as the `rx`
 * member of the `keepalive` event (docs/CALLS.md §5), and the sans-IO
 * {@link LossMeter} that computes it. Mirrors pub-sub-audio's
 * `audio/feedback.rs`; both run docs/vectors/adapt.json ("meter").
 *
 * Loss is counted before repair, from gaps in the frame numbers n of the
 * audio track (CALLS.md §6): a frame FEC or a redundant copy rebuilt still
 * counts, because the sender must know how much to protect. The window is
 * the sender's last 2 s of frames (100 frame numbers up to the newest
 * heard). Arrivals carry only numbers; a report is asked for at an explicit
 * time (ms, one clock for all calls), which only bounds the late window.
 */

import type { PlayoutStats } from "./playout.js";

/** Frames in the loss window (2 s of 20 ms frames). */
export const WINDOW_FRAMES = 100;
/** The late-frame window, ms. */
export const WINDOW_MS = 2000;
/** A frame this far behind the newest (a restarted sender) or ahead of it starts the count over. */
export const REBASE_FRAMES = 1500;
/** Frames in a row from below the window that start the count over too (as the controller's stray run). */
export const STRAY_RUN = 10;

/** The listener's report (quality.md §4.1); members in wire order, all integers. */
export interface RxReport {
  /** The newest frame number heard. */
  n: number;
  /** Frames missing among the last 2 s of frame numbers, ‰, before repair. */
  loss: number;
  /** Mean run of missing frames in that window, ×10 (0: none). */
  burst: number;
  /** Frames that came after their turn, ‰ of the window. */
  late: number;
  /** Frames rebuilt from in-band FEC since the call began. */
  fec: number;
  /** Frames played from a REDUNDANT_FRAME copy since the call began. */
  red: number;
  /** Concealed audio since the call began, ms. */
  conceal_ms: number;
  /** The playout's current target delay, ms. */
  target_ms: number;
}

export const RX_MEMBERS = ["n", "loss", "burst", "late", "fec", "red", "conceal_ms", "target_ms"] as const;

export class LossMeter {
  private seen = new Set<number>();
  private first: number | undefined;
  private newest = 0;
  private strays = 0;
  /** (time, cumulative late frames) at each report, and the first arrival. */
  private late: Array<[number, number]> = [];

  /** An audio object of frame `n` arrived at `nowMs` (every primary frame heard). */
  onArrival(n: number, nowMs: number): void {
    if (this.first === undefined || n > this.newest + REBASE_FRAMES || n + REBASE_FRAMES < this.newest) {
      this.restart(n, nowMs);
      return;
    }
    if (n < this.low()) {
      if (++this.strays >= STRAY_RUN) this.restart(n, nowMs);
      return;
    }
    this.strays = 0;
    this.seen.add(n);
    if (n > this.newest) {
      this.newest = n;
      const lo = this.low();
      for (const x of this.seen) if (x < lo) this.seen.delete(x);
    }
  }

  private restart(n: number, nowMs: number): void {
    this.seen = new Set([n]);
    this.first = n;
    this.newest = n;
    this.strays = 0;
    if (this.late.length === 0) this.late.push([nowMs, 0]);
  }

  private low(): number {
    return Math.max(this.first ?? 0, this.newest - (WINDOW_FRAMES - 1));
  }

  /** The report at `nowMs` with the playout's counters; `undefined` before the first frame. */
  report(stats: Pick<PlayoutStats, "late" | "fec" | "redundant" | "concealedMs" | "targetMs">, nowMs: number): RxReport | undefined {
    if (this.first === undefined) return undefined;
    const lo = this.low();
    const len = this.newest - lo + 1;
    let lost = 0;
    let runs = 0;
    let inRun = false;
    for (let n = lo; n <= this.newest; n++) {
      const missing = !this.seen.has(n);
      if (missing) lost++;
      if (missing && !inRun) runs++;
      inRun = missing;
    }
    this.late.push([nowMs, stats.late]);
    while (this.late.length > 1 && (this.late[1] as [number, number])[0] + WINDOW_MS <= nowMs) this.late.shift();
    const late = Math.max(0, stats.late - (this.late[0] as [number, number])[1]);
    return {
      n: this.newest,
      loss: Math.floor((lost * 1000) / len),
      burst: runs === 0 ? 0 : Math.floor((lost * 10) / runs),
      late: Math.min(1000, Math.floor((late * 1000) / len)),
      fec: stats.fec,
      red: stats.redundant,
      conceal_ms: stats.concealedMs,
      target_ms: stats.targetMs,
    };
  }
}
