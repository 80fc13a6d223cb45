// Ordering a peer's events (src/phone/sequencer.ts): joining FETCH, holes
// filled by FETCH or skipped, the quiet-start FETCH; then the shared vectors.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EVERYTHING, EventSequencer, GAP_WAIT_MS, MAX_HOLE_MS, QUIET_WAIT_MS } from "../src/phone/sequencer.js";
import { readVectors } from "./helpers.js";
import { arr, obj, str } from "./wire_json.js";

const b = (s: string) => new TextEncoder().encode(s);
const text = (p: Uint8Array) => new TextDecoder().decode(p);

function make(joining?: number) {
  const log = { delivered: [] as string[], fetches: [] as string[] };
  const seq = new EventSequencer(
    {
      deliver: (g, p) => log.delivered.push(`${g}:${text(p)}`),
      fetchJoining: () => log.fetches.push("joining"),
      fetchRange: (from, to) => log.fetches.push(`${from}..${to}`),
    },
    joining,
    0,
  );
  return { seq, log };
}

describe("EventSequencer", () => {
  it("delivers in group order, each once", () => {
    const { seq, log } = make();
    seq.object(1, b("ringing"), 10);
    assert.deepEqual(log.delivered, []);
    seq.object(0, b("invite"), 20);
    seq.object(0, b("invite again"), 30);
    seq.object(2, b("answer"), 40);
    assert.deepEqual(log.delivered, ["0:invite", "1:ringing", "2:answer"]);
    assert.deepEqual(log.fetches, []);
  });

  it("asks for what came before the subscription with a Joining FETCH and waits for it", () => {
    const { seq, log } = make(2);
    assert.deepEqual(log.fetches, ["joining"]);
    seq.object(3, b("d"), 5);
    assert.deepEqual(log.delivered, []);
    // Still waiting long after MAX_HOLE: only the Joining FETCH has groups 0..2.
    assert.equal(seq.step(MAX_HOLE_MS * 3), undefined);
    seq.fetched(0, 3, [[0, b("a")], [1, b("b")], [2, b("c")]], MAX_HOLE_MS * 3);
    assert.deepEqual(log.delivered, ["0:a", "1:b", "2:c", "3:d"]);
  });

  it("fetches a hole once after GAP_WAIT; a FETCH that does not fill it leaves it until MAX_HOLE", () => {
    const { seq, log } = make();
    seq.object(0, b("a"), 0);
    const wake = seq.object(2, b("c"), 100);
    assert.equal(wake, 100 + GAP_WAIT_MS);
    seq.step(100 + GAP_WAIT_MS);
    assert.deepEqual(log.fetches, ["1..2"]);
    // The relay had nothing: the object may still come (a channel opened again), so wait, without asking again.
    assert.equal(seq.fetched(1, 2, [], 500), 100 + MAX_HOLE_MS);
    assert.deepEqual(log.delivered, ["0:a"]);
    assert.equal(seq.step(600), 100 + MAX_HOLE_MS);
    assert.deepEqual(log.fetches, ["1..2"]);
    seq.step(100 + MAX_HOLE_MS);
    assert.deepEqual(log.delivered, ["0:a", "2:c"]);
  });

  it("a FETCH fills the hole", () => {
    const { seq, log } = make();
    seq.object(0, b("a"), 0);
    seq.object(3, b("d"), 0);
    seq.step(GAP_WAIT_MS);
    assert.deepEqual(log.fetches, ["1..3"]);
    seq.fetched(1, 3, [[1, b("b")], [2, b("c")]], GAP_WAIT_MS + 5);
    assert.deepEqual(log.delivered, ["0:a", "1:b", "2:c", "3:d"]);
  });

  it("skips a hole after MAX_HOLE when no FETCH answers", () => {
    const { seq, log } = make();
    seq.object(0, b("a"), 0);
    seq.object(2, b("c"), 0);
    seq.step(GAP_WAIT_MS);
    assert.equal(log.fetches.length, 1);
    seq.step(MAX_HOLE_MS);
    assert.deepEqual(log.delivered, ["0:a", "2:c"]);
  });

  it("with nothing at all, asks for everything once after QUIET_WAIT", () => {
    const { seq, log } = make();
    assert.equal(seq.step(0), QUIET_WAIT_MS);
    seq.step(QUIET_WAIT_MS);
    assert.deepEqual(log.fetches, [`0..${EVERYTHING}`]);
    seq.fetched(0, EVERYTHING, [[0, b("invite")]], QUIET_WAIT_MS + 1);
    assert.deepEqual(log.delivered, ["0:invite"]);
    assert.equal(seq.step(QUIET_WAIT_MS * 10), undefined);
    assert.equal(log.fetches.length, 1);
  });
});

// The shared vectors (docs/vectors/sequencer.json), the same file
// pub-sub-audio's Rust sequencer is tested against
// (pub-sub-audio/tests/sequencer_vectors.rs): same deliveries, FETCHes and
// wake times after every step.
describe("sequencer vectors (docs/vectors/sequencer.json)", () => {
  const file = obj(readVectors("sequencer.json"));
  const scenarios = arr(file["scenarios"]).map(obj);
  const pair = (v: unknown): [number, string] => {
    const [g, p] = arr(v);
    return [Number(g), str(p)];
  };

  it("has the scenarios and the same timers", () => {
    assert.ok(scenarios.length >= 20);
    const names = scenarios.map((s) => str(s["name"]));
    assert.equal(new Set(names).size, names.length, "scenario names are unique");
    assert.deepEqual(file["timers"], { gap_wait: GAP_WAIT_MS, max_hole: MAX_HOLE_MS, quiet_wait: QUIET_WAIT_MS });
    assert.equal(file["everything"], EVERYTHING);
  });

  for (const s of scenarios) {
    const name = str(s["name"]);
    it(name, () => {
      const log = { delivered: [] as Array<[number, string]>, fetches: [] as unknown[] };
      const take = () => {
        const out = { delivered: log.delivered, fetches: log.fetches };
        log.delivered = [];
        log.fetches = [];
        return out;
      };
      const start = obj(s["start"]);
      const seq = new EventSequencer(
        {
          deliver: (g, p) => log.delivered.push([g, text(p)]),
          fetchJoining: () => log.fetches.push("joining"),
          fetchRange: (from, to) => log.fetches.push([from, to]),
        },
        start["joining"] === null ? undefined : Number(start["joining"]),
        Number(start["at"]),
      );
      assert.deepEqual(take(), { delivered: [], fetches: obj(s["expect"])["fetches"] }, "start");
      arr(s["steps"]).forEach((v, i) => {
        const step = obj(v);
        const at = Number(step["at"]);
        let wake: number | undefined;
        if (step["object"] !== undefined) {
          const [g, p] = pair(step["object"]);
          wake = seq.object(g, b(p), at);
        } else if (step["fetched"] !== undefined) {
          const f = obj(step["fetched"]);
          const objects = arr(f["objects"]).map(pair).map(([g, p]): [number, Uint8Array] => [g, b(p)]);
          wake = seq.fetched(Number(f["from"]), Number(f["to"]), objects, at);
        } else {
          assert.equal(step["step"], true, `step ${i}: one of object / fetched / step`);
          wake = seq.step(at);
        }
        const want = obj(step["expect"]);
        const what = `step ${i} at ${at} ms`;
        assert.deepEqual(take(), { delivered: arr(want["delivered"]).map(pair), fetches: want["fetches"] }, what);
        assert.equal(wake ?? null, want["wake"], `${what}: wake`);
        assert.equal(seq.expected, want["next"], `${what}: next`);
      });
    });
  }
});
