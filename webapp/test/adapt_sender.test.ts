// The web phone's sender-side shell of the adaptation policy
// (src/media/adapt.ts SenderAdapter, quality.md §4.2): settings change on
// reports, REDUNDANT_FRAME copies are the packets sent k frames earlier.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { INITIAL_SETTINGS, SenderAdapter } from "../src/media/adapt.js";

const pkt = (i: number) => Uint8Array.of(0xf8, i);

describe("SenderAdapter", () => {
  it("sends no copy before a report asks for one", () => {
    const a = new SenderAdapter();
    for (let i = 0; i < 5; i++) assert.equal(a.next(pkt(i)), undefined);
    assert.deepEqual(a.settings, INITIAL_SETTINGS);
  });

  it("a bursty report: the encoder is re-tuned, then frame n carries frame n-2", () => {
    const a = new SenderAdapter();
    assert.deepEqual(a.report({ loss: 50, burst: 30 }, 0), { loss_perc: 8, bitrate: 64000, fec: true, k: 2 });
    for (const t of [500, 1000, 1500, 2000]) assert.equal(a.report({ loss: 50, burst: 30 }, t), undefined, "nothing new for the encoder");
    assert.equal(a.settings.k, 2);
    assert.equal(a.next(pkt(0)), undefined, "nothing sent 2 frames ago yet");
    assert.equal(a.next(pkt(1)), undefined);
    assert.deepEqual(a.next(pkt(2)), { k: 2, opus: pkt(0) });
    assert.deepEqual(a.next(pkt(3)), { k: 2, opus: pkt(1) });
    a.restart();
    assert.equal(a.next(pkt(9)), undefined, "a restarted send has no history");
    assert.deepEqual(a.stats, { reports: 5, maxLossPerc: 8, maxK: 2, redundantSent: 2 });
  });
});
