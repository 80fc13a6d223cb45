// Property-based fuzzing (fast-check) of the web phone's decoders fed by the
// network: control framing and messages, datagrams, subgroup and fetch
// streams, object properties, LOC and call events (docs/FUZZING.md). Inputs:
// random bytes, and mutations of the shared vectors (docs/vectors/wire.json,
// calls.json) and of the Rust fuzzers' committed corpora (fuzz/corpus/), so
// both sides start from the same inputs. The property: every decoder returns
// a value or throws its own error type (WireError / EventError) — a
// TypeError, RangeError or a hang is a bug. Round trips where an encoder
// exists. `npm test` runs a short fixed-seed budget; FUZZ_RUNS=N (and
// FUZZ_SEED=S) run longer.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { decodeEvent, encodeEvent, EventError } from "../src/call/events.js";
import { decodeLoc } from "../src/media/loc.js";
import {
  decodeMessage,
  decodeProperties,
  decodeRequest,
  decodeResponse,
  decodeSetup,
  encodeMessage,
  encodeProperties,
  FetchParser,
  fromHex,
  parseDatagram,
  SubgroupParser,
  takeFrame,
  toHex,
  WireError,
} from "../src/moq/index.js";
import { startsRequest } from "../src/moq/control_codes.js";
import { readVectors } from "./helpers.js";

const RUNS = Number(process.env["FUZZ_RUNS"] ?? 1500);
const SEED = Number(process.env["FUZZ_SEED"] ?? 20261207);
const params = { numRuns: RUNS, seed: SEED, endOnFailure: true };

type J = Record<string, unknown>;
const wire = readVectors("wire.json") as J;
const entries = (k: string): J[] => wire[k] as J[];
const hexes = (k: string): Uint8Array[] => entries(k).map((e) => fromHex(e["hex"] as string));

/** fuzz/corpus/<target>/* at the repo root, if the Rust side committed one. */
function corpus(target: string): Uint8Array[] {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = join(dir, "fuzz", "corpus", target);
    if (existsSync(join(dir, "fuzz", "Cargo.toml"))) {
      return existsSync(p) ? readdirSync(p).slice(0, 400).map((f) => new Uint8Array(readFileSync(join(p, f)))) : [];
    }
    const up = dirname(dir);
    if (up === dir) return [];
    dir = up;
  }
}

/** Random bytes, or a seed with bytes flipped, inserted, deleted, or cut short. */
function inputs(seeds: Uint8Array[], maxLength = 300): fc.Arbitrary<Uint8Array> {
  const random = fc.uint8Array({ maxLength });
  if (seeds.length === 0) return random;
  const mutated = fc
    .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 3 })), { maxLength: 6 }), fc.nat())
    .map(([seed, edits, cut]) => {
      const b = Array.from(seed);
      for (const [pos, byte, op] of edits) {
        const i = b.length === 0 ? 0 : pos % (b.length + 1);
        if (op === 0 && i < b.length) b[i] = byte;
        else if (op === 1) b.splice(i, 0, byte);
        else if (op === 2 && i < b.length) b.splice(i, 1);
        else if (op === 3 && i < b.length) b[i] = (b[i] as number) ^ (1 << (byte % 8));
      }
      const out = Uint8Array.from(b);
      return cut % 4 === 0 ? out.slice(0, cut % (out.length + 1)) : out;
    });
  return fc.oneof({ weight: 1, arbitrary: random }, { weight: 3, arbitrary: mutated });
}

/** Runs `f`; only the decoder's own error types may escape. */
function total(f: () => void, ...allowed: (abstract new (...a: never[]) => Error)[]): void {
  try {
    f();
  } catch (e) {
    if (!allowed.some((t) => e instanceof t)) throw e;
  }
}

