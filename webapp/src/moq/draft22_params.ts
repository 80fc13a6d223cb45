/**
 * Message Parameters as draft-22 registers them (docs/DRAFT22.md §5), read
 * into and written from the draft-18 representation the rest of the web
 * phone uses ({@link Parameter}). Mirrors moq-wire's `draft22/params.rs`
 * and `draft22/fill.rs`.
 *
 * The block is framed as in draft-18 (a count, then ascending Type deltas),
 * but each parameter has one encoding by its type, not by parity, and an
 * unknown one is a PROTOCOL_VIOLATION (docs/DRAFT22.md §1). What changed:
 *
 * - which messages may carry which parameter, enforced on responses too, so
 *   a draft-18 habit such as GROUP_ORDER in SUBSCRIBE_OK ends a draft-22
 *   session: {@link writeParams22} leaves out what the scope does not
 *   allow, {@link readParams22} refuses it (docs/DRAFT22.md §5, §5.2, §5.4);
 * - LOCATION_FILTER is typed with no Length (location_filter.ts). Decoded,
 *   it is kept as the draft-18 SUBSCRIPTION_FILTER that means the same, or,
 *   when there is none, under {@link UNMAPPED_LOCATION_FILTER} so the
 *   request can be refused ({@link unsupported22});
 * - new parameters (FILL_PARAMETERS, Range Filters, INCLUDE_PROPERTIES),
 *   kept under their own numbers.
 */

import { Reader, Writer } from "./bytes.js";
import { WireError } from "./errors.js";
import { sortByType } from "./properties.js";
import { u64Add, u64Sub, type U64 } from "./varint.js";
import { ParameterType as P, RequestErrorCode } from "./control_codes.js";
import { decodeSubscriptionFilter, encodeSubscriptionFilter, isLocation, readTuple, type Parameter } from "./control_fields.js";
import { decodeLocationFilter, locationToSubscription, readLocationFilter, subscriptionToLocation, writeLocationFilter, type LocationFilter } from "./location_filter.js";

/**
 * Internal only, never written (beyond any type a peer can send): a
 * LOCATION_FILTER with no draft-18 equivalent, kept as its draft-22 bytes
 * so the request can be refused, as moq-wire keeps it.
 */
export const UNMAPPED_LOCATION_FILTER: U64 = (1n << 63n) | BigInt(P.LOCATION_FILTER);

/** Where a parameter block was received or is being written (docs/DRAFT22.md §5, §5.4). */
export type Scope22 =
  /** A request-initiating message of this type. */
  | "SUBSCRIBE"
  | "PUBLISH"
  | "FETCH"
  | "TRACK_STATUS"
  | "PUBLISH_NAMESPACE"
  | "SUBSCRIBE_NAMESPACE"
  | "SUBSCRIBE_TRACKS"
  | "SUBSCRIBE_OK"
  /** REQUEST_OK answering PUBLISH (draft-18's PUBLISH_OK): EXPIRES only. */
  | "PUBLISH_OK"
  /** REQUEST_OK answering TRACK_STATUS. */
  | "TRACK_STATUS_OK"
  /** REQUEST_OK answering anything else. */
  | "REQUEST_OK"
  | "FETCH_OK"
  | "REQUEST_UPDATE"
  | "PUBLISH_STATE_NOTIFY"
  /** The nested block of a FILL_PARAMETERS value. */
  | "FILL";

const RANGE_FILTERS = [P.SUBGROUP_FILTER, P.OBJECTID_FILTER, P.PRIORITY_FILTER, P.OBJECT_PROPERTY_FILTER] as const;
const SUBSCRIBE: readonly number[] = [
  P.OBJECT_DELIVERY_TIMEOUT,
  P.AUTHORIZATION_TOKEN,
  P.RENDEZVOUS_TIMEOUT,
  P.SUBGROUP_DELIVERY_TIMEOUT,
  P.FORWARD,
  P.SUBSCRIBER_PRIORITY,
  P.LOCATION_FILTER,
  P.GROUP_ORDER,
  P.FILL_PARAMETERS,
  ...RANGE_FILTERS,
  P.NEW_GROUP_REQUEST,
  P.INCLUDE_PROPERTIES,
];

