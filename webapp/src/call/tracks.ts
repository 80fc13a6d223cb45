/**
 * What a call publishes on its tracks (docs/CALLS.md §5, §6), as bytes ready
 * for a stream or datagram. Audio datagrams are in `media/loc.ts`.
 */

import { concatBytes } from "../moq/bytes.js";
import { SubgroupWriter } from "../moq/subgroup.js";
import type { U64 } from "../moq/varint.js";
import { encodeEvent, type CallEvent } from "./events.js";

/** Publisher priority of `events` objects: before audio (CALLS.md §5). */
export const EVENTS_PRIORITY = 0;

/**
 * One event as a whole subgroup stream (CALLS.md §5): Group ID = the event's
 * sequence number from 0, Subgroup 0, Object ID 0, END_OF_GROUP set; write
 * it to a new unidirectional stream, then close the stream (FIN).
 */
export function encodeEventStream(trackAlias: U64, seq: U64, event: CallEvent, priority: number = EVENTS_PRIORITY): Uint8Array {
  const w = SubgroupWriter.open({ trackAlias, groupId: seq, subgroupId: 0, publisherPriority: priority, endOfGroup: true });
  return concatBytes([w.encodeHeader(), w.encodeObject(0, encodeEvent(event))]);
}

/**
 * The `catalog` track's object (CALLS.md §6): an MSF catalog naming the
 * `audio` track of `namespacePath` (`moq-phone/v1/…`). Members are in the
 * order the Rust phone writes them (sorted), so both send the same bytes.
 * MSF's `version` is a string ("draft-01"); an audio track requires
 * `bitrate`, its maximum (64 kbit/s, the encoder's ceiling in media/adapt.ts).
 */
export function catalogJson(namespacePath: string): string {
  return JSON.stringify({
    tracks: [
      {
        bitrate: 64000,
        channelConfig: "1",
        codec: "opus",
        isLive: true,
        name: "audio",
        namespace: namespacePath,
        packaging: "loc",
        role: "audio",
        samplerate: 48000,
      },
    ],
    version: "draft-01",
  });
}
