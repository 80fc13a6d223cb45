/**
 * What a {@link MoqSession} needs from the connection under it: exactly the
 * part of WebTransport that `session.ts` and `request.ts` use, so a browser
 * `WebTransport` satisfies it as it is, and the WebRTC fallback
 * (`rtc.ts`: MoQ streams over RTCDataChannels to the relay's gateway,
 * docs/design/webrtc.md §2.3 and §4, protocol "moq-dc/1") can stand in for it.
 *
 * Streams are WHATWG streams of bytes either way. A stream error carries the
 * application's code as `streamErrorCode` (WebTransport's
 * `WebTransportError`; {@link streamError} on the WebRTC path).
 */

/** Which kind of connection carries the session. */
export type TransportKind = "webtransport" | "webrtc";

/** How a transport ended: the peer's session close code (§3.5) and reason, when it sent one. */
export interface TransportCloseInfo {
  closeCode?: number;
  reason?: string;
}

/** A bidirectional stream: the peer's bytes and ours. */
export interface BidiStream {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
}

/** Options of a stream we open; `sendOrder` is a hint (higher goes first) that a transport may ignore. */
export interface StreamOptions {
  sendOrder?: number;
}

/** The datagram side: what arrives, and a writable for what we send (`createWritable` where the browser has it). */
export interface DatagramDuplex {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable?: WritableStream<Uint8Array>;
  createWritable?(): WritableStream<Uint8Array>;
}

/** The subset of WebTransport a MoQ session uses; a `WebTransport` is one. */
export interface StreamTransport {
  /** Resolves once streams can be opened; rejects when the connection cannot be made. */
  readonly ready: Promise<unknown>;
  /** Resolves (with the close code, when the peer sent one) or rejects when the connection is over. */
  readonly closed: Promise<TransportCloseInfo>;
  close(info?: TransportCloseInfo): void;
  createUnidirectionalStream(options?: StreamOptions): Promise<WritableStream<Uint8Array>>;
  createBidirectionalStream(options?: StreamOptions): Promise<BidiStream>;
  readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;
  readonly incomingBidirectionalStreams: ReadableStream<BidiStream>;
  readonly datagrams: DatagramDuplex;
}

/**
 * Audio over RTP (WebRTC only, design §3): the gateway turns the microphone
 * track's RTP into the OBJECT_DATAGRAMs of our `audio` track, and the
 * datagrams of one subscription into the RTP of {@link remoteStream}.
 */
export interface RtpAudio {
  /** Our published audio track's alias (from our SUBSCRIBE_OK), or `null` to stop (hold, call over). */
  audioOut(alias: number | null, priority: number): void;
  /** The alias of the peer's audio subscription to play, or `null` to stop. */
  audioIn(alias: number | null): void;
  /** Puts `track` (the microphone) on the audio sender, or nothing (`null`: no RTP). */
  sendTrack(track: MediaStreamTrack | null): Promise<void>;
  /** What the gateway sends us: the peer's audio. */
  readonly remoteStream: MediaStream;
}

/** A connection a MoQ session runs over. */
export interface MoqTransport extends StreamTransport {
  readonly kind: TransportKind;
  /**
   * The subprotocol the server chose from those offered (a browser
   * WebTransport's `protocol`, which this TypeScript's DOM typings lack):
   * `moqt-18` or `moqt-22`, empty or absent when none was negotiated
   * (docs/DRAFT22.md §2).
   */
  readonly protocol?: string;
  /** Present when audio rides RTP beside the session (WebRTC). */
  readonly rtp?: RtpAudio;
}

/** A browser WebTransport as a {@link MoqTransport} (the same object, labelled). */
export function fromWebTransport(wt: WebTransport): MoqTransport {
  return Object.assign(wt, { kind: "webtransport" as const });
}

/**
 * An error carrying a stream error code, as `WebTransportError` does. Not a
 * `WebTransportError` itself: Chromium's constructor (148) takes one init
 * dictionary, not the spec's `(message, options)` — it throws TypeError on
 * the spec's form — and clamps the code to 0–255 (an octet).
 */
export function streamError(message: string, code: number): Error & { streamErrorCode: number } {
  return Object.assign(new Error(message), { name: "StreamError", streamErrorCode: code });
}

/** The stream error code a reset or STOP_SENDING carried, if any. */
export function streamErrorCode(e: unknown): number | undefined {
  const code = typeof e === "object" && e !== null ? (e as { streamErrorCode?: unknown }).streamErrorCode : undefined;
  return typeof code === "number" && Number.isInteger(code) && code >= 0 ? code : undefined;
}

// A browser WebTransport is a StreamTransport as it is (checked by the compiler, no code).
export type WebTransportIsStreamTransport = WebTransport extends StreamTransport ? true : never;
const _webTransportFits: WebTransportIsStreamTransport = true;
void _webTransportFits;
