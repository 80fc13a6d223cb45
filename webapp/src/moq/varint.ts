/**
 * MoQT variable-length integers, "vi64" (draft-ietf-moq-transport-18
 * §1.4.1): the count of leading 1 bits in the first byte gives the length
 * (1–9 bytes, 9 meaning 0xff followed by 8 bytes). This is NOT the QUIC
 * varint of RFC 9000. Mirrors moq-wire's `varint.rs`.
 *
 * Values are {@link U64}: a `number` when the value is at most
 * `Number.MAX_SAFE_INTEGER` (the fast path, and every value a phone call
 * really uses), a `bigint` above that. The representation is canonical (a
 * value has exactly one), so `===`, `Map` keys and `<` work across both.
 */

/** An unsigned 64-bit integer: `number` up to 2^53 - 1, `bigint` above. */
export type U64 = number | bigint;

export const MAX_U64 = 0xffff_ffff_ffff_ffffn;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);

/** Canonical form of `v`; throws `RangeError` outside 0 ..= 2^64 - 1. */
export function u64(v: number | bigint): U64 {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${v} is not a u64 that a number can hold exactly`);
    return v;
  }
  if (v < 0n || v > MAX_U64) throw new RangeError(`${v} is outside 0..2^64-1`);
  return v <= MAX_SAFE_BIG ? Number(v) : v;
}

/** True for a value in canonical U64 form. */
export function isU64(v: unknown): v is U64 {
  if (typeof v === "number") return Number.isSafeInteger(v) && v >= 0;
  if (typeof v === "bigint") return v > MAX_SAFE_BIG && v <= MAX_U64;
  return false;
}

export function toBigInt(v: U64): bigint {
  return typeof v === "bigint" ? v : BigInt(v);
}

/** `a + b`, or `undefined` when the sum exceeds 2^64 - 1. */
export function u64Add(a: U64, b: U64): U64 | undefined {
  if (typeof a === "number" && typeof b === "number") {
    const s = a + b;
    if (s <= Number.MAX_SAFE_INTEGER) return s;
  }
  const s = toBigInt(a) + toBigInt(b);
  return s > MAX_U64 ? undefined : u64(s);
}

/** `a - b`, or `undefined` when `b > a`. */
export function u64Sub(a: U64, b: U64): U64 | undefined {
  if (typeof a === "number" && typeof b === "number") return a >= b ? a - b : undefined;
  const d = toBigInt(a) - toBigInt(b);
  return d < 0n ? undefined : u64(d);
}

/** Bytes needed for `v` in the shortest encoding (§1.4.1 table). */
export function varintLength(v: U64): number {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${v} is not a u64`);
    // n bytes carry 7n bits (n <= 8).
    if (v < 0x80) return 1;
    if (v < 0x4000) return 2;
    if (v < 0x20_0000) return 3;
    if (v < 0x1000_0000) return 4;
    if (v < 2 ** 35) return 5;
    if (v < 2 ** 42) return 6;
    if (v < 2 ** 49) return 7;
    return 8; // 2^49 <= v <= 2^53 - 1 < 2^56
  }
  if (v < 0n || v > MAX_U64) throw new RangeError(`${v} is outside 0..2^64-1`);
  if (v < 1n << 56n) {
    let n = 1;
    while (v >= 1n << BigInt(7 * n)) n++;
    return n;
  }
  return 9;
}

/**
 * Writes `v` in the shortest encoding at `out[pos]`; returns the position
 * after it. `out` must have room ({@link varintLength}).
 */
export function writeVarintAt(out: Uint8Array, pos: number, v: U64): number {
  const n = varintLength(v);
  if (n === 9) {
    out[pos] = 0xff;
    let b = toBigInt(v);
    for (let i = 8; i >= 1; i--) {
      out[pos + i] = Number(b & 0xffn);
      b >>= 8n;
    }
    return pos + 9;
  }
  if (typeof v === "number") {
    let x = v;
    for (let i = n - 1; i >= 0; i--) {
      out[pos + i] = x % 256;
      x = Math.floor(x / 256);
    }
  } else {
    let b = v;
    for (let i = n - 1; i >= 0; i--) {
      out[pos + i] = Number(b & 0xffn);
      b >>= 8n;
    }
  }
  // n-1 leading ones, then a zero bit.
  out[pos] = (out[pos] ?? 0) | (~(0xff >> (n - 1)) & 0xff);
  return pos + n;
}

/** `v` encoded on its own. */
export function encodeVarint(v: U64): Uint8Array {
  const out = new Uint8Array(varintLength(v));
  writeVarintAt(out, 0, v);
  return out;
}

/** A decoded vi64 and the number of bytes it took. */
export interface VarintRead {
  value: U64;
  length: number;
}

/**
 * Reads a vi64 at `buf[offset]`. Returns `undefined` when `buf` holds too
 * few bytes (never throws: every byte sequence is a valid prefix). Longer
 * than shortest encodings are accepted (§1.4.1).
 */
export function readVarint(buf: Uint8Array, offset = 0): VarintRead | undefined {
  if (offset >= buf.length) return undefined;
  const first = buf[offset] as number;
  let ones = 0;
  while (ones < 8 && first & (0x80 >> ones)) ones++;
  const len = ones === 8 ? 9 : ones + 1;
  if (buf.length - offset < len) return undefined;
  if (len <= 7) {
    // At most 49 value bits: exact as a number.
    let value = first & (0xff >> len);
    for (let i = 1; i < len; i++) value = value * 256 + (buf[offset + i] as number);
    return { value, length: len };
  }
  // 8 bytes: the first byte is all tag (0xfe); 9 bytes: 0xff, then 64 bits.
  let value = 0n;
  for (let i = 1; i < len; i++) value = (value << 8n) | BigInt(buf[offset + i] as number);
  return { value: u64(value), length: len };
}
