/**
 * The codec half of the audio pipeline (WebCodecs): microphone frames from
 * the capture worklet are Opus-encoded (docs/CALLS.md §6: 48 kHz mono, 20 ms
 * frames, in-band FEC on, DTX off) and handed to the page for sending;
 * received Opus frames are decoded and posted to the playout worklet.
 *
 * Runs in a dedicated worker (media-worker.ts) where the platform has
 * WebCodecs there, else on the main thread; either way it talks through
 * MessagePorts only.
 */

import { FRAME_SAMPLES } from "./jitter.js";

export const OPUS_CONFIG: AudioEncoderConfig = {
  codec: "opus",
  sampleRate: 48000,
  numberOfChannels: 1,
  bitrate: 32000,
  opus: { frameDuration: 20000, complexity: 5, useinbandfec: true, usedtx: false, packetlossperc: 5 },
} as AudioEncoderConfig;

const FRAME_US = 20000;

/** Messages from the page to the host. */
export type HostCommand =
  | { t: "ports"; capture: MessagePort; playout: MessagePort }
  | { t: "send"; on: boolean; origin: number }
  | { t: "mute"; on: boolean }
  | { t: "frame"; n: number; opus: ArrayBuffer }
  | { t: "reset" }
  | { t: "stats" };

/** Messages from the host to the page. */
export type HostEvent =
  | { t: "ready"; webcodecs: boolean }
  | { t: "encoded"; opus: ArrayBuffer; captureUs: number }
  | { t: "error"; message: string }
  | { t: "stats"; stats: HostStats };

export interface HostStats {
  captured: number;
  encoded: number;
  decoded: number;
  decodeErrors: number;
}

/** True where WebCodecs Opus can run (a worker may lack it). */
export function hasWebCodecs(): boolean {
  return typeof AudioEncoder === "function" && typeof AudioDecoder === "function" && typeof AudioData === "function";
}

export class MediaHost {
  private encoder: AudioEncoder | undefined;
  private decoder: AudioDecoder | undefined;
  private playout: MessagePort | undefined;
  private sending = false;
  private muted = false;
  /** performance.timeOrigin + context offset: maps context frames to wall time (µs). */
  private originUs = 0;
  private ts = 0;
  private readonly stamps = new Map<number, number>();
  private readonly stats: HostStats = { captured: 0, encoded: 0, decoded: 0, decodeErrors: 0 };

  constructor(private readonly page: { postMessage(m: HostEvent, transfer?: Transferable[]): void }) {}

  command(c: HostCommand): void {
    switch (c.t) {
      case "ports":
        c.capture.onmessage = (e: MessageEvent<{ pcm: Float32Array; frame: number; rate: number }>) => this.captured(e.data);
        this.playout = c.playout;
        break;
      case "send":
        this.sending = c.on;
        this.originUs = c.origin;
        if (!c.on) this.closeEncoder();
        break;
      case "mute":
        this.muted = c.on;
        break;
      case "frame":
        this.decode(c.n, new Uint8Array(c.opus));
        break;
      case "reset":
        this.closeEncoder();
        this.decoder?.close();
        this.decoder = undefined;
        break;
      case "stats":
        this.page.postMessage({ t: "stats", stats: { ...this.stats } });
        break;
    }
  }

  private captured(m: { pcm: Float32Array; frame: number; rate: number }): void {
    this.stats.captured++;
    if (!this.sending) return;
    const enc = this.openEncoder();
    if (!enc) return;
    if (this.muted) m.pcm.fill(0);
    const timestamp = this.ts;
    this.ts += FRAME_US;
    // Capture time of the frame's first sample (LOC TIMESTAMP, µs since the epoch).
    this.stamps.set(timestamp, Math.round(this.originUs + (m.frame / m.rate) * 1e6));
    const data = new AudioData({ format: "f32-planar", sampleRate: 48000, numberOfFrames: FRAME_SAMPLES, numberOfChannels: 1, timestamp, data: m.pcm as Float32Array<ArrayBuffer> });
    try {
      enc.encode(data);
    } catch (e) {
      this.fail(e);
    } finally {
      data.close();
    }
  }

  private openEncoder(): AudioEncoder | undefined {
    if (this.encoder && this.encoder.state === "configured") return this.encoder;
    this.closeEncoder();
    try {
      const enc = new AudioEncoder({
        output: (chunk) => {
          const opus = new ArrayBuffer(chunk.byteLength);
          chunk.copyTo(opus);
          const captureUs = this.stamps.get(chunk.timestamp) ?? Math.round((performance.timeOrigin + performance.now()) * 1000);
          this.stamps.delete(chunk.timestamp);
          this.stats.encoded++;
          this.page.postMessage({ t: "encoded", opus, captureUs }, [opus]);
        },
        error: (e) => this.fail(e),
      });
      enc.configure(OPUS_CONFIG);
      this.encoder = enc;
      this.ts = 0;
      return enc;
    } catch (e) {
      this.fail(e);
      return undefined;
    }
  }

  private closeEncoder(): void {
    if (this.encoder && this.encoder.state !== "closed") this.encoder.close();
    this.encoder = undefined;
    this.stamps.clear();
  }

  private decode(n: number, opus: Uint8Array): void {
    if (!this.decoder || this.decoder.state === "closed") {
      const dec = new AudioDecoder({
        output: (data) => {
          const frame = Math.round(data.timestamp / FRAME_US);
          const pcm = new Float32Array(data.numberOfFrames);
          data.copyTo(pcm, { planeIndex: 0, format: "f32-planar" });
          data.close();
          this.stats.decoded++;
          this.playout?.postMessage({ n: frame, pcm }, [pcm.buffer]);
        },
        error: () => {
          this.stats.decodeErrors++;
          this.decoder = undefined;
        },
      });
      dec.configure({ codec: "opus", sampleRate: 48000, numberOfChannels: 1 });
      this.decoder = dec;
    }
    try {
      this.decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: n * FRAME_US, data: opus }));
    } catch {
      this.stats.decodeErrors++;
    }
  }

  private fail(e: unknown): void {
    this.page.postMessage({ t: "error", message: e instanceof Error ? e.message : String(e) });
  }
}
