// Unit tests of the codec's helpers and of what the phone publishes,
// tied to the shared vectors where the Rust side has the same bytes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { catalogJson, encodeEventStream } from "../src/call/tracks.js";
import { audioFrame, audioLocation, decodeLoc, encodeAudioDatagram, locProperties } from "../src/media/loc.js";
import {
  classifyUniStream,
  compareLocations,
  controlFrames,
  decodeMessage,
  decodeSubscriptionFilter,
  encodeMessage,
  encodeSubscriptionFilter,
  encodeVarint,
  fromHex,
  isU64,
  MAX_U64,
  ParameterType,
  readVarint,
  RequestIds,
  subgroupEvents,
  SubgroupWriter,
  takeFrame,
  toHex,
  tupleHasPrefix,
  tupleToStrings,
  u64,
  u64Add,
  u64Sub,
  uniStreamKind,
  utf8,
  WireError,
  type SubscriptionFilter,
} from "../src/moq/index.js";
import { readableOf, readVectors } from "./helpers.js";
import { arr, obj, str } from "./wire_json.js";

const wire = obj(readVectors("wire.json"));
const vectorHex = (section: string, name: string): string => {
  const e = arr(wire[section]).map(obj).find((x) => x["name"] === name);
  assert.ok(e, `no vector "${name}" in ${section}`);
  return str(e["hex"]);
};

describe("u64 values", () => {
  it("are numbers up to 2^53-1 and bigints above, canonically", () => {
    assert.equal(u64(2n ** 53n - 1n), Number.MAX_SAFE_INTEGER);
    assert.equal(u64(2n ** 53n), 2n ** 53n);
    assert.ok(isU64(5) && isU64(MAX_U64) && !isU64(5n) && !isU64(-1) && !isU64(1.5) && !isU64(MAX_U64 + 1n));
    assert.throws(() => u64(-1), RangeError);
    assert.throws(() => u64(2 ** 53), RangeError);
    assert.throws(() => u64(MAX_U64 + 1n), RangeError);
    assert.throws(() => encodeVarint(-1), RangeError);
    assert.throws(() => encodeVarint(0.5), RangeError);
  });
  it("add and subtract across the number/bigint boundary", () => {
    assert.equal(u64Add(Number.MAX_SAFE_INTEGER, 1), 2n ** 53n);
    assert.equal(u64Add(2n ** 53n, 0), 2n ** 53n);
    assert.equal(u64Add(MAX_U64, 1), undefined);
    assert.equal(u64Sub(2n ** 53n, 1), Number.MAX_SAFE_INTEGER);
    assert.equal(u64Sub(1, 2), undefined);
    // Map keys work because the form is canonical.
    const m = new Map([[u64(7n), "a"]]);
    assert.equal(m.get(7), "a");
  });
  it("vi64 reads longer-than-shortest encodings of small values", () => {
    assert.deepEqual(readVarint(fromHex("c00025")), { value: 37, length: 3 });
    assert.deepEqual(readVarint(fromHex("ff0000000000000025")), { value: 37, length: 9 });
  });
});

describe("control helpers", () => {
  it("subscription filters round-trip (§5.1.2)", () => {
    const filters: SubscriptionFilter[] = [
      { type: 1 },
      { type: 2 },
      { type: 3, start: { group: 5, object: 1 } },
      { type: 4, start: { group: 5, object: 0 }, endGroup: 2 },
    ];
    for (const f of filters) assert.deepEqual(decodeSubscriptionFilter(encodeSubscriptionFilter(f)), f);
    assert.throws(() => decodeSubscriptionFilter(Uint8Array.of(5)), WireError);
    assert.throws(() => decodeSubscriptionFilter(Uint8Array.of(2, 0)), WireError);
  });
  it("refuses to encode what the wire cannot carry", () => {
    const sub = (namespace: string[], params = [] as { type: number; value: number | Uint8Array }[]) =>
      encodeMessage({ type: "SUBSCRIBE", requestId: 0, namespace, name: "x", params });
    assert.throws(() => sub([]), RangeError);
    assert.throws(() => sub(["a", ""]), RangeError);
    assert.throws(() => sub(new Array(33).fill("a")), RangeError);
    assert.throws(() => sub(["a"], [{ type: ParameterType.FORWARD, value: 300 }]), RangeError);
    assert.throws(() => sub(["a"], [{ type: ParameterType.AUTHORIZATION_TOKEN, value: 1 }]), RangeError);
    assert.throws(
      () => encodeMessage({ type: "SUBSCRIBE_TRACKS", requestId: 0, prefix: [], params: [{ type: ParameterType.SUBSCRIBER_PRIORITY, value: 1 }] }),
      RangeError,
    );
    assert.throws(() => encodeMessage({ type: "FETCH", requestId: 0, fetchType: 1, params: [] }), RangeError);
  });
  it("truncates long reason phrases on a character boundary, as moq-wire does", () => {
    const bytes = encodeMessage({ type: "REQUEST_ERROR", code: 0, retryInterval: 0, reason: "é".repeat(600) });
    const m = decodeMessage(takeFrame(bytes)!.frame);
    assert.ok(m.type === "REQUEST_ERROR");
    assert.equal(m.reason, "é".repeat(512));
  });
  it("request ids and tuples", () => {
    const ids = new RequestIds();
    assert.deepEqual([ids.take(), ids.take(), ids.take()], [0, 2, 4]);
    assert.equal(new RequestIds("server").take(), 1);
    assert.ok(tupleHasPrefix(["moq-phone", "v1", "ring", "bob"], [utf8("moq-phone"), "v1"]));
    assert.ok(!tupleHasPrefix(["moq-phone"], ["moq-phone", "v1"]));
    assert.deepEqual(tupleToStrings([utf8("a"), "b"]), ["a", "b"]);
    assert.ok(compareLocations({ group: 1, object: 9 }, { group: 2, object: 0 }) < 0);
    assert.equal(compareLocations({ group: 2n ** 60n, object: 0 }, { group: 2n ** 60n, object: 0 }), 0);
  });
});

