/**
 * FETCH_HEADER data streams (draft-ietf-moq-transport-18 §11.4.4): the
 * answer to a FETCH, one stream of objects, each serialized relative to the
 * prior one. {@link FetchParser} mirrors moq-wire's `FetchParser` (the
 * Rust client); {@link FetchWriter} mirrors moq-wire's `fetch.rs` (what the
 * relay writes when it answers from its cache).
 */

import { ByteQueue, Writer } from "./bytes.js";
import { WireError } from "./errors.js";
import type { Location } from "./control.js";
import { readVarint, u64Add, u64Sub, type U64 } from "./varint.js";

/** FETCH_HEADER stream type (§3.4). */
export const FETCH_HEADER = 0x05;

/** Serialization Flags bits (§11.4.4.1). */
export const FetchFlags = {
  SUBGROUP_MASK: 0x03,
  /** Subgroup ID field present (SUBGROUP_MASK value). */
  SUBGROUP_PRESENT: 0x03,
  OBJECT_DELTA: 0x04,
  GROUP_DELTA: 0x08,
  PRIORITY: 0x10,
  PROPERTIES: 0x20,
  DATAGRAM: 0x40,
  /** End of Non-Existent Range (§11.4.4.2). */
  END_OF_NON_EXISTENT_RANGE: 0x8c,
  /** End of Unknown Range (§11.4.4.2). */
  END_OF_UNKNOWN_RANGE: 0x10c,
} as const;

/** Writes the stream header. */
export function encodeFetchHeader(requestId: U64): Uint8Array {
  return new Writer(10).varint(FETCH_HEADER).varint(requestId).finish();
}

/** One object from a fetch stream. Fetched objects carry no Object Status (§11.2.1.1). */
export interface FetchedObject {
  groupId: U64;
  /** `undefined` for objects whose forwarding preference was Datagram (flag 0x40). */
  subgroupId: U64 | undefined;
  objectId: U64;
  publisherPriority: number;
  properties: Uint8Array;
  payload: Uint8Array;
}

/** What a fetch stream carries. */
export type FetchItem =
  | { kind: "object"; object: FetchedObject }
  /** Objects up to and including `end` do not exist (`unknown: false`) or have unknown status. */
  | { kind: "end-of-range"; end: Location; unknown: boolean };

const violation = (why: string) => WireError.malformed("fetch", why);

/**
 * Incremental parser of one FETCH_HEADER stream, fed with whatever arrived.
 * `next()` returns `undefined` when more bytes are needed and throws
 * {@link WireError} on a malformed stream.
 */
export class FetchParser {
  private readonly q = new ByteQueue();
  private reqId: U64 | undefined;
  private priorGroup: U64 | undefined;
  private priorObject: U64 | undefined;
  private priorSubgroup: U64 | undefined;
  private priorPriority: number | undefined;

  /**
   * @param maxObjectSize largest object or properties block accepted
   * @param descending the FETCH asked for Descending group order (§10.2.8)
   */
  constructor(
    private readonly maxObjectSize = 1 << 20,
    private readonly descending = false,
  ) {}

  push(chunk: Uint8Array): void {
    this.q.push(chunk);
  }

  /** The Request ID of the FETCH, once the header is complete. */
  get requestId(): U64 | undefined {
    return this.reqId;
  }

  /** Parses the FETCH_HEADER once it is complete. */
  header(): U64 | undefined {
    if (this.reqId !== undefined) return this.reqId;
    const b = this.q.view();
    const t = readVarint(b, 0);
    if (!t) return undefined;
    if (t.value !== FETCH_HEADER) throw WireError.invalidType(t.value);
    const id = readVarint(b, t.length);
    if (!id) return undefined;
    this.q.consume(t.length + id.length);
    this.reqId = id.value;
    return id.value;
  }

