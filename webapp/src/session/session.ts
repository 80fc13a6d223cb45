/**
 * One MoQT session over WebTransport (draft-ietf-moq-transport-18 §3):
 *
 * - the control streams: each side opens one unidirectional stream that
 *   starts with SETUP (§3.3, §10.3); afterwards only GOAWAY (§10.4) may
 *   appear on it;
 * - request streams (§3.3): {@link MoqSession.request} opens one with the
 *   next even Request ID (§10.1); streams the relay opens (SUBSCRIBE or FETCH
 *   for what we publish) go to {@link MoqSession.onRequest};
 * - data (§11): incoming SUBGROUP and FETCH_HEADER streams and
 *   OBJECT_DATAGRAMs are routed by Track Alias (§11.1) or Request ID to the
 *   sink a subscription or fetch bound with {@link MoqSession.bindAlias} /
 *   {@link MoqSession.bindFetch}.
 *
 * The certificate is checked with `serverCertificateHashes` (the relay's
 * development certificate, from its `/certificate.sha256`) when given.
 *
 * The session runs over a {@link MoqTransport} (`transport.ts`): a browser
 * WebTransport by default, or the one given as `opts.transport` (the WebRTC
 * fallback, `rtc.ts`).
 *
 * Draft: a WebTransport offers WT-Protocol `moqt-18` and `moqt-22` and the
 * session speaks the one the relay chose ({@link MoqSession.version}; none
 * named: draft-18), docs/DRAFT22.md §2. SETUP is the same in both, and so
 * are data streams and datagrams (§7): only control messages and what
 * cancels a request differ, handled by the codec and `request.ts`. The
 * WebRTC path stays draft-18: the relay's gateway speaks nothing else.
 */

import { ByteQueue, utf8 } from "../moq/bytes.js";
import { FrameReader, MessageType, RequestIds, SetupOption, decodeResponse, decodeSetup, encodeMessage, type RequestMessage, type Version } from "../moq/control.js";
import { parseDatagram } from "../moq/datagram.js";
import { FETCH_HEADER, FetchParser, type FetchItem } from "../moq/fetch.js";
import type { Property } from "../moq/properties.js";
import { PADDING_STREAM } from "../moq/stream.js";
import { SubgroupParser, isSubgroupType } from "../moq/subgroup.js";
import { readVarint, type U64 } from "../moq/varint.js";
import { RequestStream } from "./request.js";
import { fromWebTransport, type MoqTransport, type RtpAudio, type TransportKind } from "./transport.js";

/** The WebTransport subprotocol of draft-18 (§3.1.1). */
export const WT_PROTOCOL = "moqt-18";

/** The WebTransport subprotocol (WT-Protocol) of each draft the phone speaks (docs/DRAFT22.md §2). */
export const WT_PROTOCOLS: Readonly<Record<Version, string>> = { 18: WT_PROTOCOL, 22: "moqt-22" };

/**
 * The drafts a WebTransport offers, in the phone's order of preference. The
 * relay decides: ours answers draft-18 when both are offered
 * (docs/DRAFT22.md §0.2), so draft-22 is used with a relay that prefers it.
 */
export const OFFERED_VERSIONS: readonly Version[] = [18, 22];

/**
 * The draft a WebTransport's negotiated subprotocol names. None (a browser
 * or relay without subprotocol negotiation) means draft-18, the only one
 * before it; one the phone did not offer is an error.
 */
export function versionOfProtocol(protocol: string | undefined | null): Version {
  if (!protocol) return 18;
  for (const v of OFFERED_VERSIONS) if (WT_PROTOCOLS[v] === protocol) return v;
  throw new Error(`the relay chose the subprotocol "${protocol}", which this phone does not speak`);
}

/** The draft a session over `t` speaks: the WebRTC gateway's is always draft-18 (rtc_stream.ts `DC_PROTOCOL`). */
export function negotiatedVersion(t: MoqTransport): Version {
  return t.kind === "webtransport" ? versionOfProtocol(t.protocol) : 18;
}

/** An object as it arrived on a subgroup stream or in a datagram. */
export interface ReceivedObject {
  groupId: U64;
  objectId: U64;
  /** `undefined` for a datagram. */
  subgroupId: U64 | undefined;
  properties: Uint8Array;
  payload: Uint8Array;
  status: U64;
}

/** Where a subscription's objects go. */
export type ObjectSink = (o: ReceivedObject) => void;

