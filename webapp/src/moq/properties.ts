/**
 * Key-Value-Pairs (draft-ietf-moq-transport-18 §1.4.3) as used for Object
 * Properties (§11.2.1.2), Track Properties (§2.5) and Setup Options (§10.3):
 * types are delta-coded from the previous type; an even type carries one
 * vi64, an odd type a vi64 length (at most 65535) and that many bytes. The
 * block's byte length is known from its context; there is no count.
 * Mirrors moq-wire's `properties.rs`.
 */

import { Writer } from "./bytes.js";
import { WireError } from "./errors.js";
import { readVarint, u64Add, u64Sub, type U64 } from "./varint.js";

/** One property: an integer for an even type, bytes for an odd type. */
export interface Property {
  type: U64;
  value: U64 | Uint8Array;
}

export const MAX_PROPERTY_BYTES = 0xffff;

function checkParity(p: Property): void {
  const odd = typeof p.type === "bigint" ? (p.type & 1n) === 1n : p.type % 2 === 1;
  const bytes = p.value instanceof Uint8Array;
  if (odd !== bytes) throw new RangeError(`property type 0x${p.type.toString(16)} takes ${odd ? "bytes" : "an integer"}`);
  if (p.value instanceof Uint8Array && p.value.length > MAX_PROPERTY_BYTES) {
    throw new RangeError(`property value of ${p.value.length} bytes exceeds ${MAX_PROPERTY_BYTES}`);
  }
}

/** Sorted by type (stable), as delta coding requires. */
export function sortByType<T extends { type: U64 }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
}

/** Appends the properties (sorted by type) without a length or count. */
export function writeProperties(w: Writer, props: readonly Property[]): void {
  let prev: U64 = 0;
  for (const p of sortByType(props)) {
    checkParity(p);
    w.varint(u64Sub(p.type, prev) as U64);
    prev = p.type;
    if (p.value instanceof Uint8Array) w.lengthPrefixed(p.value);
    else w.varint(p.value);
  }
}

export function encodeProperties(props: readonly Property[]): Uint8Array {
  const w = new Writer();
  writeProperties(w, props);
  return w.finish();
}

/** Decodes a whole properties block; throws `Malformed("properties")`. */
export function decodeProperties(b: Uint8Array): Property[] {
  const bad = (why: string) => WireError.malformed("properties", why);
  const out: Property[] = [];
  let prev: U64 = 0;
  let pos = 0;
  while (pos < b.length) {
    const delta = readVarint(b, pos);
    if (!delta) throw bad("truncated type");
    pos += delta.length;
    const type = u64Add(prev, delta.value);
    if (type === undefined) throw bad("type overflow");
    prev = type;
    const even = typeof type === "bigint" ? (type & 1n) === 0n : type % 2 === 0;
    if (even) {
      const v = readVarint(b, pos);
      if (!v) throw bad("truncated value");
      pos += v.length;
      out.push({ type, value: v.value });
    } else {
      const len = readVarint(b, pos);
      if (!len) throw bad("truncated length");
      pos += len.length;
      if (typeof len.value !== "number" || len.value > MAX_PROPERTY_BYTES || len.value > b.length - pos) throw bad("bad length");
      out.push({ type, value: b.slice(pos, pos + len.value) });
      pos += len.value;
    }
  }
  return out;
}

/** The first integer property of `type`, if any. */
export function intProperty(props: readonly Property[], type: U64): U64 | undefined {
  for (const p of props) if (p.type === type && !(p.value instanceof Uint8Array)) return p.value;
  return undefined;
}

/** The first bytes property of `type`, if any. */
export function bytesProperty(props: readonly Property[], type: U64): Uint8Array | undefined {
  for (const p of props) if (p.type === type && p.value instanceof Uint8Array) return p.value;
  return undefined;
}
