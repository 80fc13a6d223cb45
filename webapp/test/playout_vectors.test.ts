// The shared playout-controller vectors (docs/vectors/playout.json; format
// in pub-sub-audio/tests/playout_vectors.rs), run unchanged against the web
// phone's controller (src/media/playout.ts): the same ops and counters as
// the Rust phone's for the same arrivals and pulls (quality.md §3.3).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_CONFIG, PlayoutController, type Op, type PlayoutStats } from "../src/media/playout.js";
import { readVectors } from "./helpers.js";

interface Generate {
  from: number;
  count: number;
  start_ms: number;
  jitter_ms?: number;
  seed?: number;
  lose?: number[];
  capture_ms?: number;
}

interface Scenario {
  name: string;
  stretch?: { accelerate: number; fast: number; expand: number };
  arrivals?: number[][];
  generate?: Generate[];
  redundant?: Array<[number, number]>;
  pulls: { from: number; until: number };
  checks: Array<{ at: number; ops?: string; stats?: Record<string, number | [number, number]> }>;
}

interface File {
  config: Record<string, number>;
  scenarios: Scenario[];
}

type Ev = { t: number; kind: "object"; n: number; capUs: number | undefined } | { t: number; kind: "redundant"; n: number } | { t: number; kind: "pull" };

const U64 = (x: bigint) => BigInt.asUintN(64, x);

/** Every event of a scenario, sorted by time, stably (arrivals, generated, redundant copies, pulls). */
function events(s: Scenario): Ev[] {
  const ev: Ev[] = [];
  for (const a of s.arrivals ?? []) {
    assert.ok(a.length === 2 || a.length === 3, `${s.name}: arrival ${JSON.stringify(a)}`);
    ev.push({ t: a[1] as number, kind: "object", n: a[0] as number, capUs: a[2] === undefined ? undefined : a[2] * 1000 });
  }
  for (const g of s.generate ?? []) {
    let x = U64(BigInt(g.seed ?? 0) * 0x9e3779b97f4a7c15n) | 1n;
    for (let i = 0; i < g.count; i++) {
      x ^= U64(x << 13n);
      x ^= x >> 7n;
      x ^= U64(x << 17n);
      const u = Number(x >> 11n) / 2 ** 53;
      const n = g.from + i;
      if ((g.lose ?? []).includes(n)) continue;
      const t = g.start_ms + 20 * i + Math.floor((g.jitter_ms ?? 0) * u);
      ev.push({ t, kind: "object", n, capUs: g.capture_ms === undefined ? undefined : (g.capture_ms + 20 * i) * 1000 });
    }
  }
  for (const [n, t] of s.redundant ?? []) ev.push({ t, kind: "redundant", n });
  for (let t = s.pulls.from; t <= s.pulls.until; t += 20) ev.push({ t, kind: "pull" });
  return ev.sort((a, b) => a.t - b.t);
}

function token(op: Op): string {
  switch (op.op) {
    case "decode":
      return `D${op.n}`;
    case "accelerate":
      return `A${op.n}${op.fast ? "+" : ""}`;
    case "expand":
      return `E${op.n}`;
    case "fec":
      return `F${op.lost}`;
    case "redundant":
      return `R${op.n}`;
    case "conceal":
      return `C${op.n}`;
    case "idle":
      return "I";
  }
}

const FIELDS: Record<string, keyof PlayoutStats> = {
  played: "played",
  fec: "fec",
  redundant: "redundant",
  concealed: "concealed",
  concealed_ms: "concealedMs",
  underruns: "underruns",
  late: "late",
  skipped: "skipped",
  refused: "refused",
  resets: "resets",
  accel_ms: "accelMs",
  expand_ms: "expandMs",
  target_ms: "targetMs",
  level_ms: "levelMs",
};

const file = readVectors("playout.json") as File;

describe("playout vectors (docs/vectors/playout.json)", () => {
  it("pin the controller's defaults", () => {
    const c = DEFAULT_CONFIG;
    assert.deepEqual(file.config, {
      start_target_ms: c.startTargetMs,
      min_target_ms: c.minTargetMs,
      max_target_ms: c.maxTargetMs,
      margin_ms: c.marginMs,
      discontinuity_ms: c.discontinuityMs,
      level_alpha: c.levelAlpha,
      max_excess_ms: c.maxExcessMs,
      hold_conceal_frames: c.holdConcealFrames,
      buffer_frames: c.bufferFrames,
      far_frames: c.farFrames,
      stale_frames: c.staleFrames,
      stray_run: c.strayRun,
    });
    assert.ok(file.scenarios.length >= 12);
  });

  for (const s of file.scenarios) {
    it(s.name, () => {
      const st = s.stretch ?? { accelerate: -240, fast: -480, expand: 240 };
      const ctl = new PlayoutController();
      const log: string[] = [];
      const ev = events(s);
      let i = 0;
      const bad: string[] = [];
      for (const chk of s.checks) {
        for (; i < ev.length && (ev[i] as Ev).t <= chk.at; i++) {
          const e = ev[i] as Ev;
          if (e.kind === "object") ctl.onObject(e.n, e.capUs, e.t);
          else if (e.kind === "redundant") ctl.onRedundant(e.n, e.t);
          else {
            while (ctl.fifoSamples() < 960) {
              const op = ctl.next();
              log.push(token(op));
              if (op.op === "idle") break;
              if (op.op === "accelerate") ctl.stretched(op.n, op.fast ? st.fast : st.accelerate);
              if (op.op === "expand") ctl.stretched(op.n, st.expand);
            }
            ctl.pulled(960);
          }
        }
        const stats = ctl.stats();
        if (chk.ops !== undefined && chk.ops !== log.join(" ")) bad.push(`@${chk.at} ops: want "${chk.ops}" got "${log.join(" ")}"`);
        for (const [k, v] of Object.entries(chk.stats ?? {})) {
          const f = FIELDS[k];
          assert.ok(f, `${s.name}: unknown stats field ${k}`);
          const got = stats[f];
          const ok = Array.isArray(v) ? got >= v[0] && got <= v[1] : got === v;
          if (!ok) bad.push(`@${chk.at} ${k}: want ${JSON.stringify(v)} got ${got}`);
        }
        log.length = 0;
      }
      assert.deepEqual(bad, [], `${s.name}: stats ${JSON.stringify(ctl.stats())}`);
    });
  }
});
