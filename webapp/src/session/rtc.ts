/**
 * The WebRTC fallback transport (issue 14, docs/design/webrtc.md §2.3, §4):
 * a {@link MoqTransport} over one RTCPeerConnection to the relay's WebRTC
 * gateway, for browsers whose WebTransport is missing or broken (Safari).
 *
 * - Signalling is WHIP-shaped: the page POSTs its SDP offer to the relay's
 *   `/webrtc` (`Content-Type: application/sdp`, `Authorization: Bearer
 *   <token>`) and gets the answer (201, `Location: /webrtc/<id>`, which a
 *   `DELETE` ends). The gateway is ICE-lite with host candidates, so the
 *   page does not wait for ICE gathering.
 * - Channels (protocol `moqt-18`): `moq-gw` (reliable; JSON control:
 *   `{"t":"close","code","reason"}` either way, `audio-out` / `audio-in`),
 *   `moq-dgram` (unordered, no retransmits; one message = one
 *   OBJECT_DATAGRAM) — both made before the offer — and one `moq-uni` /
 *   `moq-bi` channel per MoQ stream (`rtc_stream.ts`).
 * - Audio: the microphone rides the audio transceiver's sender; the peer's
 *   audio arrives as RTP in {@link RtcTransport.remoteStream}. The gateway
 *   maps them to and from the LOC datagrams of the call's `audio` tracks
 *   ({@link RtpAudio}).
 *
 * End-to-end tested with Chromium against the relay's gateway
 * (test/e2e/webrtc.e2e.mjs).
 */

import { SessionError } from "../moq/control.js";
import { SessionClosed } from "./session.js";
import { ChannelViolation, DC_PROTOCOL, DcStream, Label, openStreamChannel, whenOpen, type DataChannelLike } from "./rtc_stream.js";
import type { BidiStream, DatagramDuplex, MoqTransport, RtpAudio, StreamOptions, TransportCloseInfo } from "./transport.js";

/** How long `moq-gw` may take to open (POST, ICE, DTLS, SCTP, DCEP). */
const GATEWAY_OPEN_MS = 10_000;
/** How long a new stream's channel may take to open (one DCEP round trip). */
const STREAM_OPEN_MS = 10_000;
/** Datagrams are dropped rather than queued beyond this. */
const DATAGRAM_BUFFER = 64 * 1024;
/** How long our `close` message gets to leave before the connection goes. */
const CLOSE_LINGER_MS = 200;

/** The relay has no WebRTC gateway (an older relay, or one without the `webrtc` feature). */
export class GatewayMissing extends Error {
  constructor(readonly status: number) {
    super(`the relay has no WebRTC gateway (POST /webrtc: HTTP ${status})`);
    this.name = "GatewayMissing";
  }
}

/** The gateway refused the offer (bad token, too many peers, a malformed offer…). */
export class OfferRefused extends Error {
  constructor(
    readonly status: number,
    reason: string,
  ) {
    super(`the relay's WebRTC gateway refused the connection (HTTP ${status})${reason ? `: ${reason}` : ""}`);
    this.name = "OfferRefused";
  }
}

export interface RtcOptions {
  /** STUN/TURN servers for networks the relay's host candidates do not reach. */
  iceServers?: RTCIceServer[];
  /** For tests: the fetch to POST with. */
  fetch?: typeof fetch;
}

/** The `/webrtc` endpoint of a relay given by its page URL (`http(s)://host:port/`). */
export function gatewayUrl(relayHttpUrl: string): string {
  return new URL("/webrtc", relayHttpUrl).href;
}

/**
 * `GET /webrtc`: the STUN/TURN servers the relay hands out (with TURN
 * credentials made for this token), for networks that block UDP to the
 * gateway. None on any failure: an older relay answers 405, and the host
 * candidates alone still work where UDP gets through.
 */
