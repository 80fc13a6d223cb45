/**
 * LOC packaging (draft-ietf-moq-loc §2.2, §2.3) of the call's `audio` track
 * (docs/CALLS.md §6): one Opus packet per object, its capture time in the
 * TIMESTAMP Object Property (0x10, §2.3.1.1: microseconds since the Unix
 * epoch when no TIMESCALE is given). Mirrors pub-sub-audio's `audio/loc.rs`.
 *
 * Under loss the sender may also carry an older frame whole in the
 * application property REDUNDANT_FRAME (0x39, quality.md §4.2).
 *
 * Mapping (CALLS.md §6): frame counter n (20 ms Opus frames) is sent as one
 * OBJECT_DATAGRAM with Group ID n / 50 and Object ID n mod 50.
 */

import { encodeDatagram } from "../moq/datagram.js";
import { WireError } from "../moq/errors.js";
import { decodeProperties, encodeProperties } from "../moq/properties.js";
import { encodeVarint, readVarint, type U64 } from "../moq/varint.js";

/** LOC property types (draft-ietf-moq-loc §2.3, IANA table). */
export const LocProperty = {
  TIMESTAMP: 0x10,
  TIMESCALE: 0x08,
  AUDIO_LEVEL: 0x0c,
  AUDIO_CONFIG: 0x0f,
  /**
   * An older frame of the track, whole (quality.md §4.2): a varint k ≥ 1,
   * then the Opus packet of frame n − k. k rides in the value because the
   * sender changes it during a call. In the range moqt-18 §1.4.3 reserves
   * for applications (relays forward it unchanged). Not a LOC property.
   */
  REDUNDANT_FRAME: 0x39,
} as const;

/** Largest REDUNDANT_FRAME distance accepted (the sender uses 1 or 2). */
export const MAX_REDUNDANT_DISTANCE = 16;

/** A copy of frame n − k carried by frame n. */
export interface RedundantFrame {
  k: number;
  opus: Uint8Array;
}

/** Opus frames per group on the `audio` track (a group per second). */
export const FRAMES_PER_GROUP = 50;

/** Publisher priority of audio datagrams (moq-client's default, as the Rust phone sends). */
export const AUDIO_PRIORITY = 128;

/** A decoded LOC audio object. */
export interface LocFrame {
  /** Capture time in µs since the Unix epoch, if the object had a TIMESTAMP. */
  captureUs: U64 | undefined;
  opus: Uint8Array;
  /** A REDUNDANT_FRAME, if the object carried a well-formed one. */
  redundant?: RedundantFrame;
}

/** Object Properties for a frame captured at `captureUs`, carrying frame n − k's packet if `redundant`. */
export function locProperties(captureUs: U64, redundant?: RedundantFrame): Uint8Array {
  const props = [{ type: LocProperty.TIMESTAMP, value: captureUs }];
  if (redundant) {
    const k = encodeVarint(redundant.k);
    const value = new Uint8Array(k.length + redundant.opus.length);
    value.set(k);
    value.set(redundant.opus, k.length);
    return encodeProperties([...props, { type: LocProperty.REDUNDANT_FRAME, value }]);
  }
  return encodeProperties(props);
}

/** A REDUNDANT_FRAME value, or `undefined` when it does not parse (ignored: the primary frame is still good). */
function redundantCopy(b: Uint8Array): RedundantFrame | undefined {
  const k = readVarint(b);
  if (!k || typeof k.value !== "number" || k.value < 1 || k.value > MAX_REDUNDANT_DISTANCE || k.length >= b.length) return undefined;
  return { k: k.value, opus: b.subarray(k.length) };
}

/**
 * Reads a LOC object. Malformed properties are `Malformed("properties")`;
 * an empty payload is not audio (`Malformed("LOC object")`). The caller logs
 * and drops such an object; the call goes on. A REDUNDANT_FRAME that does
 * not parse is ignored.
 */
export function decodeLoc(properties: Uint8Array, payload: Uint8Array): LocFrame {
  if (payload.length === 0) throw WireError.malformed("LOC object", "empty payload");
  let captureUs: U64 | undefined;
  let redundant: RedundantFrame | undefined;
  for (const p of decodeProperties(properties)) {
    if (p.type === LocProperty.TIMESTAMP && !(p.value instanceof Uint8Array)) captureUs ??= p.value;
    else if (p.type === LocProperty.REDUNDANT_FRAME && p.value instanceof Uint8Array && !redundant) redundant = redundantCopy(p.value);
  }
  return redundant ? { captureUs, opus: payload, redundant } : { captureUs, opus: payload };
}

/** Group and Object ID of audio frame `n` (CALLS.md §6). */
export function audioLocation(frame: number): { group: number; object: number } {
  if (!Number.isSafeInteger(frame) || frame < 0) throw new RangeError(`bad frame number ${frame}`);
  return { group: Math.floor(frame / FRAMES_PER_GROUP), object: frame % FRAMES_PER_GROUP };
}

/** The frame number of an audio object, or `undefined` if it is not on the mapping. */
export function audioFrame(group: U64, object: U64): number | undefined {
  if (typeof group !== "number" || typeof object !== "number" || object >= FRAMES_PER_GROUP) return undefined;
  const n = group * FRAMES_PER_GROUP + object;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** One audio frame as the OBJECT_DATAGRAM the phone sends (CALLS.md §6). */
export function encodeAudioDatagram(
  trackAlias: U64,
  frame: number,
  captureUs: U64,
  opus: Uint8Array,
  priority: number = AUDIO_PRIORITY,
  redundant?: RedundantFrame,
): Uint8Array {
  const { group, object } = audioLocation(frame);
  return encodeDatagram({
    trackAlias,
    groupId: group,
    objectId: object,
    publisherPriority: priority,
    properties: locProperties(captureUs, redundant),
    payload: opus,
  });
}
