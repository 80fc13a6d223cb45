// Reads the JSON notation of docs/vectors/wire.json into the codec's types.
// Integers: JSON numbers up to 2^53-1, decimal strings above. Bytes: hex.
import {
  encodeProperties,
  encodeSubscriptionFilter,
  fromHex,
  u64,
  utf8,
  type ControlMessage,
  type Location,
  type Parameter,
  type Property,
  type SubscriptionFilter,
  type U64,
  Writer,
} from "../src/moq/index.js";
import { writeName, writeTuple } from "../src/moq/control_fields.js";

export type J = Record<string, unknown>;

export function obj(v: unknown): J {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TypeError(`expected an object: ${JSON.stringify(v)}`);
  return v as J;
}

export function arr(v: unknown): unknown[] {
  if (!Array.isArray(v)) throw new TypeError(`expected an array: ${JSON.stringify(v)}`);
  return v;
}

export function str(v: unknown): string {
  if (typeof v !== "string") throw new TypeError(`expected a string: ${JSON.stringify(v)}`);
  return v;
}

export function int(v: unknown): U64 {
  if (typeof v === "number") return u64(v);
  if (typeof v === "string" && /^\d+$/.test(v)) return u64(BigInt(v));
  throw new TypeError(`expected an integer: ${JSON.stringify(v)}`);
}

/** A small integer field (u8, stream type…). */
export function num(v: unknown): number {
  const x = int(v);
  if (typeof x !== "number") throw new TypeError(`expected a small integer: ${JSON.stringify(v)}`);
  return x;
}

export function optNum(v: unknown): number | undefined {
  return v === null || v === undefined ? undefined : num(v);
}

export function optInt(v: unknown): U64 | undefined {
  return v === null || v === undefined ? undefined : int(v);
}

export function hex(v: unknown): Uint8Array {
  return fromHex(str(v));
}

export function loc(v: unknown): Location {
  const a = arr(v);
  if (a.length !== 2) throw new TypeError(`a location is [group, object]: ${JSON.stringify(v)}`);
  return { group: int(a[0]), object: int(a[1]) };
}

/** Key-Value-Pair: {"type", "int"} | {"type", "hex"} | {"type", "text"}. */
export function kvp(v: unknown): Property {
  const o = obj(v);
  const type = int(o["type"]);
  if ("int" in o) return { type, value: int(o["int"]) };
  if ("hex" in o) return { type, value: hex(o["hex"]) };
  if ("text" in o) return { type, value: utf8(str(o["text"])) };
  throw new TypeError(`bad key-value pair ${JSON.stringify(v)}`);
}

export function kvps(v: unknown): Property[] {
  return arr(v ?? []).map(kvp);
}

function filter(v: unknown): SubscriptionFilter {
  const o = obj(v);
  const t = num(o["type"]);
  if (t === 1 || t === 2) return { type: t };
  if (t === 3) return { type: t, start: loc(o["start"]) };
  // The codec's `endGroup` holds the End Group Delta as sent.
  if (t === 4) return { type: t, start: loc(o["start"]), endGroup: int(o["end_group_delta"]) };
  throw new TypeError(`bad filter ${JSON.stringify(v)}`);
}

/** Message Parameter: a KVP, or {"type", "location"}, or {"type", "filter"}. */
export function param(v: unknown): Parameter {
  const o = obj(v);
  const type = int(o["type"]);
  if ("location" in o) return { type, value: loc(o["location"]) };
  if ("filter" in o) return { type, value: encodeSubscriptionFilter(filter(o["filter"])) };
  return kvp(v);
}

export function params(v: unknown): Parameter[] {
  return arr(v ?? []).map(param);
}

function strings(v: unknown): string[] {
  return arr(v).map(str);
}

/**
 * A Redirect (§10.6.1) as the bytes the codec keeps: Connect URI, Track
 * Namespace (0 to 32 fields), Track Name.
 */
export function redirect(v: unknown): Uint8Array {
  const o = obj(v);
  const w = new Writer().lengthPrefixed(utf8(str(o["connect_uri"])));
  const ns = strings(o["namespace"]);
  writeTuple(w, ns, 0);
  writeName(w, ns, str(o["name"]));
  return w.finish();
}

/** The codec's message for a vector's "message" object. */
export function message(v: unknown): ControlMessage {
  const o = obj(v);
  const t = str(o["type"]);
  const p = () => params(o["params"]);
  const props = () => {
    const ps = kvps(o["properties"]);
    return encodeProperties(ps);
  };
  switch (t) {
    case "SETUP":
      return { type: t, options: kvps(o["options"]) };
    case "SUBSCRIBE":
    case "TRACK_STATUS":
      return { type: t, requestId: int(o["request_id"]), namespace: strings(o["namespace"]), name: str(o["name"]), params: p() };
    case "PUBLISH":
      return {
        type: t,
        requestId: int(o["request_id"]),
        namespace: strings(o["namespace"]),
        name: str(o["name"]),
        trackAlias: int(o["track_alias"]),
        params: p(),
        properties: props(),
      };
    case "FETCH": {
      const fetchType = num(o["fetch_type"]);
      if (fetchType === 1) {
        return {
          type: t,
          requestId: int(o["request_id"]),
          fetchType,
          standalone: { namespace: strings(o["namespace"]), name: str(o["name"]), start: loc(o["start"]), end: loc(o["end"]) },
          params: p(),
        };
      }
      if (fetchType === 2 || fetchType === 3) {
        return {
          type: t,
          requestId: int(o["request_id"]),
          fetchType,
          joining: { joiningRequestId: int(o["joining_request_id"]), joiningStart: int(o["joining_start"]) },
          params: p(),
        };
      }
      throw new TypeError(`bad fetch type ${fetchType}`);
    }
    case "PUBLISH_NAMESPACE":
      return { type: t, requestId: int(o["request_id"]), namespace: strings(o["namespace"]), params: p() };
    case "SUBSCRIBE_NAMESPACE":
    case "SUBSCRIBE_TRACKS":
      return { type: t, requestId: int(o["request_id"]), prefix: strings(o["prefix"]), params: p() };
    case "REQUEST_UPDATE":
      return { type: t, requestId: int(o["request_id"]), params: p() };
    case "REQUEST_OK":
      return { type: t, params: p(), properties: props() };
    case "REQUEST_ERROR": {
      const m: ControlMessage = { type: t, code: int(o["code"]), retryInterval: int(o["retry_interval"]), reason: str(o["reason"]) };
      if ("redirect" in o) m.redirect = redirect(o["redirect"]);
      return m;
    }
    case "SUBSCRIBE_OK":
      return { type: t, trackAlias: int(o["track_alias"]), params: p(), properties: props() };
    case "PUBLISH_OK":
      return { type: t, params: p() };
    case "PUBLISH_DONE":
      return { type: t, status: int(o["status"]), streamCount: int(o["stream_count"]), reason: str(o["reason"]) };
    case "NAMESPACE":
    case "NAMESPACE_DONE":
      return { type: t, suffix: strings(o["suffix"]) };
    case "FETCH_OK":
      return { type: t, endOfTrack: o["end_of_track"] === true, endLocation: loc(o["end_location"]), params: p(), properties: props() };
    case "GOAWAY": {
      const m: ControlMessage = { type: t, uri: str(o["uri"]), timeoutMs: int(o["timeout_ms"]) };
      if ("request_id" in o) m.requestId = int(o["request_id"]);
      return m;
    }
  }
  throw new TypeError(`unknown message type ${t}`);
}
