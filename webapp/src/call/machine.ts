/**
 * One call, seen from one device, as a sans-IO state machine (docs/CALLS.md
 * §4). Inputs are what the device saw on the relay, what its user did, and
 * the time in milliseconds; outputs say what to announce, publish and
 * subscribe, and what to show. No clock, no socket: the shared vectors
 * (docs/vectors/calls.json) drive this and pub-sub-audio's
 * `call/machine.rs`, which this mirrors output for output.
 *
 * Inputs and outputs have the JSON shape of the Rust (serde) types, so a
 * vector's JSON is a valid value of these types.
 *
 * Usage: feed {@link Call.handle} with inputs; after each call, and whenever
 * the clock reaches {@link Call.pollTimeout}, call {@link Call.handleTimeout}.
 */

import type { CallEvent, RejectReason } from "./events.js";
import type { RxReport } from "../media/feedback.js";

export type Millis = number;

export type Role = "caller" | "callee";

/** Why a call ended, as shown to the user. */
export type EndReason =
  /** Either side hung up after the call was established. */
  | { reason: "hangup"; by_peer: boolean }
  | { reason: "busy" }
  | { reason: "declined" }
  | { reason: "no-answer" }
  /** No device of the callee was online. */
  | { reason: "offline" }
  /** The caller gave up before an answer (or, at the callee, the caller did). */
  | { reason: "cancelled" }
  | { reason: "answered-elsewhere" }
  /** The peer vanished (session gone or silent for `lost_peer` ms). */
  | { reason: "lost-peer" }
  | { reason: "glare" };

export type UserAction =
  | { action: "answer" }
  | { action: "decline" }
  | { action: "hangup" }
  | { action: "dtmf"; digit: string }
  | { action: "hold" }
  | { action: "unhold" }
  | { action: "mute"; on: boolean }
  /** Give up an outgoing call that lost a glare (CALLS.md §4 "Glare"). */
  | { action: "cancel-glare" };

/**
 * What the device observed. `device` is the callee device a caller hears
 * from; at a callee, peer input is from the caller and `device` is `null`.
 */
export type Input =
  /** Caller: NAMESPACE `<callee>/<device>` under `…/call/<sid>`. */
  | { in: "device-appeared"; device: string }
  /** Caller: NAMESPACE_DONE for that device. */
  | { in: "device-gone"; device: string }
  /** An object on a peer's `events` track. */
  | { in: "peer"; device: string | null; event: CallEvent }
  /** Any object on a peer's `audio` track (proves the peer is alive). */
  | { in: "media"; device: string | null }
  /** PUBLISH_DONE / NAMESPACE_DONE for the peer's tracks. */
  | { in: "peer-gone"; device: string | null }
  | ({ in: "user" } & UserAction);

/** What the device must do or show. */
export type Output =
  /** PUBLISH_NAMESPACE our namespace for this call (caller or callee namespace). */
  | { out: "announce" }
  /** Withdraw it, ending our tracks. */
  | { out: "withdraw" }
  /** Publish on our `events` track. */
  | { out: "send"; event: CallEvent }
  /** Caller: SUBSCRIBE_NAMESPACE `…/call/<sid>`. */
  | { out: "watch-devices" }
  /** SUBSCRIBE (+ joining FETCH) to a peer's `events`. */
  | { out: "subscribe-events"; device: string | null }
  /**
   * SUBSCRIBE to a peer's `audio`: the caller for every device that rings,
   * the callee on its own `answer` (CALLS.md §4). Until established with
   * that device its frames are kept, not played (CALLS.md §6).
   */
  | { out: "subscribe-audio"; device: string | null }
  /** Stop following a callee device that lost the race (`events` and `audio`). */
  | { out: "unsubscribe"; device: string }
  /** Start / stop sending our audio (the callee from its `answer`, the caller once established). */
  | { out: "media"; on: boolean }
  /** Callee: ring; caller: ringback tone. */
  | { out: "ring"; on: boolean }
  /** The call is up with `device`: play its audio, kept frames first. */
  | { out: "established"; device: string | null }
  | { out: "dtmf"; digit: string }
  | { out: "peer-hold"; on: boolean }
  | ({ out: "ended" } & EndReason);

/** Timer lengths (CALLS.md §7), in milliseconds. */
export interface Timers {
  devices_appear: Millis;
  no_answer: Millis;
  keepalive: Millis;
  lost_peer: Millis;
}

/** Digits a callee may key between answer and connect (CALLS.md §5). */
export const MAX_QUEUED_DTMF = 32;

/** `lost_peer` outlasts a 2 s hand-over (docs/design/quality.md §3.6). */
export const DEFAULT_TIMERS: Readonly<Timers> = { devices_appear: 3_000, no_answer: 60_000, keepalive: 500, lost_peer: 5_000 };

