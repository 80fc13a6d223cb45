// Runs the shared wire vectors (docs/vectors/wire.json), the same file
// moq-wire is tested against (wire/tests/vectors.rs).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  concatBytes,
  controlFrames,
  datagramType,
  datagramWithAlias,
  decodeMessage,
  decodeProperties,
  decodeRequest,
  decodeResponse,
  encodeDatagram,
  encodeFetchHeader,
  encodeMessage,
  encodeProperties,
  encodeSubgroupHeader,
  encodeVarint,
  fetchItems,
  FetchParser,
  FetchWriter,
  FrameReader,
  fromHex,
  isDatagramType,
  isSubgroupType,
  parseDatagram,
  readVarint,
  subgroupEvents,
  SubgroupParser,
  SubgroupWriter,
  takeFrame,
  toBytes,
  toHex,
  utf8,
  varintLength,
  WireError,
  type BytesLike,
  type DatagramSpec,
  type FetchItem,
  type SubgroupEvent,
} from "../src/moq/index.js";
import { decodeLoc, locProperties } from "../src/media/loc.js";
import { readableOf, readVectors, splitBytes } from "./helpers.js";
import { arr, hex, int, kvps, message, num, obj, optInt, optNum, str, type J } from "./wire_json.js";

const V = obj(readVectors("wire.json"));
const section = (name: string): J[] => arr(V[name]).map(obj);
const payloadOf = (o: J): Uint8Array => ("payload_text" in o ? utf8(str(o["payload_text"])) : hex(o["payload"]));
const propsOf = (v: unknown): string => toHex(encodeProperties(kvps(v)));

/** A comparable form: bytes (and string namespace fields / names) become hex, bigints strings. */
function canon(v: unknown, key = ""): unknown {
  if (v instanceof Uint8Array) return `0x${toHex(v)}`;
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "string" && key === "name") return `0x${toHex(toBytes(v))}`;
  if (Array.isArray(v)) {
    if (key === "namespace" || key === "prefix" || key === "suffix") return v.map((f) => `0x${toHex(toBytes(f as BytesLike))}`);
    return v.map((x) => canon(x));
  }
  if (typeof v === "object" && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = canon(x, k);
    return out;
  }
  return v;
}

function expectWireError(f: () => unknown, kind: string, what: string): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof WireError, `${what}: threw ${String(e)}, not a WireError`);
    assert.equal(e.kind, kind, `${what}: ${e.message}`);
    return true;
  });
}

describe("vi64 (§1.4.1)", () => {
  it("encodes and decodes the boundary of every length", () => {
    const all = section("varints");
    assert.ok(all.length >= 18);
    for (const e of all) {
      const bytes = hex(e["hex"]);
      const value = int(e["value"]);
      assert.deepEqual(readVarint(bytes), { value, length: bytes.length }, toHex(bytes));
      assert.equal(toHex(encodeVarint(value)), toHex(bytes), `${value}`);
      assert.equal(varintLength(value), bytes.length);
      // Canonical form: a number exactly when it is a safe integer.
      assert.equal(typeof value === "number", typeof e["value"] === "number");
      // Reads at an offset, and ignores what follows.
      const padded = concatBytes([Uint8Array.of(0xaa), bytes, Uint8Array.of(0xff)]);
      assert.deepEqual(readVarint(padded, 1), { value, length: bytes.length });
    }
  });
  it("reads the draft's examples, including a longer-than-shortest encoding", () => {
    for (const e of section("varint_examples")) {
      const bytes = hex(e["hex"]);
      assert.deepEqual(readVarint(bytes), { value: int(e["value"]), length: bytes.length }, toHex(bytes));
    }
  });
  it("reports incomplete input as undefined", () => {
    for (const h of arr(V["varints_incomplete"])) assert.equal(readVarint(fromHex(str(h))), undefined, str(h));
  });
});

describe("properties (§1.4.3, §11.2.1.2)", () => {
  for (const e of section("properties")) {
    it(str(e["name"]), () => {
      const bytes = hex(e["hex"]);
      assert.equal(toHex(encodeProperties(kvps(e["properties"]))), toHex(bytes));
      assert.deepEqual(canon(decodeProperties(bytes)), canon(kvps(e["properties"])));
    });
  }
});

