// Browser ↔ browser calls through a real moq-relay, in headless Chromium
// (docs/CALLS.md §3–§6): presence, ringing with the caller's name, audio
// both ways (each page decodes the other's fake-microphone tone), mute,
// hold, DTMF, and every way a call ends: hangup from either side, decline,
// cancel, busy.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

const ALICE_HZ = 440;
const BOB_HZ = 740;
const TONES = [ALICE_HZ, BOB_HZ, 620];

let relay;
let A;
let B;
let alice;
let bob;

/** Records `seconds` of what `page` plays and returns the last `tail` seconds. */
async function hear(page, seconds = 2, tail = 1.2) {
  await L.recordFor(page, seconds);
  const r = await L.recording(page);
  return r.samples.subarray(r.samples.length - Math.round(tail * r.rate));
}

async function assertHears(page, hz, who) {
  const t = L.dominantTone(await hear(page), 48000, TONES);
  assert.equal(t.freq, hz, `${who} should hear ${hz} Hz, got ${JSON.stringify(t)}`);
  assert.ok(t.share > 0.9 && t.rms > 0.01, `${who}: tone too weak or impure: ${JSON.stringify(t)}`);
}

async function assertSilence(page, who) {
  const t = L.dominantTone(await hear(page), 48000, TONES);
  assert.ok(t.rms < 0.005, `${who} should hear silence, got ${JSON.stringify(t)}`);
}

/** `from` dials `to` (a user name); resolves with the sid once `callee` rings. */
async function ring(from, callee, to) {
  const sid = await L.dial(from, to);
  await L.waitState(callee, "the callee ringing", (x) => x.call?.sid === sid && x.call.phase === "ringing");
  return sid;
}

async function established(sid, ...pages) {
  for (const p of pages) await L.waitState(p, "established", (x) => x.call?.sid === sid && x.call.phase === "established");
}

async function ended(page, sid, ms = 15000) {
  return (await L.waitState(page, `call ${sid} ended`, (x) => x.call?.sid === sid && x.call.phase === "ended", ms)).call.ended;
}

