/**
 * draft-ietf-moq-transport-22 on the wire (WT-Protocol `moqt-22`), read
 * into and written from the draft-18 representation every other part of
 * the web phone works with (control_messages.ts). Mirrors moq-wire's
 * `draft22/mod.rs`; what differs, and where each rule comes from, is in
 * docs/DRAFT22.md. In short:
 *
 * - Message Parameters: per-message scopes enforced on responses too,
 *   LOCATION_FILTER typed with no Length, new parameters (§5; see
 *   draft22_params.ts and location_filter.ts);
 * - FETCH has no Fetch Type and no Joining form: Request ID, Full Track
 *   Name and parameters, the range in a LOCATION_FILTER with an inclusive
 *   end; FETCH_OK's End Location is inclusive and it carries no
 *   parameters (§4);
 * - PUBLISH is answered with REQUEST_OK carrying EXPIRES only; 0x1E is
 *   reserved (§3, §4);
 * - GOAWAY has no Request ID; PUBLISH_STATE_NOTIFY (0x22) is new (§4);
 * - SETUP, REQUEST_ERROR, PUBLISH_DONE, NAMESPACE and NAMESPACE_DONE, data
 *   streams and datagrams are byte-identical (§1, §4, §7): control.ts codes
 *   them the same at both drafts.
 *
 * control.ts calls in here when a session negotiated draft-22, so callers
 * encode and decode with the same calls whatever the version.
 */

import { type Reader, Writer, fromUtf8Lossy, utf8 } from "./bytes.js";
import { WireError } from "./errors.js";
import { decodeProperties } from "./properties.js";
import type { U64 } from "./varint.js";
import { MessageType } from "./control_codes.js";
import { MAX_GOAWAY_URI, readName, readTuple, writeName, writeTuple, type Location, type Parameter } from "./control_fields.js";
import { FetchType, type ControlMessage, type RequestMessage, type ResponseMessage } from "./control_messages.js";
import { readParams22, readSubscriptionParams22, UNMAPPED_LOCATION_FILTER, writeParams22 } from "./draft22_params.js";
import { fetchEndFromInclusive, fetchEndToInclusive, fetchRangeToLocation, LocationFilterType, locationToFetchRange, writeLocationFilter, type LocationFilter } from "./location_filter.js";

/**
 * Writes the body of `m` as draft-22 has it and returns its wire type, or
 * returns `undefined` (writing nothing) for a message whose bytes are the
 * same in both drafts. Throws `RangeError` for what draft-22 cannot carry
 * (a Joining FETCH).
 */