export async function fetchIceServers(endpoint: string, token: string | undefined, fetchFn: typeof fetch, timeoutMs = 3000): Promise<RTCIceServer[]> {
  try {
    const r = await fetchFn(endpoint, { headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: "no-store", signal: AbortSignal.timeout(timeoutMs) });
    if (r.status !== 200) return [];
    const v: unknown = await r.json();
    const list = (v as { iceServers?: unknown } | null)?.iceServers;
    if (!Array.isArray(list)) return [];
    return list.filter((x): x is RTCIceServer => {
      const urls = (x as RTCIceServer | null)?.urls;
      return typeof urls === "string" || (Array.isArray(urls) && urls.every((u) => typeof u === "string"));
    });
  } catch {
    return [];
  }
}

/** What one `moq-gw` text message says; `undefined` for anything the protocol does not define. */
export type GatewayMessage = { t: "close"; code: number; reason: string } | { t: "audio-out"; alias: number | null; priority: number } | { t: "audio-in"; alias: number | null };

export function parseGatewayMessage(text: string): GatewayMessage | undefined {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof m !== "object" || m === null) return undefined;
  const o = m as Record<string, unknown>;
  const alias = o["alias"] === null || isUint(o["alias"]) ? (o["alias"] as number | null) : undefined;
  if (o["t"] === "close" && isUint(o["code"]) && (o["reason"] === undefined || typeof o["reason"] === "string")) return { t: "close", code: o["code"], reason: (o["reason"] as string | undefined) ?? "" };
  // A missing priority is the audio track's (CALLS.md §6: 128).
  const priority = o["priority"] === undefined ? 128 : o["priority"];
  if (o["t"] === "audio-out" && alias !== undefined && isUint(priority) && priority <= 255) return { t: "audio-out", alias, priority };
  if (o["t"] === "audio-in" && alias !== undefined) return { t: "audio-in", alias };
  return undefined;
}

/** A `moq-gw` message as sent: JSON with `t` first (the shared vectors compare it byte for byte). */
export function formatGatewayMessage(m: GatewayMessage): string {
  switch (m.t) {
    case "close":
      return JSON.stringify({ t: m.t, code: m.code, reason: m.reason });
    case "audio-out":
      return JSON.stringify({ t: m.t, alias: m.alias, priority: m.priority });
    case "audio-in":
      return JSON.stringify({ t: m.t, alias: m.alias });
  }
}

