/**
 * The audio side of a call as the call logic sees it: Opus frames out and
 * in (docs/CALLS.md §6), plus the tones a phone plays. Implemented by
 * {@link AudioEngine} in the browser; a call runs without it too (no audio).
 */

import type { RtpAudio } from "../session/transport.js";
import type { RxReport } from "./feedback.js";
import type { RedundantFrame } from "./loc.js";

export type ToneKind = "ring" | "ringback";

export interface CallAudio {
  /**
   * Starts sending: each encoded 20 ms Opus frame goes to `onFrame` with its
   * capture time (µs since the Unix epoch) and, while the peer's reports
   * ask for redundancy, the copy of an earlier frame it carries
   * (REDUNDANT_FRAME, quality.md §4.2). Frames keep coming (silence
   * included, DTX off) until {@link stopSending}.
   */
  startSending(onFrame: (opus: Uint8Array, captureUs: number, redundant?: RedundantFrame) => void): void;
  stopSending(): void;
  /** An Opus frame of the peer: frame number `n` (CALLS.md §6), with the REDUNDANT_FRAME it carried. */
  receive(n: number, captureUs: number | undefined, opus: Uint8Array, redundant?: RedundantFrame): void;
  /**
   * Our report on the peer's audio for the next keepalive (quality.md
   * §4.1): the latest one the playout made (asked for again now, so it is
   * at most one keepalive old); `undefined` before any audio.
   */
  rxReport?(): RxReport | undefined;
  /** The peer's report on our audio: re-tunes the encoder and redundancy (§4.2). */
  peerReport?(rx: RxReport): void;
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