export function writeMessage22(w: Writer, m: ControlMessage): U64 | undefined {
  switch (m.type) {
    case "SUBSCRIBE":
    case "TRACK_STATUS":
      w.varint(m.requestId);
      writeTuple(w, m.namespace, 1);
      writeName(w, m.namespace, m.name);
      writeParams22(w, m.type, m.params);
      return MessageType[m.type];
    case "PUBLISH":
      w.varint(m.requestId);
      writeTuple(w, m.namespace, 1);
      writeName(w, m.namespace, m.name);
      w.varint(m.trackAlias);
      writeParams22(w, "PUBLISH", m.params);
      w.bytes(m.properties);
      return MessageType.PUBLISH;
    case "FETCH": {
      // No Fetch Type: always a Full Track Name, the range a LOCATION_FILTER with an inclusive end (docs/DRAFT22.md §4).
      const s = m.standalone;
      if (m.fetchType !== FetchType.STANDALONE || !s) throw new RangeError("draft-22 has no Joining FETCH (FILL_PARAMETERS replaces it, docs/DRAFT22.md §6)");
      w.varint(m.requestId);
      writeTuple(w, s.namespace, 1);
      writeName(w, s.namespace, s.name);
      writeParams22(w, "FETCH", m.params, fetchRangeToLocation(s.start, s.end));
      return MessageType.FETCH;
    }
    case "PUBLISH_NAMESPACE":
      w.varint(m.requestId);
      writeTuple(w, m.namespace, 1);
      writeParams22(w, "PUBLISH_NAMESPACE", m.params);
      return MessageType.PUBLISH_NAMESPACE;
    case "SUBSCRIBE_NAMESPACE":
    case "SUBSCRIBE_TRACKS":
      w.varint(m.requestId);
      writeTuple(w, m.prefix, 0);
      writeParams22(w, m.type, m.params);
      return MessageType[m.type];
    case "REQUEST_UPDATE":
      w.varint(m.requestId);
      writeParams22(w, "REQUEST_UPDATE", m.params);
      return MessageType.REQUEST_UPDATE;
    case "REQUEST_OK":
      // Track Properties belong to TRACK_STATUS's REQUEST_OK only (docs/DRAFT22.md §5.4).
      writeParams22(w, m.properties && m.properties.length > 0 ? "TRACK_STATUS_OK" : "REQUEST_OK", m.params);
      if (m.properties) w.bytes(m.properties);
      return MessageType.REQUEST_OK;
    case "PUBLISH_OK":
      // A REQUEST_OK with EXPIRES only: the subscriber's Forward State and
      // other choices go in a REQUEST_UPDATE on the PUBLISH's stream (docs/DRAFT22.md §4, §10.1).
      writeParams22(w, "PUBLISH_OK", m.params);
      return MessageType.REQUEST_OK;
    case "SUBSCRIBE_OK":
      w.varint(m.trackAlias);
      writeParams22(w, "SUBSCRIBE_OK", m.params);
      w.bytes(m.properties);
      return MessageType.SUBSCRIBE_OK;
    case "FETCH_OK": {
      const last = fetchEndToInclusive(m.endLocation);
      w.u8(m.endOfTrack ? 1 : 0).varint(last.group).varint(last.object);
      writeParams22(w, "FETCH_OK", []);
      w.bytes(m.properties);
      return MessageType.FETCH_OK;
    }
    case "GOAWAY": {
      const uri = utf8(m.uri);
      if (uri.length > MAX_GOAWAY_URI) throw new RangeError("GOAWAY URI longer than 8192 bytes");
      w.lengthPrefixed(uri).varint(m.timeoutMs);
      return MessageType.GOAWAY;
    }
    case "PUBLISH_STATE_NOTIFY":
      writeParams22(w, "PUBLISH_STATE_NOTIFY", m.params);
      return MessageType.PUBLISH_STATE_NOTIFY;
    case "SETUP":
    case "REQUEST_ERROR":
    case "PUBLISH_DONE":
    case "NAMESPACE":
    case "NAMESPACE_DONE":
      return undefined;
  }
}

