/**
 * A registered browser phone (docs/CALLS.md §3–§4): one MoQ session to the
 * relay, kept up with reconnection and backoff; registration
 * (PUBLISH_NAMESPACE `…/users/<user>/<device>` with its `profile` track),
 * presence (SUBSCRIBE_NAMESPACE `…/users`), ringing (SUBSCRIBE_NAMESPACE
 * `…/ring/<user>`), and one {@link CallRun} per call.
 *
 * Liveness: a browser cannot set QUIC's idle timeout (CALLS.md §7 asks for
 * 1 s), so the phone sends an empty REQUEST_UPDATE on its registration
 * stream every {@link HEARTBEAT_MS}; the relay must answer REQUEST_OK
 * (draft-18 §10.9). No answer within {@link HEARTBEAT_DEADLINE_MS} means the
 * relay is gone: the session is dropped and the phone reconnects.
 */

import { AddressError, Namespaces, Track, formatAddress, isSid, newSid, parseAddress, parseSuffix } from "../call/address.js";
import { Call, losesGlare, type UserAction } from "../call/machine.js";
import { EVENTS_PRIORITY } from "../call/tracks.js";
import type { PhoneAudio } from "../media/types.js";
import { fromHex } from "../moq/bytes.js";
import type { Version } from "../moq/control.js";
import { Publisher } from "../session/publisher.js";
import { RequestTimeout, type RequestStream } from "../session/request.js";
import { GatewayMissing, RtcTransport } from "../session/rtc.js";
import { MoqSession, SessionClosed, openWebTransport } from "../session/session.js";
import type { MoqTransport, TransportKind } from "../session/transport.js";
import { RequestRefused, subscribeNamespace } from "../session/subscriber.js";
import { AuthFailed, requestAuthFailure, sessionAuthFailure, type AuthFailureKind } from "./auth.js";
import { CallRun, type CallListener } from "./callrun.js";
import { FallbackJudge, SETUP_STALL_MS, classifyFailure, needsHttpProbe, watchStreamOpens, type Progress, type Reached } from "./fallback.js";
import { Presence, type OnlineUser } from "./presence.js";
import { fallenBack, noGateway, rememberFallback, type TransportChoice } from "./transport_choice.js";

export const HEARTBEAT_MS = 1000;
export const HEARTBEAT_DEADLINE_MS = 2500;
/** How long the relay's HTTP side gets to answer before a failure is blamed on WebTransport (fallback.ts). */
export const HTTP_PROBE_MS = 3000;

export interface PhoneConfig {
  user: string;
  display: string;
  device: string;
  token: string | undefined;
  /** When the token expires (Unix seconds), when known (POST /login says): past it the phone signs out instead of reconnecting. */
  tokenExpires?: number | undefined;
  /** WebTransport URL of the relay (`https://host:port/`). */
  relayUrl: string;
  /** Where the relay publishes its certificate's SHA-256 (hex), or `undefined` for a CA-signed relay. */
  certificateUrl: string | undefined;
  /** What the session runs over (transport_choice.ts); WebTransport when absent. A runtime fallback replaces it (fallback.ts). */
  transport?: TransportChoice | undefined;
  /** The drafts a WebTransport offers (`?draft=22` pins one; docs/DRAFT22.md); both when absent, and the relay picks. */
  versions?: readonly Version[] | undefined;
}

export type Connection =
  | { state: "offline" }
  | { state: "connecting"; attempt: number }
  | { state: "online"; relay: string; implementation: string | undefined; transport: TransportKind; draft: Version }
  /** Unreachable or dropped; the next attempt is at `retryAt` (`Date.now()` ms). */
  | { state: "waiting"; error: string; retryAt: number; attempt: number }
  /** The relay refused our sign-in (token expired, refused, or for another user): the phone stopped; sign in again. */
  | { state: "refused"; kind: AuthFailureKind; error: string }
  /** This browser needs something the relay lacks (the WebRTC gateway): the phone stopped; `error` says what. */
  | { state: "unavailable"; error: string };

export interface PhoneEvents {
  connection(c: Connection): void;
  presence(users: OnlineUser[]): void;
  /** The current call changed (or ended: `run.info.phase === "ended"`). */
  call(run: CallRun): void;
  /** Something to tell the user that is not a call (a missed call, a problem). */
  notice(message: string): void;
}

