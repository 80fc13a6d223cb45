// Draft-22 control messages (src/moq/draft22.ts, draft22_params.ts,
// location_filter.ts; docs/DRAFT22.md §3-§6). The byte strings are those of
// moq-wire's wire/src/draft22/tests.rs and docs/DRAFT22.md, produced with
// aiomoqt 0.13.3's draft-22 codec: they check this codec against a foreign
// one. They stay here, not in docs/vectors/wire.json, whose format the Rust
// vector tests (wire/tests/vectors.rs) parse with no notion of a version.
// Draft-18 is checked unchanged beside them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeFill,
  decodeMessage,
  decodeRequest,
  decodeResponse,
  decodeSetup,
  decodeSubscriptionFilter,
  encodeMessage,
  encodeSubscriptionFilter,
  FetchType,
  fetchEndFromInclusive,
  fetchEndToInclusive,
  fetchRangeToLocation,
  FilterType,
  fromHex,
  LocationFilterType,
  locationToFetchRange,
  locationToSubscription,
  MAX_U64,
  ParameterType,
  RequestErrorCode,
  subscriptionToLocation,
  takeFrame,
  toHex,
  UNMAPPED_LOCATION_FILTER,
  unsupported22,
  utf8,
  WireError,
  type ControlMessage,
  type Frame,
  type LocationFilter,
  type Parameter,
  type SubscriptionFilter,
  type Version,
} from "../src/moq/index.js";

const P = ParameterType;

/** The one complete message `hex` holds. */
function frameOf(hex: string): Frame {
  const b = fromHex(hex);
  const t = takeFrame(b);
  assert.ok(t, `incomplete message ${hex}`);
  assert.equal(t.length, b.length, "bytes after the message");
  return t.frame;
}

const enc = (m: ControlMessage, v: Version): string => toHex(encodeMessage(m, v));
const dec = (hex: string, v: Version): ControlMessage => decodeMessage(frameOf(hex), v);
const malformed = (e: unknown): boolean => e instanceof WireError && e.kind === "Malformed";
const invalidType = (e: unknown): boolean => e instanceof WireError && e.kind === "InvalidType";

/** The draft-18 SUBSCRIPTION_FILTER a decoded message's parameters carry, if any. */
function filterIn(params: readonly Parameter[]): SubscriptionFilter | undefined {
  const v = params.find((p) => p.type === P.SUBSCRIPTION_FILTER)?.value;
  return v instanceof Uint8Array ? decodeSubscriptionFilter(v) : undefined;
}

/** SUBSCRIBE id 0, namespace "ns", name "t", with one LOCATION_FILTER of value `lf` (hex). */
function subscribeWith(lf: string): string {
  const body = `00 01 02 6e73 01 74 01 21 ${lf}`.replace(/\s+/g, "");
  return `0300${(body.length / 2).toString(16).padStart(2, "0")}${body}`;
}

describe("draft-22 GOAWAY (docs/DRAFT22.md §4)", () => {
  it("has no Request ID", () => {
    const g: ControlMessage = { type: "GOAWAY", uri: "", timeoutMs: 0, requestId: 1 };
    assert.equal(enc(g, 22), "1000020000");
    assert.equal(enc(g, 18), "100003000001");
    assert.deepEqual(dec("1000020000", 22), { type: "GOAWAY", uri: "", timeoutMs: 0 });
  });

  it("refuses one that carries a Request ID", () => {
    assert.throws(() => dec("100003000001", 22), malformed);
    assert.deepEqual(dec("100003000001", 18), { type: "GOAWAY", uri: "", timeoutMs: 0, requestId: 1 });
  });
});

