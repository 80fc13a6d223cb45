/**
 * Runs one call: drives the sans-IO {@link Call} machine (docs/CALLS.md §4)
 * over a MoQ session. It executes the machine's outputs (announce our call
 * namespace, publish `events` / `audio` / `catalog`, subscribe to the
 * peer's tracks, media on/off, ring) and feeds it what arrives (peer
 * events in order, callee devices, audio, the user, time). Mirrors
 * pub-sub-audio's phone/driver.rs.
 */

import { decodeEvent, encodeEvent, type CallEvent } from "../call/events.js";
import { Call, type EndReason, type Input, type Output, type UserAction } from "../call/machine.js";
import { EarlyAudio } from "../call/early.js";
import { Track, namespacePath } from "../call/address.js";
import { catalogJson, EVENTS_PRIORITY } from "../call/tracks.js";
import { AUDIO_PRIORITY, audioFrame, decodeLoc, encodeAudioDatagram } from "../media/loc.js";
import type { CallAudio } from "../media/types.js";
import type { RtpAudio } from "../session/transport.js";
import type { LiveTrack, LogTrack, Publication, Publisher } from "../session/publisher.js";
import type { MoqSession, ReceivedObject } from "../session/session.js";
import { fetchObjects, subscribe, subscribeNamespace, type NamespaceWatch, type Subscription } from "../session/subscriber.js";
import { EVERYTHING, EventSequencer } from "./sequencer.js";

/** How long a finished call's tracks stay up so the peer can read the last events. */
export const LINGER_MS = 2000;

export type CallPhase =
  /** Callee: a call namespace appeared; waiting for the caller's INVITE (not shown yet). */
  | "setup"
  /** Caller: invited, no callee device rings yet. */
  | "calling"
  /** Caller: a callee device rings (ringback). Callee: our phone rings. */
  | "ringing"
  /** Callee: answered, waiting for the caller's `connect`. */
  | "connecting"
  | "established"
  | "ended";

/** What the UI shows of a call. */
export interface CallInfo {
  sid: string;
  direction: "outgoing" | "incoming";
  /** The other party: the address we dialled, or the caller's user. */
  peer: string;
  /** The caller's display name from its INVITE (incoming calls). */
  peerDisplay: string;
  phase: CallPhase;
  /** `Date.now()` when the call was established. */
  establishedAt: number | undefined;
  muted: boolean;
  held: boolean;
  peerHeld: boolean;
  /** Why it ended, once it has. */
  ended: EndReason | undefined;
  /** DTMF digits received from the peer. */
  dtmfIn: string;
}

export interface CallListener {
  changed(run: CallRun): void;
  /** A protocol or media problem worth showing (the call may go on). */
  problem(run: CallRun, message: string): void;
}

export interface CallSetup {
  session: MoqSession;
  publisher: Publisher;
  call: Call;
  first: Output[];
  /** Our namespace in this call (caller or callee namespace, CALLS.md §2). */
  own: string[];
  /** Caller: `…/call/<sid>/<callee>`; callee: the caller's namespace. */
  peerBase: string[];
  /** The callee user (caller side), to pick our callee's devices. */
  calleeUser?: string;
  info: Pick<CallInfo, "direction" | "peer" | "peerDisplay">;
  audio: CallAudio | undefined;
  listener: CallListener;
  /** Background calls (busy rejections) show nothing. */
  silent?: boolean;
}

/** A decoded audio object on its way to the engine. */
interface AudioIn {
  n: number;
  captureUs: number | undefined;
  opus: Uint8Array;
}

/** One events subscription to a peer device, with its sequencer. */
interface EventsFollow {
  sub: Subscription | undefined;
  closed: boolean;
}

export class CallRun {
  readonly info: CallInfo;
  private readonly s: CallSetup;
  private readonly t0 = performance.now();
  private pub: Publication | undefined;
  private events: LogTrack | undefined;
  private audioTrack: LiveTrack | undefined;
  private watch: NamespaceWatch | undefined;
  private readonly follows = new Map<string, EventsFollow>();
  /** `audio` subscriptions by peer device ("" for the caller, at a callee). */
  private readonly audioSubs = new Map<string, Subscription>();
  /** Devices whose audio we stopped following (a SUBSCRIBE may still be under way). */
  private readonly audioDropped = new Set<string>();
  /** Frames heard before the call is established with their sender (CALLS.md §6). */
  private readonly early = new EarlyAudio<AudioIn>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sentFrames = 0;
  private sending = false;