export type CallState =
  /** Caller: invited, no device ringing yet. Callee: waiting for the INVITE. */
  | "setup"
  | "ringing"
  /** Callee: answered, waiting for the caller's `connect`. */
  | "answered"
  | "established"
  | "ended";

type DeviceState = "seen" | "ringing" | "rejected-busy" | "rejected-decline";

/** Code-point (= UTF-8 byte) order, as Rust orders `String`s. */
export function compareBytewise(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i] as string).codePointAt(0)! - (y[i] as string).codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/**
 * Glare (CALLS.md §4): the call with the bytewise smaller sid survives.
 * True when our outgoing call `ours` must yield to the incoming `theirs`.
 */
export function losesGlare(ours: string, theirs: string): boolean {
  return compareBytewise(ours, theirs) > 0;
}

const ended = (r: EndReason): Output => ({ out: "ended", ...r });
const send = (event: CallEvent): Output => ({ out: "send", event });

export class Call {
  readonly sid: string;
  readonly role: Role;
  private readonly me: string;
  private st: CallState = "setup";
  private readonly timers: Timers;
  /** Caller: callee devices and what they said. */
  private readonly devices = new Map<string, DeviceState>();
  /** The peer device of an established call (caller side). */
  private peer: string | null = null;
  private busy = false;
  private onHold = false;
  /** Callee: digits keyed between answer and `connect`, sent once established (at most MAX_QUEUED_DTMF). */
  private queuedDtmf: string[] = [];
  private deadlineDevices: Millis | null = null;
  private deadlineAnswer: Millis | null = null;
  private nextKeepalive: Millis | null = null;
  private lostAt: Millis | null = null;
  /** What our keepalives report on the audio we receive (quality.md §4.1). */
  private rx: RxReport | undefined;

  private constructor(sid: string, role: Role, me: string, timers: Timers) {
    this.sid = sid;
    this.role = role;
    this.me = me;
    this.timers = { ...timers };
  }

  /** Starts an outgoing call: `me` is the caller's user, `to` the callee's address. */
  static outgoing(o: { sid: string; me: string; to: string; display?: string; timers?: Timers; now: Millis }): { call: Call; outputs: Output[] } {
    const timers = o.timers ?? DEFAULT_TIMERS;
    const c = new Call(o.sid, "caller", o.me, timers);
    c.deadlineDevices = o.now + timers.devices_appear;
    c.deadlineAnswer = o.now + timers.no_answer;
    const invite: CallEvent = { t: "invite", sid: o.sid, from: o.me, to: o.to, display: o.display ?? "" };
    return { call: c, outputs: [{ out: "announce" }, send(invite), { out: "watch-devices" }] };
  }

  /**
   * A NAMESPACE under our ring prefix: `me` is this device's id, `busy`
   * whether the device is already in a call.
   */
  static incoming(o: { sid: string; me: string; busy?: boolean; timers?: Timers; now: Millis }): { call: Call; outputs: Output[] } {
    const timers = o.timers ?? DEFAULT_TIMERS;
    const c = new Call(o.sid, "callee", o.me, timers);
    c.busy = o.busy ?? false;
    // The caller must send its INVITE soon; otherwise treat it as gone.
    c.lostAt = o.now + timers.devices_appear;
    return { call: c, outputs: [{ out: "subscribe-events", device: null }] };
  }

  get state(): CallState {
    return this.st;
  }

  /** The callee device of an established call (caller side). */
  get peerDevice(): string | null {
    return this.peer;
  }

  /** The earliest time {@link handleTimeout} must be called, or `null`. */
  /**
   * The listener's report the next keepalives carry as `rx` (quality.md
   * §4.1). An input like any other: the machine measures nothing, the
   * shell's loss meter (media/feedback.ts) does and hands it in.
   */
  setRx(rx: RxReport | undefined): void {
    this.rx = rx;
  }

  pollTimeout(): Millis | null {
    if (this.st === "ended") return null;
    let min: Millis | null = null;
    for (const t of [this.deadlineDevices, this.deadlineAnswer, this.nextKeepalive, this.lostAt]) {
      if (t !== null && (min === null || t < min)) min = t;
    }
    return min;
  }

  handleTimeout(now: Millis): Output[] {
    const out: Output[] = [];
    if (this.st === "ended") return out;
    if (this.lostAt !== null && now >= this.lostAt) return this.end({ reason: "lost-peer" }, false, out);
    if (this.deadlineDevices !== null && now >= this.deadlineDevices) {
      this.deadlineDevices = null;
      const allDeclined = [...this.devices.values()].every((d) => d === "rejected-decline");
      if (this.st === "setup" && allDeclined) {
        const reason: EndReason = this.devices.size === 0 ? { reason: "offline" } : this.rejection();
        return this.end(reason, false, out);
      }
    }
    if (this.deadlineAnswer !== null && now >= this.deadlineAnswer) {
      this.deadlineAnswer = null;
      out.push(send({ t: "cancel", reason: "no-answer" }));
      return this.end({ reason: "no-answer" }, false, out);
    }
    if (this.nextKeepalive !== null && now >= this.nextKeepalive) {
      out.push(send(this.rx ? { t: "keepalive", rx: this.rx } : { t: "keepalive" }));
      this.nextKeepalive = Math.max(this.nextKeepalive, now) + this.timers.keepalive;
    }
    return out;
  }

