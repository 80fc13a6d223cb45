/**
 * The audio side of a call as the call logic sees it: Opus frames out and
 * in (docs/CALLS.md §6), plus the tones a phone plays. Implemented by
 * {@link AudioEngine} in the browser; a call runs without it too (no audio).
 */

import type { RtpAudio } from "../session/transport.js";

export type ToneKind = "ring" | "ringback";

export interface CallAudio {
  /**
   * Starts sending: each encoded 20 ms Opus frame goes to `onFrame` with its
   * capture time (µs since the Unix epoch). Frames keep coming (silence
   * included, DTX off) until {@link stopSending}.
   */
  startSending(onFrame: (opus: Uint8Array, captureUs: number) => void): void;
  stopSending(): void;
  /** An Opus frame of the peer: frame number `n` (CALLS.md §6). */
  receive(n: number, captureUs: number | undefined, opus: Uint8Array): void;
  /** Plays what the peer sends (off while we hold the call). */
  setPlayout(on: boolean): void;
  /** Sends silence instead of the microphone. */
  setMuted(on: boolean): void;
  /** Local ring / ringback tone, or none. */
  tone(kind: ToneKind | null): void;
  /** A short DTMF tone, locally (key feedback, or a digit the peer sent). */
  dtmf(digit: string): void;
  /**
   * WebRTC (docs/design/webrtc.md §4 "Media"): the microphone rides `rtp`'s
   * audio sender instead of the Opus encoder; `null` takes it off.
   */
  sendRtp(rtp: RtpAudio | null): void;
  /**
   * WebRTC: plays `rtp`'s remote stream (the peer's audio as RTP from the
   * gateway) instead of decoded frames, and records it like the playout;
   * `null` stops.
   */
  receiveRtp(rtp: RtpAudio | null): void;
  /** Ends the call's audio: stops capture, playout and tones. */
  close(): void;
}

/** The page's audio: per-call {@link CallAudio} plus the microphone. */
export interface PhoneAudio extends CallAudio {
  /**
   * Opens the microphone (getUserMedia with echo cancellation and noise
   * suppression) ahead of a call; throws {@link MicError} when it is denied
   * or missing.
   */
  openMic(): Promise<void>;
}

export class MicError extends Error {
  constructor(
    readonly kind: "denied" | "missing" | "unsupported" | "failed",
    message: string,
  ) {
    super(message);
    this.name = "MicError";
  }
}