/** Reconnection delay after `attempt` failures: 0.5 s doubling to 8 s, ±20 %. */
export function backoffMs(attempt: number, random = Math.random): number {
  const base = Math.min(8000, 500 * 2 ** Math.max(0, attempt));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** Reads the relay's certificate fingerprint (hex SHA-256) for `serverCertificateHashes`. */
export async function fetchCertificateHash(url: string): Promise<Uint8Array> {
  // A relay whose HTTP side hangs must not hang the connection attempt.
  const r = await fetch(url, { cache: "no-store", signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  const hex = (await r.text()).trim();
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new Error(`${url} is not a SHA-256 fingerprint`);
  return fromHex(hex);
}

export class Phone {
  private running = false;
  private session: MoqSession | undefined;
  private publisher: Publisher | undefined;
  private presence: Presence | undefined;
  private active: CallRun | undefined;
  /** Calls already seen under our ring prefix (re-listed after a reconnect). */
  private readonly seen = new Set<string>();
  private wakeRetry: (() => void) | undefined;
  private conn: Connection = { state: "offline" };
  private goingAway = false;
  /** Set when a request was refused for our token mid-session (EXPIRED_AUTH_TOKEN): the session is being closed. */
  private authFailure: AuthFailed | undefined;
  /** How WebTransport fares, and when to fall back to WebRTC (fallback.ts). */
  private readonly judge = new FallbackJudge(typeof RTCPeerConnection === "function");
  /** How far the current connection attempt got, and whether its session stalled (fallback.ts). */
  private progress: Progress = { reached: "http", stalled: false };

  constructor(
    readonly cfg: PhoneConfig,
    private readonly audio: PhoneAudio | undefined,
    private readonly events: PhoneEvents,
  ) {}

  get connection(): Connection {
    return this.conn;
  }

  /** The transport this phone uses. */
  get transport(): TransportKind {
    return this.cfg.transport?.kind ?? "webtransport";
  }

  get call(): CallRun | undefined {
    return this.active;
  }

  /** Who is online, without ourselves. */
  online(): OnlineUser[] {
    return (this.presence?.list() ?? []).filter((u) => u.user !== this.cfg.user);
  }

  /** Connects and stays connected until {@link stop}. */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  /** Signs out: hangs up, unregisters and closes the session. */
  stop(): void {
    this.running = false;
    const session = this.session;
    if (this.active && !this.active.isOver) {
      this.active.user({ action: "hangup" });
      // Give the `hangup` event a moment to leave before the session goes.
      setTimeout(() => session?.close(0, "signed out"), 300);
    } else session?.close(0, "signed out");
    this.wakeRetry?.();
    this.setConnection({ state: "offline" });
  }

  /** Skips the backoff wait and tries again now. */
  retryNow(): void {
    this.wakeRetry?.();
  }

  private setConnection(c: Connection): void {
    if (!this.running && c.state !== "offline" && c.state !== "refused" && c.state !== "unavailable") return;
    this.conn = c;
    this.events.connection(c);
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    while (this.running) {
      // A token past its expiry is refused (EXPIRED_AUTH_TOKEN, or GOAWAY at once within the relay's skew): sign in again.
      if (this.cfg.tokenExpires !== undefined && Date.now() / 1000 >= this.cfg.tokenExpires) {
        this.running = false;
        this.setConnection({ state: "refused", kind: "expired", error: "the access token expired" });
        break;
      }
      this.setConnection({ state: "connecting", attempt });
      let error: string;
      let refused: AuthFailed | undefined;
      let unavailable: string | undefined;
      const progress: Progress = (this.progress = { reached: "http", stalled: false });
      try {
        const session = await this.connect();
        attempt = 0;
        error = await this.serve(session);
        const info = await session.closeInfo;
        const kind = sessionAuthFailure(info.code);
        refused = this.authFailure ?? (kind ? new AuthFailed(kind, info.reason || error) : undefined);
      } catch (e) {
        error = describeConnectError(e);
        refused = authFailureOf(e);
        if (e instanceof GatewayMissing) unavailable = gatewayMissing(this.cfg.transport);
      }
      this.authFailure = undefined;
      this.teardown();
      if (!this.running) break;
      if (await this.fallBack(refused !== undefined, error)) {
        attempt = 0;
        this.goingAway = false;
        continue;
      }
      if (!this.running) break;
      if (refused) {
        // Retrying with the same token cannot work: stop, and say why.
        this.running = false;
        this.setConnection({ state: "refused", kind: refused.kind, error: refused.message });
        break;
      }
      if (unavailable && this.cfg.transport?.fallback) {
        // WebRTC only because WebTransport failed, and this relay has no gateway: back to WebTransport, retried as usual.
        console.warn(`back to WebTransport: ${unavailable}`);
        this.cfg.transport = noGateway();
        rememberFallback(undefined);
        this.judge.gatewayMissing();
        unavailable = undefined;
        error = "WebTransport did not connect, and this relay has no WebRTC gateway to fall back to";
      }
      if (unavailable) {
        // Retrying cannot help until the relay gains a gateway.
        this.running = false;
        this.setConnection({ state: "unavailable", error: unavailable });
        break;
      }
      const wait = this.goingAway ? 0 : backoffMs(attempt++);
      this.goingAway = false;
      this.setConnection({ state: "waiting", error, retryAt: Date.now() + wait, attempt });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        this.wakeRetry = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wakeRetry = undefined;
    }
  }

  /**
   * After a failed attempt or a lost session: switches this phone to WebRTC
   * for the rest of the tab when WebTransport failed (fallback.ts) and says
   * whether it did (the caller reconnects at once).
   */
  private async fallBack(auth: boolean, error: string): Promise<boolean> {
    const choice = this.cfg.transport;
    let failure = classifyFailure({ auth, ...this.progress });
    // Only while the relay's HTTP side (where the gateway is) answers is it WebTransport's fault.
    if (needsHttpProbe(failure) && this.judge.mayFallBack(choice) && !(await this.httpAnswers())) failure = "unreachable";
    if (!this.running || !this.judge.decide(choice, failure)) return false;
    const next = fallenBack(failure);
    console.warn(`switching to WebRTC: ${next.why} (${error})`);
    this.cfg.transport = next;
    rememberFallback(next);
    return true;
  }

  /** Whether the relay's HTTP side answers at all (any status). */
  private async httpAnswers(): Promise<boolean> {
    try {
      await fetch(this.cfg.certificateUrl ?? this.cfg.relayUrl, { cache: "no-store", signal: AbortSignal.timeout(HTTP_PROBE_MS) });
      return true;
    } catch {
      return false;
    }
  }

  /** Session, registration, ring watch and presence (CALLS.md §3). */
  private async connect(): Promise<MoqSession> {
    const progress = this.progress;
    const hash = this.cfg.certificateUrl ? await fetchCertificateHash(this.cfg.certificateUrl) : undefined;
    progress.reached = "handshake";
    let opened: MoqSession | undefined;
    const transport = this.openTransport(hash, () => {
      // A stream open slower than STALL_STREAM_OPEN_MS: the session stalled.
      if (!opened?.isOpen) return;
      progress.stalled = true;
      opened.close(0, "the WebTransport session stalled");
    });
    // The transport is up: what fails from here is not its handshake. No SETUP for SETUP_STALL_MS after that is a stall.
    let readyAt = 0;
    transport.ready.then(
      () => {
        readyAt = performance.now();
        if (progress.reached === "handshake") progress.reached = "setup";
      },
      () => undefined,
    );
    let session: MoqSession;
    try {
      session = await MoqSession.connect(this.cfg.relayUrl, { certificateHash: hash, token: this.cfg.token, transport, versions: this.cfg.versions });
    } catch (e) {
      if ((progress.reached as Reached) === "setup" && !(e instanceof SessionClosed) && performance.now() - readyAt >= SETUP_STALL_MS) progress.stalled = true;
      throw e;
    }
    progress.reached = "session";
    opened = session;
    if (session.transport === "webtransport") this.judge.opened();
    if (!this.running) {
      session.close(0, "signed out");
      throw new Error("signed out");
    }
    this.session = session;
    try {
      const publisher = new Publisher(session);
      this.publisher = publisher;
      session.onRequest = (req, stream) => publisher.handle(req, stream);
      session.onGoAway = () => this.goAway();
      // A GOAWAY right behind the relay's SETUP (e.g. a token at its expiry) came before that handler.
      if (session.goneAway) this.goAway();
      // EXPIRED_AUTH_TOKEN to any request (a presence SUBSCRIBE, a new call…): the token ran
      // out mid-session. Sign out now, or once the current call ends (as for GOAWAY).
      session.onRequestError = (code, reason) => {
        const kind = requestAuthFailure(code, false);
        if (kind && !this.authFailure) {
          this.authFailure = new AuthFailed(kind, reason || "the relay refused a request: the token expired");
          if (!this.active || this.active.isOver) session.close(0, "token expired");
        }
      };
      const reg = publisher.add(Namespaces.device(this.cfg.user, this.cfg.device));
      reg.log(Track.PROFILE, EVENTS_PRIORITY).append(new TextEncoder().encode(JSON.stringify({ display: this.cfg.display })));
      let regStream: RequestStream;
      try {
        regStream = await reg.publish();
      } catch (e) {
        const kind = e instanceof RequestRefused ? requestAuthFailure(e.code, true) : undefined;
        throw kind ? new AuthFailed(kind, e instanceof Error ? e.message : String(e)) : e;
      }
      await subscribeNamespace(session, Namespaces.ringPrefix(this.cfg.user), {
        namespace: (sfx) => this.ring(sfx),
        done: (sfx) => this.ringGone(sfx),
      });
      const presence = new Presence(session, () => this.events.presence(this.online()));
      this.presence = presence;
      await presence.start();
      if (!this.running) throw new Error("signed out");
      void this.heartbeat(session, regStream, progress);
      this.setConnection({
        state: "online",
        relay: this.cfg.relayUrl,
        implementation: session.peerImplementation,
        transport: session.transport,
        draft: session.version,
      });
      this.events.presence(this.online());
      return session;
    } catch (e) {
      // The open session left a request of ours unanswered: stalled (if the relay's HTTP side answers).
      if (e instanceof RequestTimeout) progress.stalled = true;
      session.close(0, "registration failed");
      throw e;
    }
  }

  /** The WebRTC fallback when it was chosen, else a WebTransport whose stream opens are watched for stalls (`slow`). */
  private openTransport(hash: Uint8Array | undefined, slow: () => void): MoqTransport {
    // The gateway is on the relay's HTTP side, where its certificate hash is.
    if (this.cfg.transport?.kind === "webrtc") return RtcTransport.open(this.cfg.certificateUrl ?? this.cfg.relayUrl, this.cfg.token);
    return watchStreamOpens(openWebTransport(this.cfg.relayUrl, hash, this.cfg.versions), slow);
  }

  /** Resolves with why the session ended. */
  private async serve(session: MoqSession): Promise<string> {
    return session.closed;
  }

  private async heartbeat(session: MoqSession, reg: RequestStream, progress: Progress): Promise<void> {
    while (session.isOpen) {
      await new Promise((r) => setTimeout(r, HEARTBEAT_MS));
      if (!session.isOpen) return;
      try {
        await reg.send({ type: "REQUEST_UPDATE", requestId: session.takeRequestId(), params: [] });
        const r = await reg.next(HEARTBEAT_DEADLINE_MS, "REQUEST_OK to the heartbeat");
        if (r?.type === "REQUEST_ERROR") return; // a relay that does not support it: rely on QUIC
        if (r === undefined) throw new Error("registration stream ended");
        this.judge.answered();
      } catch (e) {
        if (!session.isOpen) return;
        // The second miss without 30 s of health between (this session's and an earlier one's): a stall, if the relay's HTTP side answers.
        if (this.judge.missed()) progress.stalled = true;
        console.warn("relay not responding; reconnecting", e);
        session.close(0, "relay not responding");
        return;
      }
    }
  }

  /** GOAWAY (draft-18 §10.4): reconnect at once, or when the current call ends. */
  private goAway(): void {
    this.goingAway = true;
    if (!this.active || this.active.isOver) this.session?.close(0, "relay going away");
  }

  private teardown(): void {
    this.active?.sessionLost();
    this.presence?.stop();
    this.presence = undefined;
    this.publisher = undefined;
    this.session = undefined;
    this.events.presence([]);
  }

  // ---------------------------------------------------------------- calls --

  /** What every call reports to: only the current call reaches the UI. */
  private readonly callListener: CallListener = {
    changed: (r) => {
      if (r === this.active) {
        this.events.call(r);
        if (r.isOver && this.authFailure) this.session?.close(0, "token expired");
        else if (r.isOver && this.goingAway) this.session?.close(0, "relay going away");
      }
    },
    problem: (r, m) => {
      if (r === this.active) this.events.notice(m);
    },
  };

  /** Places a call to `text` (`user` or `user/ext`). Throws on a bad address, no session or no microphone. */
  async dial(text: string): Promise<CallRun> {
    const to = parseAddress(text.trim().toLowerCase());
    if (this.active && !this.active.isOver) throw new Error("already in a call");
    const session = this.session;
    const publisher = this.publisher;
    if (!session || !publisher || this.conn.state !== "online") throw new Error("not connected to the relay");
    if (to.user === this.cfg.user) throw new AddressError("BadAddress", text);
    await this.audio?.openMic();
    if (this.active && !this.active.isOver) throw new Error("already in a call");
    const sid = newSid();
    const { call, outputs } = Call.outgoing({ sid, me: this.cfg.user, to: text.trim().toLowerCase(), display: this.cfg.display, now: 0 });
    this.seen.add(sid);
    const run: CallRun = new CallRun({
      session,
      publisher,
      call,
      first: outputs,
      own: Namespaces.caller(to.user, sid, this.cfg.user),
      peerBase: [...Namespaces.callPrefix(sid), to.user],
      calleeUser: to.user,
      info: { direction: "outgoing", peer: text.trim().toLowerCase(), peerDisplay: to.ext ? formatAddress(to) : (this.presence?.list().find((u) => u.user === to.user)?.display ?? to.user) },
      audio: this.audio,
      listener: this.callListener,
    });
    this.active = run;
    this.events.call(run);
    return run;
  }

  /** NAMESPACE `<sid>/<caller>` under our ring prefix: an incoming call (CALLS.md §4). */
  private ring(suffix: string[]): void {
    const p = parseSuffix(suffix);
    const session = this.session;
    const publisher = this.publisher;
    if (!p || !isSid(p[0]) || !session || !publisher) return;
    const [sid, from] = p;
    if (this.seen.has(sid)) return;
    this.seen.add(sid);
    const cur = this.active && !this.active.isOver ? this.active : undefined;
    let busy = cur !== undefined;
    // Glare: an outgoing, unanswered call to the same user; the smaller sid survives.
    if (cur && cur.info.direction === "outgoing" && cur.info.peer.split("/")[0] === from && cur.call.state !== "established") {
      if (losesGlare(cur.info.sid, sid)) {
        cur.user({ action: "cancel-glare" });
        busy = false;
      }
    }
    const { call, outputs } = Call.incoming({ sid, me: this.cfg.device, busy, now: 0 });
    const run: CallRun = new CallRun({
      session,
      publisher,
      call,
      first: outputs,
      own: Namespaces.callee(sid, this.cfg.user, this.cfg.device),
      peerBase: Namespaces.caller(this.cfg.user, sid, from),
      info: { direction: "incoming", peer: from, peerDisplay: from },
      audio: busy ? undefined : this.audio,
      silent: busy,
      listener: this.callListener,
    });
    if (busy) {
      this.events.notice(`Missed call from ${from} (you were busy)`);
      return;
    }
    this.active = run;
    this.events.call(run);
  }

  /** NAMESPACE_DONE of a caller namespace: the caller gave up (CALLS.md §4). */
  private ringGone(suffix: string[]): void {
    const p = parseSuffix(suffix);
    const cur = this.active;
    if (p && cur && cur.info.sid === p[0] && cur.info.direction === "incoming" && cur.call.state !== "established") {
      cur.input({ in: "peer-gone", device: null });
    }
  }

  /** Answers the ringing call; opens the microphone first (throws {@link MicError}). */
  async answer(): Promise<void> {
    const run = this.active;
    if (!run || run.info.direction !== "incoming" || run.call.state !== "ringing") return;
    await this.audio?.openMic();
    run.user({ action: "answer" });
  }

  /** A user action on the current call. */
  act(a: UserAction): void {
    const run = this.active;
    if (run && !run.isOver) run.user(a);
  }
}

/** Whether a failed connection attempt was the relay refusing our sign-in. */
function authFailureOf(e: unknown): AuthFailed | undefined {
  if (e instanceof AuthFailed) return e;
  if (e instanceof SessionClosed) {
    const kind = sessionAuthFailure(e.info.code);
    return kind ? new AuthFailed(kind, e.info.reason || e.message) : undefined;
  }
  if (e instanceof RequestRefused) {
    const kind = requestAuthFailure(e.code, false);
    return kind ? new AuthFailed(kind, e.message) : undefined;
  }
  return undefined;
}

/** What to tell a user whose browser needs the WebRTC gateway the relay lacks. */
export function gatewayMissing(choice: TransportChoice | undefined): string {
  const why = choice?.why ? ` (WebRTC because ${choice.why})` : "";
  const instead = choice?.forced ? "Leave out ?transport=webrtc to use WebTransport." : "Use a recent Chrome, Edge or Firefox.";
  return `This browser needs the relay's WebRTC gateway, which this relay does not offer yet${why}. ${instead}`;
}

function describeConnectError(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  if (/Failed to fetch|NetworkError|ERR_CONNECTION|Load failed/i.test(m)) return "the relay is unreachable";
  if (/handshake|WebTransport/i.test(m)) return `cannot open a WebTransport session to the relay (${m})`;
  return m;
}
