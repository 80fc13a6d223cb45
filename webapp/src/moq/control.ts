/**
 * Control messages of draft-ietf-moq-transport-18 §10, as the web phone
 * sends and receives them on its control stream (SETUP, GOAWAY) and on
 * bidirectional request streams (everything else); and of draft-22 with the
 * same calls, given the session's {@link Version}: draft22.ts codes the
 * messages whose bytes differ, into and from the same draft-18
 * representation (docs/DRAFT22.md §3, §4). The version defaults to 18.
 *
 * Framing (§10): `Type (vi64), Length (16), Payload`. Mirrors moq-wire's
 * `control.rs`: request-initiating messages (SUBSCRIBE, PUBLISH, FETCH,
 * TRACK_STATUS, PUBLISH_NAMESPACE, SUBSCRIBE_NAMESPACE, SUBSCRIBE_TRACKS)
 * carry a Request ID (§10.1) and are coded like moq-transport's `Message`;
 * responses and follow-ups on a request stream carry none. SETUP is coded
 * like moq-transport's `Setup`.
 *
 * draft-18 has no UNSUBSCRIBE, PUBLISH_NAMESPACE_DONE or separate *_OK /
 * *_ERROR per request: a request is cancelled by closing or resetting its
 * stream (§3.3.2), and answered with REQUEST_OK / REQUEST_ERROR (§10.5,
 * §10.6) or SUBSCRIBE_OK / FETCH_OK / PUBLISH_OK.
 *
 * Encoders throw `RangeError` for values that cannot be encoded (a
 * programming error); decoders throw {@link WireError}.
 */

import { ByteQueue, Reader, Writer, fromUtf8Lossy, utf8 } from "./bytes.js";
import { WireError } from "./errors.js";
import { decodeProperties, writeProperties } from "./properties.js";
import { readVarint, type U64 } from "./varint.js";

import { MessageType, type MessageTypeName, RequestErrorCode, startsRequest, type Version } from "./control_codes.js";
import { EMPTY_REDIRECT, MAX_GOAWAY_URI, type Parameter, parametersAllowed, readName, readParams, readReason, readRedirect, readTuple, writeName, writeParams, writeReason, writeTuple } from "./control_fields.js";
import { FetchType, type ControlMessage, type RequestMessage, type ResponseMessage, type Setup } from "./control_messages.js";
import { readRequest22, readResponse22, writeMessage22 } from "./draft22.js";

export { MessageType, type MessageTypeName, startsRequest, ParameterType, SetupOption, RequestErrorCode, PublishDoneCode, SessionError, StreamError, type Version } from "./control_codes.js";
export { type Location, compareLocations, type Parameter, getParameter, FilterType, type SubscriptionFilter, encodeSubscriptionFilter, decodeSubscriptionFilter, MAX_FULL_TRACK_NAME, MAX_NAMESPACE_FIELDS, MAX_REASON_PHRASE, MAX_GOAWAY_URI, type Tuple, tupleToStrings, tupleHasPrefix } from "./control_fields.js";
export * from "./control_messages.js";
// ---------------------------------------------------------------- framing --

/** One framed control message: type, and the payload without type and length. */
export interface Frame {
  type: U64;
  payload: Uint8Array;
}

/** Largest payload the 16-bit Message Length allows. */
export const MAX_PAYLOAD = 0xffff;

/**
 * The next complete control message at the start of `buf` and the bytes it
 * took, or `undefined` when `buf` holds only part of one. Mirrors moq-wire's
 * `take_frame`: framing itself can never be malformed, only incomplete.
 */
export function takeFrame(buf: Uint8Array): { frame: Frame; length: number } | undefined {
  const t = readVarint(buf, 0);
  if (!t) return undefined;
  const n = t.length;
  if (buf.length < n + 2) return undefined;
  const len = ((buf[n] as number) << 8) | (buf[n + 1] as number);
  if (buf.length < n + 2 + len) return undefined;
  return { frame: { type: t.value, payload: buf.slice(n + 2, n + 2 + len) }, length: n + 2 + len };
}

/**
 * Splits a control or request stream into messages. Sans-IO: push whatever
 * the stream delivered, then call {@link next} until it returns `undefined`.
 * The 16-bit length bounds buffering to one message (64 KiB).
 */
export class FrameReader {
  private readonly q = new ByteQueue();

  push(chunk: Uint8Array): void {
    this.q.push(chunk);
  }

  /** The next complete message, or `undefined` when more bytes are needed. */
  next(): Frame | undefined {
    const r = takeFrame(this.q.view());
    if (!r) return undefined;
    this.q.consume(r.length);
    return r.frame;
  }

