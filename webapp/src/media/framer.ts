/**
 * Cuts the microphone track's own chunks into the 20 ms frames the encoder
 * takes (docs/CALLS.md §6: 960 samples at 48 kHz, mono), with each frame's
 * capture time.
 *
 * Why the track and not the capture worklet: Chromium hands a
 * `MediaStreamTrackProcessor` the microphone's 10 ms chunks as they leave its
 * audio processing, while an AudioWorklet sees them only after the
 * AudioContext's input FIFO. Measured on this machine (headless Chromium
 * 148, fake microphone, echo cancellation on): the worklet processes a burst's
 * onset 9–16 ms after the track's reader has it (quality.md §1, "mouth to
 * datagram"). A WebRTC sender takes the track directly too, so this also
 * puts the web phone's capture on the same footing as the reference call of
 * bench/quality. Browsers without the processor (Safari, Firefox) keep the
 * worklet.
 *
 * Pure: chunks and the wall-clock time of each read go in, frames come out.
 */

/** One 20 ms frame and the wall-clock time of its first sample (µs since the epoch: LOC TIMESTAMP). */
export interface Frame {
  pcm: Float32Array;
  captureUs: number;
}

/** Samples per frame at {@link Framer.RATE}. */
const FRAME = 960;

export class Framer {
  static readonly RATE = 48000;
  private frame = new Float32Array(FRAME);
  private fill = 0;
  /** Media time (µs, the chunks' own clock) of the frame's first sample. */
  private frameTs = 0;
  /**
   * Wall clock minus media clock, µs: the smallest (read time − chunk end)
   * seen, so the reader's own delays (a busy worker) do not move the stamps;
   * the first chunks set it, later ones only lower it.
   */
  private offsetUs: number | undefined;

  /**
   * A chunk of `pcm` (mono, 48 kHz) whose first sample has media time `tsUs`,
   * read at wall-clock `readUs`. Returns the frames it completed (usually
   * none or one).
   */
  push(pcm: Float32Array, tsUs: number, readUs: number): Frame[] {
    const endUs = tsUs + (pcm.length * 1e6) / Framer.RATE;
    const off = readUs - endUs;
    if (this.offsetUs === undefined || off < this.offsetUs) this.offsetUs = off;
    const out: Frame[] = [];
    let i = 0;
    while (i < pcm.length) {
      if (this.fill === 0) this.frameTs = tsUs + (i * 1e6) / Framer.RATE;
      const n = Math.min(pcm.length - i, FRAME - this.fill);
      this.frame.set(pcm.subarray(i, i + n), this.fill);
      this.fill += n;
      i += n;
      if (this.fill === FRAME) {
        out.push({ pcm: this.frame, captureUs: Math.round(this.offsetUs + this.frameTs) });
        this.frame = new Float32Array(FRAME);
        this.fill = 0;
      }
    }
    return out;
  }

  /** Forgets a partial frame and the clock offset (a new track). */
  reset(): void {
    this.frame = new Float32Array(FRAME);
    this.fill = 0;
    this.offsetUs = undefined;
  }
}