const ALLOWED: Record<Scope22, readonly number[]> = {
  SUBSCRIBE,
  SUBSCRIBE_TRACKS: [...SUBSCRIBE, P.TRACK_PROPERTY_FILTER],
  PUBLISH: [P.OBJECT_DELIVERY_TIMEOUT, P.AUTHORIZATION_TOKEN, P.SUBGROUP_DELIVERY_TIMEOUT, P.EXPIRES, P.LARGEST_OBJECT, P.FORWARD, P.SUBSCRIBER_PRIORITY, P.LOCATION_FILTER, P.GROUP_ORDER],
  FETCH: [P.AUTHORIZATION_TOKEN, P.FILL_TIMEOUT, P.SUBSCRIBER_PRIORITY, P.LOCATION_FILTER, P.GROUP_ORDER, ...RANGE_FILTERS, P.INCLUDE_PROPERTIES],
  TRACK_STATUS: [P.AUTHORIZATION_TOKEN, P.INCLUDE_PROPERTIES],
  PUBLISH_NAMESPACE: [P.AUTHORIZATION_TOKEN],
  SUBSCRIBE_NAMESPACE: [P.AUTHORIZATION_TOKEN],
  SUBSCRIBE_OK: [P.EXPIRES, P.LARGEST_OBJECT],
  PUBLISH_OK: [P.EXPIRES],
  TRACK_STATUS_OK: [P.LARGEST_OBJECT],
  // Which request a REQUEST_OK answers decides its scope; the union is accepted.
  REQUEST_OK: [P.EXPIRES, P.LARGEST_OBJECT],
  FETCH_OK: [],
  REQUEST_UPDATE: [
    P.OBJECT_DELIVERY_TIMEOUT,
    P.AUTHORIZATION_TOKEN,
    P.SUBGROUP_DELIVERY_TIMEOUT,
    P.FORWARD,
    P.SUBSCRIBER_PRIORITY,
    P.LOCATION_FILTER,
    P.FILL_PARAMETERS,
    ...RANGE_FILTERS,
    P.TRACK_PROPERTY_FILTER,
    P.NEW_GROUP_REQUEST,
    P.TRACK_NAMESPACE_PREFIX,
  ],
  PUBLISH_STATE_NOTIFY: [P.LARGEST_OBJECT, P.FORWARD, P.LOCATION_FILTER],
  FILL: [P.FILL_TIMEOUT, P.SUBSCRIBER_PRIORITY, P.LOCATION_FILTER, P.GROUP_ORDER, ...RANGE_FILTERS],
};

function allowed(scope: Scope22, t: U64): boolean {
  return typeof t === "number" && ALLOWED[scope].includes(t);
}

/** AUTHORIZATION TOKEN and the Range Filters may appear more than once. */
function repeatable(t: U64): boolean {
  return t === P.AUTHORIZATION_TOKEN || (typeof t === "number" && t >= P.SUBGROUP_FILTER && t <= P.TRACK_PROPERTY_FILTER);
}

type Encoding =
  | "u8"
  | "varint"
  | "location"
  /** Length, then that many bytes. */
  | "bytes"
  /** A Track Namespace with no Length of its own (kept as its bytes). */
  | "namespace"
  | "filter";

function encoding(t: U64): Encoding | undefined {
  switch (t) {
    case P.FORWARD:
    case P.SUBSCRIBER_PRIORITY:
    case P.GROUP_ORDER:
    case P.INCLUDE_PROPERTIES:
      return "u8";
    case P.OBJECT_DELIVERY_TIMEOUT:
    case P.RENDEZVOUS_TIMEOUT:
    case P.SUBGROUP_DELIVERY_TIMEOUT:
    case P.EXPIRES:
    case P.FILL_TIMEOUT:
    case P.NEW_GROUP_REQUEST:
      return "varint";
    case P.LARGEST_OBJECT:
      return "location";
    case P.AUTHORIZATION_TOKEN:
    case P.FILL_PARAMETERS:
    case P.SUBGROUP_FILTER:
    case P.OBJECTID_FILTER:
    case P.PRIORITY_FILTER:
    case P.OBJECT_PROPERTY_FILTER:
    case P.TRACK_PROPERTY_FILTER:
      return "bytes";
    case P.TRACK_NAMESPACE_PREFIX:
      return "namespace";
    case P.LOCATION_FILTER:
      return "filter";
  }
  return undefined;
}

/** The largest value a uint8 parameter's definition allows (docs/DRAFT22.md §5.2); GROUP_ORDER is also at least 1. */
function u8Max(t: U64): number {
  return t === P.GROUP_ORDER ? 2 : t === P.SUBSCRIBER_PRIORITY ? 255 : 1;
}

const bad = (why: string) => WireError.malformed("parameters", why);

/** A decoded block: the parameters, with the LOCATION_FILTER set apart (what it maps to depends on the message). */
export interface Decoded22 {
  params: Parameter[];
  filter?: LocationFilter;
}

