// The playout worklet's shell (src/media/receiver.ts) with the real codec
// (libopus in WebAssembly, src/media/opus.ts): packets in with explicit
// arrival times, render quanta out, as the worklet runs it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FRAME_SAMPLES, OpusFrameDecoder, OpusFrameEncoder } from "../src/media/opus.js";
import { Fifo, Receiver } from "../src/media/receiver.js";

/** A voiced, speech-like frame (120 Hz with harmonics), so libopus codes it with SILK and LBRR. */
function voice(f: number): Float32Array {
  const x = new Float32Array(FRAME_SAMPLES);
  for (let i = 0; i < x.length; i++) {
    const t = (f * FRAME_SAMPLES + i) / 48000;
    x[i] = 0.3 * Math.sin(2 * Math.PI * 120 * t) + 0.15 * Math.sin(2 * Math.PI * 240 * t + 1) + 0.08 * Math.sin(2 * Math.PI * 360 * t + 2);
  }
  return x;
}

async function packets(count: number): Promise<Uint8Array[]> {
  const enc = await OpusFrameEncoder.create(20);
  enc.setVoice(true);
  const out: Uint8Array[] = [];
  for (let f = 0; f < count; f++) out.push(enc.encode(voice(f)));
  enc.free();
  return out;
}

/** Plays `frames` × 20 ms in 128-sample quanta; returns the output. */
function render(rx: Receiver, frames: number): Float32Array {
  const out = new Float32Array(frames * FRAME_SAMPLES);
  const q = new Float32Array(128);
  for (let i = 0; i + 128 <= out.length; i += 128) {
    rx.render(q);
    out.set(q, i);
  }
  return out;
}

function rms(x: Float32Array): number {
  let e = 0;
  for (const v of x) e += v * v;
  return Math.sqrt(e / (x.length || 1));
}

describe("Receiver with libopus", () => {
  it("rebuilds lost frames from the next packet's FEC (the minimum target, 40 ms, keeps it at hand), with no hole", async () => {
    const pk = await packets(70);
    const rx = new Receiver(await OpusFrameDecoder.create());
    // One packet every 20 ms (explicit times), frames 20 and 45 lost; playout starts 40 ms after the first.
    const out = new Float32Array(60 * FRAME_SAMPLES);
    const q = new Float32Array(128);
    let n = 0;
    for (let i = 0; i < out.length; i += 128) {
      const nowMs = 40 + i / 48;
      for (; n < 70 && n * 20 <= nowMs; n++) if (n !== 20 && n !== 45) rx.push(n, undefined, n * 20, pk[n] as Uint8Array);
      rx.render(q);
      out.set(q.subarray(0, Math.min(128, out.length - i)), i);
    }
    const r = rx.report();
    assert.equal(r.fec, 2, JSON.stringify(r));
    assert.equal(r.concealed, 0, JSON.stringify(r));
    assert.equal(r.underruns, 0, JSON.stringify(r));
    assert.equal(r.decodeErrors, 0);
    // Every 10 ms of the played signal carries the voice (none is a silent gap).
    for (let i = 0; i + 480 <= out.length; i += 480) assert.ok(rms(out.subarray(i, i + 480)) > 0.02, `a hole at ${i / 48} ms: rms ${rms(out.subarray(i, i + 480))}`);
  });

  it("a packet libopus refuses is played as PLC and counted", async () => {
    const pk = await packets(10);
    const rx = new Receiver(await OpusFrameDecoder.create());
    for (let n = 0; n < 10; n++) rx.push(n, undefined, n * 20, n === 5 ? new Uint8Array([0xff, 0xff, 0xff]) : (pk[n] as Uint8Array));
    render(rx, 10);
    assert.equal(rx.report().decodeErrors, 1);
  });

  it("plays silence and takes no packet until the decoder exists", async () => {
    const pk = await packets(3);
    const rx = new Receiver(undefined);
    rx.push(0, undefined, 0, pk[0] as Uint8Array);
    assert.equal(rms(render(rx, 1)), 0);
    assert.equal(rx.report().received, 0);
    rx.decoder = await OpusFrameDecoder.create();
    rx.push(1, undefined, 20, pk[1] as Uint8Array);
    render(rx, 1);
    assert.equal(rx.report().played, 1);
  });

  it("reports the old jitter buffer's fields too (depth and target in frames)", async () => {
    const rx = new Receiver(await OpusFrameDecoder.create());
    rx.push(0, undefined, 0, new Uint8Array([1]));
    const r = rx.report();
    assert.equal(r.received, 1);
    assert.equal(r.depth, 1);
    assert.equal(r.target, 2, "40 ms at the start");
  });
});

describe("Fifo", () => {
  it("keeps order across wrap-around and growth", () => {
    const f = new Fifo();
    let next = 0;
    let expect = 0;
    const out = new Float32Array(700);
    for (let round = 0; round < 20; round++) {
      const x = new Float32Array(round % 3 === 0 ? 2000 : 500).map(() => next++);
      f.push(x);
      const got = f.read(out);
      for (let i = 0; i < got; i++) assert.equal(out[i], expect++);
    }
    assert.equal(f.length, next - expect);
  });
});