describe("control messages (§10)", () => {
  const all = section("control");
  for (const e of all) {
    it(str(e["name"]), () => {
      const bytes = hex(e["hex"]);
      const m = message(e["message"]);
      assert.equal(toHex(encodeMessage(m)), toHex(bytes), "encode");
      // Exactly one frame, and no prefix of it is a frame.
      const r = takeFrame(bytes);
      assert.ok(r, "incomplete frame");
      assert.equal(r.length, bytes.length);
      for (let i = 0; i < bytes.length; i++) assert.equal(takeFrame(bytes.subarray(0, i)), undefined, `prefix of ${i} bytes`);
      const decoded = decodeMessage(r.frame);
      assert.deepEqual(canon(decoded), canon(m), "decode");
    });
  }
  it("splits every message back out of one stream, whatever the chunking", async () => {
    const stream = concatBytes(all.map((e) => hex(e["hex"])));
    const want = all.map((e) => canon(message(e["message"])));
    for (const sizes of [[1], [2, 3, 5], [7, 64], [stream.length]]) {
      const fr = new FrameReader();
      const got: unknown[] = [];
      for (const c of splitBytes(stream, sizes)) {
        fr.push(c);
        for (let f = fr.next(); f; f = fr.next()) got.push(canon(decodeMessage(f)));
      }
      fr.finish();
      assert.equal(fr.buffered, 0);
      assert.deepEqual(got, want, `chunks ${sizes.join(",")}`);
      const viaStream: unknown[] = [];
      for await (const f of controlFrames(readableOf(splitBytes(stream, sizes)))) viaStream.push(canon(decodeMessage(f)));
      assert.deepEqual(viaStream, want);
    }
  });
  it("a stream ending inside a message is Truncated", async () => {
    const bytes = hex(all[0]?.["hex"]);
    const fr = new FrameReader();
    fr.push(bytes.subarray(0, bytes.length - 1));
    assert.equal(fr.next(), undefined);
    expectWireError(() => fr.finish(), "Truncated", "FrameReader.finish");
    await assert.rejects(
      async () => {
        for await (const _ of controlFrames(readableOf([bytes.subarray(0, 3)]))) assert.fail("no frame expected");
      },
      (e: unknown) => e instanceof WireError && e.kind === "Truncated",
    );
  });
  it("a REDIRECT given no Redirect is written with the empty one, as moq-wire writes it", () => {
    const e = all.find((v) => str(v["name"]) === "REQUEST_ERROR REDIRECT with an empty Redirect (same URI, same name)");
    assert.ok(e);
    assert.equal(toHex(encodeMessage({ type: "REQUEST_ERROR", code: 0x34, retryInterval: 0, reason: "" })), str(e["hex"]));
  });
  it("responses decode as responses, requests as requests", () => {
    for (const e of all) {
      const { frame } = takeFrame(hex(e["hex"]))!;
      const t = str(obj(e["message"])["type"]);
      const isRequest = ["SUBSCRIBE", "PUBLISH", "FETCH", "TRACK_STATUS", "PUBLISH_NAMESPACE", "SUBSCRIBE_NAMESPACE", "SUBSCRIBE_TRACKS"].includes(t);
      if (t === "SETUP") continue;
      if (isRequest) {
        assert.equal(decodeRequest(frame).type, t);
        expectWireError(() => decodeResponse(frame), "InvalidType", t);
      } else {
        assert.equal(decodeResponse(frame).type, t);
        expectWireError(() => decodeRequest(frame), "InvalidType", t);
      }
    }
  });
});

