/**
 * What this device publishes, and the answers to the relay's requests for
 * it (draft-ietf-moq-transport-18 §5.1, §9.5, §10.7, §10.12):
 *
 * - a namespace is announced with PUBLISH_NAMESPACE (§10.15) and stands as
 *   long as its request stream stays open (§3.3.2);
 * - the relay SUBSCRIBEs to its tracks when someone wants them; we answer
 *   SUBSCRIBE_OK with a Track Alias of ours (§11.1) and LARGEST_OBJECT when
 *   anything was published (§10.2.11: "If Objects have been published on
 *   this Track the Publisher MUST include" it), then send objects;
 * - a relay without a cache forwards FETCH to us (§9.1: caching is
 *   optional), so log tracks answer Standalone and Joining FETCH too.
 *
 * At draft-22 (docs/DRAFT22.md) the messages are coded differently but
 * read into the same form, with three differences here: a FIN from the
 * relay no longer unsubscribes, only a reset or STOP_SENDING does (§8); a
 * namespace is withdrawn by resetting its stream (§8); and requests the
 * phone cannot serve as asked (Range Filters, a backfill, a filter with no
 * draft-18 form) are refused rather than served otherwise (§0.2, §5.3, §6).
 *
 * Two kinds of track cover docs/CALLS.md: a {@link LogTrack} keeps every
 * object, one per group from 0, each on its own subgroup stream (`events`,
 * `catalog`, `profile`; §5), and a {@link LiveTrack} sends OBJECT_DATAGRAMs
 * and keeps nothing (`audio`; §6).
 */

import { concatBytes } from "../moq/bytes.js";
import { FetchType, PublishDoneCode, RequestErrorCode, tupleToStrings, type Fetch, type Location, type RequestMessage, type Subscribe } from "../moq/control.js";
import { unsupported22 } from "../moq/draft22_params.js";
import { encodeFetchHeader, FetchWriter } from "../moq/fetch.js";
import { SubgroupWriter } from "../moq/subgroup.js";
import type { RequestStream } from "./request.js";
import { refuse, type MoqSession } from "./session.js";
import { RequestRefused } from "./subscriber.js";

/** One accepted SUBSCRIBE. */
interface Subscriber {
  requestId: number;
  alias: number;
  stream: RequestStream;
  /** Data streams opened for it, for PUBLISH_DONE's Stream Count (§10.11). */
  streams: number;
  /** The LARGEST_OBJECT we sent in SUBSCRIBE_OK: its Joining Location. */
  joining: Location | undefined;
}

/** Publisher priority of the objects of a track (§7). */
export abstract class PubTrack {
  protected readonly subs = new Map<number, Subscriber>();

  constructor(
    readonly name: string,
    protected readonly session: MoqSession,
    readonly priority: number,
  ) {}

  /** The Largest Location published so far (§10.2.11). */
  abstract largest(): Location | undefined;

  /** Starts sending to a new subscriber (after SUBSCRIBE_OK). */
  protected abstract started(sub: Subscriber): void;

  /** The set of subscribers changed (one accepted, unsubscribed or ended). */
  protected subscribersChanged(): void {}

  /** The Joining Location of an accepted subscription, for a Joining FETCH. */
  joiningOf(requestId: number): { found: boolean; joining: Location | undefined } {
    const s = this.subs.get(requestId);
    return { found: s !== undefined, joining: s?.joining };
  }

  async accept(req: Subscribe, stream: RequestStream): Promise<void> {
    const alias = this.session.takeAlias();
    const joining = this.largest();
    const params = joining ? [{ type: 0x09, value: joining }] : [];
    const sub: Subscriber = { requestId: Number(req.requestId), alias, stream, streams: 0, joining };
    try {
      await stream.send({ type: "SUBSCRIBE_OK", trackAlias: alias, params, properties: new Uint8Array(0) });
    } catch {
      return;
    }
    this.subs.set(sub.requestId, sub);
    this.started(sub);
    this.subscribersChanged();
    // The relay unsubscribes by closing its side (§3.3.2); at draft-22 only abruptly (docs/DRAFT22.md §8).
    void stream.cancelled.then(() => {
      if (this.subs.get(sub.requestId) === sub) {
        this.subs.delete(sub.requestId);
        stream.close();
        this.subscribersChanged();
      }
    });
  }

