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

import { Framer } from "./framer.js";
import { FRAME_SAMPLES, OpusFrameEncoder } from "./opus.js";

/** The few members of WebCodecs' AudioData read here (lib.dom has no MediaStreamTrackProcessor yet). */
export interface TrackChunk {
  readonly sampleRate: number;
  readonly numberOfFrames: number;
  readonly timestamp: number;
  copyTo(dest: Float32Array, options: { planeIndex: number; format: "f32-planar" }): void;
  close(): void;
}

/** Messages from the page to the host. */
export type HostCommand =
  | { t: "ports"; capture: MessagePort }
  /**
   * The microphone track's chunks (a MediaStreamTrackProcessor's readable, transferred): frames are
   * cut from these instead of the capture worklet's while they come at 48 kHz (framer.ts says why).
   */
  | { t: "track"; readable: ReadableStream<TrackChunk> }
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
  /** Where the frames come from: the track's own chunks, or the capture worklet. */
  source: "track" | "worklet";
}

export class MediaHost {
  private encoder: OpusFrameEncoder | undefined;
  private readonly loading: Promise<void>;
  private sending = false;
  private muted = false;
  /** Wall-clock µs of context frame 0 (performance.timeOrigin + context offset): capture stamps. */
  private originUs = 0;
  private readonly stats: HostStats = { captured: 0, encoded: 0, encodeErrors: 0, source: "worklet" };
  /** The track being read, if any; a newer one replaces it. */
  private track: ReadableStreamDefaultReader<TrackChunk> | undefined;
  private readonly framer = new Framer();

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
        c.capture.onmessage = (e: MessageEvent<{ pcm: Float32Array; frame: number; rate: number }>) => {
          // Capture time of the frame's first sample (LOC TIMESTAMP, µs since the epoch).
          if (this.stats.source === "worklet") this.captured(e.data.pcm, Math.round(this.originUs + (e.data.frame / e.data.rate) * 1e6));
        };
        break;
      case "track":
        void this.readTrack(c.readable);
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

  /**
   * Reads the track until it ends or a newer one comes. The first chunk decides: at 48 kHz the
   * track is the source, else (a resampling would be needed) the worklet stays the source.
   */
  private async readTrack(readable: ReadableStream<TrackChunk>): Promise<void> {
    const reader = readable.getReader();
    void this.track?.cancel().catch(() => undefined);
    this.track = reader;
    this.framer.reset();
    let buf = new Float32Array(480);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.track !== reader) break;
        try {
          if (value.sampleRate !== Framer.RATE) {
            void reader.cancel().catch(() => undefined);
            break;
          }
          if (buf.length !== value.numberOfFrames) buf = new Float32Array(value.numberOfFrames);
          value.copyTo(buf, { planeIndex: 0, format: "f32-planar" });
          this.stats.source = "track";
          const readUs = (performance.timeOrigin + performance.now()) * 1000;
          for (const f of this.framer.push(buf, value.timestamp, readUs)) this.captured(f.pcm, f.captureUs);
        } finally {
          value.close();
        }
      }
    } catch {
      // The track ended under the reader (the page stopped the microphone): the worklet takes over.
    }
    if (this.track === reader) {
      this.track = undefined;
      this.stats.source = "worklet";
    }
  }

  private captured(pcm: Float32Array, captureUs: number): void {
    this.stats.captured++;
    if (!this.sending) return;
    if (!this.encoder || pcm.length !== FRAME_SAMPLES) {
      this.stats.encodeErrors++;
      return;
    }
    if (this.muted) pcm.fill(0);
    let packet: Uint8Array;
    try {
      packet = this.encoder.encode(pcm);
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
