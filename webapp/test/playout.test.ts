// The playout controller (src/media/playout.ts, quality.md §3.3), driven by
// explicit time: arrivals carry their ms, pulls carry what the shell holds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_CONFIG, PlayoutController, type Op } from "../src/media/playout.js";

/**
 * A shell without audio: frames of 960 samples, a stretch changes them by
 * `stretch` samples; `play(ms)` renders that much in 128-sample quanta and
 * returns the ops it took.
 */
class Shell {
  fifo = 0;
  readonly ops: Op[] = [];
  constructor(
    readonly c: PlayoutController,
    readonly stretch = 240,
  ) {}

  play(ms: number): Op[] {
    const start = this.ops.length;
    for (let q = 0; q < (ms * 48) / 128; q++) {
      while (this.fifo < 128) {
        const op = this.c.next(this.fifo);
        if (op.op === "idle") break;
        this.ops.push(op);
        let len = 960;
        if (op.op === "expand") len += this.stretch;
        if (op.op === "accelerate") len -= this.stretch * op.periods;
        if (op.op === "expand" || op.op === "accelerate") this.c.stretched(op.n, len - 960);
        this.fifo += len;
      }
      this.fifo = Math.max(0, this.fifo - 128);
    }
    return this.ops.slice(start);
  }
}

const kinds = (ops: Op[]) => ops.map((o) => o.op);

/** Frames `from..to` (exclusive) arriving on time every 20 ms from `t0`, except `lost`. */
function feed(c: PlayoutController, from: number, to: number, t0: number, lost: number[] = [], jitter: (n: number) => number = () => 0): void {
  for (let n = from; n < to; n++) if (!lost.includes(n)) c.onObject(n, undefined, t0 + (n - from) * 20 + jitter(n));
}

