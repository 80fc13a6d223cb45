// The runtime fallback from WebTransport to WebRTC (src/phone/fallback.ts,
// docs/design/webrtc.md §4): how a failed attempt is classified, when the
// judge switches (a first failed handshake, heartbeat misses in a row, not
// a relay that went away, not one handshake failure once WebTransport has
// worked), and the stream-open stall watch.
import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { FallbackJudge, HANDSHAKE_FAILURES, HEALTHY_HEARTBEATS, classifyFailure, needsHttpProbe, watchStreamOpens } from "../src/phone/fallback.js";
import { chooseTransport, STALL_MISSES, STALL_STREAM_OPEN_MS, type TransportChoice } from "../src/phone/transport_choice.js";
import type { MoqTransport } from "../src/session/transport.js";

const auto: TransportChoice = { kind: "webtransport", forced: false, why: "this browser has WebTransport" };

describe("runtime fallback", () => {
  it("classifies by how far the attempt got", () => {
    assert.equal(classifyFailure({ auth: false, reached: "http", stalled: false }), "unreachable");
    assert.equal(classifyFailure({ auth: false, reached: "handshake", stalled: false }), "handshake");
    assert.equal(classifyFailure({ auth: false, reached: "setup", stalled: false }), "other", "the relay closed the session before its SETUP");
    assert.equal(classifyFailure({ auth: false, reached: "setup", stalled: true }), "stall", "no SETUP in time");
    assert.equal(classifyFailure({ auth: false, reached: "session", stalled: false }), "other");
    assert.equal(classifyFailure({ auth: false, reached: "session", stalled: true }), "stall");
    assert.equal(classifyFailure({ auth: true, reached: "handshake", stalled: false }), "auth", "a refusal never falls back");
    assert.equal(classifyFailure({ auth: true, reached: "session", stalled: true }), "auth");
    assert.deepEqual(
      (["auth", "unreachable", "handshake", "stall", "other"] as const).filter(needsHttpProbe),
      ["handshake", "stall"],
    );
  });

  it("a first WebTransport attempt failing its handshake falls back at once", () => {
    const j = new FallbackJudge(true);
    assert.equal(j.mayFallBack(auto), true);
    assert.equal(j.decide(auto, "handshake"), true);
  });

  it("never for a forced or WebRTC choice, an auth refusal, an unreachable relay, a relay without the gateway, or without RTCPeerConnection", () => {
    const j = new FallbackJudge(true);
    const forced = chooseTransport({ param: "webtransport", userAgent: "", hasWebTransport: true, hasRtcPeerConnection: true, sticky: null });
    assert.equal(j.mayFallBack(forced), false);
    assert.equal(j.decide(forced, "handshake"), false);
    assert.equal(j.decide({ kind: "webrtc", forced: false, why: "" }, "stall"), false);
    assert.equal(j.mayFallBack(undefined), false);
    for (const f of ["auth", "unreachable", "other"] as const) assert.equal(j.decide(auto, f), false, f);
    const noGw = new FallbackJudge(true);
    noGw.gatewayMissing();
    assert.equal(noGw.mayFallBack(auto), false, "a relay without the gateway");
    assert.equal(noGw.decide(auto, "handshake"), false);
    assert.equal(noGw.decide(auto, "stall"), false);
    const noRtc = new FallbackJudge(false);
    assert.equal(noRtc.mayFallBack(auto), false);
    assert.equal(noRtc.decide(auto, "handshake"), false);
  });

  it(`once WebTransport worked, it takes ${HANDSHAKE_FAILURES} handshake failures in a row; an unreachable relay restarts the count`, () => {
    const j = new FallbackJudge(true);
    j.opened();
    assert.equal(j.decide(auto, "handshake"), false, "a relay restarting");
    assert.equal(j.decide(auto, "unreachable"), false);
    for (let i = 1; i < HANDSHAKE_FAILURES; i++) assert.equal(j.decide(auto, "handshake"), false, `failure ${i}`);
    assert.equal(j.decide(auto, "handshake"), true);
    // A session opening in between restarts the count too.
    const k = new FallbackJudge(true);
    k.opened();
    for (let i = 1; i < HANDSHAKE_FAILURES; i++) k.decide(auto, "handshake");
    k.opened();
    assert.equal(k.decide(auto, "handshake"), false);
  });

  it(`a stall is ${STALL_MISSES} heartbeat misses without ${HEALTHY_HEARTBEATS} answers in a row between; an unreachable relay restarts the count; a stall falls back`, () => {
    const j = new FallbackJudge(true);
    j.missed();
    for (let i = 1; i < HEALTHY_HEARTBEATS; i++) j.answered();
    assert.equal(j.missed(), true, "a session that stalled after a few answers still counts");
    for (let i = 0; i < HEALTHY_HEARTBEATS; i++) j.answered();
    for (let i = 1; i < STALL_MISSES; i++) assert.equal(j.missed(), false, "30 s of health forgave the earlier misses");
    j.decide(auto, "unreachable");
    for (let i = 1; i < STALL_MISSES; i++) assert.equal(j.missed(), false);
    assert.equal(j.missed(), true);
    j.opened();
    assert.equal(j.decide(auto, "stall"), true, "a stall needs no repeat, even after WebTransport worked");
  });

  it(`a stream open slower than ${STALL_STREAM_OPEN_MS} ms is reported; faster ones and failures are not`, async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const pending: Array<(v: unknown) => void> = [];
      const fake = {
        createUnidirectionalStream: () => new Promise((r) => pending.push(r)),
        createBidirectionalStream: () => Promise.reject(new Error("session closed")),
      } as unknown as MoqTransport;
      let slow = 0;
      const t = watchStreamOpens(fake, () => slow++);
      assert.equal(t, fake);
      const quick = t.createUnidirectionalStream();
      mock.timers.tick(STALL_STREAM_OPEN_MS - 1);
      pending.shift()!({});
      await quick;
      mock.timers.tick(10);
      assert.equal(slow, 0, "opened in time");
      await assert.rejects(t.createBidirectionalStream(), /session closed/);
      mock.timers.tick(STALL_STREAM_OPEN_MS + 1);
      assert.equal(slow, 0, "a failed open is not a stall");
      const stuck = t.createUnidirectionalStream();
      mock.timers.tick(STALL_STREAM_OPEN_MS);
      assert.equal(slow, 1, "still pending after the limit");
      pending.shift()!({});
      await stuck;
    } finally {
      mock.timers.reset();
    }
  });
});
