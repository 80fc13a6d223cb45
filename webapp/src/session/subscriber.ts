/**
 * Requests this device makes as a subscriber (draft-ietf-moq-transport-18):
 * SUBSCRIBE (§10.7) with its SUBSCRIBE_OK / PUBLISH_DONE, SUBSCRIBE_NAMESPACE
 * (§10.18) with NAMESPACE / NAMESPACE_DONE (§10.16, §10.17), and FETCH
 * (§10.12) in its Standalone and Joining forms.
 */

import { FetchType, ParameterType, getParameter, tupleToStrings, type Location, type ResponseMessage } from "../moq/control.js";
import type { FetchedObject } from "../moq/fetch.js";
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
    s.close();
    throw e;
  }
  if (r?.type !== ok) {
    s.close();
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

  /** Unsubscribes: closes the request stream (§3.3.2). */
  close(): void {
    this.session.unbindAlias(this.alias);
    this.stream.close();
  }
}

/** SUBSCRIBE to `name` in `namespace`; objects go to `sink`. */
export async function subscribe(session: MoqSession, namespace: readonly string[], name: string, sink: ObjectSink, timeoutMs = 5000): Promise<Subscription> {
  const what = `SUBSCRIBE ${namespace.join("/")} ${name}`;
  const s = await session.request((requestId) => ({ type: "SUBSCRIBE", requestId, namespace: [...namespace], name, params: [] }));
  const r = await answer(s, timeoutMs, "SUBSCRIBE_OK", "SUBSCRIBE_OK", what);
  session.bindAlias(r.trackAlias, sink);
  const largest = getParameter(r.params, ParameterType.LARGEST_OBJECT) as Location | undefined;
  return new Subscription(session, Number(s.requestId), Number(r.trackAlias), largest, s);
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

  close(): void {
    this.stream.close();
  }
}

/** SUBSCRIBE_NAMESPACE `prefix`; resolves at REQUEST_OK. */
export async function subscribeNamespace(session: MoqSession, prefix: readonly string[], listener: NamespaceListener, timeoutMs = 5000): Promise<NamespaceWatch> {
  const s = await session.request((requestId) => ({ type: "SUBSCRIBE_NAMESPACE", requestId, prefix: [...prefix], params: [] }));
  await answer(s, timeoutMs, "REQUEST_OK", "SUBSCRIBE_NAMESPACE answer", `SUBSCRIBE_NAMESPACE ${prefix.join("/")}`);
  return new NamespaceWatch(s, listener);
}

export type FetchSpec =
  /** Standalone (§10.12.1): `end` is the last Location plus one. */
  | { kind: "standalone"; namespace: readonly string[]; name: string; start: Location; end: Location }
  /** Absolute Joining (§10.12.2) from group `start` of subscription `subscribeId`. */
  | { kind: "joining"; subscribeId: number; start: number };

/** Runs a FETCH to the end of its stream; resolves with its objects. */
export async function fetchObjects(session: MoqSession, spec: FetchSpec, timeoutMs = 5000): Promise<FetchedObject[]> {
  const objects: FetchedObject[] = [];
  let finished!: (e?: unknown) => void;
  const streamDone = new Promise<void>((resolve, reject) => (finished = (e) => (e ? reject(e) : resolve())));
  streamDone.catch(() => undefined);
  let requestId = -1;
  const s = await session.request((id) => {
    requestId = id;
    session.bindFetch(id, { item: (i) => void (i.kind === "object" && objects.push(i.object)), end: finished });
    return spec.kind === "standalone"
      ? { type: "FETCH", requestId: id, fetchType: FetchType.STANDALONE, standalone: { namespace: [...spec.namespace], name: spec.name, start: spec.start, end: spec.end }, params: [] }
      : { type: "FETCH", requestId: id, fetchType: FetchType.ABSOLUTE_JOINING, joining: { joiningRequestId: spec.subscribeId, joiningStart: spec.start }, params: [] };
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const r = await s.next(timeoutMs, "FETCH_OK");
    if (r?.type !== "FETCH_OK") throw refused("FETCH", r);
    const expired = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error("FETCH stream did not finish in time")), timeoutMs)));
    await Promise.race([streamDone, expired]);
    return objects;
  } finally {
    clearTimeout(timer);
    session.unbindFetch(requestId);
    s.close();
  }
}