describe("browser ↔ browser", () => {
  before(async () => {
    relay = await L.startRelay(await L.freePort());
    A = await L.launchBrowser(L.writeToneWav("alice.wav", ALICE_HZ));
    B = await L.launchBrowser(L.writeToneWav("bob.wav", BOB_HZ));
    alice = await L.openPhone(A.context, relay);
    bob = await L.openPhone(B.context, relay);
    await L.signIn(alice, "alice", "Alice Liddell");
    await L.signIn(bob, "bob");
  });

  after(async () => {
    await A?.browser.close();
    await B?.browser.close();
    await relay?.stop();
  });

  test("presence: each sees the other online, with the display name", async () => {
    await L.waitState(alice, "alice sees bob", (s) => s.presence.includes("bob"));
    await L.waitState(bob, "bob sees alice", (s) => s.presence.includes("alice"));
    await L.until("Alice's display name in bob's list", async () => (await bob.textContent('#presence li[data-user="alice"] .name')) === "Alice Liddell");
    assert.equal(await alice.isVisible("#presence-empty"), false);
  });

  test("call with audio both ways, mute, hold, DTMF; the caller hangs up", async () => {
    const sid = await ring(alice, bob, "bob");
    // Incoming screen: the caller's display name, Answer / Decline.
    assert.equal(await bob.textContent("#call-peer"), "Alice Liddell");
    assert.equal(await bob.textContent("#call-state"), "Incoming call");
    assert.ok(await bob.isVisible("#answer"));
    await L.until("alice hears ringback", async () => (await alice.textContent("#call-state")) === "Ringing…");
    await bob.click("#answer");
    await established(sid, alice, bob);
    await L.until("the call timer runs", async () => /^00:0[1-9]$/.test(await alice.textContent("#call-timer")));

    await assertHears(alice, BOB_HZ, "alice");
    await assertHears(bob, ALICE_HZ, "bob");
    // Chromium has MediaStreamTrackProcessor: frames are cut from the track, not the capture worklet (framer.ts).
    for (const [who, p] of [["alice", alice], ["bob", bob]]) {
      const codec = (await p.evaluate(() => window.__moqTest.stats())).codec;
      assert.equal(codec.source, "track", `${who}'s capture source: ${JSON.stringify(codec)}`);
    }

    // Mute: bob's microphone is replaced by silence; the call goes on.
    await bob.click("#mute");
    await L.waitState(bob, "bob muted", (s) => s.call.muted);
    await assertSilence(alice, "alice (bob muted)");
    await bob.click("#mute");
    await assertHears(alice, BOB_HZ, "alice (bob unmuted)");

    // Hold: alice stops sending (CALLS.md §6) and bob is told.
    await alice.click("#hold");
    await L.waitState(bob, "bob sees the hold", (s) => s.call.peerHeld);
    assert.ok(await bob.isVisible('[data-flag="peer-held"]'));
    await assertSilence(bob, "bob (alice holds)");
    await alice.click("#hold");
    await L.waitState(bob, "bob sees the unhold", (s) => !s.call.peerHeld);
    await assertHears(bob, ALICE_HZ, "bob (alice resumed)");

    // DTMF from the keypad.
    await alice.click("#keypad-toggle");
    for (const k of ["1", "2", "#"]) await alice.click(`.keys button[data-key="${k}"]`);
    await L.waitState(bob, "bob gets the digits", (s) => s.call.dtmfIn === "12#");
    assert.equal(await alice.textContent("#dtmf-sent"), "12#");

    await alice.click("#hangup");
    assert.deepEqual(await ended(bob, sid), { reason: "hangup", by_peer: true });
    assert.deepEqual(await ended(alice, sid), { reason: "hangup", by_peer: false });
    assert.match(await bob.textContent('[data-flag="end"]'), /Alice Liddell hung up/);
  });

  test("the callee hangs up", async () => {
    const sid = await ring(alice, bob, "bob");
    await bob.click("#answer");
    await established(sid, alice, bob);
    await bob.click("#hangup");
    assert.deepEqual(await ended(alice, sid), { reason: "hangup", by_peer: true });
    assert.deepEqual(await ended(bob, sid), { reason: "hangup", by_peer: false });
    assert.match(await alice.textContent('[data-flag="end"]'), /bob hung up/);
  });

  test("decline", async () => {
    const sid = await ring(alice, bob, "bob");
    await bob.click("#decline");
    assert.equal((await ended(alice, sid)).reason, "declined");
    assert.equal((await ended(bob, sid)).reason, "declined");
    assert.match(await alice.textContent('[data-flag="end"]'), /bob declined the call/);
  });

  test("cancel: the caller gives up while it rings", async () => {
    const sid = await ring(alice, bob, "bob");
    assert.equal(await alice.textContent("#hangup-label"), "Cancel");
    await alice.click("#hangup");
    assert.equal((await ended(alice, sid)).reason, "cancelled");
    assert.equal((await ended(bob, sid)).reason, "cancelled");
    assert.match(await bob.textContent('[data-flag="end"]'), /Missed call/);
  });

  test("busy: a third caller gets busy while bob is in a call", async () => {
    const sid = await ring(alice, bob, "bob");
    await bob.click("#answer");
    await established(sid, alice, bob);
    const carol = L.startCliPhone(relay, ["--as", "carol", "call", "bob"]);
    try {
      await carol.line(/^ended: busy$/, 20000);
      assert.equal(await carol.exited, 1);
    } finally {
      await carol.kill();
    }
    await L.until("bob is told of the missed call", async () => /Missed call from carol/.test(await bob.textContent("#notice-text")));
    // The call with alice goes on.
    assert.equal((await L.state(bob)).call.phase, "established");
    await assertHears(bob, ALICE_HZ, "bob (after the busy call)");
    await alice.click("#hangup");
    await ended(bob, sid);
  });

  test("two devices of one user ring; the first answer wins, the other stops (answered elsewhere)", async () => {
    const bob2 = await L.openPhone(B.context, relay);
    try {
      await L.signIn(bob2, "bob");
      const sid = await ring(alice, bob, "bob");
      await L.waitState(bob2, "bob's second device rings", (x) => x.call?.sid === sid && x.call.phase === "ringing");
      await bob2.click("#answer");
      await established(sid, alice, bob2);
      assert.equal((await ended(bob, sid)).reason, "answered-elsewhere");
      await assertHears(alice, BOB_HZ, "alice (talking to bob's second device)");
      await alice.click("#hangup");
      await ended(bob2, sid);
    } finally {
      await bob2.click("#signout");
      await bob2.close();
    }
  });

  test("offline callee and a malformed address", async () => {
    await L.toHome(alice);
    await alice.fill("#dial-input", "Not An Address!");
    await alice.click("#dial-button");
    await L.until("the address error", async () => /not an address/.test((await alice.textContent("#dial-error")) ?? ""));
    const sid = await L.dial(alice, "nobody");
    assert.equal((await ended(alice, sid)).reason, "offline");
    assert.match(await alice.textContent('[data-flag="end"]'), /nobody is not online/);
  });
});