  constructor(setup: CallSetup) {
    this.s = setup;
    this.info = {
      sid: setup.call.sid,
      ...setup.info,
      phase: setup.call.role === "caller" ? "calling" : "setup",
      establishedAt: undefined,
      muted: false,
      held: false,
      peerHeld: false,
      ended: undefined,
      dtmfIn: "",
    };
    this.execute(setup.first);
  }

  get call(): Call {
    return this.s.call;
  }

  get isOver(): boolean {
    return this.info.phase === "ended";
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  /** Feeds the machine and executes what it says. */
  input(i: Input): void {
    if (this.isOver) return;
    // The peer's report on our audio re-tunes our encoder (quality.md §4.2).
    if (i.in === "peer" && i.event.t === "keepalive" && i.event.rx) this.s.audio?.peerReport?.(i.event.rx);
    this.execute(this.s.call.handle(i, this.now()));
  }

  /** A user action: answer, decline, hangup, dtmf, hold, mute… */
  user(a: UserAction): void {
    if (a.action === "mute") {
      this.info.muted = a.on;
      this.s.audio?.setMuted(a.on);
    }
    if (a.action === "dtmf") this.s.audio?.dtmf(a.digit);
    this.input({ in: "user", ...a });
    this.s.listener.changed(this);
  }

  private execute(outputs: Output[]): void {
    // Most inputs (an audio object every 20 ms) change nothing: no re-render, and
    // the pending timer is still early enough (they only postpone deadlines).
    if (outputs.length === 0 && this.timer !== undefined) return;
    for (const o of outputs) this.output(o);
    this.schedule();
    this.s.listener.changed(this);
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const t = this.s.call.pollTimeout();
    if (t === null || this.isOver) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Our report on the peer's audio rides on the keepalives (quality.md §4.1).
      this.s.call.setRx(this.s.audio?.rxReport?.());
      this.execute(this.s.call.handleTimeout(this.now()));
    }, Math.max(0, t - this.now()));
  }

  private output(o: Output): void {
    const { call, audio } = this.s;
    switch (o.out) {
      case "announce":
        void this.announce();
        break;
      case "withdraw":
        this.withdrawLater();
        break;
      case "send":
        this.publication().events.append(encodeEvent(o.event));
        break;
      case "watch-devices":
        void this.watchDevices();
        break;
      case "subscribe-events":
        void this.followEvents(o.device);
        break;
      case "subscribe-audio":
        void this.followAudio(o.device);
        break;
      case "unsubscribe": {
        const f = this.follows.get(o.device);
        if (f) {
          f.closed = true;
          f.sub?.close();
        }
        this.audioDropped.add(o.device);
        this.audioSubs.get(o.device)?.close();
        this.audioSubs.delete(o.device);
        break;
      }
      case "media":
        this.media(o.on);
        break;
      case "ring":
        if (!this.s.silent) audio?.tone(o.on ? (call.role === "callee" ? "ring" : "ringback") : null);
        if (o.on) this.info.phase = "ringing";
        break;
      case "established":
        this.info.phase = "established";
        this.info.establishedAt = Date.now();
        audio?.setPlayout(true);
        // What the winner said before we knew it won plays first (CALLS.md §6).
        for (const f of this.early.established(o.device)) audio?.receive(f.n, f.captureUs, f.opus);
        this.bindRtp(o.device);
        break;
      case "dtmf":
        this.info.dtmfIn += o.digit;
        audio?.dtmf(o.digit);
        break;
      case "peer-hold":
        this.info.peerHeld = o.on;
        break;
      case "ended": {
        const { out: _, ...reason } = o;
        this.info.phase = "ended";
        this.info.ended = reason as EndReason;
        this.cleanup();
        break;
      }
    }
    if (o.out === "send" && o.event.t === "answer") this.info.phase = "connecting";
    if (o.out === "send" && (o.event.t === "hold" || o.event.t === "unhold")) {
      this.info.held = o.event.t === "hold";
      audio?.setPlayout(!this.info.held);
    }
  }

  /** Our call namespace and its three tracks (CALLS.md §5, §6). */
  private publication(): { pub: Publication; events: LogTrack; audio: LiveTrack } {
    if (!this.pub) {
      this.pub = this.s.publisher.add(this.s.own);
      this.events = this.pub.log(Track.EVENTS, EVENTS_PRIORITY);
      this.audioTrack = this.pub.live(Track.AUDIO, AUDIO_PRIORITY);
      this.pub.log(Track.CATALOG, EVENTS_PRIORITY).append(new TextEncoder().encode(catalogJson(namespacePath(this.s.own))));
    }
    return { pub: this.pub, events: this.events as LogTrack, audio: this.audioTrack as LiveTrack };
  }

  private async announce(): Promise<void> {
    try {
      await this.publication().pub.publish();
    } catch (e) {
      this.problem(`cannot announce the call: ${(e as Error).message}`);
    }
  }

  private withdrawLater(): void {
    const pub = this.pub;
    if (!pub) return;
    setTimeout(() => {
      void pub.withdraw();
      this.s.publisher.remove(pub);
    }, LINGER_MS);
  }

  private media(on: boolean): void {
    const { audio } = this.s;
    if (on === this.sending || !audio) return;
    this.sending = on;
    const rtp = this.s.session.rtp;
    if (rtp) return this.mediaRtp(on, rtp, audio);
    if (!on) return audio.stopSending();
    const track = this.publication().audio;
    audio.startSending((opus, captureUs, redundant) => {
      const n = this.sentFrames++;
      const { group, object } = { group: Math.floor(n / 50), object: n % 50 };
      track.send(group, object, (alias) => encodeAudioDatagram(alias, n, captureUs, opus, undefined, redundant));
    });
  }

  /**
   * WebRTC (docs/design/webrtc.md §3): the microphone rides the RTP sender
   * and the gateway turns it into our `audio` track's datagrams under the
   * alias of its subscription (`audio-out`), following the subscribers.
   */
  private mediaRtp(on: boolean, rtp: RtpAudio, audio: CallAudio): void {
    const track = this.publication().audio;
    if (!on) {
      track.onSubscribers = undefined;
      rtp.audioOut(null, track.priority);
      audio.sendRtp(null);
      return;
    }
    audio.sendRtp(rtp);
    let bound: number | null | undefined;
    const bind = (): void => {
      const alias = track.alias ?? null;
      if (alias === bound) return;
      bound = alias;
      rtp.audioOut(alias, track.priority);
    };
    track.onSubscribers = bind;
    bind();
  }

  private problem(message: string): void {
    if (!this.isOver) this.s.listener.problem(this, message);
  }

  /** Caller: NAMESPACE / NAMESPACE_DONE of callee devices under `…/call/<sid>`. */
  private async watchDevices(): Promise<void> {
    const prefix = this.s.peerBase.slice(0, -1);
    const callee = this.s.calleeUser;
    const device = (suffix: string[]): string | undefined => (suffix.length === 2 && suffix[0] === callee ? suffix[1] : undefined);
    try {
      this.watch = await subscribeNamespace(this.s.session, prefix, {
        namespace: (sfx) => {
          const d = device(sfx);
          if (d) this.input({ in: "device-appeared", device: d });
        },
        done: (sfx) => {
          const d = device(sfx);
          if (d) this.input({ in: "device-gone", device: d });
        },
      });
      if (this.isOver) this.watch.close();
    } catch (e) {
      this.problem(`cannot watch the callee's devices: ${(e as Error).message}`);
    }
  }

  private peerNamespace(device: string | null): string[] {
    return device === null ? [...this.s.peerBase] : [...this.s.peerBase, device];
  }

  /** SUBSCRIBE to a peer's `events` (+ Joining FETCH); each event once, in order. */
  private async followEvents(device: string | null): Promise<void> {
    const key = device ?? "";
    const follow: EventsFollow = { sub: undefined, closed: false };
    this.follows.set(key, follow);
    const ns = this.peerNamespace(device);
    const session = this.s.session;
    let seq: EventSequencer | undefined;
    let wake: ReturnType<typeof setTimeout> | undefined;
    const early: ReceivedObject[] = [];
    const arm = (at: number | undefined): void => {
      clearTimeout(wake);
      if (at !== undefined && !follow.closed) wake = setTimeout(() => arm(seq?.step(this.now())), Math.max(0, at - this.now()));
    };
    const fetched = (from: number, to: number, run: Promise<Array<{ groupId: unknown; objectId: unknown; payload: Uint8Array }>>): void => {
      run
        .catch((e) => {
          console.warn(`events of ${device ?? "the caller"}: FETCH of groups ${from}..${to} failed`, e);
          return [];
        })
        .then((objs) => {
          if (follow.closed || !seq) return;
          const got: Array<[number, Uint8Array]> = objs.filter((o) => o.objectId === 0).map((o) => [Number(o.groupId), o.payload]);
          arm(seq.fetched(from, to, got, this.now()));
        });
    };
    const onObject = (o: ReceivedObject): void => {
      if (follow.closed || o.objectId !== 0) return;
      if (!seq) early.push(o);
      else arm(seq.object(Number(o.groupId), o.payload, this.now()));
    };
    let sub: Subscription;
    try {
      sub = await subscribe(session, ns, Track.EVENTS, onObject);
    } catch (e) {
      this.input({ in: "peer-gone", device });
      return;
    }
    follow.sub = sub;
    if (follow.closed || this.isOver) return sub.close();
    const joining = sub.largest ? Number(sub.largest.group) : undefined;
    seq = new EventSequencer(
      {
        deliver: (_g, payload) => this.deliver(device, payload),
        skipped: (from, to) => console.warn(`events of ${device ?? "the caller"}: groups ${from}..${to} skipped (not received, not fetched)`),
        fetchJoining: () => fetched(0, (joining ?? 0) + 1, fetchObjects(session, { kind: "joining", subscription: sub, start: 0 })),
        fetchRange: (from, to) =>
          fetched(from, to, fetchObjects(session, { kind: "standalone", namespace: ns, name: Track.EVENTS, start: { group: from, object: 0 }, end: to >= EVERYTHING ? { group: EVERYTHING, object: 0 } : { group: to - 1, object: 1 } })),
      },
      joining,
      this.now(),
    );
    for (const o of early.splice(0)) arm(seq.object(Number(o.groupId), o.payload, this.now()));
    arm(seq.step(this.now()));
    await sub.done;
    clearTimeout(wake);
    if (!follow.closed) this.input({ in: "peer-gone", device });
  }

  private deliver(device: string | null, payload: Uint8Array): void {
    let event: CallEvent;
    try {
      event = decodeEvent(payload);
    } catch (e) {
      console.warn("dropping malformed event", e);
      return;
    }
    if (event.t === "unknown") return console.info(`ignoring unknown event type ${event.name}`);
    if (event.t === "invite" && this.s.call.state === "setup") this.info.peerDisplay = event.display || event.from;
    this.input({ in: "peer", device, event });
  }

  /**
   * SUBSCRIBE to a peer's `audio`: the caller for each ringing device, the
   * callee from its answer (CALLS.md §4). Frames of a sender the call is not
   * (yet) established with are kept or dropped by {@link EarlyAudio}. A
   * refused SUBSCRIBE is only logged: a ringing device that rejects
   * withdraws its namespace, and its `reject` event must decide the outcome;
   * a silent established peer is lost by the lost-peer timer.
   */
  private async followAudio(device: string | null): Promise<void> {
    const key = device ?? "";
    this.audioDropped.delete(key);
    // WebRTC: the audio plays from RTP; datagrams that reach the page came before `audio-in` bound the alias.
    const rtp = this.s.session.rtp !== undefined;
    const onObject = (o: ReceivedObject): void => {
      const n = audioFrame(o.groupId, o.objectId);
      if (n === undefined || this.isOver) return;
      if (rtp) return this.input({ in: "media", device });
      try {
        const f = decodeLoc(o.properties, o.payload);
        const now = this.early.frame(device, { n, captureUs: f.captureUs === undefined ? undefined : Number(f.captureUs), opus: f.opus });
        if (now) this.s.audio?.receive(now.n, now.captureUs, now.opus, now.n === n ? f.redundant : undefined);
      } catch (e) {
        console.warn("dropping malformed audio object", e);
        return;
      }
      this.input({ in: "media", device });
    };
    try {
      const sub = await subscribe(this.s.session, this.peerNamespace(device), Track.AUDIO, onObject);
      if (this.isOver || this.audioDropped.has(key)) return sub.close();
      this.audioSubs.get(key)?.close();
      this.audioSubs.set(key, sub);
      if (this.early.isPeer(device)) this.bindRtp(device);
    } catch (e) {
      console.warn(`cannot subscribe to the audio of ${device ?? "the caller"}`, e);
    }
  }

  /** WebRTC: the gateway turns the established peer's audio datagrams into RTP, which the engine plays. */
  private bindRtp(device: string | null): void {
    const rtp = this.s.session.rtp;
    const sub = this.audioSubs.get(device ?? "");
    if (!rtp || !sub) return;
    rtp.audioIn(sub.alias);
    this.s.audio?.receiveRtp(rtp);
  }

  /** The session died under the call: end it as a lost peer. */
  sessionLost(): void {
    if (this.isOver) return;
    this.execute([{ out: "ring", on: false }, { out: "media", on: false }, { out: "ended", reason: "lost-peer" }]);
  }

  private cleanup(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.watch?.close();
    for (const f of this.follows.values()) {
      f.closed = true;
      f.sub?.close();
    }
    for (const sub of this.audioSubs.values()) sub.close();
    if (this.audioSubs.size > 0) this.s.session.rtp?.audioIn(null);
    this.audioSubs.clear();
    this.media(false);
    this.s.audio?.close();
  }
}
