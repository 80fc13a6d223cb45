/**
 * SUBGROUP_HEADER data streams (draft-ietf-moq-transport-18 §11.4.2
 * "Subgroup Header" and §11.2 "Objects").
 *
 * {@link SubgroupParser} mirrors moq-wire's `subgroup.rs`: sans-IO, bytes go
 * in with `push`, the header and objects come out of `next`, `undefined`
 * meaning "need more bytes". {@link SubgroupWriter} serializes objects as
 * moq-client's `SubgroupWriter` does.
 */

import { ByteQueue, Writer } from "./bytes.js";
import { WireError } from "./errors.js";
import { readVarint, u64Add, u64Sub, type U64 } from "./varint.js";

/** Subgroup header type bits (§11.4.2). */
export const SubgroupBits = {
  PROPERTIES: 0x01,
  SUBGROUP_ID_MODE: 0x06,
  END_OF_GROUP: 0x08,
  DEFAULT_PRIORITY: 0x20,
  FIRST_OBJECT: 0x40,
} as const;

/** Object Status values (§11.2.1.1). */
export const ObjectStatus = {
  NORMAL: 0x0,
  END_OF_GROUP: 0x3,
  END_OF_TRACK: 0x4,
} as const;

/** How the Subgroup ID is carried (§11.4.2 SUBGROUP_ID_MODE). */
export type SubgroupIdMode = "zero" | "first-object" | "explicit";

/** True for every valid SUBGROUP_HEADER type: 0b0XX1XXXX without mode 0b11. */
export function isSubgroupType(t: U64): boolean {
  return typeof t === "number" && t < 0x80 && (t & 0x10) !== 0 && (t & SubgroupBits.SUBGROUP_ID_MODE) !== SubgroupBits.SUBGROUP_ID_MODE;
}

/** Flags that make up a SUBGROUP_HEADER type. */
export interface SubgroupTypeFlags {
  /** Every object carries a Properties field. */
  properties?: boolean;
  mode: SubgroupIdMode;
  /** This subgroup holds the group's largest object. */
  endOfGroup?: boolean;
  /** No Publisher Priority field: the subscription's priority applies. */
  defaultPriority?: boolean;
  /** The stream starts at the subgroup's first object. */
  firstObject?: boolean;
}

export function subgroupType(f: SubgroupTypeFlags): number {
  let t = 0x10 | { zero: 0, "first-object": 0x02, explicit: 0x04 }[f.mode];
  if (f.properties) t |= SubgroupBits.PROPERTIES;
  if (f.endOfGroup) t |= SubgroupBits.END_OF_GROUP;
  if (f.defaultPriority) t |= SubgroupBits.DEFAULT_PRIORITY;
  if (f.firstObject) t |= SubgroupBits.FIRST_OBJECT;
  return t;
}

/** A decoded SUBGROUP_HEADER. */
export interface SubgroupHeader {
  streamType: number;
  trackAlias: U64;
  groupId: U64;
  /**
   * Known at once in Zero and Explicit modes; in FirstObject mode
   * `undefined` until the first object is parsed (see
   * {@link SubgroupParser.subgroupId}).
   */
  subgroupId: U64 | undefined;
  /** `undefined` when DEFAULT_PRIORITY is set. */
  publisherPriority: number | undefined;
}

export function subgroupMode(streamType: number): SubgroupIdMode {
  const m = (streamType & SubgroupBits.SUBGROUP_ID_MODE) >> 1;
  return m === 0 ? "zero" : m === 1 ? "first-object" : "explicit";
}

export function hasProperties(h: SubgroupHeader): boolean {
  return (h.streamType & SubgroupBits.PROPERTIES) !== 0;
}

export function isEndOfGroup(h: SubgroupHeader): boolean {
  return (h.streamType & SubgroupBits.END_OF_GROUP) !== 0;
}

/**
 * Serializes a header. `subgroupId` is written only in Explicit mode (the
 * stream type says which); a priority only when DEFAULT_PRIORITY is clear.
 */
export function encodeSubgroupHeader(h: SubgroupHeader): Uint8Array {
  if (!isSubgroupType(h.streamType)) throw new RangeError(`0x${h.streamType.toString(16)} is not a SUBGROUP_HEADER type`);
  const w = new Writer(24).varint(h.streamType).varint(h.trackAlias).varint(h.groupId);
  if (subgroupMode(h.streamType) === "explicit") {
    if (h.subgroupId === undefined) throw new RangeError("explicit mode needs a subgroupId");
    w.varint(h.subgroupId);
  }
  const defaultPriority = (h.streamType & SubgroupBits.DEFAULT_PRIORITY) !== 0;
  if (defaultPriority !== (h.publisherPriority === undefined)) {
    throw new RangeError("publisherPriority must be given exactly when DEFAULT_PRIORITY is clear");
  }
  if (h.publisherPriority !== undefined) w.u8(h.publisherPriority);
  return w.finish();
}

