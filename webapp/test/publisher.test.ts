// FETCH ranges a phone answers as the original publisher of its log tracks
// (src/session/publisher.ts), on the same cases as pub-sub-audio's
// phone/tracks.rs tests.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fetchRange, joiningRange } from "../src/session/publisher.js";

const l = (group: number, object: number) => ({ group, object });

describe("fetchRange", () => {
  it("matches the Rust phone", () => {
    // Three events (groups 0..=2); everything, as the gap fill asks.
    assert.deepEqual(fetchRange(3, l(0, 0), l(2 ** 32, 0)), { first: 0, last: 2, endLocation: l(2, 1) });
    // A hole [1, 2): end is "last plus one".
    assert.deepEqual(fetchRange(3, l(1, 0), l(1, 1)), { first: 1, last: 1, endLocation: l(1, 1) });
    // Whole group 1 (object 0 in End Location).
    assert.deepEqual(fetchRange(3, l(0, 0), l(1, 0)), { first: 0, last: 1, endLocation: l(1, 0) });
    // A start inside group 0 skips its only object.
    assert.deepEqual(fetchRange(3, l(0, 1), l(2, 1)), { first: 1, last: 2, endLocation: l(2, 1) });
    assert.equal(fetchRange(0, l(0, 0), l(5, 0)), undefined);
    assert.equal(fetchRange(3, l(3, 0), l(5, 0)), undefined);
    assert.equal(fetchRange(3, l(2, 0), l(1, 0)), undefined);
  });
});

describe("joiningRange", () => {
  it("matches the Rust phone", () => {
    assert.deepEqual(joiningRange(l(4, 0), 0, false), { start: l(0, 0), end: l(4, 1) });
    assert.deepEqual(joiningRange(l(4, 0), 1, true), { start: l(3, 0), end: l(4, 1) });
    assert.deepEqual(joiningRange(l(4, 0), 1_000_000, true), { start: l(0, 0), end: l(4, 1) });
    assert.equal(joiningRange(l(4, 0), 5, false), undefined);
    assert.equal(joiningRange(undefined, 0, false), undefined);
  });
});