function isUint(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

export class RtcTransport implements MoqTransport, RtpAudio {
  readonly kind = "webrtc" as const;
  readonly ready: Promise<void>;
  readonly closed: Promise<TransportCloseInfo>;
  readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;
  readonly incomingBidirectionalStreams: ReadableStream<BidiStream>;
  readonly datagrams: DatagramDuplex;
  /** The peer's audio (RTP from the gateway). */
  readonly remoteStream = new MediaStream();
  readonly rtp: RtpAudio = this;
  private readonly gw: RTCDataChannel;
  private readonly dgram: RTCDataChannel;
  private readonly audio: RTCRtpTransceiver;
  private uni!: ReadableStreamDefaultController<ReadableStream<Uint8Array>>;
  private bidi!: ReadableStreamDefaultController<BidiStream>;
  private dgramIn!: ReadableStreamDefaultController<Uint8Array>;
  private settle!: (info: TransportCloseInfo | Error) => void;
  private over = false;
  /** `Location` of our peer on the gateway, for DELETE. */
  private location: string | undefined;

  private constructor(
    private readonly pc: RTCPeerConnection,
    private readonly endpoint: string,
    token: string | undefined,
    mic: MediaStreamTrack | undefined,
    private readonly opts: RtcOptions,
  ) {
    this.closed = new Promise<TransportCloseInfo>((resolve, reject) => {
      this.settle = (r) => (r instanceof Error ? reject(r) : resolve(r));
    });
    this.closed.catch(() => undefined);
    this.gw = pc.createDataChannel(Label.GATEWAY, { protocol: DC_PROTOCOL, ordered: true });
    this.dgram = pc.createDataChannel(Label.DATAGRAM, { protocol: DC_PROTOCOL, ordered: false, maxRetransmits: 0 });
    this.dgram.binaryType = "arraybuffer";
    this.audio = pc.addTransceiver(mic ?? "audio", { direction: "sendrecv", streams: [] });
    pc.addEventListener("track", (e) => this.remoteStream.addTrack(e.track));
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") this.end(new Error(`the WebRTC connection ${pc.connectionState}`));
    });
    pc.addEventListener("datachannel", (e) => this.accept(e.channel));
    this.gw.addEventListener("message", (e) => this.gatewayMessage(e.data));
    this.gw.addEventListener("close", () => this.end(new Error("the relay's gateway closed the connection")));
    this.incomingUnidirectionalStreams = new ReadableStream({ start: (c) => void (this.uni = c) });
    this.incomingBidirectionalStreams = new ReadableStream({ start: (c) => void (this.bidi = c) });
    const readable = new ReadableStream<Uint8Array>({ start: (c) => void (this.dgramIn = c) });
    this.dgram.addEventListener("message", (e) => {
      if (e.data instanceof ArrayBuffer && !this.over) this.dgramIn.enqueue(new Uint8Array(e.data));
    });
    const writable = new WritableStream<Uint8Array>({
      write: (d) => {
        if (this.dgram.readyState === "open" && this.dgram.bufferedAmount <= DATAGRAM_BUFFER) this.dgram.send(d as Uint8Array<ArrayBuffer>);
      },
    });
    this.datagrams = { readable, writable };
    this.ready = this.negotiate(token);
    this.ready.catch(() => this.close({ closeCode: 0, reason: "setup failed" }));
  }

  /**
   * Opens a PeerConnection to the gateway of the relay at `relayHttpUrl`
   * (the relay's page origin); `ready` settles once `moq-gw` is open. The
   * microphone track, when given, is sent as RTP from the start.
   */
  static open(relayHttpUrl: string, token: string | undefined, micTrack?: MediaStreamTrack, opts: RtcOptions = {}): RtcTransport {
    const pc = new RTCPeerConnection({ iceServers: opts.iceServers ?? [], bundlePolicy: "max-bundle" });
    return new RtcTransport(pc, gatewayUrl(relayHttpUrl), token, micTrack, opts);
  }

  /** Offer, POST /webrtc, answer, then wait for `moq-gw`. */
  private async negotiate(token: string | undefined): Promise<void> {
    const headers: Record<string, string> = { "Content-Type": "application/sdp" };
    if (token) headers["Authorization"] = `Bearer ${token}`;
    // The relay's STUN/TURN servers (GET /webrtc), before gathering starts at setLocalDescription.
    if (!this.opts.iceServers) {
      const iceServers = await fetchIceServers(this.endpoint, token, this.opts.fetch ?? fetch);
      if (iceServers.length > 0) this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
    }
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    const r = await (this.opts.fetch ?? fetch)(this.endpoint, { method: "POST", headers, body: this.pc.localDescription?.sdp ?? offer.sdp ?? "", cache: "no-store" });
    const body = await r.text();
    if (r.status === 404 || r.status === 405 || r.status === 501) throw new GatewayMissing(r.status);
    // The token refused: as the session's UNAUTHORIZED at SETUP, so the phone signs out rather than retrying.
    if (r.status === 401 || r.status === 403) {
      const reason = body.trim().split("\n")[0] || "the relay refused the token";
      // The gateway's line names an expired token ("access token refused: token expired"): sign in again, as EXPIRED_AUTH_TOKEN says.
      throw new SessionClosed({ code: /\bexpired\b/i.test(reason) ? SessionError.EXPIRED_AUTH_TOKEN : SessionError.UNAUTHORIZED, reason });
    }
    if (r.status !== 201 && r.status !== 200) throw new OfferRefused(r.status, body.trim().split("\n")[0]?.slice(0, 200) ?? "");
    if (!/^v=0/.test(body.trimStart())) throw new OfferRefused(r.status, "the answer is not SDP");
    const loc = r.headers.get("Location");
    if (loc) this.location = new URL(loc, this.endpoint).href;
    await this.pc.setRemoteDescription({ type: "answer", sdp: body });
    await whenOpen(this.gw, GATEWAY_OPEN_MS);
  }

  // -------------------------------------------------------------- streams --

  async createUnidirectionalStream(_options?: StreamOptions): Promise<WritableStream<Uint8Array>> {
    const s = await this.openStream(Label.UNI);
    return s.writable!;
  }

  async createBidirectionalStream(_options?: StreamOptions): Promise<BidiStream> {
    return (await this.openStream(Label.BIDI)).bidi;
  }

  private async openStream(label: string): Promise<DcStream> {
    return openStreamChannel(
      () => {
        if (this.over) throw new Error("the session is closed");
        return this.pc.createDataChannel(label, { protocol: DC_PROTOCOL, ordered: true });
      },
      { violation: (e) => this.violation(e) },
      STREAM_OPEN_MS,
    );
  }

  /** A channel the gateway opened: one MoQ stream, or garbage (closed). */
  private accept(ch: RTCDataChannel): void {
    if (this.over || ch.protocol !== DC_PROTOCOL || (ch.label !== Label.UNI && ch.label !== Label.BIDI)) {
      ch.close();
      return;
    }
    const s = new DcStream(ch, false, { violation: (e) => this.violation(e) });
    if (ch.label === Label.UNI) this.uni.enqueue(s.readable!);
    else this.bidi.enqueue(s.bidi);
  }

  private violation(e: ChannelViolation): void {
    console.warn("WebRTC gateway broke moq-dc/1:", e.message);
    this.close({ closeCode: SessionError.PROTOCOL_VIOLATION, reason: e.message });
  }

  // -------------------------------------------------------------- moq-gw --

  private gatewayMessage(data: unknown): void {
    const m = typeof data === "string" ? parseGatewayMessage(data) : undefined;
    if (m?.t === "close") return this.end({ closeCode: m.code, reason: m.reason });
    // audio-out / audio-in are ours to send; from the gateway they are well-formed and mean nothing.
    if (!m) this.close({ closeCode: SessionError.PROTOCOL_VIOLATION, reason: "malformed message on moq-gw" });
  }

  private sendGateway(m: GatewayMessage): void {
    if (this.gw.readyState === "open") this.gw.send(formatGatewayMessage(m));
  }

  audioOut(alias: number | null, priority: number): void {
    this.sendGateway({ t: "audio-out", alias, priority });
  }

  audioIn(alias: number | null): void {
    this.sendGateway({ t: "audio-in", alias });
  }

  async sendTrack(track: MediaStreamTrack | null): Promise<void> {
    if (this.over) return;
    // No renegotiation: the transceiver was offered sendrecv with or without a track.
    await this.audio.sender.replaceTrack(track);
  }

  // -------------------------------------------------------------- closing --

  /** Closes the session: tells the gateway (§3.5 code and reason), then ends the connection. */
  close(info: TransportCloseInfo = {}): void {
    if (this.over) return;
    const code = info.closeCode ?? 0;
    const reason = info.reason ?? "";
    this.sendGateway({ t: "close", code, reason });
    this.end({ closeCode: code, reason }, CLOSE_LINGER_MS);
  }

  private end(result: TransportCloseInfo | Error, lingerMs = 0): void {
    if (this.over) return;
    this.over = true;
    this.settle(result);
    for (const c of [this.uni, this.bidi, this.dgramIn]) {
      try {
        c.close();
      } catch {
        /* already closed */
      }
    }
    const loc = this.location;
    setTimeout(() => {
      this.pc.close();
      if (loc) void (this.opts.fetch ?? fetch)(loc, { method: "DELETE", keepalive: true }).catch(() => undefined);
    }, lingerMs);
  }
}
