/**
 * Objects of the `events` track (docs/CALLS.md §5): one UTF-8 JSON object
 * each, tagged by `"t"`. Unknown members are ignored; an unknown `t`
 * decodes to `{ t: "unknown", name }` so the call goes on. Mirrors
 * pub-sub-audio's `call/event.rs` (serde): the same JSON in, the same bytes
 * out (members in the order below).
 */

import { RX_MEMBERS, type RxReport } from "../media/feedback.js";

export type RejectReason = "busy" | "decline";

export type CallEvent =
  | { t: "invite"; sid: string; from: string; to: string; display: string }
  | { t: "ringing"; device: string }
  | { t: "answer"; device: string }
  | { t: "reject"; device: string; reason: RejectReason }
  | { t: "connect"; device: string }
  | { t: "cancel"; reason: string }
  | { t: "hangup"; reason: string }
  /** `digit`: one character (`0-9*#A-D`); `duration_ms` defaults to 100. */
  | { t: "dtmf"; digit: string; duration_ms: number }
  | { t: "hold" }
  | { t: "unhold" }
  | { t: "mute"; on: boolean }
  /**
   * Every 500 ms while established (CALLS.md §5, §7). `rx`: the listener's
   * report on the audio it receives (quality.md §4.1), which the peer's
   * sender adapts to; absent from peers that do not measure it.
   */
  | { t: "keepalive"; rx?: RxReport }
  /** An event type this implementation does not know (logged, ignored). Never sent. */
  | { t: "unknown"; name: string };

/** Largest events object accepted; anything bigger is dropped. */
export const MAX_EVENT_BYTES = 4096;

/** Default DTMF tone length when `duration_ms` is absent. */
export const DEFAULT_DTMF_MS = 100;

const KNOWN = ["invite", "ringing", "answer", "reject", "connect", "cancel", "hangup", "dtmf", "hold", "unhold", "mute", "keepalive"];

export class EventError extends Error {
  constructor(
    readonly kind: "TooLarge" | "Malformed",
    message: string,
  ) {
    super(message);
    this.name = "EventError";
  }
}

type Json = Record<string, unknown>;

function str(o: Json, key: string, dflt?: string): string {
  const v = o[key];
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== "string") throw new EventError("Malformed", `"${key}" must be a string`);
  return v;
}

function bool(o: Json, key: string): boolean {
  const v = o[key];
  if (typeof v !== "boolean") throw new EventError("Malformed", `"${key}" must be a boolean`);
  return v;
}

/** One Unicode scalar value, as a Rust `char`. */
export function isChar(s: string): boolean {
  const cps = [...s];
  if (cps.length !== 1) return false;
  // A lone surrogate is one code point but no scalar value.
  const c = cps[0] as string;
  return !(c.length === 1 && /[\ud800-\udfff]/.test(c));
}

function char(o: Json, key: string): string {
  const v = str(o, key);
  if (!isChar(v)) throw new EventError("Malformed", `"${key}" must be one character`);
  return v;
}

function u32(o: Json, key: string, dflt: number): number {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new EventError("Malformed", `"${key}" must be a u32`);
  return v;
}

/**
 * The keepalive's `rx` member as serde reads pub-sub-audio's `Report`: an
 * object whose known members are non-negative integers (missing ones 0,
 * unknown ones ignored); anything else makes the event malformed.
 */
function rxReport(v: unknown): RxReport {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new EventError("Malformed", '"rx" must be an object');
  const o = v as Json;
  const r = {} as RxReport;
  for (const k of RX_MEMBERS) {
    const x = o[k] ?? 0;
    if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) throw new EventError("Malformed", `"rx.${k}" must be a non-negative integer`);
    r[k] = x;
  }
  return r;
}

/**
 * An event from a parsed JSON value, strictly (like serde's `Deserialize`
 * for `Event`): an unknown `t` is an error here, see {@link decodeEvent}.
 */
export function parseEvent(v: unknown): CallEvent {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new EventError("Malformed", "an event is a JSON object");
  const o = v as Json;
  const t = o["t"];
  if (typeof t !== "string") throw new EventError("Malformed", 'missing "t"');
  switch (t) {
    case "invite":
      return { t, sid: str(o, "sid"), from: str(o, "from"), to: str(o, "to"), display: str(o, "display", "") };
    case "ringing":
    case "answer":
    case "connect":
      return { t, device: str(o, "device") };
    case "reject": {
      const device = str(o, "device");
      const reason = str(o, "reason");
      if (reason !== "busy" && reason !== "decline") throw new EventError("Malformed", `unknown reject reason "${reason}"`);
      return { t, device, reason };
    }
    case "cancel":
      return { t, reason: str(o, "reason") };
    case "hangup":
      return { t, reason: str(o, "reason", "") };
    case "dtmf":
      return { t, digit: char(o, "digit"), duration_ms: u32(o, "duration_ms", DEFAULT_DTMF_MS) };
    case "hold":
    case "unhold":
      return { t };
    case "keepalive":
      return o["rx"] === undefined || o["rx"] === null ? { t } : { t, rx: rxReport(o["rx"]) };
    case "mute":
      return { t, on: bool(o, "on") };
  }
  throw new EventError("Malformed", `unknown event type "${t}"`);
}

const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Decodes one `events` object (CALLS.md §5), as pub-sub-audio's `Event::decode`. */
export function decodeEvent(bytes: Uint8Array): CallEvent {
  if (bytes.length > MAX_EVENT_BYTES) throw new EventError("TooLarge", `event object of ${bytes.length} bytes is larger than ${MAX_EVENT_BYTES}`);
  let v: unknown;
  try {
    v = JSON.parse(utf8Strict.decode(bytes));
  } catch (e) {
    throw new EventError("Malformed", `event object is not JSON: ${(e as Error).message}`);
  }
  try {
    return parseEvent(v);
  } catch (e) {
    // Well-formed JSON with an unknown "t" is not an error.
    const t = typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json)["t"] : undefined;
    if (typeof t === "string" && !KNOWN.includes(t)) return { t: "unknown", name: t };
    throw e;
  }
}

/** The JSON object of an event, members in wire order (`t` first). */
export function eventToJson(e: Exclude<CallEvent, { t: "unknown" }>): Json {
  switch (e.t) {
    case "invite":
      return { t: e.t, sid: e.sid, from: e.from, to: e.to, display: e.display };
    case "ringing":
    case "answer":
    case "connect":
      return { t: e.t, device: e.device };
    case "reject":
      return { t: e.t, device: e.device, reason: e.reason };
    case "cancel":
    case "hangup":
      return { t: e.t, reason: e.reason };
    case "dtmf":
      return { t: e.t, digit: e.digit, duration_ms: e.duration_ms };
    case "mute":
      return { t: e.t, on: e.on };
    case "hold":
    case "unhold":
      return { t: e.t };
    case "keepalive":
      if (!e.rx) return { t: e.t };
      return { t: e.t, rx: Object.fromEntries(RX_MEMBERS.map((k) => [k, e.rx?.[k] ?? 0])) };
  }
}

/**
 * The object payload of an event. An `unknown` event cannot be sent; like
 * the Rust encoder it yields no bytes.
 */
export function encodeEvent(e: CallEvent): Uint8Array {
  if (e.t === "unknown") return new Uint8Array(0);
  return new TextEncoder().encode(JSON.stringify(eventToJson(e)));
}
