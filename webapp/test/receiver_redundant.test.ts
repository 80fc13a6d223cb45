// The playout shell (src/media/receiver.ts) with REDUNDANT_FRAME copies and
// the loss meter (quality.md §4), with the real codec: a burst of two lost
// frames is played from the copies later frames carry, and reported as loss.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FRAME_SAMPLES, OpusFrameDecoder, OpusFrameEncoder } from "../src/media/opus.js";
import { Receiver } from "../src/media/receiver.js";

function voice(f: number): Float32Array {
  const x = new Float32Array(FRAME_SAMPLES);
  for (let i = 0; i < x.length; i++) x[i] = 0.3 * Math.sin((2 * Math.PI * 120 * (f * FRAME_SAMPLES + i)) / 48000);
  return x;
}

describe("Receiver with REDUNDANT_FRAME copies", () => {
  it("plays a burst of two from the copies (k=2) and reports it as loss before repair", async () => {
    const enc = await OpusFrameEncoder.create(20);
    const packets = Array.from({ length: 40 }, (_, f) => enc.encode(voice(f)));
    enc.free();
    const rx = new Receiver(await OpusFrameDecoder.create());
    const lost = new Set([20, 21]);
    const q = new Float32Array(128);
    let t = 0;
    let rendered = 0;
    const deliver = (n: number) => {
      if (lost.has(n)) return;
      rx.push(n, undefined, t, packets[n] as Uint8Array);
      if (n >= 2) rx.pushRedundant(n - 2, t, packets[n - 2] as Uint8Array);
    };
    // Three frames ahead of playout, then one per 20 ms of rendering.
    for (let n = 0; n < 3; n++) deliver(n);
    for (let n = 3; n < 40; n++) {
      t += 20;
      deliver(n);
      // The render clock keeps the arrivals' pace: 48 samples per ms, in quanta.
      for (; rendered + 128 <= t * 48; rendered += 128) rx.render(q);
    }
    const st = rx.report();
    assert.equal(st.redundant, 2, JSON.stringify(st));
    assert.equal(st.concealed, 0, JSON.stringify(st));
    const r = rx.rxReport(t);
    assert.deepEqual([r?.n, r?.loss, r?.burst, r?.red], [39, 50, 20, 2]);
  });
});