describe("draft-22 PUBLISH_OK is a REQUEST_OK with EXPIRES only (docs/DRAFT22.md §3, §4)", () => {
  it("leaves FORWARD and GROUP_ORDER out, and is never 0x1E", () => {
    const params: Parameter[] = [
      { type: P.FORWARD, value: 1 },
      { type: P.GROUP_ORDER, value: 1 },
    ];
    assert.equal(enc({ type: "PUBLISH_OK", params }, 22), "07000100");
    assert.equal(enc({ type: "PUBLISH_OK", params: [...params, { type: P.EXPIRES, value: 5 }] }, 22), "0700030108" + "05");
    assert.deepEqual(dec("070003010805", 22), { type: "REQUEST_OK", params: [{ type: P.EXPIRES, value: 5 }], properties: new Uint8Array(0) });
  });

  it("draft-18 is unchanged: 0x1E with the subscription parameters", () => {
    assert.equal(enc({ type: "PUBLISH_OK", params: [{ type: P.FORWARD, value: 1 }] }, 18), "1e0003011001");
    assert.equal(dec("1e0003011001", 18).type, "PUBLISH_OK");
    assert.throws(() => dec("1e0003011001", 22), invalidType);
  });
});

describe("draft-22 SUBSCRIBE_OK parameter scope (docs/DRAFT22.md §4, §5.2)", () => {
  it("writes EXPIRES and LARGEST_OBJECT only", () => {
    const m: ControlMessage = {
      type: "SUBSCRIBE_OK",
      trackAlias: 2,
      params: [
        { type: P.GROUP_ORDER, value: 1 },
        { type: P.EXPIRES, value: 0 },
        { type: P.LARGEST_OBJECT, value: { group: 3, object: 4 } },
      ],
      properties: new Uint8Array(0),
    };
    // Alias 2, two parameters: EXPIRES 0, LARGEST_OBJECT {3, 4}.
    assert.equal(enc(m, 22), "04000702020800010304");
    const back = dec("04000702020800010304", 22);
    assert.equal(back.type, "SUBSCRIBE_OK");
    assert.deepEqual(back.type === "SUBSCRIBE_OK" && back.params, [
      { type: P.EXPIRES, value: 0 },
      { type: P.LARGEST_OBJECT, value: { group: 3, object: 4 } },
    ]);
    // Draft-18 keeps the GROUP_ORDER the phone's habits put there.
    assert.equal(enc(m, 18), "04000902030800010304" + "1901");
  });

  it("refuses a reply with a parameter outside its scope", () => {
    // SUBSCRIBE_OK alias 1 carrying GROUP_ORDER 1: fine at draft-18, a violation at draft-22.
    assert.throws(() => dec("04000401012201", 22), malformed);
    assert.equal(dec("04000401012201", 18).type, "SUBSCRIBE_OK");
    // FETCH_OK with one parameter.
    assert.throws(() => dec("180006000504010800", 22), malformed);
  });
});

describe("draft-22 PUBLISH_STATE_NOTIFY (docs/DRAFT22.md §4)", () => {
  it("reads LARGEST_OBJECT and FORWARD", () => {
    const m = dec("220006020903040700", 22);
    assert.deepEqual(m, {
      type: "PUBLISH_STATE_NOTIFY",
      params: [
        { type: P.LARGEST_OBJECT, value: { group: 3, object: 4 } },
        { type: P.FORWARD, value: 0 },
      ],
    });
    assert.equal(enc(m, 22), "220006020903040700");
  });

  it("does not exist at draft-18", () => {
    assert.throws(() => dec("220006020903040700", 18), invalidType);
    assert.throws(() => encodeMessage({ type: "PUBLISH_STATE_NOTIFY", params: [] }, 18), RangeError);
  });

  it("refuses parameters a notify may not carry", () => {
    // EXPIRES 0.
    assert.throws(() => dec("22000301" + "0800", 22), malformed);
  });
});

