// The keepalive's `rx` member (quality.md §4.1, CALLS.md §5): the same JSON
// as pub-sub-audio's call/event.rs (its test `keepalive_carries_the_listeners_report`),
// and the call machine attaching the report the shell hands in.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeEvent, encodeEvent } from "../src/call/events.js";
import { Call, type Output } from "../src/call/machine.js";
import type { RxReport } from "../src/media/feedback.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const zero: RxReport = { n: 0, loss: 0, burst: 0, late: 0, fec: 0, red: 0, conceal_ms: 0, target_ms: 0 };

describe("keepalive rx", () => {
  it("round-trips in the Rust phone's wire form", () => {
    const rx: RxReport = { n: 4711, loss: 50, burst: 25, late: 10, fec: 3, red: 2, conceal_ms: 40, target_ms: 60 };
    const text = '{"t":"keepalive","rx":{"n":4711,"loss":50,"burst":25,"late":10,"fec":3,"red":2,"conceal_ms":40,"target_ms":60}}';
    assert.equal(dec(encodeEvent({ t: "keepalive", rx })), text);
    assert.deepEqual(decodeEvent(enc(text)), { t: "keepalive", rx });
    assert.equal(dec(encodeEvent({ t: "keepalive" })), '{"t":"keepalive"}');
  });

  it("ignores a newer peer's members and fills missing ones with 0", () => {
    assert.deepEqual(decodeEvent(enc('{"t":"keepalive","rx":{"loss":7,"m2e_ms":90},"x":1}')), { t: "keepalive", rx: { ...zero, loss: 7 } });
  });

  it("refuses a report that is not an object of counts", () => {
    assert.throws(() => decodeEvent(enc('{"t":"keepalive","rx":5}')));
    assert.throws(() => decodeEvent(enc('{"t":"keepalive","rx":{"loss":-1}}')));
  });

  it("the machine attaches the report handed in to its keepalives", () => {
    const { call } = Call.incoming({ sid: "s1", me: "d1", now: 0 });
    call.handle({ in: "peer", device: null, event: { t: "invite", sid: "s1", from: "alice", to: "bob", display: "" } }, 10);
    call.handle({ in: "user", action: "answer" }, 20);
    const up = call.handle({ in: "peer", device: null, event: { t: "connect", device: "d1" } }, 30);
    assert.ok(up.some((o) => o.out === "established"));
    const keepalives = (out: Output[]) => out.flatMap((o) => (o.out === "send" && o.event.t === "keepalive" ? [o.event] : []));
    let t = call.pollTimeout() as number;
    assert.deepEqual(keepalives(call.handleTimeout(t)), [{ t: "keepalive" }]);
    const rx = { ...zero, n: 99, loss: 50, burst: 25 };
    call.setRx(rx);
    t = call.pollTimeout() as number;
    assert.deepEqual(keepalives(call.handleTimeout(t)), [{ t: "keepalive", rx }]);
  });
});
