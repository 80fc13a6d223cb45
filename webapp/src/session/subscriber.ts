/**
 * Requests this device makes as a subscriber (draft-ietf-moq-transport-18):
 * SUBSCRIBE (§10.7) with its SUBSCRIBE_OK / PUBLISH_DONE, SUBSCRIBE_NAMESPACE
 * (§10.18) with NAMESPACE / NAMESPACE_DONE (§10.16, §10.17), and FETCH
 * (§10.12) in its Standalone and Joining forms.
 *
 * The same at draft-22 (docs/DRAFT22.md), but for two things: requests are
 * cancelled with `RequestStream.cancel` (a reset there, §8), and draft-22
 * has no Joining FETCH (§6), so one is sent as the Standalone FETCH of the
 * same range, up to the subscription's Joining Location.
 */

import { FetchType, ParameterType, RequestErrorCode, getParameter, tupleToStrings, type Fetch, type Location, type ResponseMessage, type Version } from "../moq/control.js";
import type { FetchedObject } from "../moq/fetch.js";
import { u64Add } from "../moq/varint.js";
import type { RequestStream } from "./request.js";
import type { MoqSession, ObjectSink } from "./session.js";

/** A request the relay refused (REQUEST_ERROR, §10.6) or did not answer. */
export class RequestRefused extends Error {
  constructor(
    readonly what: string,
    readonly code: number | undefined,
    reason: string,
  ) {
    super(`${what} refused: ${reason}`);
    this.name = "RequestRefused";
  }
}

function refused(what: string, r: ResponseMessage | undefined): RequestRefused {
  if (r?.type === "REQUEST_ERROR") return new RequestRefused(what, Number(r.code), r.reason || `error 0x${r.code.toString(16)}`);
  return new RequestRefused(what, undefined, r ? `unexpected ${r.type}` : "the relay closed the request");
}

/**
 * Waits for the answer of type `ok` to a request; on anything else (an
 * error, a timeout, the stream closing) closes the request and throws.
 */
async function answer<T extends ResponseMessage["type"]>(s: RequestStream, timeoutMs: number, ok: T, awaited: string, what: string): Promise<Extract<ResponseMessage, { type: T }>> {
  let r: ResponseMessage | undefined;
  try {
    r = await s.next(timeoutMs, awaited);
  } catch (e) {
    s.cancel();
    throw e;
  }
  if (r?.type !== ok) {
    s.cancel();
    throw refused(what, r);
  }
  return r as Extract<ResponseMessage, { type: T }>;
}

/** How a subscription ended. */
export interface SubscriptionEnd {
  /** PUBLISH_DONE status (§10.11), or `undefined` if the stream just ended. */
  status: number | undefined;
  reason: string;
}

/** An established SUBSCRIBE. */
export class Subscription {
  /** Resolves when the publisher ends it (PUBLISH_DONE) or the stream ends. */
  readonly done: Promise<SubscriptionEnd>;

  constructor(
    private readonly session: MoqSession,
    readonly requestId: number,
    readonly alias: number,
    /** LARGEST_OBJECT of SUBSCRIBE_OK: the Joining Location (§5.1). */
    readonly largest: Location | undefined,
    private readonly stream: RequestStream,
    /** The track: a draft-22 "Joining FETCH" names it (see {@link fetchObjects}). */
    readonly namespace: readonly string[] = [],
    readonly name = "",
  ) {
    this.done = (async () => {
      let end: SubscriptionEnd = { status: undefined, reason: "subscription ended" };
      for (;;) {
        const m = await stream.next();
        if (m === undefined) break;
        if (m.type === "PUBLISH_DONE") end = { status: Number(m.status), reason: m.reason || "publisher done" };
      }
      if (stream.endReason && stream.endReason !== "end") end = { status: end.status, reason: stream.endReason };
      session.unbindAlias(alias);
      return end;
    })();
  }

  /** Unsubscribes: closes the request stream (§3.3.2), by a reset at draft-22 (docs/DRAFT22.md §8). */
  close(): void {
    this.session.unbindAlias(this.alias);
    this.stream.cancel();
  }
}

/** SUBSCRIBE to `name` in `namespace`; objects go to `sink`. */
export async function subscribe(session: MoqSession, namespace: readonly string[], name: string, sink: ObjectSink, timeoutMs = 5000): Promise<Subscription> {
  const what = `SUBSCRIBE ${namespace.join("/")} ${name}`;
  const s = await session.request((requestId) => ({ type: "SUBSCRIBE", requestId, namespace: [...namespace], name, params: [] }));
  const r = await answer(s, timeoutMs, "SUBSCRIBE_OK", "SUBSCRIBE_OK", what);
  session.bindAlias(r.trackAlias, sink);
  const largest = getParameter(r.params, ParameterType.LARGEST_OBJECT) as Location | undefined;
  return new Subscription(session, Number(s.requestId), Number(r.trackAlias), largest, s, [...namespace], name);
}

export interface NamespaceListener {
  /** NAMESPACE: a namespace `prefix/…suffix` is published. */
  namespace(suffix: string[]): void;
  /** NAMESPACE_DONE: it is withdrawn. */
  done(suffix: string[]): void;
}