describe("unidirectional streams (§3.4)", () => {
  it("classifies stream types", () => {
    assert.equal(uniStreamKind(0x2f00), "control");
    assert.equal(uniStreamKind(0x05), "fetch");
    assert.equal(uniStreamKind(0x132b3e28), "padding");
    assert.equal(uniStreamKind(0x5c), "subgroup");
    assert.throws(() => uniStreamKind(0x16), WireError);
    assert.throws(() => uniStreamKind(0x2f01), WireError);
  });
  it("hands a classified stream to its parser, type bytes included", async () => {
    const setup = fromHex(vectorHex("control", "SETUP from the web phone"));
    const goaway = fromHex(vectorHex("control", "GOAWAY as the relay sends it"));
    const ctl = [setup.subarray(0, 1), setup.subarray(1), goaway];
    const c = await classifyUniStream(readableOf(ctl));
    assert.equal(c.kind, "control");
    const types: string[] = [];
    for await (const f of controlFrames(c.stream)) types.push(decodeMessage(f).type);
    assert.deepEqual(types, ["SETUP", "GOAWAY"]);

    const sg = fromHex(vectorHex("subgroups", "draft-18 §11.6 example"));
    const s = await classifyUniStream(readableOf([sg.subarray(0, 2), sg.subarray(2)]));
    assert.equal(s.kind, "subgroup");
    let objects = 0;
    for await (const e of subgroupEvents(s.stream)) if (e.kind === "object") objects++;
    assert.equal(objects, 2);

    await assert.rejects(classifyUniStream(readableOf([Uint8Array.of(0x80)])), (e: unknown) => e instanceof WireError && e.kind === "Truncated");
    await assert.rejects(classifyUniStream(readableOf([Uint8Array.of(0x16, 0)])), (e: unknown) => e instanceof WireError && e.kind === "InvalidType");
  });
});

describe("what the phone publishes (CALLS.md §5-§6)", () => {
  it("an audio frame is the shared datagram vector", () => {
    const opus = fromHex("f8fffe");
    assert.equal(toHex(encodeAudioDatagram(2, 51, 1763900000000000, opus)), vectorHex("datagrams", "audio frame 51 (group 1, object 1) with LOC timestamp"));
    assert.equal(toHex(encodeAudioDatagram(2, 0, 1763900000000000, opus)), vectorHex("datagrams", "audio frame 0: Object ID 0 omitted"));
  });
  it("maps frame counters to groups of 50", () => {
    assert.deepEqual(audioLocation(0), { group: 0, object: 0 });
    assert.deepEqual(audioLocation(49), { group: 0, object: 49 });
    assert.deepEqual(audioLocation(50), { group: 1, object: 0 });
    assert.equal(audioFrame(3, 7), 157);
    assert.equal(audioFrame(3, 50), undefined);
    assert.throws(() => audioLocation(-1), RangeError);
  });
  it("reads LOC objects as pub-sub-audio does", () => {
    const p = locProperties(1_763_900_000_000_000);
    assert.equal(p[0], 0x10);
    assert.equal(decodeLoc(p, Uint8Array.of(0xf8, 0xff)).captureUs, 1_763_900_000_000_000);
    assert.throws(() => decodeLoc(Uint8Array.of(0x11, 0x09), Uint8Array.of(1)), (e: unknown) => e instanceof WireError && e.kind === "Malformed");
    assert.throws(() => decodeLoc(p, new Uint8Array(0)), (e: unknown) => e instanceof WireError && e.what === "LOC object");
    assert.equal(decodeLoc(new Uint8Array(0), Uint8Array.of(1)).captureUs, undefined);
  });
  it("an event is the shared subgroup vector", () => {
    assert.equal(toHex(encodeEventStream(3, 1, { t: "ringing", device: "d1" })), vectorHex("subgroups", "an events object as the web phone sends it (CALLS.md §5)"));
  });
  it("subgroup writers refuse descending IDs and stray properties", () => {
    const w = SubgroupWriter.open({ trackAlias: 1, groupId: 0, subgroupId: 0, publisherPriority: 0 });
    w.encodeObject(3, Uint8Array.of(1));
    assert.throws(() => w.encodeObject(3, Uint8Array.of(1)), RangeError);
    assert.throws(() => w.encodeObject(4, Uint8Array.of(1), Uint8Array.of(0x10, 0)), RangeError);
  });
  it("the catalog is byte-identical to the Rust phone's", () => {
    assert.equal(
      catalogJson("moq-phone/v1/ring/bob/ab12/alice"),
      '{"tracks":[{"bitrate":64000,"channelConfig":"1","codec":"opus","isLive":true,"name":"audio","namespace":"moq-phone/v1/ring/bob/ab12/alice","packaging":"loc","role":"audio","samplerate":48000}],"version":"draft-01"}',
    );
  });
});
