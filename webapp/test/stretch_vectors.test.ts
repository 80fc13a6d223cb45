// The shared time-stretch vectors (docs/vectors/stretch.json, format and
// signal recipe in pub-sub-audio/tests/stretch_vectors.rs), run unchanged
// against the web phone's stretcher (src/media/stretch.ts): same lag, same
// decision, same samples as the Rust phone's (quality.md §3.3 "Stretcher").
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as S from "../src/media/stretch.js";
import { readVectors } from "./helpers.js";

interface Recipe {
  n: number;
  sines?: Array<[number, number, number]>;
  noise?: { seed: number; amp: number };
}

interface Case {
  name: string;
  history?: Array<{ signal: Recipe; frames: number }>;
  signal: Recipe;
  kind: "accelerate" | "fast_accelerate" | "expand";
  expect: { lag: number; delta: number; len: number; background: boolean; corr: number; sum: number; energy: number; samples: Array<[number, number]> };
}

interface File {
  constants: Record<string, number>;
  tolerance: { sample: number; sum: number; corr: number };
  cases: Case[];
}

const U64 = (x: bigint) => BigInt.asUintN(64, x);

/** The recipe's f32 frame: Σ sines + xorshift64 noise (the generator of bench/src/link.rs). */
export function make(r: Recipe): Float32Array {
  let s = r.noise ? U64(BigInt(r.noise.seed) * 0x9e3779b97f4a7c15n) | 1n : 1n;
  const out = new Float32Array(r.n);
  for (let i = 0; i < r.n; i++) {
    let v = 0;
    for (const [f, a, p] of r.sines ?? []) v += a * Math.sin((2 * Math.PI * f * i) / 48000 + p);
    if (r.noise) {
      s ^= U64(s << 13n);
      s ^= s >> 7n;
      s ^= U64(s << 17n);
      const u = Number(s >> 11n) / 2 ** 53;
      v += r.noise.amp * (2 * u - 1);
    }
    out[i] = v;
  }
  return out;
}

const file = readVectors("stretch.json") as File;

describe("stretch vectors (docs/vectors/stretch.json)", () => {
  it("pin the constants stretch.ts uses", () => {
    assert.deepEqual(file.constants, {
      decimate: S.DECIMATE,
      min_lag_4k: S.MIN_LAG_4K,
      max_lag_4k: S.MAX_LAG_4K,
      refine: S.REFINE,
      min_fade: S.MIN_FADE,
      accelerate_corr: S.ACCELERATE_CORR,
      expand_corr: S.EXPAND_CORR,
      noise_frames: S.NOISE_FRAMES,
      noise_min_frames: S.NOISE_MIN_FRAMES,
      noise_factor: S.NOISE_FACTOR,
      silence_rms: S.SILENCE_RMS,
    });
    assert.ok(file.cases.length >= 10);
  });

  const tol = file.tolerance;
  const kinds = { accelerate: "accelerate", fast_accelerate: "fast-accelerate", expand: "expand" } as const;
  for (const c of file.cases) {
    it(c.name, () => {
      const st = new S.Stretcher();
      for (const h of c.history ?? []) {
        for (let j = 0; j < h.frames; j++) st.observe(make(h.signal.noise ? { ...h.signal, noise: { ...h.signal.noise, seed: h.signal.noise.seed + j } } : h.signal));
      }
      const { pcm, outcome } = st.stretch(make(c.signal), kinds[c.kind]);
      let sum = 0;
      let energy = 0;
      for (const v of pcm) {
        sum += v;
        energy += v * v;
      }
      const e = c.expect;
      const got = { lag: outcome.lag, delta: outcome.delta, len: pcm.length, background: outcome.background, corr: outcome.corr, sum, energy, samples: e.samples.map(([i]) => [i, pcm[i]]) };
      const why = `got ${JSON.stringify(got)}`;
      assert.deepEqual([outcome.lag, outcome.delta, pcm.length, outcome.background], [e.lag, e.delta, e.len, e.background], why);
      assert.ok(Math.abs(outcome.corr - e.corr) <= tol.corr, `corr: ${why}`);
      assert.ok(Math.abs(sum - e.sum) <= tol.sum, `sum: ${why}`);
      assert.ok(Math.abs(energy - e.energy) <= tol.sum, `energy: ${why}`);
      for (const [i, v] of e.samples) assert.ok(i < pcm.length && Math.abs((pcm[i] as number) - v) <= tol.sample, `sample ${i}: ${why}`);
    });
  }
});