describe("draft-22 FETCH (docs/DRAFT22.md §4)", () => {
  const wholeGroup5 = "16000d0401026e7301740121030500" + "00";

  it("of a whole group: no Fetch Type, the range an inclusive LOCATION_FILTER", () => {
    const m = dec(wholeGroup5, 22);
    assert.deepEqual(m, {
      type: "FETCH",
      requestId: 4,
      fetchType: FetchType.STANDALONE,
      standalone: { namespace: [utf8("ns")], name: utf8("t"), start: { group: 5, object: 0 }, end: { group: 5, object: 0 } },
      params: [],
    });
    assert.equal(enc(m, 22), wholeGroup5);
    // The same request at draft-18: Fetch Type 1, End Location group 5 object 0 (the whole group).
    assert.equal(enc(m, 18), "16000d040101026e7301740500050000");
    assert.equal(unsupported22(m.type === "FETCH" ? m.params : []), undefined);
  });

  it("with an end inside a group, and a parameter before the filter", () => {
    const m: ControlMessage = {
      type: "FETCH",
      requestId: 2,
      fetchType: FetchType.STANDALONE,
      standalone: { namespace: ["ns"], name: "t", start: { group: 1, object: 0 }, end: { group: 3, object: 1 } },
      params: [{ type: P.SUBSCRIBER_PRIORITY, value: 7 }],
    };
    // SUBSCRIBER_PRIORITY 7 (0x20), then LOCATION_FILTER (delta 1) ABSOLUTE_RANGE {1,0} +2 groups, object 0 inclusive.
    const hex = enc(m, 22);
    assert.equal(hex.slice(6), "02" + "01026e730174" + "02" + "2007" + "01" + "0401000200");
    const back = dec(hex, 22);
    assert.deepEqual(back.type === "FETCH" && back.standalone?.end, { group: 3, object: 1 });
  });

  it("with no filter is the whole track; one relative to the Largest Object is refused", () => {
    const m = dec("1600070001016e017400", 22);
    assert.deepEqual(m.type === "FETCH" && m.standalone, { namespace: [utf8("n")], name: utf8("t"), start: { group: 0, object: 0 }, end: { group: MAX_U64, object: 0 } });
    const rel = dec("1600090001016e0174012105", 22);
    assert.ok(rel.type === "FETCH" && rel.params.some((p) => p.type === UNMAPPED_LOCATION_FILTER));
    assert.equal(unsupported22(rel.type === "FETCH" ? rel.params : [])?.code, RequestErrorCode.NOT_SUPPORTED);
  });

  it("has no Joining form", () => {
    const joining: ControlMessage = { type: "FETCH", requestId: 2, fetchType: FetchType.ABSOLUTE_JOINING, joining: { joiningRequestId: 0, joiningStart: 1 }, params: [] };
    assert.throws(() => encodeMessage(joining, 22), RangeError);
    assert.equal(enc(joining, 18), "1600050203000100");
  });
});

describe("draft-22 FETCH_OK (docs/DRAFT22.md §4)", () => {
  const ok: ControlMessage = { type: "FETCH_OK", endOfTrack: false, endLocation: { group: 5, object: 5 }, params: [{ type: P.EXPIRES, value: 1 }], properties: new Uint8Array(0) };

  it("writes the End Location inclusive and no parameters", () => {
    assert.equal(enc(ok, 22), "18000400050400");
    assert.deepEqual(dec("18000400050400", 22), { type: "FETCH_OK", endOfTrack: false, endLocation: { group: 5, object: 5 }, params: [], properties: new Uint8Array(0) });
  });

  it("draft-18 is unchanged: last plus one, parameters kept", () => {
    assert.equal(enc({ ...ok, params: [] }, 18), "18000400050500");
    assert.equal(enc(ok, 18), "1800060005050108" + "01");
  });

  it("maps a whole group to its last possible Object and back", () => {
    assert.deepEqual(fetchEndToInclusive({ group: 2, object: 0 }), { group: 2, object: MAX_U64 });
    assert.deepEqual(fetchEndFromInclusive({ group: 2, object: MAX_U64 }), { group: 2, object: 0 });
    assert.deepEqual(fetchEndFromInclusive(fetchEndToInclusive({ group: 9, object: 3 })), { group: 9, object: 3 });
  });
});

