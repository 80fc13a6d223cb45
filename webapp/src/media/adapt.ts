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
 * - FEC always on; 56 kbit/s, 64 kbit/s while the smoothed loss is ≥ 5 % (adapt.rs says why: the bench speech through libopus alone);
 * - k ∈ {0, 1, 2}: on at a report (it covers the last 2 s) with loss ≥ 8 %
 *   or a mean burst ≥ 2 with loss ≥ 3 % (k = 2 with bursts, else 1; 1 → 2
 *   as soon as bursts appear), off after 10 s below 3 % with the
 *   on-condition false.
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
export const INITIAL_SETTINGS: Readonly<EncoderSettings> = { loss_perc: 5, bitrate: 56000, fec: true, k: 0 };

export const POLICY = {
  minLossPerc: 2,
  maxLossPerc: 30,
  /** Smoothed loss, ‰, from which the higher bitrate is used. */
  highRateFrom: 50,
  bitrate: 56000,
  highBitrate: 64000,
  redOnLoss: 80,
  redOnBurst: 20,
  redBurstLoss: 30,
  /** Beyond the report's own 2 s, ms (0: at once). */
  redOnMs: 0,
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

  const bursty = report.burst >= p.redOnBurst && report.loss >= p.redBurstLoss;
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

/**
 * The sender's side of adaptation for a shell (the web phone's engine):
 * the peer's reports in, encoder settings and the REDUNDANT_FRAME copy for
 * each frame out. Frames are numbered by the order they are sent, so the
 * copy for a frame is the packet sent k frames before it; {@link restart}
 * forgets them when sending stops and starts again.
 */
export class SenderAdapter {
  private readonly state = new AdaptState();
  settings: EncoderSettings = { ...INITIAL_SETTINGS };
  /** Packets sent lately, newest last (at most the largest k). */
  private sent: Uint8Array[] = [];
  /** Counters for tests and benches. */
  readonly stats = { reports: 0, maxLossPerc: 0, maxK: 0, redundantSent: 0 };

  /** The peer's report at `nowMs`: the new settings when the encoder must change, else `undefined`. */
  report(rx: Pick<RxReport, "loss" | "burst">, nowMs: number): EncoderSettings | undefined {
    const s = adapt(rx, this.state, nowMs);
    const old = this.settings;
    this.settings = s;
    this.stats.reports++;
    this.stats.maxLossPerc = Math.max(this.stats.maxLossPerc, s.loss_perc);
    this.stats.maxK = Math.max(this.stats.maxK, s.k);
    return s.loss_perc !== old.loss_perc || s.bitrate !== old.bitrate ? s : undefined;
  }

  /** The copy the frame about to be sent carries (if k > 0 and that frame was sent); remembers `opus`. */
  next(opus: Uint8Array): { k: number; opus: Uint8Array } | undefined {
    const k = this.settings.k;
    const copy = k > 0 && this.sent.length >= k ? this.sent[this.sent.length - k] : undefined;
    this.sent.push(opus);
    if (this.sent.length > 2) this.sent.shift();
    if (!copy) return undefined;
    this.stats.redundantSent++;
    return { k, opus: copy };
  }

  /** Sending restarted: earlier packets are no frames of this run. */
  restart(): void {
    this.sent = [];
  }
}
