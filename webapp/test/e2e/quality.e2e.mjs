// Call quality through a lossy link (issue 19, docs/design/quality.md §3.3,
// §6 commit 5): two web phones call each other while Alice's QUIC crosses
// `moq-bench impair` with 5 % random loss each way (bench/src/link.rs
// profile loss5), so Bob hears Alice through loss on the sender's link and
// Alice hears Bob through loss on the listener's link. Each playout must
// have rebuilt lost frames from the next packet's Opus FEC (libopus in the
// worklet), still play the peer's tone cleanly, and not have run dry in
// bursts.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

const ALICE_HZ = 440;
const BOB_HZ = 740;
const TONES = [ALICE_HZ, BOB_HZ, 620];

let relay;
let proxy;
let front;
let A;
let B;
let alice;
let bob;

describe("call quality through 5 % loss each way (moq-bench impair loss5)", () => {
  before(async () => {
    relay = await L.startRelay(await L.freePort());
    const port = await L.freePort();
    proxy = await L.startImpair(port, relay.port, "loss5");
    front = await L.tcpFront(port, relay.port);
    A = await L.launchBrowser(L.writeToneWav("alice.wav", ALICE_HZ));
    B = await L.launchBrowser(L.writeToneWav("bob.wav", BOB_HZ));
    alice = await L.openPhone(A.context, front);
    bob = await L.openPhone(B.context, relay);
    await L.signIn(alice, "alice");
    await L.signIn(bob, "bob");
  });

  after(async () => {
    await A?.browser.close();
    await B?.browser.close();
    proxy?.stop();
    await front?.close();
    await relay?.stop();
  });

  test("FEC rebuilds lost frames on both sides, the tones stay clean, no run of underruns", async () => {
    await L.waitState(alice, "alice sees bob", (s) => s.presence.includes("bob"));
    const sid = await L.connectCall(alice, bob, "bob");
    // 8 s of audio each way (~400 frames, ~20 of them lost at 5 %).
    const [toBob, toAlice] = await Promise.all([L.hear(bob, 8, 6), L.hear(alice, 8, 6)]);
    const stats = { bob: (await bob.evaluate(() => window.__moqTest.stats())).playout, alice: (await alice.evaluate(() => window.__moqTest.stats())).playout };
    const why = JSON.stringify(stats);
    for (const [who, st, heard, hz] of [
      ["bob (loss on the sender's link)", stats.bob, toBob, ALICE_HZ],
      ["alice (loss on the listener's link)", stats.alice, toAlice, BOB_HZ],
    ]) {
      // Repairs: FEC, or a REDUNDANT_FRAME copy once the peer's reports turned redundancy on (quality.md §4.2).
      const repaired = st.fec + st.redundant;
      assert.ok(repaired > 0, `${who}: no frame was rebuilt from FEC or a copy: ${why}`);
      assert.ok(st.played > 10 * (repaired + st.concealed), `${who}: most frames should be decoded from their own packet: ${why}`);
      // A single loss is FEC's; running dry is left to the rarer double loss (~0.25 % of frames at 5 %).
      assert.ok(st.underruns <= 2 + repaired / 4, `${who}: the playout ran dry ${st.underruns} times for ${repaired} repairs: ${why}`);
      // The tone, 20 ms at a time: no stretch of silence or noise where a frame was lost.
      for (let i = 0; i + 960 <= heard.length; i += 960 * 25) L.assertTone(L.dominantTone(heard.subarray(i, i + 960 * 25), 48000, TONES), hz, `${who}, ${i / 48000} s in`);
    }
    await L.hangUpCall(alice, bob, sid);
  });
});
