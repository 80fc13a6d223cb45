/**
 * LOCATION_FILTER (Message Parameter 0x21) as draft-22 encodes it
 * (docs/DRAFT22.md §5.1), and its mapping onto the draft-18 forms the rest
 * of the web phone works with: the SUBSCRIPTION_FILTER of a subscription
 * (draft-18 §5.1.2) and the Start / End Locations of a Standalone FETCH
 * (draft-18 §10.12.1). Mirrors moq-wire's `draft22/filter.rs`.
 *
 * Draft-18 gave the filter a Length and four Filter Types; draft-22 drops
 * the Length, renumbers the types (2, 3 and 4 mean different things in the
 * two drafts) and adds a relative start and an object-exact end. The
 * mapping is exact where a draft-18 form exists; where none does
 * ({@link locationToSubscription} returns a reason) the request is refused
 * rather than served differently from what was asked.
 */

import { Reader, type Writer } from "./bytes.js";
import { WireError } from "./errors.js";
import { FilterType, type Location, type SubscriptionFilter } from "./control_fields.js";
import { MAX_U64, u64Add, u64Sub, type U64 } from "./varint.js";

/** Draft-22 Location Filter Types (docs/DRAFT22.md §5.1). */
export const LocationFilterType = {
  NONE: 0x0,
  RELATIVE_START: 0x1,
  ABSOLUTE_START: 0x2,
  ABSOLUTE_GROUP_END: 0x3,
  ABSOLUTE_RANGE: 0x4,
  NEXT_OBJECT: 0x5,
} as const;

/** A draft-22 Location Filter. */
export type LocationFilter =
  /** No filter: every Object (a FETCH: {0,0} to the Largest Object). */
  | { type: typeof LocationFilterType.NONE }
  /** From the start of group `Largest.Group + 1 - startGroup`: 0 is the next group, 1 the current one. */
  | { type: typeof LocationFilterType.RELATIVE_START; startGroup: U64 }
  /** From `start`, open-ended. */
  | { type: typeof LocationFilterType.ABSOLUTE_START; start: Location }
  /** From `start` through the whole group `start.group + endGroupDelta`. */
  | { type: typeof LocationFilterType.ABSOLUTE_GROUP_END; start: Location; endGroupDelta: U64 }
  /** From `start` through `{start.group + endGroupDelta, endObject}`, inclusive. */
  | { type: typeof LocationFilterType.ABSOLUTE_RANGE; start: Location; endGroupDelta: U64; endObject: U64 }
  /** From the Object after the Largest one. */
  | { type: typeof LocationFilterType.NEXT_OBJECT };

const violation = (why: string) => WireError.malformed("LOCATION_FILTER", why);

/**
 * Reads a LOCATION_FILTER value: a type, then the fields it names, with no
 * Length. An unknown type, or an end group beyond 2^64-1, is malformed
 * (a PROTOCOL_VIOLATION).
 */
export function readLocationFilter(r: Reader): LocationFilter {
  const t = r.varint();
  const loc = (): Location => ({ group: r.varint(), object: r.varint() });
  let f: LocationFilter;
  switch (t) {
    case LocationFilterType.NONE:
    case LocationFilterType.NEXT_OBJECT:
      return { type: t };
    case LocationFilterType.RELATIVE_START:
      return { type: t, startGroup: r.varint() };
    case LocationFilterType.ABSOLUTE_START:
      return { type: t, start: loc() };
    case LocationFilterType.ABSOLUTE_GROUP_END:
      f = { type: t, start: loc(), endGroupDelta: r.varint() };
      break;
    case LocationFilterType.ABSOLUTE_RANGE:
      f = { type: t, start: loc(), endGroupDelta: r.varint(), endObject: r.varint() };
      break;
    default:
      throw violation(`unknown Location Filter Type 0x${t.toString(16)}`);
  }
  if (u64Add(f.start.group, f.endGroupDelta) === undefined) throw violation("end group beyond 2^64-1");
  return f;
}

/** Decodes a LOCATION_FILTER value that must span `b` exactly. */
export function decodeLocationFilter(b: Uint8Array): LocationFilter {
  const r = new Reader(b, () => violation("truncated"));
  const f = readLocationFilter(r);
  if (r.remaining > 0) throw violation("trailing bytes");
  return f;
}

/** Writes the parameter's value (without its type). */
export function writeLocationFilter(w: Writer, f: LocationFilter): void {
  w.varint(f.type);
  switch (f.type) {
    case LocationFilterType.RELATIVE_START:
      w.varint(f.startGroup);
      break;
    case LocationFilterType.ABSOLUTE_START:
      w.varint(f.start.group).varint(f.start.object);
      break;
    case LocationFilterType.ABSOLUTE_GROUP_END:
      w.varint(f.start.group).varint(f.start.object).varint(f.endGroupDelta);
      break;
    case LocationFilterType.ABSOLUTE_RANGE:
      w.varint(f.start.group).varint(f.start.object).varint(f.endGroupDelta).varint(f.endObject);
      break;
  }
}

