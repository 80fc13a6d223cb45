// The shared sender-adaptation vectors (docs/vectors/adapt.json; the Rust
// runner is pub-sub-audio/tests/adapt_vectors.rs), run unchanged against the
// web phone's loss meter (src/media/feedback.ts) and policy (src/media/adapt.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdaptState, INITIAL_SETTINGS, adapt, type EncoderSettings } from "../src/media/adapt.js";
import { LossMeter, type RxReport } from "../src/media/feedback.js";
import { readVectors } from "./helpers.js";

type Stats = { late: number; fec: number; redundant: number; concealed_ms: number; target_ms: number };
type MeterEvent = { arrive: Array<[number, number]> } | { at: number; stats: Stats; expect: RxReport | null };
interface File {
  initial: EncoderSettings;
  meter: Array<{ name: string; events: MeterEvent[] }>;
  adapt: Array<{ name: string; steps: Array<{ at: number; rx: { loss: number; burst: number }; expect: EncoderSettings }> }>;
}

const v = readVectors("adapt.json") as File;

describe("adapt.json: initial settings", () => {
  it("before any report", () => assert.deepEqual({ ...INITIAL_SETTINGS }, v.initial));
});

describe("adapt.json: loss meter", () => {
  assert.ok(v.meter.length >= 10);
  for (const c of v.meter) {
    it(c.name, () => {
      const m = new LossMeter();
      for (const e of c.events) {
        if ("arrive" in e) {
          for (const [n, at] of e.arrive) m.onArrival(n, at);
          continue;
        }
        const s = e.stats;
        const got = m.report({ late: s.late, fec: s.fec, redundant: s.redundant, concealedMs: s.concealed_ms, targetMs: s.target_ms }, e.at);
        assert.deepEqual(got ?? null, e.expect, `at ${e.at}`);
      }
    });
  }
});

describe("adapt.json: policy", () => {
  assert.ok(v.adapt.length >= 10);
  for (const c of v.adapt) {
    it(c.name, () => {
      const st = new AdaptState();
      for (const s of c.steps) assert.deepEqual(adapt(s.rx, st, s.at), s.expect, `at ${s.at}`);
    });
  }
});