/** One object as received on a subgroup stream. */
export interface SubgroupObject {
  objectId: U64;
  /** Object Properties (without the length); empty if none. */
  properties: Uint8Array;
  payload: Uint8Array;
  /** Object Status (§11.2.1.1): Normal unless the payload is empty and a status was sent. */
  status: U64;
  /** The whole serialized object (§11.4.2 "Subgroup Object Fields"). */
  raw: Uint8Array;
}

export type SubgroupEvent = { kind: "header"; header: SubgroupHeader } | { kind: "object"; object: SubgroupObject };

/** Default object size limit: the relay's default `max_object_size`. */
export const DEFAULT_MAX_OBJECT_SIZE = 1 << 20;

/**
 * Incremental SUBGROUP stream parser. Feed it whatever arrived; it buffers at
 * most one incomplete object plus one chunk. Not an iterator: "no more yet"
 * (`undefined`) and errors (thrown {@link WireError}) are distinct outcomes.
 */
export class SubgroupParser {
  private readonly q = new ByteQueue();
  private hdr: SubgroupHeader | undefined;
  private prevObject: U64 | undefined;

  constructor(private readonly maxObjectSize: number = DEFAULT_MAX_OBJECT_SIZE) {}

  push(chunk: Uint8Array): void {
    this.q.push(chunk);
  }

  get header(): SubgroupHeader | undefined {
    return this.hdr;
  }

  /** The stream's Subgroup ID once it is known. */
  get subgroupId(): U64 | undefined {
    return this.hdr?.subgroupId;
  }

  /** Bytes received but not yet parsed. */
  get buffered(): number {
    return this.q.length;
  }

  /** Next complete header or object; `undefined` when more bytes are needed. */
  next(): SubgroupEvent | undefined {
    return this.hdr === undefined ? this.parseHeader() : this.parseObject(this.hdr);
  }

  /** Call at FIN: a stream may not end inside an object (§11.4). */
  finish(): void {
    if (this.q.length !== 0 || this.hdr === undefined) throw WireError.truncated();
  }

  private parseHeader(): SubgroupEvent | undefined {
    const b = this.q.view();
    const t = readVarint(b, 0);
    if (!t) return undefined;
    if (!isSubgroupType(t.value)) throw WireError.invalidType(t.value);
    const streamType = t.value as number;
    let n = t.length;
    const alias = readVarint(b, n);
    if (!alias) return undefined;
    n += alias.length;
    const group = readVarint(b, n);
    if (!group) return undefined;
    n += group.length;
    let subgroupId: U64 | undefined;
    const mode = subgroupMode(streamType);
    if (mode === "zero") subgroupId = 0;
    else if (mode === "explicit") {
      const s = readVarint(b, n);
      if (!s) return undefined;
      n += s.length;
      subgroupId = s.value;
    }
    let publisherPriority: number | undefined;
    if (!(streamType & SubgroupBits.DEFAULT_PRIORITY)) {
      if (n >= b.length) return undefined;
      publisherPriority = b[n] as number;
      n += 1;
    }
    this.q.consume(n);
    this.hdr = { streamType, trackAlias: alias.value, groupId: group.value, subgroupId, publisherPriority };
    return { kind: "header", header: { ...this.hdr } };
  }