  /** Next complete item; `undefined` when more bytes are needed. */
  next(): FetchItem | undefined {
    if (this.header() === undefined) return undefined;
    const b = this.q.view();
    let n = 0;
    const field = (): U64 | undefined => {
      const r = readVarint(b, n);
      if (!r) return undefined;
      n += r.length;
      return r.value;
    };
    const flags = field();
    if (flags === undefined) return undefined;
    if (flags === FetchFlags.END_OF_NON_EXISTENT_RANGE || flags === FetchFlags.END_OF_UNKNOWN_RANGE) {
      const group = field();
      if (group === undefined) return undefined;
      const object = field();
      if (object === undefined) return undefined;
      this.q.consume(n);
      this.priorGroup = group;
      this.priorObject = object;
      return { kind: "end-of-range", end: { group, object }, unknown: flags === FetchFlags.END_OF_UNKNOWN_RANGE };
    }
    if (flags >= 128) throw violation(`invalid Serialization Flags 0x${flags.toString(16)}`);
    const f = flags as number;
    const first = this.priorGroup === undefined;

    let groupDelta: U64 | undefined;
    if (f & FetchFlags.GROUP_DELTA) {
      groupDelta = field();
      if (groupDelta === undefined) return undefined;
    }
    let group: U64;
    if (groupDelta !== undefined && this.priorGroup === undefined) group = groupDelta;
    else if (groupDelta !== undefined && this.priorGroup !== undefined) {
      const step = u64Add(groupDelta, 1);
      const g = step === undefined ? undefined : this.descending ? u64Sub(this.priorGroup, step) : u64Add(this.priorGroup, step);
      if (g === undefined) throw violation("group out of range");
      group = g;
    } else if (this.priorGroup !== undefined) group = this.priorGroup;
    else throw violation("first object without Group ID Delta");

    let subgroup: U64 | undefined;
    if (!(f & FetchFlags.DATAGRAM)) {
      const mode = f & FetchFlags.SUBGROUP_MASK;
      if (mode === 0) subgroup = 0;
      else if (mode === 3) {
        subgroup = field();
        if (subgroup === undefined) return undefined;
      } else {
        if (this.priorSubgroup === undefined) throw violation("prior Subgroup ID referenced without a prior object");
        subgroup = mode === 1 ? this.priorSubgroup : (u64Add(this.priorSubgroup, 1) ?? this.priorSubgroup);
      }
    }

    let object: U64;
    if (f & FetchFlags.OBJECT_DELTA) {
      const d = field();
      if (d === undefined) return undefined;
      if (groupDelta !== undefined || this.priorObject === undefined) object = d;
      else {
        const o = u64Add(this.priorObject, d);
        if (o === undefined) throw violation("object overflow");
        object = o;
      }
    } else {
      if (first) throw violation("first object without Object ID Delta");
      const o = u64Add(this.priorObject ?? 0, 1);
      if (o === undefined) throw violation("object overflow");
      object = o;
    }

    let priority: number;
    if (f & FetchFlags.PRIORITY) {
      if (n >= b.length) return undefined;
      priority = b[n] as number;
      n += 1;
    } else {
      if (this.priorPriority === undefined) throw violation("prior Priority referenced without a prior object");
      priority = this.priorPriority;
    }

    let propStart = n;
    let propEnd = n;
    if (f & FetchFlags.PROPERTIES) {
      const len = field();
      if (len === undefined) return undefined;
      if (len > this.maxObjectSize) throw WireError.tooLarge(len);
      if (b.length < n + (len as number)) return undefined;
      propStart = n;
      propEnd = n + (len as number);
      n = propEnd;
    }
    const len = field();
    if (len === undefined) return undefined;
    if (len > this.maxObjectSize) throw WireError.tooLarge(len);
    if (b.length < n + (len as number)) return undefined;
    const payloadStart = n;
    n += len as number;

    const raw = this.q.take(n);
    this.priorGroup = group;
    this.priorObject = object;
    if (subgroup !== undefined) this.priorSubgroup = subgroup;
    this.priorPriority = priority;
    return {
      kind: "object",
      object: {
        groupId: group,
        subgroupId: subgroup,
        objectId: object,
        publisherPriority: priority,
        properties: raw.subarray(propStart, propEnd),
        payload: raw.subarray(payloadStart, n),
      },
    };
  }

  /** Call at FIN: the stream may not end inside an object or before the header. */
  finish(): void {
    if (this.reqId === undefined || this.q.length !== 0) throw WireError.truncated();
  }
}

/** One object to serialize on a fetch stream. */
export interface FetchObjectSpec {
  groupId: U64;
  objectId: U64;
  /** `undefined` for objects that arrived as datagrams. */
  subgroupId: U64 | undefined;
  publisherPriority: number;
  properties?: Uint8Array;
  payload: Uint8Array;
}

/**
 * Serializes ascending-order fetch objects exactly as moq-wire's
 * `FetchWriter`: explicit Subgroup ID (or the Datagram flag), Object ID
 * Delta and Priority on every object; Group ID Delta whenever the group
 * changes (and on the first object, where it is absolute).
 */
export class FetchWriter {
  private prior: { group: U64; object: U64 } | undefined;

  encodeObject(o: FetchObjectSpec): Uint8Array {
    const props = o.properties ?? new Uint8Array(0);
    let flags: number = FetchFlags.PRIORITY | FetchFlags.OBJECT_DELTA;
    flags |= o.subgroupId !== undefined ? FetchFlags.SUBGROUP_PRESENT : FetchFlags.DATAGRAM;
    if (props.length > 0) flags |= FetchFlags.PROPERTIES;
    let groupDelta: U64 | undefined;
    let objectDelta: U64;
    const prior = this.prior;
    if (prior === undefined) {
      groupDelta = o.groupId;
      objectDelta = o.objectId;
    } else if (prior.group === o.groupId) {
      const d = u64Sub(o.objectId, prior.object);
      if (d === undefined) throw new RangeError("fetch objects must ascend");
      objectDelta = d;
    } else {
      const d = u64Sub(o.groupId, prior.group);
      if (d === undefined) throw new RangeError("fetch groups must ascend");
      groupDelta = u64Sub(d, 1) as U64;
      objectDelta = o.objectId;
    }
    if (groupDelta !== undefined) flags |= FetchFlags.GROUP_DELTA;
    const w = new Writer(o.payload.length + props.length + 24).varint(flags);
    if (groupDelta !== undefined) w.varint(groupDelta);
    if (o.subgroupId !== undefined) w.varint(o.subgroupId);
    w.varint(objectDelta).u8(o.publisherPriority);
    if (props.length > 0) w.lengthPrefixed(props);
    w.lengthPrefixed(o.payload);
    this.prior = { group: o.groupId, object: o.objectId };
    return w.finish();
  }
}
