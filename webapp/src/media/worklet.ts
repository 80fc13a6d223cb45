/**
 * The AudioWorklet module of the web phone (bundled to dist/audio-worklet.js):
 *
 * - `moq-capture`: takes the microphone (after the AudioContext resampled it
 *   to 48 kHz) and posts 20 ms mono frames of 960 samples to a data port
 *   (docs/CALLS.md §6: Opus, 48 kHz, mono, 20 ms);
 * - `moq-playout`: the receiver (quality.md §3.3; {@link Receiver}): Opus
 *   packets come on its port straight from the page with their arrival
 *   time; per 20 ms frame the playout controller picks decode, FEC from the
 *   next packet, PLC or a time-stretch, libopus (WebAssembly, loaded here)
 *   does it at playout time, and a FIFO feeds the render quanta. It can
 *   record what it plays (test hook and latency bench). In the RTP mode
 *   (WebRTC) it records its input, the remote track that an <audio> element
 *   plays, and outputs silence.
 *
 * The capture node's `port` takes `{ data: MessagePort }` once: the port to
 * the media worker that encodes, so the microphone never passes the main
 * thread.
 */

import { FRAME_SAMPLES, OpusFrameDecoder } from "./opus.js";
import { Receiver } from "./receiver.js";

declare const sampleRate: number;
declare const currentFrame: number;
declare function registerProcessor(name: string, ctor: new (options?: unknown) => AudioWorkletProcessorBase): void;
declare class AudioWorkletProcessorBase {
  readonly port: MessagePort;
  process(inputs: Float32Array[][], outputs: Float32Array[][], parameters: Record<string, Float32Array>): boolean;
}
const Processor = (globalThis as unknown as { AudioWorkletProcessor: typeof AudioWorkletProcessorBase }).AudioWorkletProcessor;

/** Longest recording the playout tap keeps (s). */
const MAX_RECORD_S = 60;

/** Records what a node sees, from a given context frame on (test hook, latency bench). */
class Tap {
  private rec: Float32Array | undefined;
  private len = 0;
  private start = 0;

  control(m: { record?: boolean; dump?: boolean; count?: boolean }, port: MessagePort): void {
    // How much is recorded, without copying it (a copy here costs the audio thread).
    if (m.count) port.postMessage({ count: this.len });
    if (m.record !== undefined) {
      this.rec = m.record ? new Float32Array(MAX_RECORD_S * sampleRate) : undefined;
      this.len = 0;
    }
    if (m.dump) {
      const pcm = (this.rec ?? new Float32Array(0)).slice(0, this.len);
      port.postMessage({ dump: { pcm, startFrame: this.start, rate: sampleRate } }, [pcm.buffer]);
    }
  }

  add(x: Float32Array): void {
    if (!this.rec) return;
    if (this.len === 0) this.start = currentFrame;
    const n = Math.min(x.length, this.rec.length - this.len);
    this.rec.set(x.subarray(0, n), this.len);
    this.len += n;
  }
}

class CaptureProcessor extends Processor {
  private data: MessagePort | undefined;
  private frame = new Float32Array(FRAME_SAMPLES);
  private fill = 0;
  private startFrame = 0;
  private readonly tap = new Tap();

  constructor() {
    super();
    this.port.onmessage = (e: MessageEvent<{ data?: MessagePort; record?: boolean; dump?: boolean; count?: boolean }>) => {
      if (e.data.data) this.data = e.data.data;
      this.tap.control(e.data, this.port);
    };
  }

  override process(inputs: Float32Array[][]): boolean {
    const ch = inputs[0]?.[0];
    const n = ch?.length ?? 128;
    if (ch) this.tap.add(ch);
    if (this.fill === 0) this.startFrame = currentFrame;
    if (ch) this.frame.set(ch.subarray(0, Math.min(n, FRAME_SAMPLES - this.fill)), this.fill);
    else this.frame.fill(0, this.fill, Math.min(FRAME_SAMPLES, this.fill + n));
    this.fill += n;
    if (this.fill >= FRAME_SAMPLES) {
      const pcm = this.frame;
      // The context frame of the frame's first sample, for its capture time.
      this.data?.postMessage({ t: "pcm", pcm, frame: this.startFrame, rate: sampleRate }, [pcm.buffer]);
      this.frame = new Float32Array(FRAME_SAMPLES);
      const extra = this.fill - FRAME_SAMPLES;
      if (extra > 0 && ch) this.frame.set(ch.subarray(n - extra), 0);
      this.fill = extra;
      this.startFrame = currentFrame + n - extra;
    }
    return true;
  }
}

