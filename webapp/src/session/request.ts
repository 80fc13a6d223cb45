/**
 * Bidirectional request streams (draft-ietf-moq-transport-18 §3.3): every
 * request (SUBSCRIBE, PUBLISH_NAMESPACE, SUBSCRIBE_NAMESPACE, FETCH, …)
 * opens its own bidi stream and lives as long as it stays open. Responses
 * and follow-ups (REQUEST_OK, SUBSCRIBE_OK, NAMESPACE, PUBLISH_DONE,
 * REQUEST_UPDATE…) come on the same stream, without a Request ID. There
 * is no UNSUBSCRIBE: at draft-18 closing the stream (FIN) cancels the
 * request (§3.3.2); at draft-22 a FIN only means "nothing more from this
 * side" and only a reset or STOP_SENDING cancels (docs/DRAFT22.md §8), so
 * owners cancel with {@link RequestStream.cancel}, which does what the
 * stream's draft needs, and learn of the peer's cancel from
 * {@link RequestStream.cancelled}.
 *
 * {@link RequestStream} wraps one such stream for either side: it writes
 * framed messages and queues what the peer sends until the owner asks for
 * it with {@link RequestStream.next}.
 */

import { decodeRequest, decodeResponse, encodeMessage, FrameReader, StreamError, type ControlMessage, type RequestMessage, type ResponseMessage, type Version } from "../moq/control.js";
import type { U64 } from "../moq/varint.js";
import { streamError, type BidiStream } from "./transport.js";

/** A bidi stream as WebTransport (or the WebRTC fallback) hands it out. */
export type { BidiStream };

/** Thrown by {@link RequestStream.next} when no message came in time. */
export class RequestTimeout extends Error {
  constructor(what: string) {
    super(`no ${what} from the relay in time`);
    this.name = "RequestTimeout";
  }
}

export class RequestStream {
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly queue: ResponseMessage[] = [];
  private wake: (() => void) | undefined;
  private over = false;
  private closedByUs = false;
  /** Why the peer's side ended (FIN = "end", a reset, or a malformed message). */
  endReason: string | undefined;
  /** Resolves when the peer's side of the stream has ended (FIN or reset). */
  readonly ended: Promise<void>;
  /** The first message of a stream the peer opened: its request (§3.3). */
  readonly request: Promise<RequestMessage | undefined>;
  /**
   * Resolves when the peer cancelled the request. At draft-18 that is the
   * end of its side, FIN or reset (§3.3.2), as {@link ended}. At draft-22 a
   * FIN never cancels: only a reset of its side, or STOP_SENDING on ours
   * (our writes then fail), does (docs/DRAFT22.md §8).
   */
  readonly cancelled: Promise<void>;

  /**
   * @param requestId our Request ID for a stream we opened; `undefined` for
   *   one the peer opened (its request carries the ID).
   * @param onError told of every REQUEST_ERROR the peer sends on this stream
   *   (before the owner reads it), e.g. for EXPIRED_AUTH_TOKEN on any request.
   * @param version the session's draft: how messages are coded, and what
   *   cancels a request (docs/DRAFT22.md §4, §8).
   */
  constructor(
    readonly requestId: U64 | undefined,
    stream: BidiStream,
    incoming = false,
    private readonly onError?: (code: number, reason: string) => void,
    readonly version: Version = 18,
  ) {
    this.writer = stream.writable.getWriter();
    this.writer.closed.catch(() => undefined);
    this.reader = stream.readable.getReader();
    let gotRequest!: (m: RequestMessage | undefined) => void;
    this.request = new Promise((r) => (gotRequest = r));
    if (!incoming) gotRequest(undefined);
    this.ended = this.pump(incoming, gotRequest);
    if (version === 18) {
      this.cancelled = this.ended;
    } else {
      const never = new Promise<void>(() => undefined);
      // Our writable errors on STOP_SENDING (and when we reset it ourselves); a clean close of ours cancels nothing.
      const stopped = this.writer.closed.then(() => never, () => undefined);
      const reset = this.ended.then(() => (this.endReason === "end" ? never : undefined));
      this.cancelled = Promise.race([stopped, reset]);
    }
  }

  private async pump(incoming: boolean, gotRequest: (m: RequestMessage | undefined) => void): Promise<void> {
    const frames = new FrameReader();
    let first = incoming;
    try {
      for (;;) {
        const { done, value } = await this.reader.read();
        if (done) {
          frames.finish();
          this.endReason = "end";
          break;
        }
        frames.push(value);
        for (let f = frames.next(); f !== undefined; f = frames.next()) {
          if (first) {
            first = false;
            gotRequest(decodeRequest(f, this.version));
            continue;
          }
          const m = decodeResponse(f, this.version);
          // Draft-22's PUBLISH_STATE_NOTIFY is never answered, and nothing here acts on it (docs/DRAFT22.md §10.2).
          if (m.type === "PUBLISH_STATE_NOTIFY") continue;
          this.queue.push(m);
          this.notify();
          if (m.type === "REQUEST_ERROR") this.onError?.(Number(m.code), m.reason);
        }
      }
    } catch (e) {
      this.endReason = this.closedByUs ? "closed" : e instanceof Error ? e.message : String(e);
    } finally {
      this.over = true;
      gotRequest(undefined);
      this.notify();
      this.reader.releaseLock();
    }
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** True once the peer's side ended and every queued message was taken. */
  get done(): boolean {
    return this.over && this.queue.length === 0;
  }

  /**
   * The next message from the peer, or `undefined` when its side ended.
   * With `timeoutMs`, throws {@link RequestTimeout} naming `what`.
   */
  async next(timeoutMs?: number, what = "response"): Promise<ResponseMessage | undefined> {
    const deadline = timeoutMs === undefined ? undefined : performance.now() + timeoutMs;
    for (;;) {
      const m = this.queue.shift();
      if (m !== undefined) return m;
      if (this.over) return undefined;
      const arrived = new Promise<void>((r) => (this.wake = r));
      if (deadline === undefined) {
        await arrived;
        continue;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new RequestTimeout(what);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<void>((r) => (timer = setTimeout(r, left)));
      await Promise.race([arrived, timedOut]);
      clearTimeout(timer);
    }
  }

  /** Writes one framed message, coded as the stream's draft has it. */
  async send(m: ControlMessage): Promise<void> {
    await this.writer.write(encodeMessage(m, this.version));
  }

  /**
   * Cancels a request we made (an unsubscribe, a withdrawn
   * PUBLISH_NAMESPACE, an abandoned FETCH). At draft-18 a FIN does it
   * (§3.3.2); at draft-22 a FIN cancels nothing, so our side is reset and
   * the peer's stopped with `code` (docs/DRAFT22.md §8).
   */
  cancel(code: number = StreamError.CANCELLED): void {
    if (this.version === 22) this.abort(code);
    else this.close();
  }

  /**
   * Ends our side (FIN): ends a request we answered, or one we made that is
   * complete. At draft-18 it also cancels one we made (§3.3.2); to cancel
   * at either draft, use {@link cancel}.
   */
  close(): void {
    this.closedByUs = true;
    this.writer.close().catch(() => undefined);
  }

  /** Resets our side and stops the peer's (STOP_SENDING), for an abandoned request. */
  abort(code = 0x1): void {
    this.closedByUs = true;
    const reason = streamError("request abandoned", code);
    this.writer.abort(reason).catch(() => undefined);
    this.reader.cancel(reason).catch(() => undefined);
  }
}
