// The track capture's framer (src/media/framer.ts): 10 ms chunks of the
// microphone track in, 20 ms frames with wall-clock capture times out.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Framer } from "../src/media/framer.js";

const ramp = (from: number, n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => from + i);

describe("Framer", () => {
  it("joins two 10 ms chunks into one frame, samples in order", () => {
    const f = new Framer();
    assert.deepEqual(f.push(ramp(0, 480), 1_000_000, 5_010_000), []);
    const out = f.push(ramp(480, 480), 1_010_000, 5_020_000);
    assert.equal(out.length, 1);
    assert.deepEqual(Array.from(out[0]!.pcm), Array.from(ramp(0, 960)));
  });

  it("stamps a frame's first sample on the wall clock, from the earliest read seen", () => {
    const f = new Framer();
    // Read 2 ms after the first chunk ended: wall = media + 4 s + 2 ms.
    f.push(ramp(0, 480), 1_000_000, 5_012_000);
    const [a] = f.push(ramp(0, 480), 1_010_000, 5_022_000);
    assert.equal(a!.captureUs, 5_002_000);
    // A late read (a busy worker) does not move the stamps; an earlier one lowers the offset.
    f.push(ramp(0, 480), 1_020_000, 5_060_000);
    const [b] = f.push(ramp(0, 480), 1_030_000, 5_040_500);
    assert.equal(b!.captureUs, 5_020_000 + 500);
  });

  it("cuts chunks of any size, and a chunk spanning two frames starts the second at its sample", () => {
    const f = new Framer();
    const out = f.push(ramp(0, 2000), 0, 1_000_000);
    assert.equal(out.length, 2);
    assert.equal(out[1]!.pcm[0], 960);
    // 2000 samples end at 41.67 ms of media time; the second frame starts at 20 ms.
    assert.equal(out[1]!.captureUs - out[0]!.captureUs, 20_000);
    const more = f.push(ramp(2000, 880), 41_667, 1_020_000);
    assert.equal(more.length, 1);
    assert.equal(more[0]!.pcm[0], 1920);
    assert.equal(more[0]!.pcm[959], 2879);
  });

  it("reset drops a partial frame", () => {
    const f = new Framer();
    f.push(ramp(0, 480), 0, 10_000);
    f.reset();
    assert.deepEqual(f.push(ramp(7, 480), 0, 10_000), []);
    assert.equal(f.push(ramp(0, 480), 10_000, 20_000)[0]!.pcm[0], 7);
  });
});