describe("draft-22 LOCATION_FILTER (docs/DRAFT22.md §5.1)", () => {
  it("maps onto the draft-18 SUBSCRIPTION_FILTER where one means the same", () => {
    const cases: [string, SubscriptionFilter | undefined][] = [
      ["05", { type: FilterType.LARGEST_OBJECT }],
      ["0100", { type: FilterType.NEXT_GROUP_START }],
      ["020501", { type: FilterType.ABSOLUTE_START, start: { group: 5, object: 1 } }],
      ["03050102", { type: FilterType.ABSOLUTE_RANGE, start: { group: 5, object: 1 }, endGroup: 2 }],
      ["00", undefined],
    ];
    for (const [lf, want] of cases) {
      const m = dec(subscribeWith(lf), 22);
      assert.equal(m.type, "SUBSCRIBE");
      assert.deepEqual(m.type === "SUBSCRIBE" && filterIn(m.params), want, lf);
      // And back: the draft-22 bytes again (NONE is the parameter left out).
      if (want) assert.equal(enc(m, 22), subscribeWith(lf), lf);
    }
  });

  it("keeps one with no draft-18 form apart, to be refused", () => {
    for (const lf of ["0102", "0405010203"]) {
      const m = dec(subscribeWith(lf), 22);
      const params = m.type === "SUBSCRIBE" ? m.params : [];
      assert.equal(filterIn(params), undefined, lf);
      assert.equal(unsupported22(params)?.code, RequestErrorCode.NOT_SUPPORTED, lf);
      assert.equal(enc(m, 22), subscribeWith(lf), `${lf} written back as it came`);
    }
  });

  it("an unknown Location Filter Type is a violation", () => {
    assert.throws(() => decodeRequest(frameOf(subscribeWith("06")), 22), malformed);
  });

  it("writes a draft-18 filter in draft-22 form (the codes 2, 3 and 4 differ)", () => {
    const filter = encodeSubscriptionFilter({ type: FilterType.ABSOLUTE_RANGE, start: { group: 5, object: 1 }, endGroup: 2 });
    const m: ControlMessage = {
      type: "SUBSCRIBE",
      requestId: 2,
      namespace: ["ns"],
      name: "t",
      params: [
        { type: P.SUBSCRIPTION_FILTER, value: filter },
        { type: P.FORWARD, value: 1 },
      ],
    };
    // Two parameters: FORWARD 1 (0x10), then LOCATION_FILTER (delta 0x11) ABSOLUTE_GROUP_END 5.1 + 2.
    assert.equal(enc(m, 22).slice(6), "0201026e730174021001110305" + "0102");
    // Draft-18: Length-prefixed, AbsoluteRange is type 4.
    assert.equal(enc(m, 18).slice(6), "0201026e73017402100111040405" + "0102");
    const back = dec(enc(m, 22), 22);
    assert.deepEqual(back.type === "SUBSCRIBE" && filterIn(back.params), { type: FilterType.ABSOLUTE_RANGE, start: { group: 5, object: 1 }, endGroup: 2 });
  });

  it("a draft-18 SUBSCRIBE read, written at draft-22, read and written at draft-18 again is the same bytes", () => {
    // Largest Object filter: d18 `21 01 02`, d22 `21 05`.
    const d18 = "03000d0001026e730174021001" + "110102";
    const m = dec(d18, 18);
    const d22 = enc(m, 22);
    assert.equal(d22, "03000c0001026e730174021001" + "1105");
    assert.equal(enc(dec(d22, 22), 18), d18);
  });

  it("filter helpers agree with moq-wire's filter.rs", () => {
    const abs = (group: number, object: number) => ({ group, object });
    const map: [LocationFilter, ReturnType<typeof locationToFetchRange>][] = [
      [{ type: LocationFilterType.NONE }, { start: abs(0, 0), end: { group: MAX_U64, object: 0 } }],
      [{ type: LocationFilterType.ABSOLUTE_START, start: abs(2, 1) }, { start: abs(2, 1), end: { group: MAX_U64, object: 0 } }],
      [{ type: LocationFilterType.ABSOLUTE_GROUP_END, start: abs(2, 1), endGroupDelta: 3 }, { start: abs(2, 1), end: abs(5, 0) }],
      [{ type: LocationFilterType.ABSOLUTE_RANGE, start: abs(2, 1), endGroupDelta: 3, endObject: 4 }, { start: abs(2, 1), end: abs(5, 5) }],
      [{ type: LocationFilterType.ABSOLUTE_RANGE, start: abs(2, 1), endGroupDelta: 0, endObject: MAX_U64 }, { start: abs(2, 1), end: abs(2, 0) }],
    ];
    for (const [f, range] of map) assert.deepEqual(locationToFetchRange(f), range);
    assert.equal(typeof locationToFetchRange({ type: LocationFilterType.NEXT_OBJECT }), "string");
    assert.equal(typeof locationToFetchRange({ type: LocationFilterType.RELATIVE_START, startGroup: 1 }), "string");
    assert.deepEqual(fetchRangeToLocation(abs(5, 0), abs(5, 0)), { type: LocationFilterType.ABSOLUTE_GROUP_END, start: abs(5, 0), endGroupDelta: 0 });
    assert.deepEqual(fetchRangeToLocation(abs(1, 0), abs(3, 1)), { type: LocationFilterType.ABSOLUTE_RANGE, start: abs(1, 0), endGroupDelta: 2, endObject: 0 });
    for (const sf of [{ type: FilterType.NEXT_GROUP_START }, { type: FilterType.LARGEST_OBJECT }, { type: FilterType.ABSOLUTE_START, start: abs(1, 2) }, { type: FilterType.ABSOLUTE_RANGE, start: abs(1, 2), endGroup: 3 }] as SubscriptionFilter[]) {
      assert.deepEqual(locationToSubscription(subscriptionToLocation(sf)), sf);
    }
  });

  it("an end group beyond 2^64-1 is a violation", () => {
    assert.throws(() => decodeRequest(frameOf(subscribeWith("03ffffffffffffffffff0001")), 22), malformed);
  });
});

