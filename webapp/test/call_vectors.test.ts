// Runs the shared call-model vectors (docs/vectors/calls.json), the same
// file pub-sub-audio's Rust state machine is tested against
// (pub-sub-audio/tests/call_vectors.rs): same outputs, same order.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Call, inputFromJson, outputFromJson, timersFromJson, type Output } from "../src/call/machine.js";
import { readVectors } from "./helpers.js";
import { arr, obj, str, type J } from "./wire_json.js";

const file = obj(readVectors("calls.json"));
const timers = timersFromJson(file["timers"]);
const scenarios = arr(file["scenarios"]).map(obj);

/** Outputs as JSON, to compare with the vector's JSON as written. */
const asJson = (outs: Output[]): unknown => JSON.parse(JSON.stringify(outs));

function check(actual: Output[], expected: unknown, what: string): void {
  const want = arr(expected);
  // Same values as the Rust test compares (expected parsed into the types)…
  assert.deepEqual(actual, want.map(outputFromJson), what);
  // …and they serialize to exactly the JSON in the file.
  assert.deepEqual(asJson(actual), want, `${what} (JSON)`);
}

describe("call vectors (docs/vectors/calls.json)", () => {
  it("has the scenarios", () => {
    assert.ok(scenarios.length >= 10);
    const names = scenarios.map((s) => str(s["name"]));
    assert.equal(new Set(names).size, names.length, "scenario names are unique");
  });

  for (const s of scenarios) {
    const name = str(s["name"]);
    it(name, () => {
      const st = obj(s["start"]);
      const at = Number(st["at"]);
      const started =
        st["role"] === "caller"
          ? Call.outgoing({ sid: str(st["sid"]), me: str(st["me"]), to: str(st["to"] ?? ""), display: str(st["display"] ?? ""), timers, now: at })
          : Call.incoming({ sid: str(st["sid"]), me: str(st["me"]), busy: st["busy"] === true, timers, now: at });
      const { call } = started;
      check(started.outputs, s["expect"], `${name}: start`);
      arr(s["steps"]).forEach((v, i) => {
        const step = obj(v) as J;
        const now = Number(step["at"]);
        const hasInput = step["input"] !== undefined && step["input"] !== null;
        const timeout = step["timeout"] === true;
        assert.ok(hasInput !== timeout, `${name}: step ${i} needs exactly one of input / timeout`);
        let out: Output[];
        if (hasInput) out = call.handle(inputFromJson(step["input"]), now);
        else {
          const due = call.pollTimeout();
          assert.ok(due !== null && due <= now, `${name}: step ${i}: no timer due at ${now} (next: ${due})`);
          out = call.handleTimeout(now);
        }
        check(out, step["expect"], `${name}: step ${i} at ${now} ms`);
      });
    });
  }
});