describe("PlayoutController", () => {
  it("plays the first object at once, then builds the level by expanding", () => {
    const c = new PlayoutController();
    const s = new Shell(c);
    assert.deepEqual(s.play(10), [], "nothing arrived: idle, no op");
    c.onObject(100, undefined, 0);
    assert.deepEqual(s.play(3)[0], { op: "expand", n: 100 }, "decoded at once (the level is below the 40 ms start target, so expanded)");
    assert.equal(c.stats.played, 1);
    assert.equal(c.stats.targetMs, DEFAULT_CONFIG.startTargetMs);
  });

  it("decodes in frame order whatever the arrival order", () => {
    const c = new PlayoutController();
    const s = new Shell(c, 0);
    for (const [n, t] of [[11, 0], [10, 1], [13, 2], [12, 3]] as const) c.onObject(n, undefined, t);
    const ns = s.play(80).map((o) => ("n" in o ? o.n : -1));
    assert.deepEqual(ns, [10, 11, 12, 13]);
  });

  it("a single loss is rebuilt from the next packet's FEC; two in a row: PLC, then FEC", () => {
    const c = new PlayoutController();
    const s = new Shell(c, 0);
    feed(c, 0, 10, 0, [3, 6, 7]);
    const ops = s.play(200);
    assert.deepEqual(ops[3], { op: "fec", n: 3, from: 4 });
    assert.deepEqual(ops[6], { op: "conceal", n: 6 });
    assert.deepEqual(ops[7], { op: "fec", n: 7, from: 8 });
    assert.equal(c.stats.fec, 2);
    assert.equal(c.stats.concealed, 1);
    assert.equal(c.stats.underruns, 0);
  });

  it("a frame that comes after its turn is late and refused", () => {
    const c = new PlayoutController();
    const s = new Shell(c, 0);
    feed(c, 0, 5, 0, [2]);
    s.play(60);
    assert.equal(c.onObject(2, undefined, 200), false);
    assert.equal(c.stats.late, 1);
    assert.equal(c.onObject(4, undefined, 200), false, "a duplicate is refused too");
  });

  it("run dry, it conceals without moving on: a frame that was only late still plays", () => {
    const c = new PlayoutController();
    const s = new Shell(c, 0);
    c.onObject(0, undefined, 0);
    assert.deepEqual(kinds(s.play(40)), ["expand", "conceal"]);
    assert.equal(c.stats.underruns, 1);
    c.onObject(1, undefined, 45);
    assert.equal((s.play(20)[0] as { n: number }).n, 1, "frame 1 was due, so it plays when it comes: the delay grew by one frame");
    assert.equal(c.stats.skipped, 0);
  });

  it("after an outage: PLC for 100 ms, then silence; the first object back plays at once, the gap is skipped", () => {
    const c = new PlayoutController();
    const s = new Shell(c, 0);
    feed(c, 0, 5, 0);
    const ops = s.play(1000);
    assert.equal(ops.filter((o) => o.op === "conceal").length, DEFAULT_CONFIG.maxConcealFrames);
    assert.equal(c.stats.underruns, 1, "one underrun per dry run");
    c.onObject(55, undefined, 1100);
    assert.equal(kinds(s.play(20))[0], "expand", "decoded (and expanded: the level is low) at once");
    assert.equal(c.stats.skipped, 50);
  });

  it("losses raise the target to two frames + margin, so FEC has its next packet", () => {
    const c = new PlayoutController();
    const s = new Shell(c, 0);
    feed(c, 0, 500, 0);
    s.play(9960);
    assert.equal(c.stats.targetMs, DEFAULT_CONFIG.minTargetMs, "a calm clean link sits at the minimum");
    feed(c, 500, 510, 10000, [505]);
    s.play(200);
    assert.equal(c.stats.targetMs, DEFAULT_CONFIG.lossFloorMs + DEFAULT_CONFIG.marginMs);
  });

  it("jitter raises the target at once (fast attack, ≤ 60 ms per second) and a calm link brings it under 30 ms within 10 s", () => {
    const c = new PlayoutController();
    const s = new Shell(c);
    feed(c, 0, 100, 0);
    s.play(2000);
    const before = c.stats.targetMs;
    c.onObject(100, undefined, 2000 + 100);
    assert.equal(c.stats.targetMs, before + 60, "a 100 ms late frame raises T by the 60 ms the second allows");
    // 10 s of 0..60 ms jitter (deterministic), then 10 s calm.
    let x = 1;
    const jitter = () => ((x = (x * 48271) % 2147483647) % 61);
    feed(c, 101, 600, 2120, [], jitter);
    s.play(10000);
    assert.ok(c.stats.targetMs >= 60, `T follows the jitter: ${c.stats.targetMs}`);
    feed(c, 600, 1100, 12100);
    s.play(10000);
    assert.ok(c.stats.targetMs < 30, `T back under 30 ms: ${c.stats.targetMs}`);
  });

  it("the level follows the target by stretching: expands below it, accelerates above it", () => {
    const c = new PlayoutController();
    const s = new Shell(c);
    // 20 frames arrive at once (a burst after a stall): far above a 40 ms target.
    for (let n = 0; n < 20; n++) c.onObject(n, undefined, 0);
    const ops = s.play(100);
    assert.deepEqual(ops[0], { op: "accelerate", n: 0, periods: 2 }, "≥ 4 × high: two periods at once");
    assert.ok(c.stats.accelMs > 0);
    assert.equal(c.stats.expandMs, 0);
  });

  it("a capture-time jump against the frame numbers (hold, a restarted sender) resets the estimator", () => {
    const c = new PlayoutController();
    const s = new Shell(c);
    for (let n = 0; n < 50; n++) c.onObject(n, n * 20000, n * 20 + (n === 30 ? 150 : 0));
    s.play(1000);
    assert.ok(c.stats.targetMs > DEFAULT_CONFIG.startTargetMs, `raised by the 150 ms late frame: ${c.stats.targetMs}`);
    c.onObject(50, 50 * 20000 + 5_000_000, 1000);
    assert.equal(c.stats.targetMs, DEFAULT_CONFIG.startTargetMs, "back to the start target");
  });

  it("reset forgets the stream", () => {
    const c = new PlayoutController();
    feed(c, 0, 10, 0);
    c.reset();
    assert.equal(c.position, undefined);
    assert.equal(c.depth, 0);
    assert.deepEqual(c.next(0), { op: "idle" });
  });
});