/**
 * Reads a parameter block received in `scope`: every parameter known,
 * allowed there, not repeated unless it may be, and with a value its
 * definition allows; anything else is malformed (a PROTOCOL_VIOLATION).
 */
export function readParams22(scope: Scope22, r: Reader): Decoded22 {
  const count = r.varint();
  const out: Decoded22 = { params: [] };
  const seen = new Set<U64>();
  let prev: U64 = 0;
  for (let i = 0; i < count; i++) {
    const t = u64Add(prev, r.varint());
    if (t === undefined) throw bad("parameter type beyond 2^64-1");
    prev = t;
    const enc = encoding(t);
    if (enc === undefined) throw bad(`unknown message parameter 0x${t.toString(16)}`);
    if (!allowed(scope, t)) throw bad(`parameter 0x${t.toString(16)} is not allowed in ${scope}`);
    if (!repeatable(t)) {
      if (seen.has(t)) throw bad(`parameter 0x${t.toString(16)} repeated`);
      seen.add(t);
    }
    switch (enc) {
      case "u8": {
        const v = r.u8();
        if (v > u8Max(t) || (t === P.GROUP_ORDER && v === 0)) throw bad(`parameter 0x${t.toString(16)} has the value ${v}, which its definition does not allow`);
        out.params.push({ type: t, value: v });
        break;
      }
      case "varint":
        out.params.push({ type: t, value: r.varint() });
        break;
      case "location":
        out.params.push({ type: t, value: { group: r.varint(), object: r.varint() } });
        break;
      case "bytes": {
        const len = r.varint();
        if (typeof len !== "number" || len > 0xffff) throw bad(`parameter 0x${t.toString(16)} longer than 65535 bytes`);
        out.params.push({ type: t, value: r.bytes(len) });
        break;
      }
      case "namespace": {
        const start = r.pos;
        readTuple(r, "parameters", 0);
        out.params.push({ type: t, value: r.buf.slice(start, r.pos) });
        break;
      }
      case "filter":
        out.filter = readLocationFilter(r);
        break;
    }
  }
  return out;
}

/** The LOCATION_FILTER that a draft-18 parameter list asks for, if any. */
function filterOf(params: readonly Parameter[]): LocationFilter | undefined {
  for (const p of params) {
    if (!(p.value instanceof Uint8Array)) continue;
    try {
      if (p.type === P.SUBSCRIPTION_FILTER) return subscriptionToLocation(decodeSubscriptionFilter(p.value));
      if (p.type === UNMAPPED_LOCATION_FILTER) return decodeLocationFilter(p.value);
    } catch {
      /* not a filter: left out, as moq-wire does */
    }
  }
  return undefined;
}

/**
 * Writes `params` (draft-18 representation) as a draft-22 block for
 * `scope`, with `filter` as its LOCATION_FILTER, or else the one a
 * SUBSCRIPTION_FILTER among `params` means. What the scope does not allow
 * (or draft-22 does not have) is left out; a value of the wrong shape is a
 * `RangeError`.
 */
export function writeParams22(w: Writer, scope: Scope22, params: readonly Parameter[], filter?: LocationFilter): void {
  const f = filter ?? filterOf(params);
  const withFilter = f !== undefined && allowed(scope, P.LOCATION_FILTER);
  const kept = sortByType(params.filter((p) => p.type !== P.LOCATION_FILTER && encoding(p.type) !== undefined && allowed(scope, p.type)));
  w.varint(kept.length + (withFilter ? 1 : 0));
  let prev: U64 = 0;
  let filterDue = withFilter;
  const putFilter = (): void => {
    w.varint(u64Sub(P.LOCATION_FILTER, prev) as U64);
    prev = P.LOCATION_FILTER;
    writeLocationFilter(w, f as LocationFilter);
    filterDue = false;
  };
  for (const p of kept) {
    if (filterDue && p.type > P.LOCATION_FILTER) putFilter();
    w.varint(u64Sub(p.type, prev) as U64);
    prev = p.type;
    const v = p.value;
    const wrong = (shape: string) => new RangeError(`parameter 0x${p.type.toString(16)} takes ${shape}`);
    switch (encoding(p.type)) {
      case "u8":
        if (typeof v !== "number") throw wrong("a uint8");
        w.u8(v);
        break;
      case "varint":
        if (typeof v !== "number" && typeof v !== "bigint") throw wrong("a vi64");
        w.varint(v);
        break;
      case "location":
        if (!isLocation(v)) throw wrong("a Location");
        w.varint(v.group).varint(v.object);
        break;
      case "bytes":
        if (!(v instanceof Uint8Array)) throw wrong("bytes");
        if (v.length > 0xffff) throw new RangeError("parameter value longer than 65535 bytes");
        w.lengthPrefixed(v);
        break;
      case "namespace":
        if (!(v instanceof Uint8Array)) throw wrong("an encoded Track Namespace");
        w.bytes(v);
        break;
    }
  }
  if (filterDue) putFilter();
}

