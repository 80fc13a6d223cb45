/**
 * Call-progress tones played locally with Web Audio oscillators: the ring of
 * an incoming call, the ringback a caller hears while the callee rings, and
 * DTMF key tones (ITU-T Q.23 frequency pairs). They go straight to the
 * speakers, never into the call.
 */

import type { ToneKind } from "./types.js";

/** (frequencies, on/off cadence in seconds) of each tone. */
const CADENCE: Record<ToneKind, { freqs: number[]; pattern: number[] }> = {
  // Ringback: 440 + 480 Hz, 2 s on, 4 s off (ITU-T E.180 / North America).
  ringback: { freqs: [440, 480], pattern: [2, 4] },
  // Ring: double burst 400 + 450 Hz, 0.4 on, 0.2 off, 0.4 on, 2 off.
  ring: { freqs: [400, 450], pattern: [0.4, 0.2, 0.4, 2] },
};

const DTMF: Record<string, [number, number]> = {};
const ROWS = [697, 770, 852, 941];
const COLS = [1209, 1336, 1477, 1633];
["123A", "456B", "789C", "*0#D"].forEach((row, r) => [...row].forEach((k, c) => (DTMF[k] = [ROWS[r] as number, COLS[c] as number])));

/** How far ahead a cadence is scheduled (s); a ring never lasts longer. */
const AHEAD_S = 120;

export class Tones {
  private playing: { kind: ToneKind; stop: () => void } | undefined;

  constructor(private readonly ctx: AudioContext) {}

  start(kind: ToneKind | null): void {
    if (this.playing?.kind === kind) return;
    this.playing?.stop();
    this.playing = undefined;
    if (!kind) return;
    const { freqs, pattern } = CADENCE[kind];
    const t0 = this.ctx.currentTime + 0.02;
    const gain = this.ctx.createGain();
    gain.gain.setValueAtTime(0, 0);
    let t = t0;
    for (let i = 0; t < t0 + AHEAD_S; i++) {
      const len = pattern[i % pattern.length] as number;
      const on = i % 2 === 0;
      gain.gain.setTargetAtTime(on ? 0.12 : 0, t, 0.005);
      t += len;
    }
    const oscs = freqs.map((f) => {
      const o = this.ctx.createOscillator();
      o.frequency.value = f;
      o.connect(gain);
      o.start(t0);
      o.stop(t0 + AHEAD_S);
      return o;
    });
    gain.connect(this.ctx.destination);
    this.playing = {
      kind,
      stop: () => {
        for (const o of oscs) o.stop();
        gain.disconnect();
      },
    };
  }

  /** A DTMF tone of `ms` milliseconds; unknown digits are ignored. */
  dtmf(digit: string, ms = 120): void {
    const pair = DTMF[digit.toUpperCase()];
    if (!pair) return;
    const t0 = this.ctx.currentTime + 0.01;
    const gain = this.ctx.createGain();
    gain.gain.setValueAtTime(0, 0);
    gain.gain.setTargetAtTime(0.1, t0, 0.003);
    gain.gain.setTargetAtTime(0, t0 + ms / 1000, 0.005);
    gain.connect(this.ctx.destination);
    for (const f of pair) {
      const o = this.ctx.createOscillator();
      o.frequency.value = f;
      o.connect(gain);
      o.start(t0);
      o.stop(t0 + ms / 1000 + 0.05);
    }
  }
}
