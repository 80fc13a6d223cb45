/**
 * One MoQ stream over one RTCDataChannel — protocol "moq-dc/1"
 * (docs/design/webrtc.md §2.3), the browser half of the relay's WebRTC
 * gateway (`relay/src/webrtc/streams.rs` is the other):
 *
 * - label `moq-uni` (a unidirectional stream) or `moq-bi` (bidirectional),
 *   channel protocol `moqt-18`, reliable and ordered, opened by whichever
 *   side opens the stream;
 * - a **binary** message is the next bytes of the sender's direction, at
 *   most {@link MAX_PIECE} (16 KiB) each;
 * - a **text** message is a signal: `fin` and `reset <code>` end the
 *   sender's direction, `stop <code>` (from the receiver) asks the sender to
 *   stop, who then resets with that code (QUIC's STOP_SENDING);
 * - on `moq-uni` only the opener sends bytes / `fin` / `reset`, only the
 *   acceptor `stop`;
 * - a side closes the channel once its own direction ended and it saw the
 *   peer's end (or stopped it: what crosses the `stop` is dropped); a channel
 *   that closes while a direction is still open counts as `reset 0` for it;
 * - garbage (an unknown signal, bytes after the end, a signal from the wrong
 *   side) is a protocol violation of the whole session.
 *
 * The result looks like a WebTransport stream: a `WritableStream` whose
 * `close()` sends `fin` and `abort(e)` sends `reset e.streamErrorCode`, a
 * `ReadableStream` that closes on `fin`, errors with `{streamErrorCode}` on
 * `reset`, and sends `stop` when cancelled. Writes wait while more than
 * {@link HIGH_WATER} (1 MiB) is buffered in the channel, until
 * `bufferedamountlow`.
 */

import { streamError, streamErrorCode, type BidiStream } from "./transport.js";

/** The channel protocol of every moq-dc/1 channel. */
export const DC_PROTOCOL = "moqt-18";
/** Channel labels (§2.3). */
export const Label = { GATEWAY: "moq-gw", DATAGRAM: "moq-dgram", UNI: "moq-uni", BIDI: "moq-bi" } as const;
/** The largest binary message we send on a stream channel. */
export const MAX_PIECE = 16 * 1024;
/** Writes wait while the channel buffers more than this. */
export const HIGH_WATER = 1024 * 1024;
/** The largest stream error code (WebTransport's are 32-bit). */
const MAX_CODE = 0xffff_ffff;

/** The part of an RTCDataChannel this uses (an `RTCDataChannel` is one; tests use a fake). */
export interface DataChannelLike {
  readonly label: string;
  readonly protocol: string;
  readonly readyState: RTCDataChannelState;
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  binaryType: BinaryType;
  send(data: string): void;
  send(data: ArrayBufferView<ArrayBuffer>): void;
  close(): void;
  addEventListener(type: "open" | "close" | "bufferedamountlow" | "error", listener: () => void): void;
  addEventListener(type: "message", listener: (ev: MessageEvent) => void): void;
}

/** A signal: `fin`, `reset <code>` or `stop <code>`. */
export type Signal = { kind: "fin" } | { kind: "reset" | "stop"; code: number };

/** Parses a text message; `undefined` when it is not a signal (a protocol violation). */
export function parseSignal(text: string): Signal | undefined {
  if (text === "fin") return { kind: "fin" };
  const m = /^(reset|stop) (0|[1-9][0-9]{0,9})$/.exec(text);
  if (!m) return undefined;
  const code = Number(m[2]);
  return code <= MAX_CODE ? { kind: m[1] as "reset" | "stop", code } : undefined;
}

export function formatSignal(s: Signal): string {
  return s.kind === "fin" ? "fin" : `${s.kind} ${s.code}`;
}

/** Splits bytes into the binary messages that carry them (none for empty bytes). */
export function pieces(bytes: Uint8Array, max = MAX_PIECE): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += max) out.push(bytes.subarray(at, Math.min(bytes.length, at + max)));
  return out;
}

/** A moq-dc/1 protocol violation: the session must close with PROTOCOL_VIOLATION. */
export class ChannelViolation extends Error {
  constructor(
    readonly label: string,
    what: string,
  ) {
    super(`${label} channel: ${what}`);
    this.name = "ChannelViolation";
  }
}

export interface DcStreamOptions {
  /** The peer broke the protocol on this channel: close the session (PROTOCOL_VIOLATION). */
  violation?: (e: ChannelViolation) => void;
}

/** A direction is open, ended (fin or reset), or — ours to receive — stopped: what still arrives is dropped. */
type Direction = "open" | "ended" | "stopped";

/**
 * A MoQ stream on a `moq-uni` or `moq-bi` channel. `opener` says whether
 * we opened it (a `moq-uni` we opened only sends, one the peer opened only
 * receives).
 */