  handle(input: Input, now: Millis): Output[] {
    if (this.st === "ended") return [];
    const caller = this.role === "caller";
    switch (input.in) {
      case "user":
        return this.user(input, now);
      case "device-appeared":
        if (!caller) return [];
        if (this.st === "established" || this.devices.has(input.device)) return [];
        this.devices.set(input.device, "seen");
        return [{ out: "subscribe-events", device: input.device }];
      case "device-gone":
        return caller ? this.deviceGone(input.device) : [];
      case "peer":
        if (caller && input.device !== null) return this.callerEvent(input.device, input.event, now);
        if (!caller && input.device === null) return this.calleeEvent(input.event, now);
        return [];
      case "media":
        if (this.st === "established" && input.device === this.peerKey()) this.lostAt = now + this.timers.lost_peer;
        return [];
      case "peer-gone":
        if (caller && input.device !== null) return this.deviceGone(input.device);
        if (!caller && input.device === null) {
          return this.end(this.st === "established" ? { reason: "lost-peer" } : { reason: "cancelled" }, false, []);
        }
        return [];
    }
  }

  private peerKey(): string | null {
    return this.role === "caller" ? this.peer : null;
  }

  /** Ends the call. */
  private end(reason: EndReason, mediaWasOn: boolean, out: Output[]): Output[] {
    if (this.st === "ringing" || this.st === "answered") out.push({ out: "ring", on: false });
    // The callee sends from its own `answer` (CALLS.md §4).
    if (mediaWasOn || this.st === "established" || this.st === "answered") out.push({ out: "media", on: false });
    // A callee that never rang has nothing announced unless it rejected.
    const announced = this.role === "caller" || this.st !== "setup" || reason.reason === "busy" || reason.reason === "declined";
    if (announced) out.push({ out: "withdraw" });
    out.push(ended(reason));
    this.st = "ended";
    this.deadlineDevices = null;
    this.deadlineAnswer = null;
    this.nextKeepalive = null;
    this.lostAt = null;
    return out;
  }

  /**
   * `subscribe`: the peer's audio is not subscribed yet (a callee device
   * that answered without ringing first). The callee's media is already on.
   */
  private establish(device: string | null, subscribe: boolean, now: Millis, out: Output[]): Output[] {
    if (this.st === "ringing" || this.st === "answered") out.push({ out: "ring", on: false });
    if (subscribe) out.push({ out: "subscribe-audio", device });
    if (this.role === "caller") out.push({ out: "media", on: true });
    out.push({ out: "established", device });
    for (const digit of this.queuedDtmf.splice(0)) out.push(send({ t: "dtmf", digit, duration_ms: 100 }));
    this.peer = device;
    this.st = "established";
    this.deadlineDevices = null;
    this.deadlineAnswer = null;
    this.nextKeepalive = now + this.timers.keepalive;
    this.lostAt = now + this.timers.lost_peer;
    return out;
  }

  private rejection(): EndReason {
    return [...this.devices.values()].includes("rejected-busy") ? { reason: "busy" } : { reason: "declined" };
  }

  private callerEvent(device: string, event: CallEvent, now: Millis): Output[] {
    if (this.st === "established") {
      if (device !== this.peer) return [];
      return this.inCallEvent(event, now);
    }
    const d = this.devices.get(device);
    if (d === undefined) return [];
    switch (event.t) {
      case "ringing": {
        // Its audio from now on, so what it says right after its answer is
        // already here (CALLS.md §4; docs/design/quality.md §5).
        if (d !== "seen") return [];
        this.devices.set(device, "ringing");
        const out: Output[] = [{ out: "subscribe-audio", device }];
        if (this.st === "setup") {
          this.st = "ringing";
          out.push({ out: "ring", on: true });
        }
        return out;
      }
      case "answer": {
        const subscribe = d !== "ringing";
        const out: Output[] = [send({ t: "connect", device })];
        // In key order, as the Rust BTreeMap iterates.
        const others = [...this.devices.keys()].filter((k) => k !== device).sort(compareBytewise);
        for (const other of others) out.push({ out: "unsubscribe", device: other });
        return this.establish(device, subscribe, now, out);
      }
      case "reject":
        this.devices.set(device, event.reason === "busy" ? "rejected-busy" : "rejected-decline");
        return this.maybeAllRejected();
      default:
        return [];
    }
  }

