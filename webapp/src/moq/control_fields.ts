/** Field codecs shared by draft-18 control messages: Locations, parameters, filters, namespaces (§1.4, §2.4, §10.2). Re-exported by control.ts. */

import { Reader, Writer, bytesEqual, fromUtf8, fromUtf8Lossy, toBytes, utf8, type BytesLike } from "./bytes.js";
import { WireError } from "./errors.js";
import { sortByType } from "./properties.js";
import { u64Add, u64Sub, type U64 } from "./varint.js";

import { ParameterType, MessageType } from "./control_codes.js";

// ----------------------------------------------------------------- fields --

/** A Location (§1.4.2): {Group, Object}. */
export interface Location {
  group: U64;
  object: U64;
}

/** Location A < Location B (§1.4.2). */
export function compareLocations(a: Location, b: Location): number {
  if (a.group !== b.group) return a.group < b.group ? -1 : 1;
  if (a.object !== b.object) return a.object < b.object ? -1 : 1;
  return 0;
}

/**
 * A Message Parameter (§10.2). The value's shape follows the type:
 * FORWARD, SUBSCRIBER_PRIORITY and GROUP_ORDER are a uint8 (`number`),
 * LARGEST_OBJECT a {@link Location}, other even types a vi64, other odd
 * types bytes (as moq-transport codes them: unknown types by parity).
 */
export interface Parameter {
  type: U64;
  value: U64 | Uint8Array | Location;
}

export const U8_PARAMETERS: readonly U64[] = [ParameterType.FORWARD, ParameterType.SUBSCRIBER_PRIORITY, ParameterType.GROUP_ORDER];
export const LOCATION_PARAMETERS: readonly U64[] = [ParameterType.LARGEST_OBJECT];

export function isOdd(t: U64): boolean {
  return typeof t === "bigint" ? (t & 1n) === 1n : t % 2 === 1;
}

export function isLocation(v: unknown): v is Location {
  return typeof v === "object" && v !== null && !(v instanceof Uint8Array) && "group" in v && "object" in v;
}

/**
 * Parameters allowed only on some messages (moq-transport's scope check,
 * §10.2.1): RENDEZVOUS_TIMEOUT only on SUBSCRIBE; SUBSCRIBE_TRACKS takes only
 * AUTHORIZATION_TOKEN and FORWARD.
 */
export function parametersAllowed(messageType: number, params: readonly Parameter[]): boolean {
  if (messageType === MessageType.SUBSCRIBE_TRACKS) {
    return params.every((p) => p.type === ParameterType.AUTHORIZATION_TOKEN || p.type === ParameterType.FORWARD);
  }
  return params.every((p) => p.type !== ParameterType.RENDEZVOUS_TIMEOUT || messageType === MessageType.SUBSCRIBE);
}

export function writeParams(w: Writer, params: readonly Parameter[]): void {
  const sorted = sortByType(params);
  w.varint(sorted.length);
  let prev: U64 = 0;
  for (const p of sorted) {
    w.varint(u64Sub(p.type, prev) as U64);
    prev = p.type;
    const v = p.value;
    if (U8_PARAMETERS.includes(p.type)) {
      if (typeof v !== "number") throw new RangeError(`parameter 0x${p.type.toString(16)} is a uint8`);
      w.u8(v);
    } else if (LOCATION_PARAMETERS.includes(p.type)) {
      if (!isLocation(v)) throw new RangeError(`parameter 0x${p.type.toString(16)} is a Location`);
      w.varint(v.group).varint(v.object);
    } else if (isOdd(p.type)) {
      if (!(v instanceof Uint8Array)) throw new RangeError(`parameter 0x${p.type.toString(16)} takes bytes`);
      if (v.length > 0xffff) throw new RangeError("parameter value longer than 65535 bytes");
      w.lengthPrefixed(v);
    } else {
      if (typeof v !== "number" && typeof v !== "bigint") throw new RangeError(`parameter 0x${p.type.toString(16)} is a vi64`);
      w.varint(v);
    }
  }
}