  /** Bytes received but not yet returned as a message. */
  get buffered(): number {
    return this.q.length;
  }

  /** Call when the stream ends (FIN): it may not end inside a message. */
  finish(): void {
    if (this.q.length > 0) throw WireError.truncated();
  }
}

/** Frames `payload` as a message of type `type`. */
export function frame(type: U64, payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_PAYLOAD) throw new RangeError(`control message payload of ${payload.length} bytes exceeds 65535`);
  return new Writer(payload.length + 12).varint(type).u16(payload.length).bytes(payload).finish();
}

// --------------------------------------------------------------- encoding --

/** Serializes a message, as draft `version` has it, with its type and 16-bit length. */
export function encodeMessage(m: ControlMessage, version: Version = 18): Uint8Array {
  const w = new Writer();
  const t = version === 22 ? writeMessage22(w, m) : undefined;
  return frame(t ?? writeMessage(w, m), w.finish());
}

/** Writes the draft-18 body of `m`; returns its type. */
function writeMessage(w: Writer, m: ControlMessage): U64 {
  switch (m.type) {
    case "SETUP":
      writeProperties(w, m.options);
      break;
    case "SUBSCRIBE":
    case "TRACK_STATUS":
      checkScopes(m.type, m.params);
      w.varint(m.requestId);
      writeTuple(w, m.namespace, 1);
      writeName(w, m.namespace, m.name);
      writeParams(w, m.params);
      break;
    case "PUBLISH":
      checkScopes(m.type, m.params);
      w.varint(m.requestId);
      writeTuple(w, m.namespace, 1);
      writeName(w, m.namespace, m.name);
      w.varint(m.trackAlias);
      writeParams(w, m.params);
      w.bytes(m.properties);
      break;
    case "FETCH":
      checkScopes(m.type, m.params);
      w.varint(m.requestId).varint(m.fetchType);
      if (m.fetchType === FetchType.STANDALONE) {
        const s = m.standalone;
        if (!s) throw new RangeError("a standalone FETCH needs `standalone`");
        writeTuple(w, s.namespace, 1);
        writeName(w, s.namespace, s.name);
        w.varint(s.start.group).varint(s.start.object).varint(s.end.group).varint(s.end.object);
      } else {
        const j = m.joining;
        if (!j) throw new RangeError("a joining FETCH needs `joining`");
        w.varint(j.joiningRequestId).varint(j.joiningStart);
      }
      writeParams(w, m.params);
      break;
    case "PUBLISH_NAMESPACE":
      checkScopes(m.type, m.params);
      w.varint(m.requestId);
      writeTuple(w, m.namespace, 1);
      writeParams(w, m.params);
      break;
    case "SUBSCRIBE_NAMESPACE":
    case "SUBSCRIBE_TRACKS":
      checkScopes(m.type, m.params);
      w.varint(m.requestId);
      writeTuple(w, m.prefix, 0);
      writeParams(w, m.params);
      break;
    case "REQUEST_UPDATE":
      w.varint(m.requestId);
      writeParams(w, m.params);
      break;
    case "REQUEST_OK":
      writeParams(w, m.params);
      if (m.properties) w.bytes(m.properties);
      break;
    case "REQUEST_ERROR":
      w.varint(m.code).varint(m.retryInterval);
      writeReason(w, m.reason);
      if (m.redirect) {
        if (m.code !== RequestErrorCode.REDIRECT) throw new RangeError("a Redirect only follows error code REDIRECT");
        w.bytes(m.redirect);
      } else if (m.code === RequestErrorCode.REDIRECT) {
        w.bytes(EMPTY_REDIRECT);
      }
      break;
    case "SUBSCRIBE_OK":
      w.varint(m.trackAlias);
      writeParams(w, m.params);
      w.bytes(m.properties);
      break;
    case "PUBLISH_OK":
      writeParams(w, m.params);
      break;
    case "PUBLISH_DONE":
      w.varint(m.status).varint(m.streamCount);
      writeReason(w, m.reason);
      break;
    case "NAMESPACE":
    case "NAMESPACE_DONE":
      writeTuple(w, m.suffix, 0);
      break;
    case "FETCH_OK":
      w.u8(m.endOfTrack ? 1 : 0).varint(m.endLocation.group).varint(m.endLocation.object);
      writeParams(w, m.params);
      w.bytes(m.properties);
      break;
    case "GOAWAY": {
      const uri = utf8(m.uri);
      if (uri.length > MAX_GOAWAY_URI) throw new RangeError("GOAWAY URI longer than 8192 bytes");
      w.lengthPrefixed(uri).varint(m.timeoutMs);
      if (m.requestId !== undefined) w.varint(m.requestId);
      break;
    }
    case "PUBLISH_STATE_NOTIFY":
      throw new RangeError("PUBLISH_STATE_NOTIFY exists at draft-22 only (docs/DRAFT22.md §3)");
  }
  return MessageType[m.type];
}

