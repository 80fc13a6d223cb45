/**
 * Byte plumbing shared by the codecs: a growable writer, a cursor over a
 * complete buffer, an append-only receive buffer for streams, and hex/UTF-8
 * helpers. No DOM or Node APIs beyond TextEncoder/TextDecoder.
 */

import { WireError } from "./errors.js";
import { readVarint, varintLength, writeVarintAt, type U64 } from "./varint.js";

const utf8Encoder = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const utf8Lossy = new TextDecoder("utf-8");

/** String or bytes, as accepted by encoders for namespace fields, names… */
export type BytesLike = string | Uint8Array;

export function toBytes(b: BytesLike): Uint8Array {
  return typeof b === "string" ? utf8Encoder.encode(b) : b;
}

export function utf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

/** Decodes UTF-8; `undefined` when the bytes are not valid UTF-8. */
export function fromUtf8(b: Uint8Array): string | undefined {
  try {
    return utf8Strict.decode(b);
  } catch {
    return undefined;
  }
}

/** Decodes UTF-8, replacing invalid sequences with U+FFFD. */
export function fromUtf8Lossy(b: Uint8Array): string {
  return utf8Lossy.decode(b);
}

export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

export function fromHex(hex: string): Uint8Array {
  const h = hex.replace(/\s+/g, "");
  if (h.length % 2 !== 0 || /[^0-9a-fA-F]/.test(h)) throw new RangeError(`not hex: ${hex}`);
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** A growable output buffer. */
export class Writer {
  private buf: Uint8Array;
  private len = 0;

  constructor(capacity = 64) {
    this.buf = new Uint8Array(capacity);
  }

  get length(): number {
    return this.len;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${v} is not a u8`);
    this.reserve(1);
    this.buf[this.len++] = v;
    return this;
  }

  u16(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${v} is not a u16`);
    this.reserve(2);
    this.buf[this.len++] = v >> 8;
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  varint(v: U64): this {
    this.reserve(varintLength(v));
    this.len = writeVarintAt(this.buf, this.len, v);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** A vi64 length, then the bytes. */
  lengthPrefixed(b: Uint8Array): this {
    return this.varint(b.length).bytes(b);
  }

  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/**
 * A cursor over a complete buffer (a control payload, a datagram). Reading
 * past the end throws the error made by `short`.
 */
export class Reader {
  pos = 0;

  constructor(
    readonly buf: Uint8Array,
    private readonly short: () => WireError,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  varint(): U64 {
    const r = readVarint(this.buf, this.pos);
    if (!r) throw this.short();
    this.pos += r.length;
    return r.value;
  }

  u8(): number {
    if (this.pos >= this.buf.length) throw this.short();
    return this.buf[this.pos++] as number;
  }

  u16(): number {
    if (this.remaining < 2) throw this.short();
    const v = ((this.buf[this.pos] as number) << 8) | (this.buf[this.pos + 1] as number);
    this.pos += 2;
    return v;
  }

  /** `n` bytes, copied. */
  bytes(n: number): Uint8Array {
    if (this.remaining < n) throw this.short();
    const b = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** Everything left, copied. */
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
}

/**
 * Receive buffer of a stream: chunks are appended as they arrive and parsed
 * bytes are consumed from the front. Consumed space is reclaimed when the
 * buffer grows, so memory stays bounded by what is not yet parsed.
 */
export class ByteQueue {
  private buf = new Uint8Array(0);
  private start = 0;
  private end = 0;

  /** Bytes received and not yet consumed. */
  get length(): number {
    return this.end - this.start;
  }

  /** A view of the unconsumed bytes, valid until the next push/consume. */
  view(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.end + chunk.length > this.buf.length) {
      const live = this.end - this.start;
      if (live + chunk.length <= this.buf.length) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        const next = new Uint8Array(Math.max(2 * (live + chunk.length), 256));
        next.set(this.buf.subarray(this.start, this.end));
        this.buf = next;
      }
      this.start = 0;
      this.end = live;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** Removes and returns (a copy of) the first `n` bytes. */
  take(n: number): Uint8Array {
    if (n > this.length) throw new RangeError("take past the end");
    const out = this.buf.slice(this.start, this.start + n);
    this.consume(n);
    return out;
  }

  consume(n: number): void {
    if (n > this.length) throw new RangeError("consume past the end");
    this.start += n;
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
    }
  }
}