export function readParams(r: Reader): Parameter[] {
  const bad = (why: string) => WireError.malformed("parameters", why);
  const count = r.varint();
  const out: Parameter[] = [];
  let prev: U64 = 0;
  for (let i = 0; i < count; i++) {
    const type = u64Add(prev, r.varint());
    if (type === undefined) throw bad("parameter type overflow");
    prev = type;
    if (U8_PARAMETERS.includes(type)) {
      out.push({ type, value: r.u8() });
    } else if (LOCATION_PARAMETERS.includes(type)) {
      out.push({ type, value: { group: r.varint(), object: r.varint() } });
    } else if (isOdd(type)) {
      const len = r.varint();
      if (typeof len !== "number" || len > 0xffff) throw bad("parameter value longer than 65535 bytes");
      out.push({ type, value: r.bytes(len) });
    } else {
      out.push({ type, value: r.varint() });
    }
  }
  return out;
}

/** The first parameter of `type`, if any. */
export function getParameter(params: readonly Parameter[], type: U64): Parameter["value"] | undefined {
  return params.find((p) => p.type === type)?.value;
}

/** Subscription Filter types (§5.1.2). */
export const FilterType = {
  NEXT_GROUP_START: 0x1,
  LARGEST_OBJECT: 0x2,
  ABSOLUTE_START: 0x3,
  ABSOLUTE_RANGE: 0x4,
} as const;

/**
 * A Subscription Filter (§5.1.2), the value of the SUBSCRIPTION_FILTER
 * parameter (§10.2.9). For AbsoluteRange draft-18 calls the last field "End
 * Group Delta" (relative to the Start Location's group); moq-transport names
 * it `end_group_id`; the moq-phone relay adds it to the start group.
 */
export type SubscriptionFilter =
  | { type: typeof FilterType.NEXT_GROUP_START }
  | { type: typeof FilterType.LARGEST_OBJECT }
  | { type: typeof FilterType.ABSOLUTE_START; start: Location }
  | { type: typeof FilterType.ABSOLUTE_RANGE; start: Location; endGroup: U64 };

export function encodeSubscriptionFilter(f: SubscriptionFilter): Uint8Array {
  const w = new Writer(16).varint(f.type);
  if (f.type === FilterType.ABSOLUTE_START || f.type === FilterType.ABSOLUTE_RANGE) w.varint(f.start.group).varint(f.start.object);
  if (f.type === FilterType.ABSOLUTE_RANGE) w.varint(f.endGroup);
  return w.finish();
}

export function decodeSubscriptionFilter(b: Uint8Array): SubscriptionFilter {
  const r = new Reader(b, () => WireError.malformed("SUBSCRIPTION_FILTER", "truncated"));
  const t = r.varint();
  let f: SubscriptionFilter;
  if (t === FilterType.NEXT_GROUP_START || t === FilterType.LARGEST_OBJECT) f = { type: t };
  else if (t === FilterType.ABSOLUTE_START) f = { type: t, start: { group: r.varint(), object: r.varint() } };
  else if (t === FilterType.ABSOLUTE_RANGE) f = { type: t, start: { group: r.varint(), object: r.varint() }, endGroup: r.varint() };
  else throw WireError.malformed("SUBSCRIPTION_FILTER", `filter type ${t}`);
  if (r.remaining > 0) throw WireError.malformed("SUBSCRIPTION_FILTER", "trailing bytes");
  return f;
}

/** Longest Full Track Name, Track Namespace or namespace field (§2.4.1). */
export const MAX_FULL_TRACK_NAME = 4096;
/** Most fields in a Track Namespace (§2.4.1). */
export const MAX_NAMESPACE_FIELDS = 32;
/** Longest Reason Phrase (§1.4.4). */
export const MAX_REASON_PHRASE = 1024;
/** Longest GOAWAY New Session URI (§10.4). */
export const MAX_GOAWAY_URI = 8192;

/** A Track Namespace or prefix/suffix: its fields (bytes; strings are UTF-8). */
export type Tuple = readonly BytesLike[];

export function tupleBytes(t: Tuple): number {
  let n = 0;
  for (const f of t) n += toBytes(f).length;
  return n;
}

