/**
 * Opus through libopus compiled to WebAssembly (npm `libopus-wasm`, libopus
 * 1.6.1; docs/design/quality.md §3.5). The same codec family as the Rust
 * phone's audiopus, so both receivers can do what WebCodecs cannot: decode a
 * lost frame from the next packet's in-band FEC (RFC 6716 §2.1.7) and conceal
 * one with libopus' PLC, both at the moment the playout needs the frame.
 *
 * The module (wasm inlined, no fetch, no cross-origin isolation) loads once
 * per global scope; it was checked to instantiate inside an
 * AudioWorkletGlobalScope, which has neither `performance` nor `TextDecoder`.
 * The encoder runs in the media worker, the decoder in the playout worklet.
 */

import { Application, Signal, createDecoder, createEncoder, type OpusDecoderHandle, type OpusEncoderHandle } from "libopus-wasm";

/** docs/CALLS.md §6: 48 kHz mono, 20 ms frames. */
export const SAMPLE_RATE = 48000;
export const FRAME_SAMPLES = 960;

/**
 * What the encoder starts with (CALLS.md §6; the Rust phone's codec.rs). Complexity 9, as WebRTC uses on
 * desktops: measured on the quality bench's speech through this codec alone (32 kbit/s, loss 5 %), PESQ MOS
 * 3.35 at complexity 5 and 3.53 at 9, for 0.50 → 0.62 ms of wasm per 20 ms frame. 56 kbit/s: adapt.ts says why.
 */
export const ENCODER_DEFAULTS = { bitrate: 56000, complexity: 9, packetLossPercent: 5 } as const;

/** A 48 kHz mono Opus decoder whose every output is one whole 20 ms frame. */
export class OpusFrameDecoder {
  private constructor(private readonly dec: OpusDecoderHandle) {}

  static async create(): Promise<OpusFrameDecoder> {
    return new OpusFrameDecoder(await createDecoder({ sampleRate: SAMPLE_RATE, channels: 1 }));
  }

  /** Decodes a received packet (20 ms of output; a shorter packet is padded with silence). */
  decode(packet: Uint8Array): Float32Array {
    return whole(this.dec.decodeFloat(packet));
  }

  /**
   * The frame before `next`, rebuilt from the LBRR copy `next` carries. Without
   * LBRR (CELT-only packets) libopus conceals instead: the result is still a frame.
   */
  decodeFec(next: Uint8Array): Float32Array {
    return whole(this.dec.decodeFloat(next, { decodeFec: true, frameSize: FRAME_SAMPLES }));
  }

  /** Packet loss concealment: one plausible 20 ms frame from the decoder's state. */
  conceal(): Float32Array {
    return whole(this.dec.decodePacketLossFloat(FRAME_SAMPLES));
  }

  free(): void {
    this.dec.free();
  }
}

/** A 48 kHz mono VoIP Opus encoder, in-band FEC on, DTX off (CALLS.md §6), tunable while running. */
export class OpusFrameEncoder {
  private constructor(private readonly enc: OpusEncoderHandle) {}

  static async create(packetLossPercent: number = ENCODER_DEFAULTS.packetLossPercent): Promise<OpusFrameEncoder> {
    const enc = await createEncoder({
      sampleRate: SAMPLE_RATE,
      channels: 1,
      application: Application.Voip,
      bitrate: ENCODER_DEFAULTS.bitrate,
      complexity: ENCODER_DEFAULTS.complexity,
      fec: true,
      dtx: false,
      packetLossPercent,
      signal: Signal.Auto,
    });
    return new OpusFrameEncoder(enc);
  }

  /** One packet for one 20 ms frame of exactly {@link FRAME_SAMPLES} samples. */
  encode(pcm: Float32Array): Uint8Array {
    if (pcm.length !== FRAME_SAMPLES) throw new RangeError(`an Opus frame is ${FRAME_SAMPLES} samples, got ${pcm.length}`);
    return this.enc.encodeFloat(pcm);
  }

  /** OPUS_SET_PACKET_LOSS_PERC: how much LBRR the encoder spends (quality.md §4.2). */
  setPacketLossPercent(percent: number): void {
    this.enc.setPacketLossPercent(Math.max(0, Math.min(100, Math.round(percent))));
  }

  setBitrate(bitsPerSecond: number): void {
    this.enc.setBitrate(bitsPerSecond);
  }

  /** OPUS_SET_SIGNAL: voice makes libopus prefer SILK, whose frames carry LBRR (tests use it). */
  setVoice(on: boolean): void {
    this.enc.setSignal(on ? Signal.Voice : Signal.Auto);
  }

  free(): void {
    this.enc.free();
  }
}

function whole(pcm: Float32Array): Float32Array {
  if (pcm.length === FRAME_SAMPLES) return pcm;
  const out = new Float32Array(FRAME_SAMPLES);
  out.set(pcm.subarray(0, FRAME_SAMPLES));
  return out;
}