function checkScopes(type: MessageTypeName, params: readonly Parameter[]): void {
  if (!parametersAllowed(MessageType[type], params)) throw new RangeError(`a parameter is not allowed on ${type}`);
}

// --------------------------------------------------------------- decoding --

const TYPE_NAMES = new Map<U64, MessageTypeName>(Object.entries(MessageType).map(([k, v]) => [v, k as MessageTypeName]));

/** The name of a message type, if this module knows it. */
export function messageTypeName(t: U64): MessageTypeName | undefined {
  return TYPE_NAMES.get(t);
}

/**
 * Decodes a framed message as draft `version` has it. Request-initiating
 * messages are decoded as moq-transport does (errors are
 * `Malformed("request")`); responses as moq-wire's `Frame::response` does;
 * an unknown type (or one the draft does not have) is `InvalidType`.
 */
export function decodeMessage(f: Frame, version: Version = 18): ControlMessage {
  if (f.type === MessageType.SETUP) return decodeSetup(f);
  if (startsRequest(f.type)) return decodeRequest(f, version);
  return decodeResponse(f, version);
}

/** SETUP (§10.3). */
export function decodeSetup(f: Frame): Setup {
  if (f.type !== MessageType.SETUP) throw WireError.invalidType(f.type);
  return { type: "SETUP", options: decodeProperties(f.payload) };
}

/**
 * A request-initiating message (§3.3); other types are `InvalidType`. At
 * draft-22 a parameter outside the message's scope, unknown or repeated is
 * malformed (docs/DRAFT22.md §5, §5.2).
 */
export function decodeRequest(f: Frame, version: Version = 18): RequestMessage {
  if (!startsRequest(f.type)) throw WireError.invalidType(f.type);
  const t = f.type as number;
  const r = new Reader(f.payload, () => WireError.malformed("request", "payload ended inside a field"));
  let m: RequestMessage;
  try {
    m = version === 22 ? readRequest22(t, r) : readRequest(t, r);
  } catch (e) {
    if (e instanceof WireError && e.kind === "Malformed" && e.what !== "request") throw WireError.malformed("request", e.message);
    throw e;
  }
  if (r.remaining > 0) throw WireError.malformed("request", `${r.remaining} trailing bytes`);
  if (version === 18 && !parametersAllowed(t, m.params)) throw WireError.malformed("request", "parameter not allowed on this message");
  return m;
}

function readRequest(t: number, r: Reader): RequestMessage {
  const what = "request";
  switch (t) {
    case MessageType.SUBSCRIBE:
    case MessageType.TRACK_STATUS: {
      const requestId = r.varint();
      const namespace = readTuple(r, what, 1);
      const name = readName(r, what, namespace);
      const params = readParams(r);
      return t === MessageType.SUBSCRIBE
        ? { type: "SUBSCRIBE", requestId, namespace, name, params }
        : { type: "TRACK_STATUS", requestId, namespace, name, params };
    }
    case MessageType.PUBLISH: {
      const requestId = r.varint();
      const namespace = readTuple(r, what, 1);
      const name = readName(r, what, namespace);
      const trackAlias = r.varint();
      const params = readParams(r);
      const properties = r.rest();
      decodeProperties(properties); // validated, as moq-transport does
      return { type: "PUBLISH", requestId, namespace, name, trackAlias, params, properties };
    }
    case MessageType.FETCH: {
      const requestId = r.varint();
      const fetchType = r.varint();
      if (fetchType === FetchType.STANDALONE) {
        const namespace = readTuple(r, what, 1);
        const name = readName(r, what, namespace);
        const start = { group: r.varint(), object: r.varint() };
        const end = { group: r.varint(), object: r.varint() };
        return { type: "FETCH", requestId, fetchType, standalone: { namespace, name, start, end }, params: readParams(r) };
      }
      if (fetchType === FetchType.RELATIVE_JOINING || fetchType === FetchType.ABSOLUTE_JOINING) {
        const joining = { joiningRequestId: r.varint(), joiningStart: r.varint() };
        return { type: "FETCH", requestId, fetchType, joining, params: readParams(r) };
      }
      throw WireError.malformed(what, `fetch type ${fetchType}`);
    }
    case MessageType.PUBLISH_NAMESPACE: {
      const requestId = r.varint();
      const namespace = readTuple(r, what, 1);
      return { type: "PUBLISH_NAMESPACE", requestId, namespace, params: readParams(r) };
    }
    case MessageType.SUBSCRIBE_NAMESPACE:
    case MessageType.SUBSCRIBE_TRACKS: {
      const requestId = r.varint();
      const prefix = readTuple(r, what, 0);
      const params = readParams(r);
      return t === MessageType.SUBSCRIBE_NAMESPACE
        ? { type: "SUBSCRIBE_NAMESPACE", requestId, prefix, params }
        : { type: "SUBSCRIBE_TRACKS", requestId, prefix, params };
    }
  }
  throw WireError.invalidType(t);
}