/** Track Namespace (§2.4.1): `minFields` is 1 for a full namespace, 0 for a prefix or suffix. */
export function writeTuple(w: Writer, t: Tuple, minFields: number): void {
  if (t.length < minFields || t.length > MAX_NAMESPACE_FIELDS) throw new RangeError(`a namespace needs ${minFields}-32 fields, not ${t.length}`);
  if (tupleBytes(t) > MAX_FULL_TRACK_NAME) throw new RangeError("namespace longer than 4096 bytes");
  w.varint(t.length);
  for (const f of t) {
    const b = toBytes(f);
    if (b.length === 0) throw new RangeError("empty namespace field");
    w.lengthPrefixed(b);
  }
}

export function readTuple(r: Reader, what: string, minFields: number): Uint8Array[] {
  const count = r.varint();
  if (count < minFields || count > MAX_NAMESPACE_FIELDS) throw WireError.malformed(what, `namespace of ${count} fields`);
  const out: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < (count as number); i++) {
    const len = r.varint();
    if (len > MAX_FULL_TRACK_NAME) throw WireError.malformed(what, "namespace field longer than 4096 bytes");
    if (len === 0) throw WireError.malformed(what, "empty namespace field");
    const f = r.bytes(len as number);
    total += f.length;
    out.push(f);
  }
  if (total > MAX_FULL_TRACK_NAME) throw WireError.malformed(what, "namespace longer than 4096 bytes");
  return out;
}

export function writeName(w: Writer, ns: Tuple, name: BytesLike): void {
  const b = toBytes(name);
  if (b.length + tupleBytes(ns) > MAX_FULL_TRACK_NAME) throw new RangeError("full track name longer than 4096 bytes");
  w.lengthPrefixed(b);
}

export function readName(r: Reader, what: string, ns: readonly Uint8Array[]): Uint8Array {
  const len = r.varint();
  if (len > MAX_FULL_TRACK_NAME) throw WireError.malformed(what, "track name longer than 4096 bytes");
  const name = r.bytes(len as number);
  let total = name.length;
  for (const f of ns) total += f.length;
  if (total > MAX_FULL_TRACK_NAME) throw WireError.malformed(what, "full track name longer than 4096 bytes");
  return name;
}

/** Truncates to at most `max` UTF-8 bytes on a character boundary (as moq-wire does). */
export function truncateUtf8(s: string, max: number): Uint8Array {
  const b = utf8(s);
  if (b.length <= max) return b;
  let end = max;
  while (end > 0 && ((b[end] as number) & 0xc0) === 0x80) end--;
  return b.slice(0, end);
}

export function writeReason(w: Writer, reason: string): void {
  w.lengthPrefixed(truncateUtf8(reason, MAX_REASON_PHRASE));
}

export function readReason(r: Reader, what: string): string {
  const len = r.varint();
  if (len > MAX_REASON_PHRASE) throw WireError.malformed(what, "reason phrase longer than 1024 bytes");
  const s = fromUtf8(r.bytes(len as number));
  if (s === undefined) throw WireError.malformed(what, "reason phrase is not UTF-8");
  return s;
}

/** Namespace fields as UTF-8 strings (invalid sequences become U+FFFD). */
export function tupleToStrings(t: Tuple): string[] {
  return t.map((f) => (typeof f === "string" ? f : fromUtf8Lossy(f)));
}

/** True when `prefix` is a field-wise prefix of `ns` (§10.18). */
export function tupleHasPrefix(ns: Tuple, prefix: Tuple): boolean {
  if (prefix.length > ns.length) return false;
  return prefix.every((f, i) => bytesEqual(toBytes(f), toBytes(ns[i] as BytesLike)));
}

/** Connect URI, Track Namespace and Track Name all empty: retry here, same name. */
export const EMPTY_REDIRECT = Uint8Array.of(0, 0, 0);

/**
 * A Redirect (§10.6.1): Connect URI, Track Namespace (0 to 32 fields), Track
 * Name. Checked, and returned as its bytes.
 */
export function readRedirect(r: Reader, what: string): Uint8Array {
  const start = r.pos;
  const len = r.varint();
  if (len > r.remaining) throw WireError.malformed(what, "bad Connect URI length");
  r.bytes(len as number);
  const namespace = readTuple(r, what, 0);
  readName(r, what, namespace);
  return r.buf.slice(start, r.pos);
}