/**
 * The draft-18 SUBSCRIPTION_FILTER that selects the same Objects of a
 * subscription: `null` for no filter, a string (why) when draft-18 has no
 * such filter.
 */
export function locationToSubscription(f: LocationFilter): SubscriptionFilter | null | string {
  switch (f.type) {
    case LocationFilterType.NONE:
      return null;
    case LocationFilterType.RELATIVE_START:
      return f.startGroup === 0 ? { type: FilterType.NEXT_GROUP_START } : `a relative start ${f.startGroup} groups back is not supported`;
    case LocationFilterType.NEXT_OBJECT:
      return { type: FilterType.LARGEST_OBJECT };
    case LocationFilterType.ABSOLUTE_START:
      return { type: FilterType.ABSOLUTE_START, start: f.start };
    case LocationFilterType.ABSOLUTE_GROUP_END:
      // Draft-18's End Group is a delta from the start group, as draft-22's is.
      return { type: FilterType.ABSOLUTE_RANGE, start: f.start, endGroup: f.endGroupDelta };
    case LocationFilterType.ABSOLUTE_RANGE:
      return "an end Object within a group is not supported";
  }
}

/** The draft-22 form of a draft-18 SUBSCRIPTION_FILTER: every one has one. */
export function subscriptionToLocation(f: SubscriptionFilter): LocationFilter {
  switch (f.type) {
    case FilterType.NEXT_GROUP_START:
      return { type: LocationFilterType.RELATIVE_START, startGroup: 0 };
    case FilterType.LARGEST_OBJECT:
      return { type: LocationFilterType.NEXT_OBJECT };
    case FilterType.ABSOLUTE_START:
      return { type: LocationFilterType.ABSOLUTE_START, start: f.start };
    case FilterType.ABSOLUTE_RANGE:
      return { type: LocationFilterType.ABSOLUTE_GROUP_END, start: f.start, endGroupDelta: f.endGroup };
  }
}

/**
 * A FETCH's range as draft-18's Start Location and End Location ("the end
 * Location, plus 1; Object 0 means the entire group"), or a string (why)
 * when the range is relative to the Largest Object.
 */
export function locationToFetchRange(f: LocationFilter): { start: Location; end: Location } | string {
  const toEnd: Location = { group: MAX_U64, object: 0 };
  const endGroup = (s: Location, d: U64): U64 => u64Add(s.group, d) as U64; // checked when read
  switch (f.type) {
    case LocationFilterType.NONE:
      return { start: { group: 0, object: 0 }, end: toEnd };
    case LocationFilterType.ABSOLUTE_START:
      return { start: f.start, end: toEnd };
    case LocationFilterType.ABSOLUTE_GROUP_END:
      return { start: f.start, end: { group: endGroup(f.start, f.endGroupDelta), object: 0 } };
    case LocationFilterType.ABSOLUTE_RANGE:
      // Object 2^64-1 plus one cannot be written: it is "the whole group" (Object 0).
      return { start: f.start, end: { group: endGroup(f.start, f.endGroupDelta), object: u64Add(f.endObject, 1) ?? 0 } };
    case LocationFilterType.RELATIVE_START:
    case LocationFilterType.NEXT_OBJECT:
      return "a FETCH range relative to the Largest Object is not supported";
  }
}

/** The draft-22 filter for a draft-18 FETCH range. */
export function fetchRangeToLocation(start: Location, end: Location): LocationFilter {
  const endGroupDelta = u64Sub(end.group, start.group) ?? 0;
  if (end.object === 0) return { type: LocationFilterType.ABSOLUTE_GROUP_END, start, endGroupDelta };
  return { type: LocationFilterType.ABSOLUTE_RANGE, start, endGroupDelta, endObject: u64Sub(end.object, 1) as U64 };
}

/**
 * A FETCH_OK End Location as draft-22 writes it: draft-18 writes the last
 * Object plus 1 (Object 0: the whole group), draft-22 the last Object
 * itself, inclusive (docs/DRAFT22.md §4).
 */
export function fetchEndToInclusive(end: Location): Location {
  return end.object === 0 ? { group: end.group, object: MAX_U64 } : { group: end.group, object: u64Sub(end.object, 1) as U64 };
}

/** The draft-18 End Location for a draft-22 inclusive one. */
export function fetchEndFromInclusive(last: Location): Location {
  return { group: last.group, object: u64Add(last.object, 1) ?? 0 };
}
