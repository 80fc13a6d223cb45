/**
 * Sender adaptation (docs/design/quality.md §4.2): from the listener's
 * {@link RxReport}s, how the sender encodes — Opus' expected loss
 * (OPUS_SET_PACKET_LOSS_PERC, which sizes the in-band FEC), the bitrate,
 * and how far back a whole older frame rides along as REDUNDANT_FRAME (k).
 * Mirrors pub-sub-audio's `audio/adapt.rs` (where the reasons are spelled
 * out); both run docs/vectors/adapt.json ("adapt").
 *
 * - expected loss = clamp(⌈1.5 × smoothed loss %⌉, 2, 30); the smoothing
 *   follows a rise at once and a fall by 1/8 per report;
 * - FEC always on; 32 kbit/s, 40 kbit/s while the smoothed loss is ≥ 5 %;
 * - k ∈ {0, 1, 2}: on after 2 s of reports with loss ≥ 8 % or mean burst
 *   ≥ 2 (k = 2 with bursts, else 1; 1 → 2 as soon as bursts appear), off
 *   after 10 s below 3 % with the on-condition false.
 *
 * Pure: report, state and time (ms) in, settings out.
 */

import type { RxReport } from "./feedback.js";

export interface EncoderSettings {
  /** OPUS_SET_PACKET_LOSS_PERC. */
  loss_perc: number;
  /** Bits per second. */
  bitrate: number;
  fec: boolean;
  /** REDUNDANT_FRAME distance: object n carries frame n − k (0 = none). */
  k: number;
}

/** Before any report (an old peer never sends one): CALLS.md §6's fixed settings. */
export const INITIAL_SETTINGS: Readonly<EncoderSettings> = { loss_perc: 5, bitrate: 32000, fec: true, k: 0 };

export const POLICY = {
  minLossPerc: 2,
  maxLossPerc: 30,
  /** Smoothed loss, ‰, from which the higher bitrate is used. */
  highRateFrom: 50,
  bitrate: 32000,
  highBitrate: 40000,
  redOnLoss: 80,
  redOnBurst: 20,
  redOnMs: 2000,
  redOffLoss: 30,
  redOffMs: 10000,
  fall: 1 / 8,
} as const;

export type Policy = { -readonly [K in keyof typeof POLICY]: number };

/** What the policy remembers between reports. */
export class AdaptState {
  smoothed: number | undefined;
  onSince: number | undefined;
  offSince: number | undefined;
  k = 0;
  constructor(readonly policy: Policy = { ...POLICY }) {}
}

/** The settings after `report` arrived at `nowMs`. */
export function adapt(report: Pick<RxReport, "loss" | "burst">, state: AdaptState, nowMs: number): EncoderSettings {
  const p = state.policy;
  const loss = Math.min(report.loss, 1000);
  const s = state.smoothed !== undefined && loss < state.smoothed ? state.smoothed + p.fall * (loss - state.smoothed) : loss;
  state.smoothed = s;
  const lossPerc = Math.min(p.maxLossPerc, Math.max(p.minLossPerc, Math.ceil((1.5 * s) / 10)));
  const bitrate = s >= p.highRateFrom ? p.highBitrate : p.bitrate;

  const bursty = report.burst >= p.redOnBurst;
  const on = report.loss >= p.redOnLoss || bursty;
  if (state.k === 0) {
    state.offSince = undefined;
    if (!on) state.onSince = undefined;
    else {
      state.onSince ??= nowMs;
      if (nowMs - state.onSince >= p.redOnMs) {
        state.k = bursty ? 2 : 1;
        state.onSince = undefined;
      }
    }
  } else {
    state.onSince = undefined;
    if (bursty) state.k = 2;
    if (on || report.loss >= p.redOffLoss) state.offSince = undefined;
    else {
      state.offSince ??= nowMs;
      if (nowMs - state.offSince >= p.redOffMs) {
        state.k = 0;
        state.offSince = undefined;
      }
    }
  }
  return { loss_perc: lossPerc, bitrate, fec: true, k: state.k };
}