/** An Opus packet of the peer, as the page read it (engine.ts). */
export interface PlayoutPacket {
  n: number;
  captureUs: number | undefined;
  /**
   * When the page read the datagram, on the page's `performance.now()` (ms).
   * The controller only compares arrivals with each other, never with the
   * render clock, so the page's clock serves: it has sub-ms resolution,
   * where the worklet's `currentFrame` moves in 2.7 ms quanta and the
   * worklet has no `performance`. The port hop after it (≤ a quantum) is
   * covered by the target's margin.
   */
  arrivalMs: number;
  opus: ArrayBuffer;
  /** A REDUNDANT_FRAME it carried: the packet of frame n − k (quality.md §4.2). */
  redundant?: { k: number; opus: ArrayBuffer };
}

interface PlayoutMessage {
  packet?: PlayoutPacket;
  record?: boolean;
  dump?: boolean;
  count?: boolean;
  reset?: boolean;
  stats?: boolean;
  /** Asks for the listener's report (quality.md §4.1) at this time on the arrivals' clock; answered `{ rx }`. */
  report?: number;
  play?: boolean;
  /** RTP mode: record the input (the remote WebRTC track, which an <audio> element plays) and output silence. */
  rtp?: boolean;
}

/**
 * The playout's floor in this shell: 20 ms (the design's, quality.md §3.3), not the shared default's 40.
 * The 40 came from a browser whose capture worklet posted frames in the render thread's ~10 ms bursts;
 * frames now leave the track's own 10 ms chunks (framer.ts), the margin (10 ms) still covers the
 * render bursts, and the estimator raises the target from measured jitter as before. Measured on
 * bench/quality (wt-wt, --quick, one run each, same builds otherwise): floor 40 / 30 / 20 → clean
 * mouth-to-ear 113–128 / 116–119 / 98–103 ms, MOS 3.62/4.16, 3.70/4.10, 3.62/4.22, underruns 1 per
 * call in each (the hang-up); plain WebRTC on the same run 108/94 ms, 3.57/4.19.
 */
const WORKLET_PLAYOUT = { startTargetMs: 20, minTargetMs: 20 } as const;

class PlayoutProcessor extends Processor {
  private readonly rx = new Receiver(undefined, WORKLET_PLAYOUT);
  private playing = true;
  private rtp = false;
  private readonly tap = new Tap();

  constructor() {
    super();
    this.port.onmessage = (e: MessageEvent<PlayoutMessage>) => this.control(e.data);
    // libopus compiles asynchronously; the page waits for "ready" before a call can start.
    OpusFrameDecoder.create().then(
      (d) => {
        this.rx.decoder = d;
        this.port.postMessage({ ready: true });
      },
      (e: unknown) => this.port.postMessage({ ready: false, error: `libopus did not load in the playout worklet: ${String(e)}` }),
    );
  }

  private control(m: PlayoutMessage): void {
    if (m.packet) {
      const p = m.packet;
      this.rx.push(p.n, p.captureUs, p.arrivalMs, new Uint8Array(p.opus));
      if (p.redundant) this.rx.pushRedundant(p.n - p.redundant.k, p.arrivalMs, new Uint8Array(p.redundant.opus));
    }
    if (m.report !== undefined) this.port.postMessage({ rx: this.rx.rxReport(m.report) ?? null });
    if (m.reset) this.rx.reset();
    if (m.play !== undefined) this.playing = m.play;
    if (m.rtp !== undefined) this.rtp = m.rtp;
    this.tap.control(m, this.port);
    if (m.stats) this.port.postMessage({ stats: this.rx.report() });
  }

  override process(inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const out = outputs[0];
    const first = out?.[0];
    if (!out || !first) return true;
    if (this.rtp) {
      // The <audio> element plays it; the tap records what it plays.
      const x = inputs[0]?.[0];
      this.tap.add(x && this.playing ? x : first.fill(0));
      first.fill(0);
      for (let c = 1; c < out.length; c++) out[c]?.fill(0);
      return true;
    }
    this.rx.render(first);
    if (!this.playing) first.fill(0);
    this.tap.add(first);
    for (let c = 1; c < out.length; c++) out[c]?.set(first);
    return true;
  }
}

registerProcessor("moq-capture", CaptureProcessor);
registerProcessor("moq-playout", PlayoutProcessor);