describe("OBJECT_DATAGRAM (§11.3.1)", () => {
  it("has a vector for every valid type", () => {
    const types = new Set(section("datagrams").map((e) => num(obj(e["datagram"])["type"])));
    const valid = [...Array(0x40).keys()].filter((t) => isDatagramType(t));
    assert.deepEqual([...types].sort((a, b) => a - b), valid);
  });
  for (const e of section("datagrams")) {
    it(str(e["name"]), () => {
      const bytes = hex(e["hex"]);
      const d = obj(e["datagram"]);
      const p = parseDatagram(bytes);
      assert.equal(p.datagramType, num(d["type"]));
      assert.deepEqual([p.trackAlias, p.groupId, p.objectId], [int(d["track_alias"]), int(d["group_id"]), int(d["object_id"])]);
      assert.equal(p.publisherPriority, optNum(d["publisher_priority"]));
      assert.equal(p.endOfGroup, d["end_of_group"] === true);
      assert.equal(toHex(p.properties), propsOf(d["properties"]));
      assert.equal(p.status, optInt(d["status"]) ?? 0);
      assert.equal(toHex(p.payload), toHex(hex(d["payload"])));
      const spec: DatagramSpec = {
        trackAlias: int(d["track_alias"]),
        groupId: int(d["group_id"]),
        objectId: int(d["object_id"]),
        publisherPriority: optNum(d["publisher_priority"]),
        endOfGroup: d["end_of_group"] === true,
        properties: encodeProperties(kvps(d["properties"])),
        payload: hex(d["payload"]),
      };
      const status = optInt(d["status"]);
      if (status !== undefined) spec.status = status;
      assert.equal(datagramType(spec), num(d["type"]));
      assert.equal(toHex(encodeDatagram(spec)), toHex(bytes), "encode");
      const w = obj(e["with_alias"]);
      const moved = datagramWithAlias(bytes, int(w["alias"]));
      assert.equal(toHex(moved), toHex(hex(w["hex"])));
      assert.equal(parseDatagram(moved).trackAlias, int(w["alias"]));
    });
  }
});

function drainSubgroup(p: SubgroupParser, out: SubgroupEvent[]): void {
  for (let e = p.next(); e; e = p.next()) out.push(e);
}

describe("SUBGROUP streams (§11.4.2)", () => {
  it("has a vector for every valid header type", () => {
    const types = new Set(section("subgroups").map((e) => num(obj(e["header"])["stream_type"])));
    const valid = [...Array(0x100).keys()].filter((t) => isSubgroupType(t));
    assert.deepEqual([...types].sort((a, b) => a - b), valid);
  });
  for (const e of section("subgroups")) {
    it(str(e["name"]), async () => {
      const bytes = hex(e["hex"]);
      const h = obj(e["header"]);
      const objects = arr(e["objects"]).map(obj);
      const wantHeader = {
        streamType: num(h["stream_type"]),
        trackAlias: int(h["track_alias"]),
        groupId: int(h["group_id"]),
        subgroupId: optInt(h["subgroup_id"]),
        publisherPriority: optNum(h["publisher_priority"]),
      };
      const runs: SubgroupEvent[][] = [];
      for (const sizes of [[bytes.length], [1], [3, 1, 4]]) {
        const p = new SubgroupParser();
        const events: SubgroupEvent[] = [];
        for (const c of splitBytes(bytes, sizes)) {
          p.push(c);
          drainSubgroup(p, events);
        }
        p.finish();
        assert.equal(p.subgroupId, optInt(e["subgroup_id"]) ?? wantHeader.subgroupId);
        runs.push(events);
      }
      const viaStream: SubgroupEvent[] = [];
      for await (const ev of subgroupEvents(readableOf(splitBytes(bytes, [2])))) viaStream.push(ev);
      runs.push(viaStream);
      for (const events of runs) {
        assert.equal(events.length, 1 + objects.length);
        const [first, ...rest] = events;
        assert.ok(first?.kind === "header");
        assert.deepEqual(first.header, wantHeader);
        rest.forEach((ev, i) => {
          const o = objects[i] as J;
          assert.ok(ev.kind === "object");
          assert.equal(ev.object.objectId, int(o["object_id"]));
          assert.equal(ev.object.status, optInt(o["status"]) ?? 0);
          assert.equal(toHex(ev.object.properties), propsOf(o["properties"]));
          assert.equal(toHex(ev.object.payload), toHex(payloadOf(o)));
        });
      }
      // The writer reproduces the stream.
      const w = new SubgroupWriter(wantHeader);
      const parts = [w.encodeHeader()];
      for (const o of objects) {
        const status = optInt(o["status"]) ?? 0;
        parts.push(status !== 0 ? w.encodeStatus(int(o["object_id"]), status) : w.encodeObject(int(o["object_id"]), payloadOf(o), encodeProperties(kvps(o["properties"]))));
      }
      assert.equal(toHex(concatBytes(parts)), toHex(bytes));
      assert.ok(toHex(bytes).startsWith(toHex(encodeSubgroupHeader(wantHeader))));
    });
  }
});