  /** PUBLISH_DONE (§10.11) on every subscription, then FIN. */
  async end(status: number = PublishDoneCode.TRACK_ENDED, reason = "call ended"): Promise<void> {
    const subs = [...this.subs.values()];
    this.subs.clear();
    if (subs.length) this.subscribersChanged();
    await Promise.all(
      subs.map(async (s) => {
        try {
          await s.stream.send({ type: "PUBLISH_DONE", status, streamCount: s.streams, reason });
        } catch {
          /* relay gone */
        }
        s.stream.close();
      }),
    );
  }
}

/**
 * A track of one-object groups kept for the whole publication: each object
 * is group `n` (n = 0, 1, …), Object ID 0, sent on its own subgroup stream
 * with END_OF_GROUP (CALLS.md §5). A new subscriber is sent the whole log
 * first, so a caching relay holds it for later FETCHes; subscribers drop
 * what they already have by group.
 */
export class LogTrack extends PubTrack {
  private readonly log: Uint8Array[] = [];

  largest(): Location | undefined {
    return this.log.length === 0 ? undefined : { group: this.log.length - 1, object: 0 };
  }

  get objects(): readonly Uint8Array[] {
    return this.log;
  }

  /** Publishes the next object; returns its group. */
  append(payload: Uint8Array): number {
    const group = this.log.length;
    this.log.push(payload);
    for (const s of this.subs.values()) this.sendTo(s, group);
    return group;
  }

  protected started(sub: Subscriber): void {
    for (let g = 0; g < this.log.length; g++) this.sendTo(sub, g);
  }

  private sendTo(sub: Subscriber, group: number): void {
    const w = SubgroupWriter.open({ trackAlias: sub.alias, groupId: group, subgroupId: 0, publisherPriority: this.priority, endOfGroup: true });
    const bytes = concatBytes([w.encodeHeader(), w.encodeObject(0, this.log[group] as Uint8Array)]);
    sub.streams++;
    // Lower priority values are more urgent (§7); WebTransport sends higher sendOrder first.
    this.session.sendStream(bytes, 255 - this.priority).catch(() => undefined);
  }

  /** Answers a FETCH for groups `start`..`end` (End Location is "last plus one", §10.12.1). */
  async serveFetch(requestId: number, start: Location, end: Location, stream: RequestStream): Promise<void> {
    const range = fetchRange(this.log.length, start, end);
    if (!range) return refuse(stream, RequestErrorCode.INVALID_RANGE, "start beyond the largest object or the end");
    const { first, last: upTo, endLocation } = range;
    try {
      await stream.send({ type: "FETCH_OK", endOfTrack: false, endLocation, params: [], properties: new Uint8Array(0) });
      const w = new FetchWriter();
      const parts = [encodeFetchHeader(requestId)];
      for (let g = first; g <= upTo; g++) {
        parts.push(w.encodeObject({ groupId: g, objectId: 0, subgroupId: 0, publisherPriority: this.priority, payload: this.log[g] as Uint8Array }));
      }
      await this.session.sendStream(concatBytes(parts), 255 - this.priority);
    } catch {
      /* relay gone */
    }
    stream.close();
  }
}

/**
 * Which of `count` one-object groups (object 0 each, groups from 0) a FETCH
 * of `start`..`end` returns, and its FETCH_OK End Location; `undefined`
 * means INVALID_RANGE (§10.12.3: nothing published, or a start beyond the
 * Largest Object or the end). Mirrors pub-sub-audio's `fetch_range`.
 */
