// The playout jitter buffer (src/media/jitter.ts): start threshold, order,
// loss concealment, late frames, underrun and latency trimming.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FRAME_SAMPLES, HARD_LIMIT, MIN_TARGET, PlayoutBuffer, WINDOW } from "../src/media/jitter.js";

const frame = (v: number) => new Float32Array(FRAME_SAMPLES).fill(v);

/** Renders whole frames; returns the first sample of each. */
function play(jb: PlayoutBuffer, frames: number): number[] {
  const out: number[] = [];
  const q = new Float32Array(FRAME_SAMPLES);
  for (let i = 0; i < frames; i++) {
    jb.render(q);
    out.push(q[0] as number);
  }
  return out;
}

describe("PlayoutBuffer", () => {
  it("waits for the target, then plays in frame order", () => {
    const jb = new PlayoutBuffer();
    jb.push(11, frame(0.11));
    assert.deepEqual(play(jb, 1), [0], "one frame is below the target: silence");
    jb.push(10, frame(0.1));
    jb.push(12, frame(0.12));
    assert.deepEqual(play(jb, 3).map((x) => Math.round(x * 100)), [10, 11, 12]);
    assert.equal(jb.stats.played, 3);
  });

  it("renders across 128-sample quanta", () => {
    const jb = new PlayoutBuffer();
    for (let n = 0; n < MIN_TARGET; n++) jb.push(n, frame(n + 1));
    const q = new Float32Array(128);
    const seen = new Set<number>();
    for (let i = 0; i < (MIN_TARGET * FRAME_SAMPLES) / 128; i++) {
      jb.render(q);
      for (const x of q) seen.add(x);
    }
    assert.deepEqual([...seen].sort(), [1, 2]);
  });

  it("conceals a lost frame with the last one, faded, and drops it if it comes late", () => {
    const jb = new PlayoutBuffer();
    jb.push(0, frame(0.8));
    jb.push(2, frame(0.2));
    jb.push(3, frame(0.3));
    const out = play(jb, 3).map((x) => Math.round(x * 100) / 100);
    assert.deepEqual(out, [0.8, 0.4, 0.2]);
    assert.equal(jb.stats.concealed, 1);
    jb.push(1, frame(0.1));
    assert.equal(jb.stats.late, 1);
  });

  it("an underrun plays silence, raises the target and waits for it", () => {
    const jb = new PlayoutBuffer();
    jb.push(0, frame(0.5));
    jb.push(1, frame(0.5));
    assert.deepEqual(play(jb, 3), [0.5, 0.5, 0]);
    assert.equal(jb.stats.underruns, 1);
    assert.equal(jb.target, MIN_TARGET + 1);
    jb.push(2, frame(0.5));
    jb.push(3, frame(0.5));
    assert.deepEqual(play(jb, 1), [0], "two frames are below the raised target");
    jb.push(4, frame(0.5));
    assert.deepEqual(play(jb, 3), [0.5, 0.5, 0.5]);
  });

  it("drops latency nobody needed: a burst is trimmed back to the margin within a window", () => {
    const jb = new PlayoutBuffer();
    // A burst of 6 frames, then one frame per frame played: 5 frames too many.
    let n = 0;
    for (; n < 6; n++) jb.push(n, frame(n));
    for (let i = 0; i < WINDOW; i++) {
      jb.push(n, frame(n));
      n++;
      play(jb, 1);
    }
    assert.equal(jb.depth, jb.target - 1, "back to the margin");
    assert.equal(jb.stats.dropped, 6 - (MIN_TARGET - 1));
    assert.equal(jb.stats.underruns, 0);
  });

  it("steady arrival keeps every frame", () => {
    const jb = new PlayoutBuffer();
    jb.push(0, frame(0));
    for (let n = 1; n < 5 * WINDOW; n++) {
      jb.push(n, frame(n));
      play(jb, 1);
    }
    assert.equal(jb.stats.dropped, 0);
    assert.equal(jb.stats.played, 5 * WINDOW - 1);
  });

  it("the target follows the measured arrival jitter, both ways", () => {
    const jb = new PlayoutBuffer();
    let n = 0;
    const feed = (frames: number, lateMs: (n: number) => number) => {
      for (let i = 0; i < frames; i++, n++) {
        jb.push(n, frame(0.1), n * 20 + lateMs(n));
        play(jb, 1);
      }
    };
    feed(2 * WINDOW, () => 0);
    assert.equal(jb.jitterFrames(), 1);
    assert.equal(jb.target, MIN_TARGET, "steady arrival: the smallest target");
    // Every 10th frame 70 ms late (10 %): above the 98th percentile, so the target covers it.
    feed(5 * WINDOW, (k) => (k % 10 === 0 ? 70 : 0));
    assert.equal(jb.jitterFrames(), 5);
    assert.equal(jb.target, 5);
    // Calm again: once the late frames leave the 5 s window the target comes down.
    feed(6 * WINDOW, () => 0);
    assert.equal(jb.target, MIN_TARGET);
  });

  it("never holds more than HARD_LIMIT frames", () => {
    const jb = new PlayoutBuffer();
    for (let n = 0; n < 40; n++) jb.push(n, frame(n));
    assert.equal(jb.depth, HARD_LIMIT);
    assert.equal(play(jb, 1)[0], 40 - HARD_LIMIT, "playout starts at the oldest kept frame");
  });
});