export class DcStream {
  /** Our direction (absent on a `moq-uni` the peer opened). */
  readonly writable: WritableStream<Uint8Array> | undefined;
  /** The peer's direction (absent on a `moq-uni` we opened). */
  readonly readable: ReadableStream<Uint8Array> | undefined;
  private send: Direction | undefined;
  private recv: Direction | undefined;
  private readController: ReadableStreamDefaultController<Uint8Array> | undefined;
  private writeController: WritableStreamDefaultController | undefined;
  /** Sends made before the channel opened (an acceptor's early `stop`). */
  private early: Array<string | Uint8Array> = [];
  private wakeWriter: (() => void) | undefined;
  /** We closed the channel (or it closed). */
  private closed = false;
  /** A violation or the channel's close ended everything: later messages are ignored. */
  private dead = false;

  constructor(
    readonly channel: DataChannelLike,
    readonly opener: boolean,
    private readonly opts: DcStreamOptions = {},
  ) {
    const uni = channel.label === Label.UNI;
    if (!uni && channel.label !== Label.BIDI) throw new Error(`not a stream channel: ${channel.label}`);
    channel.binaryType = "arraybuffer";
    channel.bufferedAmountLowThreshold = HIGH_WATER;
    channel.addEventListener("message", (ev) => this.message(ev.data));
    channel.addEventListener("open", () => this.opened());
    channel.addEventListener("close", () => this.channelClosed());
    channel.addEventListener("bufferedamountlow", () => this.wake());
    if (!uni || opener) {
      this.send = "open";
      this.writable = new WritableStream<Uint8Array>({
        start: (c) => {
          this.writeController = c;
        },
        write: (chunk) => this.write(chunk),
        close: () => this.endSend({ kind: "fin" }),
        abort: (reason) => this.endSend({ kind: "reset", code: streamErrorCode(reason) ?? 0 }),
      });
    }
    if (!uni || !opener) {
      this.recv = "open";
      this.readable = new ReadableStream<Uint8Array>({
        start: (c) => {
          this.readController = c;
        },
        cancel: (reason) => this.stop(streamErrorCode(reason) ?? 0),
      });
    }
  }

  /** The stream as WebTransport's bidi pair (a `moq-bi` channel only). */
  get bidi(): BidiStream {
    if (!this.readable || !this.writable) throw new Error("not a bidirectional stream");
    return { readable: this.readable, writable: this.writable };
  }

  // ------------------------------------------------------------- sending --

  private async write(chunk: Uint8Array): Promise<void> {
    for (const piece of pieces(chunk)) {
      await this.room();
      if (this.send !== "open") throw streamError("stream reset", 0);
      this.post(piece);
    }
  }

  /** Waits until the channel is open and buffers at most {@link HIGH_WATER}. */
  private async room(): Promise<void> {
    while (!this.closed && this.send === "open" && (this.channel.readyState === "connecting" || this.channel.bufferedAmount > HIGH_WATER)) {
      await new Promise<void>((r) => (this.wakeWriter = r));
    }
    if (this.closed || this.channel.readyState !== "open") throw streamError("data channel closed", 0);
  }

  private wake(): void {
    const w = this.wakeWriter;
    this.wakeWriter = undefined;
    w?.();
  }

  private endSend(s: Signal): void {
    if (this.send !== "open") return;
    this.send = "ended";
    this.post(formatSignal(s));
    this.wake();
    this.maybeClose();
  }

  /** Sends now, or once the channel opens; dropped when it is closing. */
  private post(m: string | Uint8Array): void {
    if (this.channel.readyState === "connecting") {
      this.early.push(m.slice());
      return;
    }
    if (this.channel.readyState !== "open") return;
    try {
      if (typeof m === "string") this.channel.send(m);
      else this.channel.send(m as Uint8Array<ArrayBuffer>);
    } catch {
      /* closing under us: its close event ends the stream */
    }
  }

  private opened(): void {
    const early = this.early;
    this.early = [];
    for (const m of early) this.post(m);
    this.wake();
    this.maybeClose();
  }

  // ----------------------------------------------------------- receiving --

  /** Cancelling our reader: ask the peer to stop; its direction is over for us (what still comes is dropped). */
  private stop(code: number): void {
    if (this.recv !== "open") return;
    this.recv = "stopped";
    this.post(formatSignal({ kind: "stop", code }));
    this.maybeClose();
  }

  private message(data: unknown): void {
    // After our close() a browser drops what arrives; until then the peer is held to the protocol.
    if (this.dead || this.channel.readyState === "closed") return;
    if (typeof data === "string") return this.signal(data);
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() : undefined;
    if (!bytes) return this.violate("a message that is neither text nor binary");
    if (this.recv === undefined) return this.violate("bytes from the acceptor of a moq-uni stream");
    if (this.recv === "ended") return this.violate("bytes after the end of the stream");
    if (bytes.length > MAX_PIECE) return this.violate(`a message of ${bytes.length} bytes (at most ${MAX_PIECE})`);
    if (this.recv === "stopped" || bytes.length === 0) return;
    this.readController?.enqueue(bytes);
  }