describe("fuzz: the web phone's decoders (docs/FUZZING.md)", () => {
  it("control stream: framing and every message decoder", () => {
    const seeds = [...hexes("control"), ...corpus("control")];
    fc.assert(
      fc.property(inputs(seeds), (b) => {
        let rest = b;
        for (let n = 0; n < 64; n++) {
          const t = takeFrame(rest);
          if (!t) break;
          assert.ok(t.length > 0 && t.length <= rest.length);
          rest = rest.subarray(t.length);
          total(() => decodeMessage(t.frame), WireError);
          total(() => decodeSetup(t.frame), WireError);
          total(() => decodeResponse(t.frame), WireError);
          if (startsRequest(t.frame.type)) total(() => decodeRequest(t.frame), WireError);
        }
      }),
      params,
    );
  });

  it("control messages: encode ∘ decode is idempotent", () => {
    const seeds = [...hexes("control"), ...corpus("control_roundtrip")];
    fc.assert(
      fc.property(inputs(seeds), (b) => {
        const t = takeFrame(b);
        if (!t) return;
        let m;
        try {
          m = decodeMessage(t.frame);
        } catch (e) {
          if (e instanceof WireError) return;
          throw e;
        }
        const bytes = encodeMessage(m);
        const again = takeFrame(bytes);
        assert.ok(again && again.length === bytes.length, "our encoding is one whole frame");
        assert.equal(toHex(encodeMessage(decodeMessage(again.frame))), toHex(bytes));
      }),
      params,
    );
  });

  // Draft-22's decoders (src/moq/draft22.ts, docs/DRAFT22.md §4-§6), seeded
  // with its vectors (draft22_wire.test.ts) beside draft-18's.
  const draft22Seeds = [
    "1000020000",
    "070003010805",
    "04000702020800010304",
    "220006020903040700",
    "16000d0401026e73017401210305000" + "0",
    "18000400050400",
    "0300100001026e73017402210502040121" + "0102",
    "03000c0001026e7301740125020000",
    "020008020123040121" + "0101",
    "03000b0001026e7301740121040501020" + "3",
  ].map(fromHex);

  it("draft-22 control messages: every decoder", () => {
    const seeds = [...draft22Seeds, ...hexes("control")];
    fc.assert(
      fc.property(inputs(seeds), (b) => {
        const t = takeFrame(b);
        if (!t) return;
        total(() => decodeMessage(t.frame, 22), WireError);
        total(() => decodeResponse(t.frame, 22), WireError);
        if (startsRequest(t.frame.type)) total(() => decodeRequest(t.frame, 22), WireError);
      }),
      params,
    );
  });

  it("draft-22 control messages: encode ∘ decode is idempotent", () => {
    const seeds = [...draft22Seeds, ...hexes("control")];
    fc.assert(
      fc.property(inputs(seeds), (b) => {
        const t = takeFrame(b);
        if (!t) return;
        let m;
        try {
          m = decodeMessage(t.frame, 22);
        } catch (e) {
          if (e instanceof WireError) return;
          throw e;
        }
        const bytes = encodeMessage(m, 22);
        const again = takeFrame(bytes);
        assert.ok(again && again.length === bytes.length, "our encoding is one whole frame");
        assert.equal(toHex(encodeMessage(decodeMessage(again.frame, 22), 22)), toHex(bytes));
      }),
      params,
    );
  });

  it("datagrams", () => {
    fc.assert(
      fc.property(inputs([...hexes("datagrams"), ...corpus("datagram")]), (b) => total(() => parseDatagram(b), WireError)),
      params,
    );
  });

  it("subgroup and fetch streams, in pieces", () => {
    // The Rust corpora's first byte is the piece size; here fast-check picks it.
    const streams = (k: string, target: string) => [...hexes(k), ...corpus(target).map((c) => c.subarray(1))];
    fc.assert(
      fc.property(inputs(streams("subgroups", "subgroup")), fc.integer({ min: 1, max: 17 }), (b, step) => {
        const p = new SubgroupParser(64 * 1024);
        total(() => {
          for (let i = 0; i < b.length; i += step) {
            p.push(b.subarray(i, i + step));
            for (let n = 0; n < 1000 && p.next() !== undefined; n++);
          }
          p.finish();
        }, WireError);
      }),
      params,
    );
    fc.assert(
      fc.property(inputs(streams("fetch", "fetch")), fc.integer({ min: 1, max: 17 }), (b, step) => {
        const p = new FetchParser(64 * 1024);
        total(() => {
          let header = false;
          for (let i = 0; i < b.length; i += step) {
            p.push(b.subarray(i, i + step));
            if (!header) header = p.header() !== undefined;
            if (header) for (let n = 0; n < 1000 && p.next() !== undefined; n++);
          }
          p.finish();
        }, WireError);
      }),
      params,
    );
  });

  it("object properties: decode, and decode ∘ encode = id", () => {
    fc.assert(
      fc.property(inputs([...hexes("properties"), ...corpus("properties")]), (b) => {
        let props;
        try {
          props = decodeProperties(b);
        } catch (e) {
          if (e instanceof WireError) return;
          throw e;
        }
        const bytes = encodeProperties(props);
        assert.equal(toHex(encodeProperties(decodeProperties(bytes))), toHex(bytes));
      }),
      params,
    );
  });

  it("LOC objects", () => {
    const seeds = entries("loc").map((e) => fromHex(e["properties_hex"] as string));
    fc.assert(
      fc.property(inputs(seeds), fc.uint8Array({ maxLength: 8 }), (props, payload) => total(() => decodeLoc(props, payload), WireError)),
      params,
    );
  });

  it("call events: decode, and encode ∘ decode is idempotent", () => {
    const events: Uint8Array[] = [];
    const walk = (x: unknown): void => {
      if (Array.isArray(x)) x.forEach(walk);
      else if (x && typeof x === "object") {
        const o = x as J;
        if (o["event"] && typeof o["event"] === "object") events.push(new TextEncoder().encode(JSON.stringify(o["event"])));
        Object.values(o).forEach(walk);
      }
    };
    walk(readVectors("calls.json"));
    fc.assert(
      fc.property(inputs([...events, ...corpus("call_event")], 600), (b) => {
        let e;
        try {
          e = decodeEvent(b);
        } catch (err) {
          if (err instanceof EventError) return;
          throw err;
        }
        // An event of an unknown type is kept for the caller to ignore (CALLS.md §5), never sent.
        if (e.t === "unknown") return;
        const bytes = encodeEvent(e);
        assert.equal(toHex(encodeEvent(decodeEvent(bytes))), toHex(bytes));
      }),
      params,
    );
  });
});