/**
 * A response or follow-up on a request stream, or GOAWAY (§10), as draft
 * `version` has it. PUBLISH_STATE_NOTIFY exists at draft-22 only, PUBLISH_OK
 * (0x1E) at draft-18 only (docs/DRAFT22.md §3).
 */
export function decodeResponse(f: Frame, version: Version = 18): ResponseMessage {
  const name = messageTypeName(f.type) ?? "response";
  const r = new Reader(f.payload, () => WireError.malformed(name, "payload ended inside a field"));
  const m = (version === 22 ? readResponse22(f.type, r, name) : undefined) ?? readResponse(f.type, r, name);
  if (r.remaining > 0) throw WireError.malformed("response", `${r.remaining} trailing bytes`);
  return m;
}

/** Reads the body of a draft-18 response of type `t`. */
function readResponse(t: U64, r: Reader, name: string): ResponseMessage {
  let m: ResponseMessage;
  switch (t) {
    case MessageType.REQUEST_OK:
      // Trailing Track Properties (§10.5) are only meaningful in TRACK_STATUS_OK.
      m = { type: "REQUEST_OK", params: readParams(r), properties: r.rest() };
      break;
    case MessageType.REQUEST_ERROR: {
      const code = r.varint();
      const retryInterval = r.varint();
      const reason = readReason(r, name);
      m = { type: "REQUEST_ERROR", code, retryInterval, reason };
      // A REDIRECT error carries a Redirect structure (§10.6.1), and only it.
      if (code === RequestErrorCode.REDIRECT) m.redirect = readRedirect(r, name);
      break;
    }
    case MessageType.SUBSCRIBE_OK: {
      const trackAlias = r.varint();
      const params = readParams(r);
      m = { type: "SUBSCRIBE_OK", trackAlias, params, properties: r.rest() };
      break;
    }
    case MessageType.PUBLISH_OK:
      m = { type: "PUBLISH_OK", params: readParams(r) };
      break;
    case MessageType.PUBLISH_DONE: {
      const status = r.varint();
      const streamCount = r.varint();
      m = { type: "PUBLISH_DONE", status, streamCount, reason: readReason(r, name) };
      break;
    }
    case MessageType.NAMESPACE:
      m = { type: "NAMESPACE", suffix: readTuple(r, name, 0) };
      break;
    case MessageType.NAMESPACE_DONE:
      m = { type: "NAMESPACE_DONE", suffix: readTuple(r, name, 0) };
      break;
    case MessageType.REQUEST_UPDATE: {
      const requestId = r.varint();
      m = { type: "REQUEST_UPDATE", requestId, params: readParams(r) };
      break;
    }
    case MessageType.FETCH_OK: {
      const eot = r.u8();
      if (eot > 1) throw WireError.malformed(name, `End Of Track ${eot}`);
      const endLocation = { group: r.varint(), object: r.varint() };
      const params = readParams(r);
      m = { type: "FETCH_OK", endOfTrack: eot === 1, endLocation, params, properties: r.rest() };
      break;
    }
    case MessageType.GOAWAY: {
      const len = r.varint();
      if (len > MAX_GOAWAY_URI || len > r.remaining) throw WireError.malformed(name, "bad New Session URI length");
      const uri = fromUtf8Lossy(r.bytes(len as number));
      const timeoutMs = r.varint();
      m = { type: "GOAWAY", uri, timeoutMs };
      // An optional Request ID may follow (control-stream GOAWAY, §10.4).
      if (r.remaining > 0) m.requestId = r.varint();
      break;
    }
    default:
      throw WireError.invalidType(t);
  }
  return m;
}

// ---------------------------------------------------------------- helpers --

/**
 * Request IDs of one endpoint (§10.1): a client uses even IDs from 0, a
 * server odd IDs from 1, each new request (including REQUEST_UPDATE) the
 * next by 2.
 */
export class RequestIds {
  private next: number;

  constructor(role: "client" | "server" = "client") {
    this.next = role === "client" ? 0 : 1;
  }

  take(): number {
    const id = this.next;
    this.next += 2;
    return id;
  }
}