/** An established SUBSCRIBE_NAMESPACE. */
export class NamespaceWatch {
  /** Resolves when the relay ends the watch (or the session ends). */
  readonly ended: Promise<string>;

  constructor(
    private readonly stream: RequestStream,
    listener: NamespaceListener,
  ) {
    this.ended = (async () => {
      for (;;) {
        const m = await stream.next();
        if (m === undefined) return stream.endReason ?? "ended";
        if (m.type === "NAMESPACE") listener.namespace(tupleToStrings(m.suffix));
        else if (m.type === "NAMESPACE_DONE") listener.done(tupleToStrings(m.suffix));
      }
    })();
  }

  /** Ends the watch: closes the request stream, by a reset at draft-22 (docs/DRAFT22.md §8). */
  close(): void {
    this.stream.cancel();
  }
}

/** SUBSCRIBE_NAMESPACE `prefix`; resolves at REQUEST_OK. */
export async function subscribeNamespace(session: MoqSession, prefix: readonly string[], listener: NamespaceListener, timeoutMs = 5000): Promise<NamespaceWatch> {
  const s = await session.request((requestId) => ({ type: "SUBSCRIBE_NAMESPACE", requestId, prefix: [...prefix], params: [] }));
  await answer(s, timeoutMs, "REQUEST_OK", "SUBSCRIBE_NAMESPACE answer", `SUBSCRIBE_NAMESPACE ${prefix.join("/")}`);
  return new NamespaceWatch(s, listener);
}

/** What a Joining FETCH needs of its subscription. */
export type JoinedSubscription = Pick<Subscription, "requestId" | "largest" | "namespace" | "name">;

export type FetchSpec =
  /** Standalone (§10.12.1): `end` is the last Location plus one. */
  | { kind: "standalone"; namespace: readonly string[]; name: string; start: Location; end: Location }
  /** Absolute Joining (§10.12.2) from group `start` of `subscription`. */
  | { kind: "joining"; subscription: JoinedSubscription; start: number };

/**
 * The FETCH to send for `spec` in a session of draft `version`. Draft-22
 * has no Joining FETCH (docs/DRAFT22.md §6): an Absolute Joining FETCH from
 * group G is the Standalone FETCH of {G, 0} up to the subscription's
 * Joining Location (its SUBSCRIBE_OK's LARGEST_OBJECT) inclusive, which is
 * the range draft-18 defines for it (§10.12.2.1). Without a Joining
 * Location, or from a group after it, there is nothing to join: refused
 * here as a draft-18 relay would (INVALID_RANGE).
 */
export function fetchRequest(spec: FetchSpec, requestId: number, version: Version): Fetch {
  if (spec.kind === "standalone") {
    return { type: "FETCH", requestId, fetchType: FetchType.STANDALONE, standalone: { namespace: [...spec.namespace], name: spec.name, start: spec.start, end: spec.end }, params: [] };
  }
  const sub = spec.subscription;
  if (version === 18) {
    return { type: "FETCH", requestId, fetchType: FetchType.ABSOLUTE_JOINING, joining: { joiningRequestId: sub.requestId, joiningStart: spec.start }, params: [] };
  }
  const j = sub.largest;
  if (!j) throw new RequestRefused("FETCH", RequestErrorCode.INVALID_RANGE, "nothing was published before the subscription (no Joining Location)");
  if (spec.start > j.group) throw new RequestRefused("FETCH", RequestErrorCode.INVALID_RANGE, "the start is after the Joining Location");
  // End Location is the last Object plus one (§10.12.1); the codec writes it inclusive.
  const end: Location = { group: j.group, object: u64Add(j.object, 1) ?? 0 };
  return { type: "FETCH", requestId, fetchType: FetchType.STANDALONE, standalone: { namespace: [...sub.namespace], name: sub.name, start: { group: spec.start, object: 0 }, end }, params: [] };
}

/** Runs a FETCH to the end of its stream; resolves with its objects. */
export async function fetchObjects(session: MoqSession, spec: FetchSpec, timeoutMs = 5000): Promise<FetchedObject[]> {
  const objects: FetchedObject[] = [];
  let finished!: (e?: unknown) => void;
  const streamDone = new Promise<void>((resolve, reject) => (finished = (e) => (e ? reject(e) : resolve())));
  streamDone.catch(() => undefined);
  let requestId = -1;
  fetchRequest(spec, 0, session.version); // refuses a draft-22 join with nothing to join before opening a stream
  const s = await session.request((id) => {
    requestId = id;
    session.bindFetch(id, { item: (i) => void (i.kind === "object" && objects.push(i.object)), end: finished });
    return fetchRequest(spec, id, session.version);
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let complete = false;
  try {
    const r = await s.next(timeoutMs, "FETCH_OK");
    if (r?.type !== "FETCH_OK") throw refused("FETCH", r);
    const expired = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error("FETCH stream did not finish in time")), timeoutMs)));
    await Promise.race([streamDone, expired]);
    complete = true;
    return objects;
  } finally {
    clearTimeout(timer);
    session.unbindFetch(requestId);
    // Done: our FIN ends it. Not done: cancel it, by a reset at draft-22 (docs/DRAFT22.md §8).
    if (complete) s.close();
    else s.cancel();
  }
}