describe("draft-22 parameters (docs/DRAFT22.md §5, §5.2, §6)", () => {
  it("unknown, repeated and out-of-range parameters are violations", () => {
    // Parameter 0x24 (unregistered).
    assert.throws(() => dec("03000a0001026e730174012400", 22), malformed);
    // FORWARD twice.
    assert.throws(() => dec("03000c0001026e73017402100100" + "01", 22), malformed);
    // FORWARD 2.
    assert.throws(() => dec("03000a0001026e7301740110" + "02", 22), malformed);
    // GROUP_ORDER 0.
    assert.throws(() => dec("03000a0001026e7301740122" + "00", 22), malformed);
    // RENDEZVOUS_TIMEOUT on a PUBLISH_NAMESPACE.
    assert.throws(() => dec("0600080001026e73010401", 22), malformed);
  });

  it("at draft-18 an unknown parameter is still read by parity", () => {
    assert.equal(dec("03000a0001026e730174012400", 18).type, "SUBSCRIBE");
  });

  it("a Range Filter is well-formed, and refused with INVALID_FILTER", () => {
    const m = dec("03000c0001026e7301740125020000", 22);
    assert.equal(unsupported22(m.type === "SUBSCRIBE" ? m.params : [])?.code, RequestErrorCode.INVALID_FILTER);
  });

  it("aiomoqt's join: NEXT_OBJECT plus FILL_PARAMETERS {RELATIVE_START 2}", () => {
    const hex = "0300100001026e73017402210502040121" + "0102";
    const m = dec(hex, 22);
    const params = m.type === "SUBSCRIBE" ? m.params : [];
    assert.deepEqual(filterIn(params), { type: FilterType.LARGEST_OBJECT });
    const fill = params.find((p) => p.type === P.FILL_PARAMETERS)?.value;
    assert.ok(fill instanceof Uint8Array);
    assert.deepEqual(decodeFill(fill), { filter: { type: LocationFilterType.RELATIVE_START, startGroup: 2 }, rangeFilters: false });
    assert.equal(enc(m, 22), hex);
    // A phone cannot serve a backfill: refused, not ignored.
    assert.equal(unsupported22(params)?.code, RequestErrorCode.NOT_SUPPORTED);
  });

  it("a fill may carry only what a fill may carry", () => {
    assert.throws(() => decodeFill(fromHex("011001")), malformed);
    assert.deepEqual(decodeFill(fromHex("01220" + "2")), { groupOrder: 2, rangeFilters: false });
    // A SUBSCRIBE whose fill holds FORWARD is a violation.
    assert.throws(() => dec("03000d0001026e7301740123" + "03011001", 22), malformed);
    // A Range Filter inside a fill: INVALID_FILTER.
    assert.equal(unsupported22([{ type: P.FILL_PARAMETERS, value: fromHex("0125020000") }])?.code, RequestErrorCode.INVALID_FILTER);
  });

  it("REQUEST_UPDATE with a fill, RELATIVE_START 1", () => {
    const hex = "020008020123040121" + "0101";
    const m = dec(hex, 22);
    assert.deepEqual(m, { type: "REQUEST_UPDATE", requestId: 2, params: [{ type: P.FILL_PARAMETERS, value: fromHex("01210101") }] });
    assert.equal(enc(m, 22), hex);
  });

  it("INCLUDE_PROPERTIES is a uint8 and TRACK_NAMESPACE_PREFIX a bare namespace", () => {
    const ts = dec("0d000a0001026e73017401350" + "0", 22);
    assert.deepEqual(ts.type === "TRACK_STATUS" && ts.params, [{ type: P.INCLUDE_PROPERTIES, value: 0 }]);
    const up = dec("020006020134010161", 22);
    assert.deepEqual(up, { type: "REQUEST_UPDATE", requestId: 2, params: [{ type: P.TRACK_NAMESPACE_PREFIX, value: fromHex("010161") }] });
    assert.equal(enc(up, 22), "020006020134010161");
  });
});