/** Where a FETCH's objects go; `end` once its stream finished (or failed). */
export interface FetchSink {
  item(i: FetchItem): void;
  end(error?: unknown): void;
}

export interface ConnectOptions {
  /** SHA-256 of the relay's certificate, for `serverCertificateHashes`. */
  certificateHash?: Uint8Array | undefined;
  /**
   * An access token as `moq-relay token` prints it (base64url), sent as an
   * AUTHORIZATION TOKEN Setup Option (§10.3.1.4, USE_VALUE, token type CAT).
   */
  token?: string | undefined;
  /** How long to wait for the handshake and the relay's SETUP. */
  timeoutMs?: number;
  /**
   * The connection to run the session over (e.g. WebRTC data channels); by
   * default a new WebTransport to `url`. Its `ready` is awaited here, and it
   * is closed when the handshake fails.
   */
  transport?: MoqTransport | undefined;
  /** The drafts a new WebTransport offers (default {@link OFFERED_VERSIONS}); not used with `transport`. */
  versions?: readonly Version[] | undefined;
}

/** How long a data stream may wait for the SUBSCRIBE_OK that names its alias (§11.4.2). */
const ALIAS_WAIT_MS = 2000;

const IMPLEMENTATION = "moq-phone-web/0.1";

/** Token Type of a Common Access Token (draft-ietf-moq-c4m §7.1). */
const TOKEN_TYPE_CAT = 0x1;

