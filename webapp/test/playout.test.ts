// The playout controller (src/media/playout.ts) and its delay estimator
// (src/media/estimator.ts), quality.md §3.3, driven by explicit time:
// arrivals carry their ms, the shell below pulls 128-sample quanta as the
// worklet does. The estimator cases are those of pub-sub-audio's
// playout/estimator.rs, so both languages are held to the same numbers.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Estimator } from "../src/media/estimator.js";
import { DEFAULT_CONFIG, PlayoutController, type Op } from "../src/media/playout.js";

/** A shell without audio: a stretch changes a frame by `stretch` samples per period. */
class Shell {
  readonly ops: Op[] = [];
  constructor(
    readonly c: PlayoutController,
    readonly stretch = 240,
  ) {}

  /** Renders `ms` of audio in 128-sample quanta; the ops it took. */
  play(ms: number): Op[] {
    const start = this.ops.length;
    for (let q = 0; q < (ms * 48) / 128; q++) {
      while (this.c.fifoSamples() < 128) {
        const op = this.c.next();
        if (op.op === "idle") break;
        this.ops.push(op);
        if (op.op === "expand") this.c.stretched(op.n, this.stretch);
        if (op.op === "accelerate") this.c.stretched(op.n, -this.stretch * (op.fast ? 2 : 1));
      }
      this.c.pulled(128);
    }
    return this.ops.slice(start);
  }
}

const kinds = (ops: Op[]) => ops.map((o) => o.op);

/** Frames `from..to` (exclusive) arriving every 20 ms from `t0`, except `lost`. */
function feed(c: PlayoutController, from: number, to: number, t0: number, lost: number[] = []): void {
  for (let n = from; n < to; n++) if (!lost.includes(n)) c.onObject(n, undefined, t0 + (n - from) * 20);
}

describe("Estimator (the cases of estimator.rs)", () => {
  const LIM = { startMs: 40, minMs: 20, maxMs: 400, marginMs: 10 };

  it("starts at the start target and falls to the floor on a steady stream", () => {
    const e = new Estimator(LIM);
    assert.equal(e.targetMs(), 40);
    for (let n = 0; n < 100; n++) assert.equal(e.arrival(n, 1000 + 20 * n), 0);
    assert.equal(e.targetMs(), 40, "2 s: 7 intervals pushed at the fast start; the start mass is still > 5 %");
    for (let n = 100; n < 200; n++) e.arrival(n, 1000 + 20 * n);
    assert.equal(e.targetMs(), 20, "margin 10 + bucket 0 (5), clamped to 20");
  });

  it("measures relative delay against the earliest arrival of the last two seconds", () => {
    const e = new Estimator(LIM);
    assert.equal(e.arrival(0, 100), 0);
    assert.equal(e.arrival(1, 150), 30);
    assert.equal(e.arrival(2, 140), 0);
    assert.equal(e.arrival(99, 100 + 99 * 20 + 7), 7);
    assert.equal(e.arrival(101, 100 + 101 * 20 + 7), 7, "frames 0 and 1 left the window, frame 2 (a = 100) is still in it");
    assert.equal(e.arrival(102, 100 + 102 * 20 + 7), 0, "now frame 2 left too");
  });

  it("raises at once within the attack budget, and the raise fades", () => {
    const e = new Estimator(LIM);
    for (let n = 0; n < 200; n++) e.arrival(n, 20 * n);
    assert.equal(e.targetMs(), 20);
    assert.equal(e.arrival(200, 4000 + 100), 100);
    assert.equal(e.targetMs(), 80, "the whole budget: 60 ms");
    // 20 ms later only 1.2 ms of budget came back: the next 100 ms late frame adds 1 ms.
    assert.equal(e.arrival(201, 4020 + 100), 100);
    assert.equal(e.targetMs(), 81);
    for (let n = 202; n < 700; n++) e.arrival(n, 20 * n + 100);
    assert.equal(e.targetMs(), 20);
  });

  it("a jittery link sets the 95th percentile; a calm one brings it back under 30 ms within 10 s", () => {
    const e = new Estimator(LIM);
    for (let n = 0; n < 500; n++) e.arrival(n, 20 * n + (n % 12 === 5 ? 40 : 0));
    assert.equal(e.targetMs(), 55, "bucket 40..45 → 45 + margin 10");
    let back: number | undefined;
    for (let n = 500; n < 1100; n++) {
      e.arrival(n, 20 * n);
      if (back === undefined && e.targetMs() < 30) back = (n - 500) * 20;
    }
    assert.ok(back !== undefined && back <= 10000, `back under 30 ms after ${back} ms`);
  });

  it("reset forgets the histogram and the window", () => {
    const e = new Estimator(LIM);
    for (let n = 0; n < 500; n++) e.arrival(n, 20 * n + (n % 3 === 0 ? 150 : 0));
    assert.ok(e.targetMs() > 150);
    e.reset();
    assert.equal(e.targetMs(), 40);
    assert.equal(e.arrival(7, 5), 0);
  });
});