/** Reads a request-initiating message of type `t` (a `startsRequest` type). */
export function readRequest22(t: number, r: Reader): RequestMessage {
  const what = "request";
  switch (t) {
    case MessageType.SUBSCRIBE:
    case MessageType.TRACK_STATUS: {
      const requestId = r.varint();
      const namespace = readTuple(r, what, 1);
      const name = readName(r, what, namespace);
      if (t === MessageType.TRACK_STATUS) return { type: "TRACK_STATUS", requestId, namespace, name, params: readParams22("TRACK_STATUS", r).params };
      return { type: "SUBSCRIBE", requestId, namespace, name, params: readSubscriptionParams22("SUBSCRIBE", r) };
    }
    case MessageType.PUBLISH: {
      const requestId = r.varint();
      const namespace = readTuple(r, what, 1);
      const name = readName(r, what, namespace);
      const trackAlias = r.varint();
      const params = readSubscriptionParams22("PUBLISH", r);
      const properties = r.rest();
      decodeProperties(properties); // validated, as moq-transport does
      return { type: "PUBLISH", requestId, namespace, name, trackAlias, params, properties };
    }
    case MessageType.FETCH: {
      // A FETCH with no filter is {0,0} to the Largest Object (docs/DRAFT22.md §4).
      const requestId = r.varint();
      const namespace = readTuple(r, what, 1);
      const name = readName(r, what, namespace);
      const d = readParams22("FETCH", r);
      const filter: LocationFilter = d.filter ?? { type: LocationFilterType.NONE };
      const range = locationToFetchRange(filter);
      const params: Parameter[] = d.params;
      let start: Location = { group: 0, object: 0 };
      let end: Location = { group: 0, object: 0 };
      if (typeof range === "string") {
        // Kept so the request can be refused (unsupported22), not served differently.
        const fw = new Writer(16);
        writeLocationFilter(fw, filter);
        params.push({ type: UNMAPPED_LOCATION_FILTER, value: fw.finish() });
      } else {
        ({ start, end } = range);
      }
      return { type: "FETCH", requestId, fetchType: FetchType.STANDALONE, standalone: { namespace, name, start, end }, params };
    }
    case MessageType.PUBLISH_NAMESPACE: {
      const requestId = r.varint();
      const namespace = readTuple(r, what, 1);
      return { type: "PUBLISH_NAMESPACE", requestId, namespace, params: readParams22("PUBLISH_NAMESPACE", r).params };
    }
    case MessageType.SUBSCRIBE_NAMESPACE: {
      const requestId = r.varint();
      const prefix = readTuple(r, what, 0);
      return { type: "SUBSCRIBE_NAMESPACE", requestId, prefix, params: readParams22("SUBSCRIBE_NAMESPACE", r).params };
    }
    case MessageType.SUBSCRIBE_TRACKS: {
      const requestId = r.varint();
      const prefix = readTuple(r, what, 0);
      return { type: "SUBSCRIBE_TRACKS", requestId, prefix, params: readSubscriptionParams22("SUBSCRIBE_TRACKS", r) };
    }
  }
  throw WireError.invalidType(t);
}

/**
 * Reads a response or follow-up of type `t` whose draft-22 bytes differ
 * from draft-18's; `undefined` (nothing read) for one coded the same in
 * both. Draft-18's PUBLISH_OK type (0x1E) is reserved: `InvalidType`.
 */
export function readResponse22(t: U64, r: Reader, name: string): ResponseMessage | undefined {
  switch (t) {
    case MessageType.REQUEST_OK:
      return { type: "REQUEST_OK", params: readParams22("REQUEST_OK", r).params, properties: r.rest() };
    case MessageType.SUBSCRIBE_OK: {
      const trackAlias = r.varint();
      const params = readParams22("SUBSCRIBE_OK", r).params;
      return { type: "SUBSCRIBE_OK", trackAlias, params, properties: r.rest() };
    }
    case MessageType.REQUEST_UPDATE: {
      const requestId = r.varint();
      return { type: "REQUEST_UPDATE", requestId, params: readSubscriptionParams22("REQUEST_UPDATE", r) };
    }
    case MessageType.FETCH_OK: {
      const eot = r.u8();
      if (eot > 1) throw WireError.malformed(name, `End Of Track ${eot}`);
      const last = { group: r.varint(), object: r.varint() };
      const params = readParams22("FETCH_OK", r).params;
      return { type: "FETCH_OK", endOfTrack: eot === 1, endLocation: fetchEndFromInclusive(last), params, properties: r.rest() };
    }
    case MessageType.GOAWAY: {
      const len = r.varint();
      if (len > MAX_GOAWAY_URI || len > r.remaining) throw WireError.malformed(name, "bad New Session URI length");
      const uri = fromUtf8Lossy(r.bytes(len as number));
      const timeoutMs = r.varint();
      if (r.remaining > 0) throw WireError.malformed(name, "draft-22's GOAWAY has no Request ID");
      return { type: "GOAWAY", uri, timeoutMs };
    }
    case MessageType.PUBLISH_STATE_NOTIFY:
      return { type: "PUBLISH_STATE_NOTIFY", params: readSubscriptionParams22("PUBLISH_STATE_NOTIFY", r) };
    case MessageType.PUBLISH_OK:
      throw WireError.invalidType(t);
  }
  return undefined;
}