  private signal(text: string): void {
    const s = parseSignal(text);
    if (!s) return this.violate(`not a signal: ${JSON.stringify(text.slice(0, 40))}`);
    if (s.kind === "stop") {
      if (this.send === undefined) return this.violate("stop from the opener of a moq-uni stream");
      if (this.send === "ended") return; // crossed our fin or reset
      // As QUIC does on STOP_SENDING: our writes fail and we reset with the peer's code.
      this.writeController?.error(streamError("the peer stopped reading", s.code));
      this.endSend({ kind: "reset", code: s.code });
      return;
    }
    if (this.recv === undefined) return this.violate(`${s.kind} from the acceptor of a moq-uni stream`);
    if (this.recv === "ended") return this.violate(`${s.kind} after the end of the stream`);
    if (this.recv === "stopped") return; // the answer to our stop, or crossing it
    this.recv = "ended";
    try {
      if (s.kind === "fin") this.readController?.close();
      else this.readController?.error(streamError("the peer reset the stream", s.code));
    } catch {
      /* the reader already cancelled */
    }
    this.maybeClose();
  }

  private violate(what: string): void {
    const e = new ChannelViolation(this.channel.label, what);
    this.dead = true;
    this.opts.violation?.(e);
    this.fail(streamError(e.message, 0));
  }

  // ------------------------------------------------------------- closing --

  /** Closes the channel once our direction ended and we saw the peer's end. */
  private maybeClose(): void {
    if (this.closed || this.send === "open" || this.recv === "open" || this.channel.readyState !== "open") return;
    this.closed = true;
    this.channel.close();
  }

  /** The channel closed: a direction still open counts as `reset 0`. */
  private channelClosed(): void {
    this.fail(streamError("the data channel closed", 0));
  }

  /** Ends whatever is still open with `e` and closes the channel. */
  private fail(e: Error): void {
    this.dead = true;
    if (this.recv === "open") {
      this.recv = "ended";
      try {
        this.readController?.error(e);
      } catch {
        /* already errored */
      }
    }
    if (this.send === "open") {
      this.send = "ended";
      this.writeController?.error(e);
    }
    this.early = [];
    this.wake();
    if (!this.closed) {
      this.closed = true;
      if (this.channel.readyState === "open" || this.channel.readyState === "connecting") this.channel.close();
    }
  }
}

/** What {@link whenOpen} rejects with when the channel closed before it opened (not a timeout). */
export class ChannelClosedBeforeOpen extends Error {
  constructor(label: string) {
    super(`the ${label} channel closed`);
    this.name = "ChannelClosedBeforeOpen";
  }
}

/** Resolves once `channel` is open; rejects if it closes first ({@link ChannelClosedBeforeOpen}) or `timeoutMs` passes. */
export function whenOpen(channel: DataChannelLike, timeoutMs: number): Promise<void> {
  if (channel.readyState === "open") return Promise.resolve();
  if (channel.readyState !== "connecting") return Promise.reject(new ChannelClosedBeforeOpen(channel.label));
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the ${channel.label} channel did not open in time`)), timeoutMs);
    channel.addEventListener("open", () => {
      clearTimeout(timer);
      resolve();
    });
    channel.addEventListener("close", () => {
      clearTimeout(timer);
      reject(new ChannelClosedBeforeOpen(channel.label));
    });
  });
}

/** How many channels {@link openStreamChannel} tries when the gateway closes them before they open. */
export const STREAM_OPEN_ATTEMPTS = 4;

/**
 * Opens a stream we start on a channel made by `create`. A channel the
 * gateway closes before it opened carried nothing yet (we send only once it
 * is open), so the stream tries a new channel, up to
 * {@link STREAM_OPEN_ATTEMPTS} in all: the gateway's SCTP (str0m 0.24 on
 * sctp-proto 0.10) can refuse the DCEP OPEN of a stream id that Chromium
 * reuses while the id's last reset is still settling on its side ("Failed to
 * write DCEP ack … ErrStreamClosed"), and the call event on it was lost (seen
 * under load: a hold that never reached the peer). A channel that does not
 * open within `timeoutMs` is not retried.
 */
export async function openStreamChannel(create: () => DataChannelLike, opts: DcStreamOptions, timeoutMs: number): Promise<DcStream> {
  for (let attempt = 1; ; attempt++) {
    const ch = create();
    const s = new DcStream(ch, true, opts);
    try {
      await whenOpen(ch, timeoutMs);
      return s;
    } catch (e) {
      ch.close();
      if (!(e instanceof ChannelClosedBeforeOpen) || attempt >= STREAM_OPEN_ATTEMPTS) throw e;
      console.info(`the gateway closed a ${ch.label} channel before it opened; trying a new one (${attempt}/${STREAM_OPEN_ATTEMPTS})`);
    }
  }
}

// An RTCDataChannel is a DataChannelLike (checked by the compiler, no code).
export type RtcDataChannelFits = RTCDataChannel extends DataChannelLike ? true : never;
const _fits: RtcDataChannelFits = true;
void _fits;