describe("PlayoutController", () => {
  it("the target's floor is 40 ms (the pull clock's own jitter), not the design's 20", () => {
    assert.equal(DEFAULT_CONFIG.minTargetMs, 40);
    const c = new PlayoutController();
    feed(c, 0, 250, 0);
    assert.equal(c.targetMs(), 40, "a calm link (quantile 5 + margin 10) sits on the floor");
  });

  it("plays the first object at once, then builds the level by expanding", () => {
    const c = new PlayoutController();
    const s = new Shell(c);
    assert.deepEqual(s.play(10), [], "nothing arrived: idle");
    c.onObject(100, undefined, 0);
    assert.deepEqual(s.play(3)[0], { op: "expand", n: 100 }, "decoded at once, expanded: nothing lies beyond it");
    assert.equal(c.stats().played, 1);
  });

  it("decodes in frame order whatever the arrival order", () => {
    const c = new PlayoutController();
    const s = new Shell(c, 0);
    for (const [n, t] of [[10, 0], [12, 1], [11, 2], [13, 3]] as const) c.onObject(n, undefined, t);
    assert.deepEqual(s.play(80).map((o) => ("n" in o ? o.n : -1)), [10, 11, 12, 13]);
  });

  it("a single loss is rebuilt from the next packet's FEC; two in a row: PLC, then FEC", () => {
    const c = new PlayoutController();
    const s = new Shell(c, 0);
    feed(c, 0, 10, 0, [3, 6, 7]);
    const ops = s.play(200);
    assert.deepEqual(ops[3], { op: "fec", lost: 3, from: 4 });
    assert.deepEqual(ops[6], { op: "conceal", n: 6 });
    assert.deepEqual(ops[7], { op: "fec", lost: 7, from: 8 });
    const st = c.stats();
    assert.deepEqual([st.fec, st.concealed, st.underruns], [2, 1, 0]);
    assert.equal(c.holds(4), false, "frame 4 was played: its packet may go");
  });

  it("a frame that comes after its turn is late and refused, a duplicate too", () => {
    const c = new PlayoutController();
    const s = new Shell(c, 0);
    feed(c, 0, 5, 0, [2]);
    s.play(60);
    assert.equal(c.onObject(2, undefined, 200), false);
    assert.equal(c.stats().late, 1);
    assert.equal(c.onObject(4, undefined, 200), false);
  });

  it("run dry, it conceals without moving on: a frame that was only late still plays", () => {
    const c = new PlayoutController();
    const s = new Shell(c, 0);
    c.onObject(0, undefined, 0);
    assert.deepEqual(kinds(s.play(40)), ["expand", "conceal"]);
    assert.equal(c.stats().underruns, 0, "the level was never built: running dry then is not counted");
    c.onObject(1, undefined, 45);
    assert.equal((s.play(20)[0] as { n: number }).n, 1, "frame 1 was due, so it plays when it comes");
    assert.equal(c.stats().skipped, 0);
  });

  it("after an outage: PLC for 100 ms, then silence; the first object back plays at once, the gap skipped", () => {
    const c = new PlayoutController();
    const s = new Shell(c, 0);
    feed(c, 0, 5, 0);
    const ops = s.play(1000);
    assert.equal(ops.filter((o) => o.op === "conceal").length, DEFAULT_CONFIG.holdConcealFrames);
    assert.equal(c.isIdle(), true);
    assert.equal(c.stats().underruns, 0, "not yet: a stream that ends did not underrun");
    c.onObject(55, undefined, 1100);
    assert.equal((s.play(20)[0] as { n: number }).n, 55);
    assert.equal(c.stats().skipped, 50);
    assert.equal(c.stats().underruns, 1, "counted when the stream resumes, once per dry run");
    s.play(1000);
    assert.equal(c.stats().underruns, 1, "its end (nothing more came) is no second one");
  });

  it("a queue delivered at once is skipped down to the target, not stretched away", () => {
    const c = new PlayoutController();
    const s = new Shell(c);
    for (let n = 0; n < 40; n++) c.onObject(n, undefined, 0);
    const first = s.play(3)[0] as { n: number };
    assert.ok(first.n > 30, `skipped to near the newest: ${JSON.stringify(first)}`);
    assert.ok(c.stats().skipped > 30);
  });

  it("a level far above the target accelerates two periods at once, above it one", () => {
    const c = new PlayoutController();
    const s = new Shell(c);
    // 12 frames (220 ms beyond the first) at once: ≥ 4 × high (200 ms) but within the excess bound.
    for (let n = 0; n < 12; n++) c.onObject(n, undefined, 0);
    const ops = s.play(100);
    assert.deepEqual(ops[0], { op: "accelerate", n: 0, fast: true });
    assert.ok(ops.some((o) => o.op === "accelerate" && !o.fast));
    assert.equal(c.stats().expandMs, 0);
  });

  it("a stretch moves the smoothed level at once (NetEQ compensates its filtered level so)", () => {
    const c = new PlayoutController();
    const s = new Shell(c);
    feed(c, 0, 50, 0);
    s.play(500);
    const before = c.stats().levelMs;
    c.stretched(25, -480);
    assert.equal(c.stats().levelMs, before - 10, "10 ms removed");
    c.stretched(25, 240);
    assert.equal(c.stats().levelMs, before - 5, "5 ms added back");
  });

  it("a capture-time jump against the frame numbers resets the estimator; going back in numbers rebases", () => {
    const c = new PlayoutController();
    const s = new Shell(c);
    for (let n = 0; n < 100; n++) c.onObject(n, n * 20000, n * 20 + (n === 80 ? 150 : 0));
    s.play(1700);
    assert.ok(c.targetMs() > DEFAULT_CONFIG.startTargetMs, `raised by the 150 ms late frame: ${c.targetMs()}`);
    c.onObject(100, 100 * 20000 + 5_000_000, 2000);
    assert.equal(c.targetMs(), DEFAULT_CONFIG.startTargetMs, "back to the start target");
    assert.equal(c.stats().resets, 1);
    assert.equal(c.onObject(80, 90_000_000, 2020), false, "an older frame number close behind (a reordered copy) is no jump, whatever its capture time");
    assert.equal(c.stats().resets, 1);
    assert.equal(c.onObject(0, 95_000_000, 2040), true, "a restarted sender, its frame 0 far behind: taken, the stream rebased");
    assert.equal(c.stats().resets, 2);
    assert.equal(c.holds(0), true);
  });

  it("a copy of a frame already played is a duplicate, not a late frame", () => {
    const c = new PlayoutController();
    const s = new Shell(c, 0);
    feed(c, 0, 10, 0);
    s.play(100);
    assert.equal(c.onObject(2, undefined, 300), false);
    assert.equal(c.stats().late, 0);
  });

  it("strays far from the stream are refused, until a run of them says the stream moved", () => {
    const c = new PlayoutController();
    feed(c, 0, 3, 0);
    assert.equal(c.onObject(100_000, undefined, 60), false);
    assert.equal(c.onObject(Number.MAX_SAFE_INTEGER + 2, undefined, 60), false);
    assert.equal(c.stats().refused, 2);
    let kept = false;
    for (let i = 1; i < DEFAULT_CONFIG.strayRun; i++) kept = c.onObject(100_000 + i, undefined, 60 + 20 * i);
    assert.equal(kept, true, "the tenth stray in a row rebases");
  });

  it("holds at most bufferFrames packets", () => {
    const c = new PlayoutController();
    for (let n = 0; n < 100; n++) c.onObject(n, undefined, 0);
    assert.equal(c.heldLen(), DEFAULT_CONFIG.bufferFrames);
    assert.equal(c.holds(0), false);
  });
});