export function fetchRange(count: number, start: Location, end: Location): { first: number; last: number; endLocation: Location } | undefined {
  const largest = count - 1;
  // End Location is the last object plus one; object 0 means the whole group (§10.12.1).
  const last = { group: Number(end.group), object: end.object === 0 ? Infinity : Number(end.object) - 1 };
  const sg = Number(start.group);
  const so = Number(start.object);
  const after = (g1: number, o1: number, g2: number, o2: number) => g1 > g2 || (g1 === g2 && o1 > o2);
  if (largest < 0 || after(sg, so, largest, 0) || after(sg, so, last.group, last.object)) return undefined;
  // FETCH_OK End Location: the request's, or {Largest.Group, Largest.Object + 1} when it asked beyond (§10.13).
  const beyond = !after(largest, 0, last.group, last.object);
  return { first: so === 0 ? sg : sg + 1, last: Math.min(last.group, largest), endLocation: beyond ? { group: largest, object: 1 } : end };
}

/**
 * The range of a Joining FETCH (§10.12.2.1) against a subscription whose
 * Joining Location was `joining`: `undefined` for INVALID_RANGE. A Relative
 * start counts groups back from the Joining Location.
 */
export function joiningRange(joining: Location | undefined, start: number, relative: boolean): { start: Location; end: Location } | undefined {
  if (!joining) return undefined;
  const jg = Number(joining.group);
  const group = relative ? Math.max(0, jg - start) : start;
  if (group > jg) return undefined;
  return { start: { group, object: 0 }, end: { group: jg, object: Number(joining.object) + 1 } };
}

/** A live-only track of OBJECT_DATAGRAMs (CALLS.md §6); nothing is kept. */
export class LiveTrack extends PubTrack {
  private last: Location | undefined;
  /**
   * Called when subscribers come or go: the WebRTC gateway sends the
   * track's RTP under one alias ({@link alias}), which must follow them.
   */
  onSubscribers: (() => void) | undefined;

  largest(): Location | undefined {
    return this.last;
  }

  protected started(): void {}

  protected override subscribersChanged(): void {
    this.onSubscribers?.();
  }

  /** True when someone is subscribed. */
  get wanted(): boolean {
    return this.subs.size > 0;
  }

  /** The alias of the newest subscription (a relay subscribes once per track), if any. */
  get alias(): number | undefined {
    let alias: number | undefined;
    for (const s of this.subs.values()) alias = s.alias;
    return alias;
  }

  /** Sends one object to every subscriber, encoded by `encode(alias)`. */
  send(group: number, object: number, encode: (alias: number) => Uint8Array): void {
    this.last = { group, object };
    for (const s of this.subs.values()) this.session.sendDatagram(encode(s.alias));
  }
}

/** A namespace we announce and its tracks. */
export class Publication {
  readonly tracks = new Map<string, PubTrack>();
  private announce: RequestStream | undefined;

  constructor(
    readonly namespace: readonly string[],
    private readonly session: MoqSession,
  ) {}

  get path(): string {
    return this.namespace.join("/");
  }

  log(name: string, priority: number): LogTrack {
    const t = new LogTrack(name, this.session, priority);
    this.tracks.set(name, t);
    return t;
  }

  live(name: string, priority: number): LiveTrack {
    const t = new LiveTrack(name, this.session, priority);
    this.tracks.set(name, t);
    return t;
  }