  private parseObject(h: SubgroupHeader): SubgroupEvent | undefined {
    const b = this.q.view();
    const delta = readVarint(b, 0);
    if (!delta) return undefined;
    let n = delta.length;
    let propStart = n;
    let propEnd = n;
    if (hasProperties(h)) {
      const plen = readVarint(b, n);
      if (!plen) return undefined;
      n += plen.length;
      if (plen.value > this.maxObjectSize) throw WireError.tooLarge(plen.value);
      const len = plen.value as number;
      if (b.length < n + len) return undefined;
      propStart = n;
      propEnd = n + len;
      n += len;
    }
    const plen = readVarint(b, n);
    if (!plen) return undefined;
    n += plen.length;
    if (plen.value > this.maxObjectSize) throw WireError.tooLarge(plen.value);
    const len = plen.value as number;
    let status: U64 = ObjectStatus.NORMAL;
    if (len === 0) {
      const s = readVarint(b, n);
      if (!s) return undefined;
      n += s.length;
      if (s.value !== ObjectStatus.NORMAL && s.value !== ObjectStatus.END_OF_GROUP && s.value !== ObjectStatus.END_OF_TRACK) {
        throw WireError.invalidStatus(s.value);
      }
      // §11.2.1.2: only Normal objects may carry properties.
      if (s.value !== ObjectStatus.NORMAL && propEnd > propStart) throw WireError.propertiesOnStatus();
      status = s.value;
    }
    if (b.length < n + len) return undefined;
    const payloadStart = n;
    n += len;
    let objectId: U64;
    if (this.prevObject === undefined) objectId = delta.value;
    else {
      const id = u64Add(this.prevObject, delta.value);
      const next = id === undefined ? undefined : u64Add(id, 1);
      if (next === undefined) throw WireError.objectIdOverflow();
      objectId = next;
    }
    this.prevObject = objectId;
    if (h.subgroupId === undefined) h.subgroupId = objectId;
    const raw = this.q.take(n);
    return {
      kind: "object",
      object: {
        objectId,
        properties: raw.subarray(propStart, propEnd),
        payload: raw.subarray(payloadStart, n),
        status,
        raw,
      },
    };
  }
}

/** The header fields of a subgroup stream the phone opens. */
export interface SubgroupSpec {
  trackAlias: U64;
  groupId: U64;
  subgroupId: U64;
  /** `undefined` sets DEFAULT_PRIORITY (the track's priority applies). */
  publisherPriority: number | undefined;
  /** Every object carries a Properties field. */
  properties?: boolean;
  /** This subgroup holds the group's largest object. */
  endOfGroup?: boolean;
}

/**
 * Serializes one SUBGROUP stream: header first, then objects in ascending
 * Object ID order with delta encoding (§11.4.2 "Subgroup Object Fields").
 * {@link SubgroupWriter.open} makes the header the way moq-client does:
 * explicit Subgroup ID mode and FIRST_OBJECT (the original publisher starts
 * at the first object).
 */
export class SubgroupWriter {
  private prev: U64 | undefined;
  private readonly props: boolean;

  constructor(readonly header: SubgroupHeader) {
    encodeSubgroupHeader(header); // validates
    this.props = hasProperties(header);
  }

  static open(spec: SubgroupSpec): SubgroupWriter {
    return new SubgroupWriter({
      streamType: subgroupType({
        mode: "explicit",
        firstObject: true,
        properties: spec.properties ?? false,
        endOfGroup: spec.endOfGroup ?? false,
        defaultPriority: spec.publisherPriority === undefined,
      }),
      trackAlias: spec.trackAlias,
      groupId: spec.groupId,
      subgroupId: spec.subgroupId,
      publisherPriority: spec.publisherPriority,
    });
  }

  /** The stream header: write it first. */
  encodeHeader(): Uint8Array {
    return encodeSubgroupHeader(this.header);
  }

  private delta(objectId: U64): U64 {
    let d: U64;
    if (this.prev === undefined) d = objectId;
    else {
      const gap = objectId > this.prev ? u64Sub(objectId, this.prev) : undefined;
      if (gap === undefined) throw new RangeError(`object ${objectId} after object ${this.prev}: IDs must ascend in a subgroup`);
      d = u64Sub(gap, 1) as U64;
    }
    this.prev = objectId;
    return d;
  }

  /** Serializes one Normal object. */
  encodeObject(objectId: U64, payload: Uint8Array, properties: Uint8Array = new Uint8Array(0)): Uint8Array {
    if (properties.length > 0 && !this.props) throw new RangeError("object properties on a subgroup without the PROPERTIES bit");
    const w = new Writer(payload.length + properties.length + 16);
    w.varint(this.delta(objectId));
    if (this.props) w.lengthPrefixed(properties);
    w.varint(payload.length);
    // Zero-length objects carry an explicit Normal status.
    if (payload.length === 0) w.varint(ObjectStatus.NORMAL);
    w.bytes(payload);
    return w.finish();
  }

  /** Serializes a status-only object (End of Group, End of Track; §11.2.1.1). */
  encodeStatus(objectId: U64, status: U64): Uint8Array {
    const w = new Writer(16).varint(this.delta(objectId));
    if (this.props) w.varint(0);
    return w.varint(0).varint(status).finish();
  }
}
