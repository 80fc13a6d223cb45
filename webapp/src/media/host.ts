/**
 * The encoding half of the audio pipeline: microphone frames from the capture
 * worklet are Opus-encoded with libopus (WebAssembly, {@link OpusFrameEncoder};
 * docs/CALLS.md §6: 48 kHz mono, 20 ms frames, in-band FEC on, DTX off) and
 * handed to the page for sending. libopus rather than WebCodecs so the loss
 * percentage and bitrate can change while a call runs (quality.md §3.5, §4.2).
 *
 * Runs in the media worker (worker.ts), else on the main thread; either way
 * it talks through MessagePorts only. Decoding is not here: it happens in the
 * playout worklet, at playout time (playout.ts).
 */

import { FRAME_SAMPLES, OpusFrameEncoder } from "./opus.js";

/** Messages from the page to the host. */
export type HostCommand =
  | { t: "ports"; capture: MessagePort }
  | { t: "send"; on: boolean; origin: number }
  | { t: "mute"; on: boolean }
  /** OPUS_SET_PACKET_LOSS_PERC / bitrate (quality.md §4.2); applied from the next frame. */
  | { t: "tune"; packetLossPercent?: number; bitrate?: number }
  | { t: "reset" }
  | { t: "stats" };

/** Messages from the host to the page. */
export type HostEvent =
  | { t: "ready" }
  | { t: "encoded"; opus: ArrayBuffer; captureUs: number }
  | { t: "error"; message: string }
  | { t: "stats"; stats: HostStats };

export interface HostStats {
  captured: number;
  encoded: number;
  /** Frames captured while sending that could not be encoded (the encoder still loading, or an error). */
  encodeErrors: number;
}

export class MediaHost {
  private encoder: OpusFrameEncoder | undefined;
  private readonly loading: Promise<void>;
  private sending = false;
  private muted = false;
  /** Wall-clock µs of context frame 0 (performance.timeOrigin + context offset): capture stamps. */
  private originUs = 0;
  private readonly stats: HostStats = { captured: 0, encoded: 0, encodeErrors: 0 };

  constructor(private readonly page: { postMessage(m: HostEvent, transfer?: Transferable[]): void }) {
    // Loaded once, ahead of the first call (the wasm compiles in a few ms).
    this.loading = OpusFrameEncoder.create().then(
      (e) => void (this.encoder = e),
      (e: unknown) => this.fail(e),
    );
  }

  /** Resolves once the encoder exists (or failed to load). */
  ready(): Promise<void> {
    return this.loading;
  }

  command(c: HostCommand): void {
    switch (c.t) {
      case "ports":
        c.capture.onmessage = (e: MessageEvent<{ pcm: Float32Array; frame: number; rate: number }>) => this.captured(e.data);
        break;
      case "send":
        this.sending = c.on;
        this.originUs = c.origin;
        break;
      case "mute":
        this.muted = c.on;
        break;
      case "tune":
        try {
          if (c.packetLossPercent !== undefined) this.encoder?.setPacketLossPercent(c.packetLossPercent);
          if (c.bitrate !== undefined) this.encoder?.setBitrate(c.bitrate);
        } catch (e) {
          this.fail(e);
        }
        break;
      case "reset":
        this.sending = false;
        this.muted = false;
        break;
      case "stats":
        this.page.postMessage({ t: "stats", stats: { ...this.stats } });
        break;
    }
  }

  private captured(m: { pcm: Float32Array; frame: number; rate: number }): void {
    this.stats.captured++;
    if (!this.sending) return;
    if (!this.encoder || m.pcm.length !== FRAME_SAMPLES) {
      this.stats.encodeErrors++;
      return;
    }
    if (this.muted) m.pcm.fill(0);
    // Capture time of the frame's first sample (LOC TIMESTAMP, µs since the epoch).
    const captureUs = Math.round(this.originUs + (m.frame / m.rate) * 1e6);
    let packet: Uint8Array;
    try {
      packet = this.encoder.encode(m.pcm);
    } catch (e) {
      this.stats.encodeErrors++;
      this.fail(e);
      return;
    }
    const opus = packet.slice().buffer;
    this.stats.encoded++;
    this.page.postMessage({ t: "encoded", opus, captureUs }, [opus]);
  }

  private fail(e: unknown): void {
    this.page.postMessage({ t: "error", message: e instanceof Error ? e.message : String(e) });
  }
}