  /** PUBLISH_NAMESPACE (§10.15); resolves at REQUEST_OK, throws on REQUEST_ERROR. */
  async publish(timeoutMs = 5000): Promise<RequestStream> {
    const ns = [...this.namespace];
    const s = await this.session.request((requestId) => ({ type: "PUBLISH_NAMESPACE", requestId, namespace: ns, params: [] }));
    this.announce = s;
    let r;
    try {
      r = await s.next(timeoutMs, "PUBLISH_NAMESPACE answer");
    } catch (e) {
      s.cancel();
      throw e;
    }
    if (r?.type === "REQUEST_OK") return s;
    s.close();
    if (r?.type === "REQUEST_ERROR") throw new RequestRefused(`PUBLISH_NAMESPACE ${this.path}`, Number(r.code), r.reason || `error 0x${r.code.toString(16)}`);
    throw new Error(`no answer to PUBLISH_NAMESPACE ${this.path}`);
  }

  /** Ends every track (PUBLISH_DONE) and withdraws the namespace (§3.3.2; at draft-22 by a reset, docs/DRAFT22.md §8). */
  async withdraw(): Promise<void> {
    await Promise.all([...this.tracks.values()].map((t) => t.end()));
    this.announce?.cancel();
    this.announce = undefined;
  }
}

/**
 * Everything this session publishes; answers the relay's SUBSCRIBE and
 * FETCH requests (install {@link Publisher.handle} as the session's
 * `onRequest`).
 */
export class Publisher {
  private readonly spaces = new Map<string, Publication>();

  constructor(private readonly session: MoqSession) {}

  add(namespace: readonly string[]): Publication {
    const p = new Publication(namespace, this.session);
    this.spaces.set(p.path, p);
    return p;
  }

  remove(p: Publication): void {
    if (this.spaces.get(p.path) === p) this.spaces.delete(p.path);
  }

  handle(req: RequestMessage, stream: RequestStream): void {
    // What draft-22 can ask that the phone does not do (docs/DRAFT22.md §0.2).
    const no = stream.version === 22 && (req.type === "SUBSCRIBE" || req.type === "FETCH") ? unsupported22(req.params) : undefined;
    if (no) {
      void refuse(stream, no.code, no.reason);
    } else if (req.type === "SUBSCRIBE") {
      const track = this.spaces.get(tupleToStrings(req.namespace).join("/"))?.tracks.get(new TextDecoder().decode(toBytes(req.name)));
      if (!track) void refuse(stream, RequestErrorCode.DOES_NOT_EXIST, "no such track here");
      else void track.accept(req, stream);
    } else if (req.type === "FETCH") {
      void this.fetch(req, stream);
    } else {
      void refuse(stream, RequestErrorCode.NOT_SUPPORTED, `${req.type} is not supported by a phone`);
    }
  }

  private async fetch(req: Fetch, stream: RequestStream): Promise<void> {
    const id = Number(req.requestId);
    if (req.standalone) {
      const s = req.standalone;
      const track = this.spaces.get(tupleToStrings(s.namespace).join("/"))?.tracks.get(new TextDecoder().decode(toBytes(s.name)));
      if (!(track instanceof LogTrack)) {
        return refuse(stream, track ? RequestErrorCode.NOT_SUPPORTED : RequestErrorCode.DOES_NOT_EXIST, track ? "live only" : "no such track");
      }
      return track.serveFetch(id, s.start, s.end, stream);
    }
    const j = req.joining;
    if (!j) return refuse(stream, RequestErrorCode.INVALID_RANGE, "no range");
    for (const p of this.spaces.values()) {
      for (const t of p.tracks.values()) {
        const { found, joining } = t.joiningOf(Number(j.joiningRequestId));
        if (!found) continue;
        const range = joiningRange(joining, Number(j.joiningStart), req.fetchType === FetchType.RELATIVE_JOINING);
        if (!(t instanceof LogTrack) || !range) return refuse(stream, RequestErrorCode.INVALID_RANGE, "nothing to join");
        return t.serveFetch(id, range.start, range.end, stream);
      }
    }
    return refuse(stream, RequestErrorCode.INVALID_JOINING_REQUEST_ID, "no such subscription");
  }
}

function toBytes(b: string | Uint8Array): Uint8Array {
  return typeof b === "string" ? new TextEncoder().encode(b) : b;
}
