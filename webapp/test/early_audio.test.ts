// The rule for audio heard before the answer (docs/CALLS.md §6), as
// pub-sub-audio's call/early.rs tests it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EarlyAudio, KEPT_FRAMES } from "../src/call/early.js";

describe("EarlyAudio", () => {
  it("plays the winner's newest frames first, in order, and drops the losers'", () => {
    const e = new EarlyAudio<number>();
    for (let n = 0; n < 7; n++) assert.equal(e.frame("d1", n), undefined);
    assert.equal(e.frame("d2", 100), undefined);
    assert.equal(e.isPeer("d1"), false);
    assert.deepEqual(e.established("d1"), [2, 3, 4, 5, 6]);
    assert.equal(KEPT_FRAMES, 5);
    assert.equal(e.isPeer("d1"), true);
    assert.equal(e.frame("d1", 7), 7);
    assert.equal(e.frame("d2", 101), undefined);
    assert.deepEqual(e.established("d2"), []);
  });

  it("a winner that sent nothing early starts empty; the caller is sender null", () => {
    const e = new EarlyAudio<number>();
    assert.equal(e.frame("d2", 1), undefined);
    assert.deepEqual(e.established(null), []);
    assert.equal(e.frame(null, 2), 2);
  });
});
