// The `loc_redundant` section of docs/vectors/wire.json (the Rust runner is
// wire/tests/loc_vectors.rs): REDUNDANT_FRAME 0x39 (quality.md §4.2) as the
// web phone writes and reads it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeLoc, locProperties } from "../src/media/loc.js";
import { readVectors } from "./helpers.js";

type Entry = { name: string; capture_us: number; redundant: { k: number; opus_hex: string } | null; properties_hex: string };
const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const toHex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const entries = (readVectors("wire.json") as { loc_redundant: Entry[] }).loc_redundant;

describe("LOC REDUNDANT_FRAME (wire.json loc_redundant)", () => {
  it("has writer and reader-only entries", () => {
    assert.ok(entries.filter((e) => e.redundant).length >= 2 && entries.filter((e) => !e.redundant).length >= 3);
  });
  for (const e of entries) {
    it(e.name, () => {
      const props = hex(e.properties_hex);
      if (e.redundant) assert.equal(toHex(locProperties(e.capture_us, { k: e.redundant.k, opus: hex(e.redundant.opus_hex) })), e.properties_hex);
      const f = decodeLoc(props, Uint8Array.of(0xf8));
      assert.equal(f.captureUs, e.capture_us);
      const got = f.redundant ? { k: f.redundant.k, opus_hex: toHex(f.redundant.opus) } : null;
      assert.deepEqual(got, e.redundant);
    });
  }
});