  private maybeAllRejected(): Output[] {
    const states = [...this.devices.values()];
    if (states.length > 0 && states.every((d) => d === "rejected-busy" || d === "rejected-decline")) {
      return this.end(this.rejection(), false, []);
    }
    return [];
  }

  private deviceGone(device: string): Output[] {
    if (this.st === "established") {
      return device === this.peer ? this.end({ reason: "lost-peer" }, true, []) : [];
    }
    // A device that leaves without answering counts as gone, not as a
    // rejection; rejections it already sent stay recorded.
    const d = this.devices.get(device);
    if (d === undefined || d === "rejected-busy" || d === "rejected-decline") return [];
    this.devices.delete(device);
    if (this.devices.size === 0 && this.deadlineDevices === null) return this.end({ reason: "offline" }, false, []);
    return this.maybeAllRejected();
  }

  private calleeEvent(event: CallEvent, now: Millis): Output[] {
    const st = this.st;
    if (st === "setup" && event.t === "invite") {
      this.lostAt = null;
      if (this.busy) {
        const out: Output[] = [{ out: "announce" }, send({ t: "reject", device: this.me, reason: "busy" })];
        return this.end({ reason: "busy" }, false, out);
      }
      this.st = "ringing";
      return [{ out: "announce" }, send({ t: "ringing", device: this.me }), { out: "ring", on: true }];
    }
    if (st === "answered" && event.t === "connect") {
      return event.device === this.me ? this.establish(null, false, now, []) : this.end({ reason: "answered-elsewhere" }, false, []);
    }
    if (st === "ringing" && event.t === "connect" && event.device !== this.me) {
      return this.end({ reason: "answered-elsewhere" }, false, []);
    }
    if ((st === "setup" || st === "ringing" || st === "answered") && event.t === "cancel") {
      return this.end({ reason: "cancelled" }, false, []);
    }
    if (st === "established") return this.inCallEvent(event, now);
    return [];
  }

  private inCallEvent(event: CallEvent, now: Millis): Output[] {
    this.lostAt = now + this.timers.lost_peer;
    switch (event.t) {
      case "hangup":
      case "cancel":
        return this.end({ reason: "hangup", by_peer: true }, true, []);
      case "dtmf":
        return [{ out: "dtmf", digit: event.digit }];
      case "hold":
        return [{ out: "peer-hold", on: true }];
      case "unhold":
        return [{ out: "peer-hold", on: false }];
      default:
        return [];
    }
  }

  private user(a: UserAction, _now: Millis): Output[] {
    const { role, st } = this;
    const reject = (reason: RejectReason): CallEvent => ({ t: "reject", device: this.me, reason });
    switch (a.action) {
      case "answer":
        // Media starts with the answer, not one relay round later at
        // `connect`; the caller's audio likewise (CALLS.md §4).
        if (role === "callee" && st === "ringing") {
          this.st = "answered";
          return [send({ t: "answer", device: this.me }), { out: "subscribe-audio", device: null }, { out: "media", on: true }];
        }
        break;
      case "decline":
        if (role === "callee" && st === "ringing") return this.end({ reason: "declined" }, false, [send(reject("decline"))]);
        break;
      case "hangup":
        if (role === "caller" && (st === "setup" || st === "ringing")) {
          return this.end({ reason: "cancelled" }, false, [send({ t: "cancel", reason: "caller" })]);
        }
        if (role === "callee" && (st === "ringing" || st === "answered")) return this.end({ reason: "declined" }, false, [send(reject("decline"))]);
        if (st === "established") return this.end({ reason: "hangup", by_peer: false }, true, [send({ t: "hangup", reason: "normal" })]);
        break;
      case "cancel-glare":
        if (role === "caller" && (st === "setup" || st === "ringing")) {
          return this.end({ reason: "glare" }, false, [send({ t: "cancel", reason: "glare" })]);
        }
        break;
      case "dtmf":
        if (st === "established") return [send({ t: "dtmf", digit: a.digit, duration_ms: 100 })];
        if (role === "callee" && st === "answered" && this.queuedDtmf.length < MAX_QUEUED_DTMF) this.queuedDtmf.push(a.digit);
        break;
      case "hold":
        if (st === "established" && !this.onHold) {
          this.onHold = true;
          return [send({ t: "hold" }), { out: "media", on: false }];
        }
        break;
      case "unhold":
        if (st === "established" && this.onHold) {
          this.onHold = false;
          return [send({ t: "unhold" }), { out: "media", on: true }];
        }
        break;
      case "mute":
        if (st === "established") return [send({ t: "mute", on: a.on })];
        break;
    }
    return [];
  }
}

// Readers for the serde JSON shapes live in machine_json.ts.
export { inputFromJson, outputFromJson, timersFromJson, userActionFromJson } from "./machine_json.js";
