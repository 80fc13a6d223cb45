/**
 * LOC packaging (draft-ietf-moq-loc §2.2, §2.3) of the call's `audio` track
 * (docs/CALLS.md §6): one Opus packet per object, its capture time in the
 * TIMESTAMP Object Property (0x10, §2.3.1.1: microseconds since the Unix
 * epoch when no TIMESCALE is given). Mirrors pub-sub-audio's `audio/loc.rs`.
 *
 * Mapping (CALLS.md §6): frame counter n (20 ms Opus frames) is sent as one
 * OBJECT_DATAGRAM with Group ID n / 50 and Object ID n mod 50.
 */

import { encodeDatagram } from "../moq/datagram.js";
import { WireError } from "../moq/errors.js";
import { decodeProperties, encodeProperties } from "../moq/properties.js";
import type { U64 } from "../moq/varint.js";

/** LOC property types (draft-ietf-moq-loc §2.3, IANA table). */
export const LocProperty = {
  TIMESTAMP: 0x10,
  TIMESCALE: 0x08,
  AUDIO_LEVEL: 0x0c,
  AUDIO_CONFIG: 0x0f,
} as const;

/** Opus frames per group on the `audio` track (a group per second). */
export const FRAMES_PER_GROUP = 50;

/** Publisher priority of audio datagrams (moq-client's default, as the Rust phone sends). */
export const AUDIO_PRIORITY = 128;

/** A decoded LOC audio object. */
export interface LocFrame {
  /** Capture time in µs since the Unix epoch, if the object had a TIMESTAMP. */
  captureUs: U64 | undefined;
  opus: Uint8Array;
}

/** Object Properties for a frame captured at `captureUs`. */
export function locProperties(captureUs: U64): Uint8Array {
  return encodeProperties([{ type: LocProperty.TIMESTAMP, value: captureUs }]);
}

/**
 * Reads a LOC object. Malformed properties are `Malformed("properties")`;
 * an empty payload is not audio (`Malformed("LOC object")`). The caller logs
 * and drops such an object; the call goes on.
 */
export function decodeLoc(properties: Uint8Array, payload: Uint8Array): LocFrame {
  if (payload.length === 0) throw WireError.malformed("LOC object", "empty payload");
  let captureUs: U64 | undefined;
  for (const p of decodeProperties(properties)) {
    if (p.type === LocProperty.TIMESTAMP && !(p.value instanceof Uint8Array)) {
      captureUs = p.value;
      break;
    }
  }
  return { captureUs, opus: payload };
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
export function encodeAudioDatagram(trackAlias: U64, frame: number, captureUs: U64, opus: Uint8Array, priority: number = AUDIO_PRIORITY): Uint8Array {
  const { group, object } = audioLocation(frame);
  return encodeDatagram({
    trackAlias,
    groupId: group,
    objectId: object,
    publisherPriority: priority,
    properties: locProperties(captureUs),
    payload: opus,
  });
}
