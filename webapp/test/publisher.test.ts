// FETCH ranges a phone answers as the original publisher of its log tracks
// (src/session/publisher.ts), on the same cases as pub-sub-audio's
// phone/tracks.rs tests; a live track's subscriber alias.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Subscribe } from "../src/moq/control.js";
import { fetchRange, joiningRange, LiveTrack } from "../src/session/publisher.js";
import type { RequestStream } from "../src/session/request.js";
import type { MoqSession } from "../src/session/session.js";

const l = (group: number, object: number) => ({ group, object });

describe("fetchRange", () => {
  it("matches the Rust phone", () => {
    // Three events (groups 0..=2); everything, as the gap fill asks.
    assert.deepEqual(fetchRange(3, l(0, 0), l(2 ** 32, 0)), { first: 0, last: 2, endLocation: l(2, 1) });
    // A hole [1, 2): end is "last plus one".
    assert.deepEqual(fetchRange(3, l(1, 0), l(1, 1)), { first: 1, last: 1, endLocation: l(1, 1) });
    // Whole group 1 (object 0 in End Location).
    assert.deepEqual(fetchRange(3, l(0, 0), l(1, 0)), { first: 0, last: 1, endLocation: l(1, 0) });
    // A start inside group 0 skips its only object.
    assert.deepEqual(fetchRange(3, l(0, 1), l(2, 1)), { first: 1, last: 2, endLocation: l(2, 1) });
    assert.equal(fetchRange(0, l(0, 0), l(5, 0)), undefined);
    assert.equal(fetchRange(3, l(3, 0), l(5, 0)), undefined);
    assert.equal(fetchRange(3, l(2, 0), l(1, 0)), undefined);
  });
});

describe("joiningRange", () => {
  it("matches the Rust phone", () => {
    assert.deepEqual(joiningRange(l(4, 0), 0, false), { start: l(0, 0), end: l(4, 1) });
    assert.deepEqual(joiningRange(l(4, 0), 1, true), { start: l(3, 0), end: l(4, 1) });
    assert.deepEqual(joiningRange(l(4, 0), 1_000_000, true), { start: l(0, 0), end: l(4, 1) });
    assert.equal(joiningRange(l(4, 0), 5, false), undefined);
    assert.equal(joiningRange(undefined, 0, false), undefined);
  });
});

describe("LiveTrack subscribers (the WebRTC gateway's audio-out alias follows them)", () => {
  /** A SUBSCRIBE's request stream: SUBSCRIBE_OK goes out; `end()` is the relay unsubscribing. */
  function requestStream() {
    let end!: () => void;
    const ended = new Promise<void>((r) => (end = r));
    const sent: unknown[] = [];
    // A draft-18 stream: the relay's FIN (`end`) cancels, so `cancelled` is `ended`.
    return { stream: { send: async (m: unknown) => void sent.push(m), ended, cancelled: ended, version: 18, close: () => undefined } as unknown as RequestStream, end, sent };
  }

  it("names the newest subscription's alias and reports every change", async () => {
    let alias = 7;
    const datagrams: Uint8Array[] = [];
    const session = { takeAlias: () => alias++, sendDatagram: (d: Uint8Array) => void datagrams.push(d) } as unknown as MoqSession;
    const track = new LiveTrack("audio", session, 128);
    const seen: Array<number | undefined> = [];
    track.onSubscribers = () => seen.push(track.alias);
    assert.equal(track.alias, undefined);
    const a = requestStream();
    await track.accept({ requestId: 2 } as unknown as Subscribe, a.stream);
    assert.equal(track.alias, 7);
    assert.equal((a.sent[0] as { trackAlias: number }).trackAlias, 7);
    const b = requestStream();
    await track.accept({ requestId: 4 } as unknown as Subscribe, b.stream);
    assert.equal(track.alias, 8);
    b.end();
    await b.stream.ended;
    await Promise.resolve();
    assert.equal(track.alias, 7);
    await track.end();
    assert.equal(track.alias, undefined);
    assert.deepEqual(seen, [7, 8, 7, undefined]);
  });
});