/** The bytes of a token given as base64url text; throws on anything else. */
export function tokenBytes(token: string): Uint8Array {
  const t = token.trim().replace(/=+$/, "");
  if (!/^[A-Za-z0-9_-]+$/.test(t)) throw new Error("the access token is not one from `moq-relay token` (base64url)");
  const b64 = t.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** Encodes a Token structure with Alias Type USE_VALUE (§10.2.2) carrying a CAT. */
export function tokenStructure(token: string): Uint8Array {
  const value = tokenBytes(token);
  const out = new Uint8Array(2 + value.length);
  out[0] = 0x3; // USE_VALUE
  out[1] = TOKEN_TYPE_CAT;
  out.set(value, 2);
  return out;
}

/** How a session ended: the relay's §3.5 close code and reason, or no code when the connection just dropped. */
export interface CloseInfo {
  code: number | undefined;
  reason: string;
}

/** The relay closed the session before its SETUP arrived (e.g. UNAUTHORIZED at SETUP), with its close code. */
export class SessionClosed extends Error {
  constructor(readonly info: CloseInfo) {
    super(`the relay closed the session${info.code !== undefined ? ` (code 0x${info.code.toString(16)})` : ""}${info.reason ? `: ${info.reason}` : ""}`);
    this.name = "SessionClosed";
  }
}

/** How long a control stream that ended before SETUP waits for the session's close code. */
const CLOSE_INFO_WAIT_MS = 1000;

/** How long after our SETUP the session waits for a refusal before reading the relay's streams (see `admitted`). */
export const ADMISSION_WAIT_MS = 250;

export class MoqSession {
  private readonly ids = new RequestIds("client");
  private readonly aliases = new Map<U64, ObjectSink>();
  private readonly aliasWaiters = new Map<U64, Array<() => void>>();
  private readonly fetches = new Map<U64, FetchSink>();
  private nextAliasValue = 1;
  private datagramWriter: WritableStreamDefaultWriter<Uint8Array> | undefined;
  private isClosed = false;
  /**
   * Resolves once the relay has had time to refuse our SETUP (or did):
   * incoming streams are read only then. A relay may send its SETUP at once
   * and close the session after judging ours (a refused token); Chromium
   * (148) crashes the page when that early close meets a read on the
   * relay's control stream, and not when the read starts after the close.
   */
  private admitted: Promise<unknown> = Promise.resolve();
  /** Resolves with a human-readable reason when the session is over. */
  readonly closed: Promise<string>;
  /** Resolves with the close code and reason when the session is over. */
  readonly closeInfo: Promise<CloseInfo>;
  /** The relay's MOQT_IMPLEMENTATION, once its SETUP arrived. */
  peerImplementation: string | undefined;
  /** The draft this session speaks, known once the transport is ready (docs/DRAFT22.md §2). */
  private draft: Version = 18;
  /** A request the relay opened (SUBSCRIBE or FETCH for our tracks). */
  onRequest: (req: RequestMessage, stream: RequestStream) => void = (_r, s) => void refuse(s, 0x3, "not supported");
  /** GOAWAY on the relay's control stream (§10.4). */
  onGoAway: (uri: string, timeoutMs: U64) => void = () => undefined;
  /** A GOAWAY arrived (perhaps with the relay's SETUP, before {@link onGoAway} was set). */
  goneAway = false;
  /** A REQUEST_ERROR (§10.6) on any request we made, e.g. EXPIRED_AUTH_TOKEN. */
  onRequestError: (code: number, reason: string) => void = () => undefined;

  private constructor(
    readonly url: string,
    private readonly wt: MoqTransport,
  ) {
    this.closeInfo = wt.closed.then(
      (info) => {
        this.isClosed = true;
        return { code: info.closeCode, reason: info.reason ?? "" };
      },
      (e: unknown) => {
        this.isClosed = true;
        return { code: undefined, reason: e instanceof Error ? e.message : String(e) };
      },
    );
    this.closed = this.closeInfo.then((info) => (info.code === undefined ? info.reason : `session closed${info.code ? ` (code ${info.code})` : ""}${info.reason ? `: ${info.reason}` : ""}`));
    void this.closed.then(() => {
      this.isClosed = true;
      for (const f of this.fetches.values()) f.end(new Error("session closed"));
      this.fetches.clear();
    });
  }

  /**
   * Opens the session and exchanges SETUP. Rejects with the browser's error
   * when the relay cannot be reached or its certificate is not accepted.
   */
  static async connect(url: string, opts: ConnectOptions = {}): Promise<MoqSession> {
    const wt = opts.transport ?? openWebTransport(url, opts.certificateHash, opts.versions);
    const s = new MoqSession(url, wt);
    const timeout = opts.timeoutMs ?? 8000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error("the relay did not answer in time")), timeout)));
    try {
      await Promise.race([wt.ready, expired]);
      s.draft = negotiatedVersion(wt);
      const setupSent = s.sendSetup(opts.token);
      if (wt.kind === "webtransport") {
        const grace = () => new Promise<void>((r) => setTimeout(r, ADMISSION_WAIT_MS));
        s.admitted = Promise.race([s.closeInfo, setupSent.then(grace, () => undefined)]);
      }
      const peerSetup = new Promise<void>((resolve, reject) => s.start(resolve, reject));
      await setupSent;
      await Promise.race([peerSetup, expired]);
    } catch (e) {
      s.close(0, "setup failed");
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return s;
  }

  /** The draft of draft-ietf-moq-transport this session speaks: 18 or 22. */
  get version(): Version {
    return this.draft;
  }

  /** What carries the session. */
  get transport(): TransportKind {
    return this.wt.kind;
  }

  /** Audio over RTP beside the session (WebRTC), when the transport has it: calls then bind their tracks to it. */
  get rtp(): RtpAudio | undefined {
    return this.wt.rtp;
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Closes the session (§3.5: code 0 = NO_ERROR). */
  close(code = 0, reason = ""): void {
    if (this.isClosed) return;
    this.isClosed = true;
    try {
      this.wt.close({ closeCode: code, reason });
    } catch {
      /* already closed */
    }
  }

  private async sendSetup(token: string | undefined): Promise<void> {
    const options: Property[] = [{ type: SetupOption.MOQT_IMPLEMENTATION, value: utf8(IMPLEMENTATION) }];
    if (token) options.push({ type: SetupOption.AUTHORIZATION_TOKEN, value: tokenStructure(token) });
    const control = await this.wt.createUnidirectionalStream();
    const w = control.getWriter();
    await w.write(encodeMessage({ type: "SETUP", options }));
    // The control stream stays open for the session (§3.3).
    w.releaseLock();
  }

  private start(setupSeen: () => void, setupFailed: (e: unknown) => void): void {
    void this.acceptUni(setupSeen, setupFailed);
    void this.acceptBidi();
    void this.readDatagrams();
    const dg = this.wt.datagrams;
    const writable = dg.createWritable ? dg.createWritable() : dg.writable;
    this.datagramWriter = writable?.getWriter();
    this.datagramWriter?.closed.catch(() => undefined);
  }

  // ------------------------------------------------------------- requests --

  /** The next Request ID (§10.1), for a request or a REQUEST_UPDATE. */
  takeRequestId(): number {
    return this.ids.take();
  }

  /** Opens a request stream and sends `make(requestId)` on it. */
  async request(make: (requestId: number) => RequestMessage): Promise<RequestStream> {
    const id = this.ids.take();
    const bidi = await this.wt.createBidirectionalStream();
    const rs = new RequestStream(id, bidi, false, (code, reason) => this.onRequestError(code, reason), this.draft);
    await rs.send(make(id));
    return rs;
  }

  private async acceptBidi(): Promise<void> {
    const reader = this.wt.incomingBidirectionalStreams.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        const rs = new RequestStream(undefined, value, true, undefined, this.draft);
        void rs.request.then((m) => {
          if (m) this.onRequest(m, rs);
          else rs.abort();
        });
      }
    } catch {
      /* session over */
    }
  }

  // ----------------------------------------------------------------- data --

  /** A Track Alias for a subscription we accept as publisher (§11.1). */
  takeAlias(): number {
    return this.nextAliasValue++;
  }

  /** Routes objects of Track Alias `alias` (from SUBSCRIBE_OK) to `sink`. */
  bindAlias(alias: U64, sink: ObjectSink): void {
    this.aliases.set(alias, sink);
    const w = this.aliasWaiters.get(alias);
    this.aliasWaiters.delete(alias);
    for (const f of w ?? []) f();
  }

  unbindAlias(alias: U64): void {
    this.aliases.delete(alias);
  }

  /** Routes the FETCH_HEADER stream of `requestId` to `sink`. */
  bindFetch(requestId: U64, sink: FetchSink): void {
    this.fetches.set(requestId, sink);
  }

  unbindFetch(requestId: U64): void {
    this.fetches.delete(requestId);
  }

  /** Sends one datagram; it may be dropped (§11.3). */
  sendDatagram(d: Uint8Array): void {
    this.datagramWriter?.write(d).catch(() => undefined);
  }

  /** Writes `bytes` on a new unidirectional stream and ends it (FIN). */
  async sendStream(bytes: Uint8Array, sendOrder = 0): Promise<void> {
    const s = await this.wt.createUnidirectionalStream({ sendOrder });
    const w = s.getWriter();
    await w.write(bytes);
    await w.close();
  }

  private async waitAlias(alias: U64): Promise<ObjectSink | undefined> {
    const known = this.aliases.get(alias);
    if (known) return known;
    await new Promise<void>((resolve) => {
      const list = this.aliasWaiters.get(alias) ?? [];
      const wake = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const left = (this.aliasWaiters.get(alias) ?? []).filter((f) => f !== wake);
        if (left.length) this.aliasWaiters.set(alias, left);
        else this.aliasWaiters.delete(alias);
        resolve();
      }, ALIAS_WAIT_MS);
      list.push(wake);
      this.aliasWaiters.set(alias, list);
    });
    return this.aliases.get(alias);
  }

  private async readDatagrams(): Promise<void> {
    const reader = this.wt.datagrams.readable.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        let d;
        try {
          d = parseDatagram(value);
        } catch (e) {
          console.warn("dropping malformed datagram", e);
          continue;
        }
        this.aliases.get(d.trackAlias)?.({
          groupId: d.groupId,
          objectId: d.objectId,
          subgroupId: undefined,
          properties: d.properties,
          payload: d.payload,
          status: d.status,
        });
      }
    } catch {
      /* session over */
    }
  }

  private async acceptUni(setupSeen: () => void, setupFailed: (e: unknown) => void): Promise<void> {
    const reader = this.wt.incomingUnidirectionalStreams.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        void this.uniStream(value, setupSeen, setupFailed);
      }
    } catch {
      /* session over */
    }
    // Before SETUP this is the relay refusing us (UNAUTHORIZED, EXPIRED_AUTH_TOKEN…): wait briefly for its close code.
    const info = await Promise.race([this.closeInfo, new Promise<undefined>((r) => setTimeout(() => r(undefined), CLOSE_INFO_WAIT_MS))]);
    setupFailed(info?.code !== undefined ? new SessionClosed(info) : new Error("the relay closed the session before SETUP"));
  }

  /** Dispatches an incoming unidirectional stream on its type (§3.4). */
  private async uniStream(readable: ReadableStream<Uint8Array>, setupSeen: () => void, setupFailed: (e: unknown) => void): Promise<void> {
    await this.admitted;
    const reader = readable.getReader();
    const q = new ByteQueue();
    const more = async (): Promise<boolean> => {
      const { done, value } = await reader.read();
      if (done) return false;
      q.push(value);
      return true;
    };
    try {
      let type: U64 | undefined;
      while ((type = readVarint(q.view(), 0)?.value) === undefined) if (!(await more())) return;
      if (type === MessageType.SETUP) await this.controlStream(q, more, setupSeen, setupFailed);
      else if (type === FETCH_HEADER) await this.fetchStream(q, more);
      else if (isSubgroupType(type)) await this.subgroupStream(q, more, reader);
      else if (type === PADDING_STREAM) while (await more()) q.consume(q.length);
      else {
        console.warn(`unknown stream type 0x${type.toString(16)}`);
        this.close(0x3, "unknown stream type");
      }
    } catch (e) {
      if (this.isOpen) console.warn("data stream failed", e);
      reader.cancel().catch(() => undefined);
    } finally {
      reader.releaseLock();
    }
  }

  private async controlStream(q: ByteQueue, more: () => Promise<boolean>, setupSeen: () => void, setupFailed: (e: unknown) => void): Promise<void> {
    const frames = new FrameReader();
    frames.push(q.take(q.length));
    let setup = false;
    for (;;) {
      for (let f = frames.next(); f !== undefined; f = frames.next()) {
        if (!setup) {
          const s = decodeSetup(f);
          const impl = s.options.find((o) => o.type === SetupOption.MOQT_IMPLEMENTATION)?.value;
          if (impl instanceof Uint8Array) this.peerImplementation = new TextDecoder().decode(impl);
          setup = true;
          setupSeen();
          continue;
        }
        const m = decodeResponse(f, this.draft);
        if (m.type === "GOAWAY") {
          this.goneAway = true;
          this.onGoAway(m.uri, m.timeoutMs);
        }
      }
      if (!(await more())) break;
      frames.push(q.take(q.length));
    }
    if (!setup) setupFailed(new Error("the relay's control stream ended before SETUP"));
  }

  private async subgroupStream(q: ByteQueue, more: () => Promise<boolean>, reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const p = new SubgroupParser();
    let sink: ObjectSink | undefined;
    let groupId: U64 = 0;
    for (;;) {
      p.push(q.take(q.length));
      for (let e = p.next(); e !== undefined; e = p.next()) {
        if (e.kind === "header") {
          groupId = e.header.groupId;
          sink = await this.waitAlias(e.header.trackAlias);
          if (!sink) {
            // Unknown alias: abandon this stream only (§11.4.2).
            await reader.cancel();
            return;
          }
        } else {
          sink?.({
            groupId,
            objectId: e.object.objectId,
            subgroupId: p.subgroupId,
            properties: e.object.properties,
            payload: e.object.payload,
            status: e.object.status,
          });
        }
      }
      if (!(await more())) break;
    }
    p.finish();
  }

  private async fetchStream(q: ByteQueue, more: () => Promise<boolean>): Promise<void> {
    const p = new FetchParser();
    let sink: FetchSink | undefined;
    try {
      for (;;) {
        p.push(q.take(q.length));
        const id = p.header();
        if (id !== undefined && sink === undefined) {
          sink = this.fetches.get(id);
          if (!sink) return;
        }
        if (sink) for (let i = p.next(); i !== undefined; i = p.next()) sink.item(i);
        if (!(await more())) break;
      }
      p.finish();
      sink?.end();
    } catch (e) {
      sink?.end(e);
      throw e;
    }
  }
}

/**
 * A new WebTransport to the relay offering the subprotocols of `versions`
 * (WT-Available-Protocols; the chosen one is `protocol` once ready),
 * trusting `certificateHash` when given.
 */
export function openWebTransport(url: string, certificateHash: Uint8Array | undefined, versions: readonly Version[] = OFFERED_VERSIONS): MoqTransport {
  const wtOpts: WebTransportOptions & { protocols?: string[] } = { protocols: versions.map((v) => WT_PROTOCOLS[v]) };
  if (certificateHash) wtOpts.serverCertificateHashes = [{ algorithm: "sha-256", value: certificateHash as Uint8Array<ArrayBuffer> }];
  return fromWebTransport(new WebTransport(url, wtOpts));
}

/** Answers a request with REQUEST_ERROR (§10.6) and ends the stream. */
export async function refuse(stream: RequestStream, code: number, reason: string): Promise<void> {
  try {
    await stream.send({ type: "REQUEST_ERROR", code, retryInterval: 0, reason });
  } catch {
    /* peer gone */
  }
  stream.close();
}
