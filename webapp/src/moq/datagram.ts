/**
 * OBJECT_DATAGRAM (draft-ietf-moq-transport-18 §11.3.1): one object in one
 * QUIC/WebTransport datagram. The parser mirrors moq-wire's `datagram.rs`;
 * the encoder chooses the type bits as moq-client's `DatagramSpec` does,
 * so the web phone sends the same bytes as the Rust phone.
 */

import { Reader, Writer } from "./bytes.js";
import { WireError } from "./errors.js";
import { ObjectStatus } from "./subgroup.js";
import { readVarint, type U64 } from "./varint.js";

/** Datagram type bits (§11.3.1). */
export const DatagramBits = {
  PROPERTIES: 0x01,
  END_OF_GROUP: 0x02,
  ZERO_OBJECT_ID: 0x04,
  DEFAULT_PRIORITY: 0x08,
  STATUS: 0x20,
} as const;

/** Padding datagram type (§11.5.2): read and discarded. */
export const PADDING_DATAGRAM = 0x132b3e29;

/** Valid types are 0b00X0XXXX without STATUS and END_OF_GROUP together. */
export function isDatagramType(t: U64): boolean {
  if (typeof t !== "number" || (t & ~0x2f) !== 0) return false;
  return !(t & DatagramBits.STATUS && t & DatagramBits.END_OF_GROUP);
}

/** A parsed OBJECT_DATAGRAM. */
export interface Datagram {
  datagramType: number;
  trackAlias: U64;
  groupId: U64;
  objectId: U64;
  /** `undefined` when DEFAULT_PRIORITY is set: the subscription's priority applies. */
  publisherPriority: number | undefined;
  /** END_OF_GROUP: no object with a larger Object ID exists in this group. */
  endOfGroup: boolean;
  /** Object Properties (Key-Value-Pairs without the length); empty if none. */
  properties: Uint8Array;
  /** Object Status; Normal (0) unless the STATUS bit is set. */
  status: U64;
  payload: Uint8Array;
}

/**
 * Parses a whole datagram. Errors: `InvalidType`, `Truncated` (also for a
 * PROPERTIES bit with a zero Properties Length, as moq-wire reports it), and
 * `PropertiesOnStatus`. Like moq-wire, the status value itself is not checked
 * and bytes after a status are returned as payload.
 */
export function parseDatagram(raw: Uint8Array): Datagram {
  const r = new Reader(raw, WireError.truncated);
  const t = r.varint();
  if (!isDatagramType(t)) throw WireError.invalidType(t);
  const type = t as number;
  const trackAlias = r.varint();
  const groupId = r.varint();
  const objectId = type & DatagramBits.ZERO_OBJECT_ID ? 0 : r.varint();
  const publisherPriority = type & DatagramBits.DEFAULT_PRIORITY ? undefined : r.u8();
  let properties: Uint8Array = new Uint8Array(0);
  if (type & DatagramBits.PROPERTIES) {
    const len = r.varint();
    // §11.3.1: PROPERTIES set with a zero length is a protocol violation.
    if (len === 0 || len > r.remaining) throw WireError.truncated();
    properties = r.bytes(len as number);
  }
  let status: U64 = ObjectStatus.NORMAL;
  if (type & DatagramBits.STATUS) {
    status = r.varint();
    if (status !== ObjectStatus.NORMAL && properties.length > 0) throw WireError.propertiesOnStatus();
  }
  return {
    datagramType: type,
    trackAlias,
    groupId,
    objectId,
    publisherPriority,
    endOfGroup: (type & DatagramBits.END_OF_GROUP) !== 0,
    properties,
    status,
    payload: r.rest(),
  };
}

/** What to send in one OBJECT_DATAGRAM. */
export interface DatagramSpec {
  trackAlias: U64;
  groupId: U64;
  objectId: U64;
  /** `undefined` sets DEFAULT_PRIORITY. */
  publisherPriority?: number | undefined;
  endOfGroup?: boolean;
  /** Raw Object Properties; empty or absent clears the PROPERTIES bit. */
  properties?: Uint8Array;
  /** Set for a status datagram (STATUS bit, no payload). */
  status?: U64;
  payload?: Uint8Array;
}

/** The datagram type for `d` (as moq-client's `DatagramSpec::datagram_type`). */
export function datagramType(d: DatagramSpec): number {
  let t = 0;
  if (d.properties && d.properties.length > 0) t |= DatagramBits.PROPERTIES;
  if (d.endOfGroup && d.status === undefined) t |= DatagramBits.END_OF_GROUP;
  if (d.objectId === 0) t |= DatagramBits.ZERO_OBJECT_ID;
  if (d.publisherPriority === undefined) t |= DatagramBits.DEFAULT_PRIORITY;
  if (d.status !== undefined) t |= DatagramBits.STATUS;
  return t;
}

/** Serializes an OBJECT_DATAGRAM. */
export function encodeDatagram(d: DatagramSpec): Uint8Array {
  const props = d.properties ?? new Uint8Array(0);
  if (d.status !== undefined && d.status !== ObjectStatus.NORMAL && props.length > 0) {
    throw new RangeError("only Normal objects carry properties (§11.2.1.2)");
  }
  if (d.status !== undefined && d.endOfGroup) throw new RangeError("a status datagram cannot set END_OF_GROUP (§11.3.1)");
  const payload = d.payload ?? new Uint8Array(0);
  const w = new Writer(payload.length + props.length + 24);
  w.varint(datagramType(d)).varint(d.trackAlias).varint(d.groupId);
  if (d.objectId !== 0) w.varint(d.objectId);
  if (d.publisherPriority !== undefined) w.u8(d.publisherPriority);
  if (props.length > 0) w.lengthPrefixed(props);
  if (d.status !== undefined) w.varint(d.status);
  else w.bytes(payload);
  return w.finish();
}

/**
 * The same datagram under another Track Alias (§11.1: aliases are per
 * session); everything after the alias is copied verbatim. Mirrors
 * moq-wire's `Datagram::with_alias`.
 */
export function datagramWithAlias(raw: Uint8Array, alias: U64): Uint8Array {
  const t = readVarint(raw, 0);
  if (!t) throw WireError.truncated();
  const a = readVarint(raw, t.length);
  if (!a) throw WireError.truncated();
  return new Writer(raw.length + 8)
    .varint(t.value)
    .varint(alias)
    .bytes(raw.subarray(t.length + a.length))
    .finish();
}
