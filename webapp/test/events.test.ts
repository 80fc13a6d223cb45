// The events track's JSON objects (docs/CALLS.md §5); mirrors the unit tests
// of pub-sub-audio's call/event.rs and pins the bytes the Rust phone sends.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeEvent, encodeEvent, EventError, MAX_EVENT_BYTES, parseEvent, type CallEvent } from "../src/call/events.js";

const enc = (s: string) => new TextEncoder().encode(s);
const text = (e: CallEvent) => new TextDecoder().decode(encodeEvent(e));

function rejects(bytes: Uint8Array, kind: "TooLarge" | "Malformed"): void {
  assert.throws(
    () => decodeEvent(bytes),
    (e: unknown) => e instanceof EventError && e.kind === kind,
  );
}

describe("events (CALLS.md §5)", () => {
  it("writes members in the Rust (serde) order", () => {
    assert.equal(text({ t: "reject", device: "d1", reason: "busy" }), '{"t":"reject","device":"d1","reason":"busy"}');
    assert.equal(
      text({ t: "invite", sid: "6f1c", from: "alice", to: "pbx/100", display: "Alice" }),
      '{"t":"invite","sid":"6f1c","from":"alice","to":"pbx/100","display":"Alice"}',
    );
    assert.equal(text({ t: "dtmf", digit: "#", duration_ms: 100 }), '{"t":"dtmf","digit":"#","duration_ms":100}');
    assert.equal(text({ t: "mute", on: true }), '{"t":"mute","on":true}');
    assert.equal(text({ t: "keepalive" }), '{"t":"keepalive"}');
    assert.equal(text({ t: "hangup", reason: 'say "bye"\n' }), '{"t":"hangup","reason":"say \\"bye\\"\\n"}');
    assert.equal(encodeEvent({ t: "unknown", name: "x" }).length, 0, "an unknown event is never sent");
  });

  it("round-trips every event type", () => {
    const all: CallEvent[] = [
      { t: "invite", sid: "s", from: "a", to: "b/1", display: "Ä" },
      { t: "ringing", device: "d" },
      { t: "answer", device: "d" },
      { t: "reject", device: "d", reason: "decline" },
      { t: "connect", device: "d" },
      { t: "cancel", reason: "glare" },
      { t: "hangup", reason: "normal" },
      { t: "dtmf", digit: "A", duration_ms: 250 },
      { t: "hold" },
      { t: "unhold" },
      { t: "mute", on: false },
      { t: "keepalive" },
    ];
    for (const e of all) assert.deepEqual(decodeEvent(encodeEvent(e)), e);
  });

  it("ignores unknown members and fills defaults", () => {
    assert.deepEqual(decodeEvent(enc('{"t":"keepalive"}')), { t: "keepalive" });
    assert.deepEqual(decodeEvent(enc('{"t":"dtmf","digit":"5","extra":1}')), { t: "dtmf", digit: "5", duration_ms: 100 });
    assert.deepEqual(decodeEvent(enc('{"t":"invite","sid":"s","from":"a","to":"b"}')), { t: "invite", sid: "s", from: "a", to: "b", display: "" });
    assert.deepEqual(decodeEvent(enc('{"t":"hangup"}')), { t: "hangup", reason: "" });
    assert.deepEqual(decodeEvent(enc('{"reason":"x","t":"hold"}')), { t: "hold" });
  });

  it("decodes an unknown type as unknown, and rejects bad input", () => {
    assert.deepEqual(decodeEvent(enc('{"t":"video-upgrade","x":1}')), { t: "unknown", name: "video-upgrade" });
    rejects(enc("not json"), "Malformed");
    rejects(enc('{"t":"reject","device":"d"}'), "Malformed");
    rejects(enc('{"t":"reject","device":"d","reason":"maybe"}'), "Malformed");
    rejects(enc('{"t":"dtmf","digit":"55"}'), "Malformed");
    rejects(enc('{"t":"dtmf","digit":"5","duration_ms":-1}'), "Malformed");
    rejects(enc('{"t":"mute","on":"yes"}'), "Malformed");
    rejects(enc('{"t":"invite","sid":"s","from":"a","to":"b","display":null}'), "Malformed");
    rejects(enc('{"t":5}'), "Malformed");
    rejects(enc("[1,2]"), "Malformed");
    rejects(Uint8Array.of(0x7b, 0xff, 0x7d), "Malformed");
    rejects(new Uint8Array(5000).fill(0x20), "TooLarge");
    assert.deepEqual(decodeEvent(enc(`{"t":"hangup","reason":"${"x".repeat(MAX_EVENT_BYTES - 28)}"}`)).t, "hangup");
  });

  it("parseEvent is strict about the type (as serde is)", () => {
    assert.throws(() => parseEvent({ t: "video-upgrade" }), EventError);
    assert.deepEqual(parseEvent({ t: "dtmf", digit: "😀" }), { t: "dtmf", digit: "😀", duration_ms: 100 });
  });
});
