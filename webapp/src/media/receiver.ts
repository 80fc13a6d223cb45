/**
 * The receiving shell around the {@link PlayoutController} (quality.md §3.3
 * "Shells"): Opus packets in, keyed by frame number, with their arrival
 * time; 128-sample render quanta out. Whenever its FIFO cannot fill a
 * quantum it asks the controller what to do and does it with libopus
 * (decode, FEC from the next packet, a REDUNDANT_FRAME copy, PLC) and the
 * {@link Stretcher}. Every frame number heard also feeds the
 * {@link LossMeter} whose report the call's keepalives carry (§4.1). No
 * clock here either: the playout worklet calls {@link Receiver.render} once
 * per quantum, and unit tests do the same with explicit arrival times.
 */

import { LossMeter, type RxReport } from "./feedback.js";
import { FRAME_SAMPLES, type OpusFrameDecoder } from "./opus.js";
import { FRAME_MS, PlayoutController, type Op, type PlayoutConfig, type PlayoutStats } from "./playout.js";
import { Stretcher } from "./stretch.js";

/** What the playout reports (test hook, latency bench): the controller's counters plus the shell's. */
export interface PlayoutReport extends PlayoutStats {
  /** Packets handed to the receiver (late, duplicate and refused ones included). */
  received: number;
  /** Frames buffered ahead, and the target in whole frames (the old jitter buffer's units). */
  depth: number;
  target: number;
  /** Packets libopus refused (each played as PLC instead). */
  decodeErrors: number;
}

/** Decoded samples waiting for the render quanta (a ring that grows when a stretch overfills it). */
export class Fifo {
  private buf = new Float32Array(4 * FRAME_SAMPLES);
  private head = 0;
  length = 0;

  push(x: Float32Array): void {
    if (this.length + x.length > this.buf.length) {
      const bigger = new Float32Array(2 * (this.length + x.length));
      const had = this.length;
      this.read(bigger.subarray(0, had));
      this.buf = bigger;
      this.head = 0;
      this.length = had;
    }
    const size = this.buf.length;
    for (let i = 0; i < x.length; i++) this.buf[(this.head + this.length + i) % size] = x[i] as number;
    this.length += x.length;
  }

  /** Moves up to `out.length` samples into `out`; returns how many. */
  read(out: Float32Array): number {
    const n = Math.min(out.length, this.length);
    const size = this.buf.length;
    for (let i = 0; i < n; i++) out[i] = this.buf[(this.head + i) % size] as number;
    this.head = (this.head + n) % size;
    this.length -= n;
    return n;
  }

  clear(): void {
    this.head = 0;
    this.length = 0;
  }
}

export class Receiver {
  controller: PlayoutController;
  private readonly stretcher = new Stretcher();
  private readonly packets = new Map<number, Uint8Array>();
  /** REDUNDANT_FRAME copies by frame number, while the controller holds them. */
  private readonly copies = new Map<number, Uint8Array>();
  private meter = new LossMeter();
  private readonly fifo = new Fifo();
  private decodeErrors = 0;
  private received = 0;

  /** `decoder`: libopus, once loaded (until then the receiver plays silence). */
  constructor(
    public decoder: OpusFrameDecoder | undefined,
    private readonly config: Partial<PlayoutConfig> = {},
  ) {
    this.controller = new PlayoutController(config);
  }

  /**
   * Packet `n` arrived at `arrivalMs` (one monotonic ms clock for all
   * arrivals). Ignored while there is no decoder: nothing would ever play or
   * drop it (the page waits for the decoder before a call, so this only
   * happens when libopus failed to load).
   */
  push(n: number, captureUs: number | undefined, arrivalMs: number, opus: Uint8Array): void {
    if (!this.decoder) return;
    this.received++;
    // The controller counts whole ms, as the Rust one does.
    this.meter.onArrival(n, Math.floor(arrivalMs));
    if (this.controller.onObject(n, captureUs, Math.floor(arrivalMs))) this.packets.set(n, opus);
    this.prune();
  }

  /** A REDUNDANT_FRAME copy of frame `n` (carried by a later frame, pushed just before), arrived at `arrivalMs`. */
  pushRedundant(n: number, arrivalMs: number, opus: Uint8Array): void {
    if (!this.decoder || !Number.isSafeInteger(n) || n < 0) return;
    if (this.controller.onRedundant(n, Math.floor(arrivalMs))) this.copies.set(n, opus);
    this.prune();
  }

  /** The report on what arrived (quality.md §4.1) at `nowMs`, on the arrivals' clock; `undefined` before the first frame. */
  rxReport(nowMs: number): RxReport | undefined {
    return this.meter.report(this.controller.stats(), Math.floor(nowMs));
  }

  /** Fills `out` (one render quantum) with the next samples, silence where there are none. */
  render(out: Float32Array): void {
    while (this.decoder && this.controller.fifoSamples() < out.length) {
      const op = this.controller.next();
      if (op.op === "idle") break;
      this.fifo.push(this.run(this.decoder, op));
      this.prune();
    }
    const got = this.fifo.read(out);
    out.fill(0, got);
    this.controller.pulled(out.length);
  }

  /** Forgets the call (its packets, FIFO and the controller's state); the decoder stays. */
  reset(): void {
    this.controller = new PlayoutController(this.config);
    this.packets.clear();
    this.copies.clear();
    this.meter = new LossMeter();
    this.fifo.clear();
    this.received = 0;
    this.decodeErrors = 0;
  }

  report(): PlayoutReport {
    const s = this.controller.stats();
    return { ...s, received: this.received, depth: this.controller.heldLen(), target: Math.ceil(s.targetMs / FRAME_MS), decodeErrors: this.decodeErrors };
  }

  /** Drops the packets the controller no longer holds (late, skipped, played). */
  private prune(): void {
    for (const k of this.copies.keys()) if (!this.controller.holdsRedundant(k)) this.copies.delete(k);
    if (this.packets.size <= this.controller.heldLen()) return;
    for (const k of this.packets.keys()) if (!this.controller.holds(k)) this.packets.delete(k);
  }

  private run(dec: OpusFrameDecoder, op: Exclude<Op, { op: "idle" }>): Float32Array {
    try {
      switch (op.op) {
        case "conceal":
          return dec.conceal();
        case "fec":
          return dec.decodeFec(this.packet(op.from));
        case "redundant": {
          const copy = this.copies.get(op.n);
          this.copies.delete(op.n);
          return copy ? dec.decode(copy) : dec.conceal();
        }
        case "decode": {
          const pcm = dec.decode(this.packet(op.n));
          this.stretcher.observe(pcm);
          return pcm;
        }
        case "accelerate":
        case "expand": {
          const pcm = dec.decode(this.packet(op.n));
          const { pcm: out, outcome } = this.stretcher.stretch(pcm, op.op === "expand" ? "expand" : op.fast ? "fast-accelerate" : "accelerate");
          this.controller.stretched(op.n, outcome.delta);
          return out;
        }
      }
    } catch {
      this.decodeErrors++;
      try {
        return dec.conceal();
      } catch {
        return new Float32Array(FRAME_SAMPLES);
      }
    }
  }

  private packet(n: number): Uint8Array {
    const p = this.packets.get(n);
    if (!p) throw new Error(`no packet ${n}`);
    return p;
  }
}