/**
 * Reads the parameters of a subscription-like message (SUBSCRIBE, PUBLISH,
 * SUBSCRIBE_TRACKS, REQUEST_UPDATE, PUBLISH_STATE_NOTIFY) with the
 * LOCATION_FILTER stored as the draft-18 SUBSCRIPTION_FILTER that means the
 * same, or under {@link UNMAPPED_LOCATION_FILTER}; a FILL_PARAMETERS value
 * is checked (docs/DRAFT22.md §6).
 */
export function readSubscriptionParams22(scope: Scope22, r: Reader): Parameter[] {
  const d = readParams22(scope, r);
  const fill = d.params.find((p) => p.type === P.FILL_PARAMETERS);
  if (fill) decodeFill(fill.value as Uint8Array);
  if (d.filter) {
    const s = locationToSubscription(d.filter);
    if (typeof s === "string") {
      const w = new Writer(16);
      writeLocationFilter(w, d.filter);
      d.params.push({ type: UNMAPPED_LOCATION_FILTER, value: w.finish() });
    } else if (s !== null) {
      d.params.push({ type: P.SUBSCRIPTION_FILTER, value: encodeSubscriptionFilter(s) });
    }
  }
  return sortByType(d.params);
}

/** A backfill request: FILL_PARAMETERS (0x23), draft-22's replacement of the Joining FETCH (docs/DRAFT22.md §6). */
export interface Fill {
  /** The range; absent: the subscription's own filter. */
  filter?: LocationFilter;
  /** GROUP_ORDER (1 ascending, 2 descending), if given. */
  groupOrder?: number;
  /** The nested block holds Range Filters. */
  rangeFilters: boolean;
}

/** Reads a FILL_PARAMETERS value (without its Length): a count, then the parameters a fill may carry. */
export function decodeFill(b: Uint8Array): Fill {
  const r = new Reader(b, () => bad("FILL_PARAMETERS ends inside a field"));
  const d = readParams22("FILL", r);
  if (r.remaining > 0) throw bad("bytes after the FILL_PARAMETERS block");
  const order = d.params.find((p) => p.type === P.GROUP_ORDER)?.value;
  const fill: Fill = { rangeFilters: d.params.some((p) => isRangeFilter(p.type)) };
  if (d.filter) fill.filter = d.filter;
  if (typeof order === "number") fill.groupOrder = order;
  return fill;
}

function isRangeFilter(t: U64): boolean {
  return typeof t === "number" && t >= P.SUBGROUP_FILTER && t <= P.TRACK_PROPERTY_FILTER;
}

/**
 * Why this phone, as a publisher, cannot serve a request decoded from
 * draft-22: a REQUEST_ERROR code and reason, or `undefined`. Range Filters
 * are refused with INVALID_FILTER (no MAX_FILTER_RANGES is advertised, so
 * its default 0 stands, docs/DRAFT22.md §5.3); a LOCATION_FILTER with no
 * draft-18 form and a backfill (FILL_PARAMETERS, §6) with NOT_SUPPORTED.
 */
export function unsupported22(params: readonly Parameter[]): { code: number; reason: string } | undefined {
  for (const p of params) {
    if (isRangeFilter(p.type)) return { code: RequestErrorCode.INVALID_FILTER, reason: "Range Filters are not accepted (MAX_FILTER_RANGES 0)" };
    if (p.type === P.FILL_PARAMETERS) {
      const fill = p.value instanceof Uint8Array ? decodeFill(p.value) : undefined;
      if (fill?.rangeFilters) return { code: RequestErrorCode.INVALID_FILTER, reason: "Range Filters are not accepted (MAX_FILTER_RANGES 0)" };
      return { code: RequestErrorCode.NOT_SUPPORTED, reason: "a backfill (FILL_PARAMETERS) is not served by a phone" };
    }
    if (p.type === UNMAPPED_LOCATION_FILTER && p.value instanceof Uint8Array) {
      const f = decodeLocationFilter(p.value);
      const why = locationToSubscription(f);
      return { code: RequestErrorCode.NOT_SUPPORTED, reason: `LOCATION_FILTER: ${typeof why === "string" ? why : "a FETCH range relative to the Largest Object is not supported"}` };
    }
  }
  return undefined;
}