describe("what draft-22 leaves as it was (docs/DRAFT22.md §1, §2, §4)", () => {
  it("SETUP with MAX_FILTER_RANGES and IMPLEMENTATION", () => {
    const options = [
      { type: 0x06, value: 4 },
      { type: 0x07, value: utf8("x") },
    ];
    assert.equal(enc({ type: "SETUP", options }, 22), "af00000506040101" + "78");
    assert.equal(enc({ type: "SETUP", options }, 18), "af00000506040101" + "78");
    assert.deepEqual(decodeSetup(frameOf("af0000050604010178")).options, options);
  });

  it("REQUEST_ERROR, PUBLISH_DONE, NAMESPACE and NAMESPACE_DONE are the same bytes", () => {
    const same: ControlMessage[] = [
      { type: "REQUEST_ERROR", code: RequestErrorCode.DOES_NOT_EXIST, retryInterval: 0, reason: "no" },
      { type: "REQUEST_ERROR", code: RequestErrorCode.REDIRECT, retryInterval: 1, reason: "" },
      { type: "PUBLISH_DONE", status: 2, streamCount: 3, reason: "done" },
      { type: "NAMESPACE", suffix: ["alice"] },
      { type: "NAMESPACE_DONE", suffix: [] },
    ];
    for (const m of same) {
      const hex = enc(m, 18);
      assert.equal(enc(m, 22), hex, m.type);
      assert.deepEqual(decodeResponse(frameOf(hex), 22), decodeResponse(frameOf(hex), 18), m.type);
    }
  });

  it("requests keep their layout: SUBSCRIBE_NAMESPACE, PUBLISH_NAMESPACE, PUBLISH", () => {
    const msgs: ControlMessage[] = [
      { type: "SUBSCRIBE_NAMESPACE", requestId: 0, prefix: ["moq-phone", "v1", "users"], params: [] },
      { type: "PUBLISH_NAMESPACE", requestId: 2, namespace: ["ns"], params: [{ type: P.AUTHORIZATION_TOKEN, value: fromHex("0301aa") }] },
      { type: "PUBLISH", requestId: 4, namespace: ["ns"], name: "t", trackAlias: 1, params: [{ type: P.FORWARD, value: 0 }], properties: new Uint8Array(0) },
      { type: "REQUEST_OK", params: [{ type: P.LARGEST_OBJECT, value: { group: 1, object: 0 } }], properties: fromHex("0e05") },
    ];
    for (const m of msgs) {
      const hex = enc(m, 22);
      assert.equal(hex, enc(m, 18), m.type);
      assert.equal(enc(dec(hex, 22), 22), hex, m.type);
    }
  });

  it("the version defaults to draft-18", () => {
    const m: ControlMessage = { type: "GOAWAY", uri: "", timeoutMs: 0, requestId: 1 };
    assert.equal(toHex(encodeMessage(m)), enc(m, 18));
    assert.deepEqual(decodeResponse(frameOf("100003000001")), dec("100003000001", 18));
  });
});