function expectedFetchItems(items: unknown): unknown[] {
  return arr(items).map((v) => {
    const o = obj(v);
    if ("end_of_range" in o) {
      const [g, ob] = arr(o["end_of_range"]);
      return { kind: "end-of-range", end: { group: int(g), object: int(ob) }, unknown: o["unknown"] === true };
    }
    return {
      kind: "object",
      object: {
        groupId: int(o["group_id"]),
        subgroupId: optInt(o["subgroup_id"]),
        objectId: int(o["object_id"]),
        publisherPriority: num(o["publisher_priority"]),
        properties: `0x${propsOf(o["properties"])}`,
        payload: `0x${toHex(payloadOf(o))}`,
      },
    };
  });
}

describe("FETCH_HEADER streams (§11.4.4)", () => {
  for (const e of section("fetch")) {
    it(str(e["name"]), async () => {
      const bytes = hex(e["hex"]);
      const want = expectedFetchItems(e["items"]);
      for (const sizes of [[bytes.length], [1], [2, 5]]) {
        const p = new FetchParser();
        const got: FetchItem[] = [];
        for (const c of splitBytes(bytes, sizes)) {
          p.push(c);
          for (let i = p.next(); i; i = p.next()) got.push(i);
        }
        p.finish();
        assert.equal(p.requestId, int(e["request_id"]));
        assert.deepEqual(canon(got), want);
      }
      const viaStream: FetchItem[] = [];
      for await (const i of fetchItems(readableOf(splitBytes(bytes, [3])))) viaStream.push(i);
      assert.deepEqual(canon(viaStream), want);
      if (e["writer"] === true) {
        const w = new FetchWriter();
        const parts = [encodeFetchHeader(int(e["request_id"]))];
        for (const o of arr(e["items"]).map(obj)) {
          parts.push(
            w.encodeObject({
              groupId: int(o["group_id"]),
              objectId: int(o["object_id"]),
              subgroupId: optInt(o["subgroup_id"]),
              publisherPriority: num(o["publisher_priority"]),
              properties: encodeProperties(kvps(o["properties"])),
              payload: payloadOf(o),
            }),
          );
        }
        assert.equal(toHex(concatBytes(parts)), toHex(bytes));
      }
    });
  }
});

describe("LOC capture timestamp (draft-ietf-moq-loc §2.3.1.1)", () => {
  for (const e of section("loc")) {
    it(str(e["name"]), () => {
      const us = int(e["capture_us"]);
      const props = hex(e["properties_hex"]);
      assert.equal(toHex(locProperties(us)), toHex(props));
      const f = decodeLoc(props, Uint8Array.of(0xf8, 0xff));
      assert.equal(f.captureUs, us);
      assert.deepEqual([...f.opus], [0xf8, 0xff]);
    });
  }
});

describe("malformed input", () => {
  const all = section("malformed");
  it("covers every parser", () => {
    const parsers = new Set(all.map((e) => str(e["parser"])));
    assert.deepEqual([...parsers].sort(), ["control-request", "control-response", "datagram", "fetch", "properties", "subgroup"]);
  });
  for (const e of all) {
    it(str(e["name"]), () => {
      const bytes = hex(e["hex"]);
      const kind = str(e["error"]);
      const name = str(e["name"]);
      const atFin = e["at"] === "fin";
      switch (str(e["parser"])) {
        case "control-response":
        case "control-request": {
          const r = takeFrame(bytes);
          assert.ok(r && r.length === bytes.length, "one whole frame");
          const decode = e["parser"] === "control-request" ? decodeRequest : decodeResponse;
          expectWireError(() => decode(r.frame), kind, name);
          expectWireError(() => decodeMessage(r.frame), kind, name);
          break;
        }
        case "datagram":
          expectWireError(() => parseDatagram(bytes), kind, name);
          break;
        case "properties":
          expectWireError(() => decodeProperties(bytes), kind, name);
          break;
        case "subgroup": {
          const max = e["max_object_size"] === undefined ? undefined : num(e["max_object_size"]);
          const p = new SubgroupParser(max);
          p.push(bytes);
          if (atFin) {
            drainSubgroup(p, []);
            expectWireError(() => p.finish(), kind, name);
          } else expectWireError(() => drainSubgroup(p, []), kind, name);
          break;
        }
        case "fetch": {
          const p = new FetchParser();
          p.push(bytes);
          const drain = () => {
            for (let i = p.next(); i; i = p.next());
          };
          if (atFin) {
            drain();
            expectWireError(() => p.finish(), kind, name);
          } else expectWireError(drain, kind, name);
          break;
        }
        default:
          assert.fail(`unknown parser ${String(e["parser"])}`);
      }
    });
  }
});
