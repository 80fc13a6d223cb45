// Listener feedback and sender adaptation between two web phones (issue 19,
// docs/design/quality.md §4): Alice's QUIC crosses `moq-bench impair` with
// bursty loss each way (bench/src/link.rs profile bursty5: 5 % in bursts of
// 3 on average). Bob's playout worklet measures the loss of Alice's audio
// and his keepalives carry it (rx); Alice's engine must raise her encoder's
// expected loss above the fixed 5 % and send REDUNDANT_FRAME copies, and
// Bob's playout must play lost frames from them. Counts are asserted after
// 16 s of recorded audio, not times.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

let relay;
let proxy;
let front;
let A;
let B;
let alice;
let bob;

describe("sender adaptation through bursty loss (moq-bench impair bursty5)", () => {
  before(async () => {
    relay = await L.startRelay(await L.freePort());
    const port = await L.freePort();
    proxy = await L.startImpair(port, relay.port, "bursty5");
    front = await L.tcpFront(port, relay.port);
    A = await L.launchBrowser(L.writeToneWav("alice-adapt.wav", 440, { toneS: 60 }));
    B = await L.launchBrowser(L.writeToneWav("bob-adapt.wav", 740, { toneS: 60 }));
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

  test("bob's reports raise alice's FEC and turn on redundancy; bob plays lost frames from the copies", async () => {
    await L.waitState(alice, "alice sees bob", (s) => s.presence.includes("bob"));
    const sid = await L.connectCall(alice, bob, "bob");
    await L.recordFor(bob, 16);
    const a = await alice.evaluate(() => window.__moqTest.stats());
    const b = await bob.evaluate(() => window.__moqTest.stats());
    const why = JSON.stringify({ aliceSends: a.codec.adapt, bobHears: b.playout });
    console.log(why);
    assert.ok(a.codec.adapt.reports > 0, `no report from bob reached alice: ${why}`);
    assert.ok(a.codec.adapt.maxLossPerc > 5, `alice's expected loss never rose above 5 %: ${why}`);
    assert.ok(a.codec.adapt.maxK >= 1 && a.codec.adapt.redundantSent > 0, `alice sent no REDUNDANT_FRAME: ${why}`);
    assert.ok(b.playout.redundant > 0, `bob played no frame from a copy: ${why}`);
    await L.hangUpCall(alice, bob, sid);
  });
});
