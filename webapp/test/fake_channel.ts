// An in-memory RTCDataChannel pair for the moq-dc/1 tests: reliable and
// ordered, delivery on a later task, bufferedAmount counting what the peer
// has not taken yet (deliveries can be held to build up backpressure), and
// close as an SCTP stream reset (queued messages first, then both sides'
// close events).
import type { DataChannelLike } from "../src/session/rtc_stream.js";

type Listener = (ev: MessageEvent) => void;

export class FakeChannel implements DataChannelLike {
  readyState: RTCDataChannelState = "connecting";
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  binaryType: BinaryType = "blob";
  peer!: FakeChannel;
  /** Everything sent, in order (binary as copies), for assertions. */
  readonly sent: Array<string | Uint8Array> = [];
  /** While true, sent messages wait in `queue` (the peer is not reading). */
  hold = false;
  private readonly queue: Array<string | Uint8Array> = [];
  private readonly listeners = new Map<string, Listener[]>();
  private flushing = false;

  constructor(
    readonly label: string,
    readonly protocol = "moqt-18",
  ) {}

  addEventListener(type: string, listener: Listener): void {
    const l = this.listeners.get(type) ?? [];
    l.push(listener);
    this.listeners.set(type, l);
  }

  emit(type: string, ev?: MessageEvent): void {
    for (const l of this.listeners.get(type) ?? []) l(ev as MessageEvent);
  }

  send(data: string | ArrayBufferView): void {
    if (this.readyState !== "open") throw new Error(`InvalidStateError: send on a ${this.readyState} channel`);
    const m = typeof data === "string" ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    this.sent.push(m);
    this.queue.push(m);
    this.bufferedAmount += typeof m === "string" ? new TextEncoder().encode(m).length : m.length;
    this.schedule();
  }

  /** Lets held messages through. */
  release(): void {
    this.hold = false;
    this.schedule();
  }

  close(): void {
    if (this.readyState === "closing" || this.readyState === "closed") return;
    this.readyState = "closing";
    this.peer.readyState = this.peer.readyState === "closed" ? "closed" : "closing";
    this.schedule();
  }

  private schedule(): void {
    if (this.flushing) return;
    this.flushing = true;
    setTimeout(() => this.flush(), 0);
  }

  private flush(): void {
    this.flushing = false;
    while (!this.hold && this.queue.length > 0) {
      const m = this.queue.shift()!;
      const before = this.bufferedAmount;
      this.bufferedAmount -= typeof m === "string" ? new TextEncoder().encode(m).length : m.length;
      const data = typeof m === "string" ? m : this.peer.binaryType === "arraybuffer" ? m.slice().buffer : m.slice();
      this.peer.emit("message", { data } as MessageEvent);
      if (before > this.bufferedAmountLowThreshold && this.bufferedAmount <= this.bufferedAmountLowThreshold) this.emit("bufferedamountlow");
    }
    if (this.queue.length === 0 && (this.readyState === "closing" || this.peer.readyState === "closing") && this.readyState !== "closed") {
      // A reset delivers what was sent before it, then both ends close.
      if (this.peer.queue.length > 0 && !this.peer.hold) return this.peer.schedule();
      this.readyState = "closed";
      this.peer.readyState = "closed";
      this.emit("close");
      this.peer.emit("close");
    }
  }
}

/** Two connected channels with one label: [ours, theirs], still connecting; `open` opens both. */
export function channelPair(label: string, protocol = "moqt-18"): { a: FakeChannel; b: FakeChannel; open: () => void } {
  const a = new FakeChannel(label, protocol);
  const b = new FakeChannel(label, protocol);
  a.peer = b;
  b.peer = a;
  return {
    a,
    b,
    open: () => {
      a.readyState = "open";
      b.readyState = "open";
      a.emit("open");
      b.emit("open");
    },
  };
}

/** Runs pending timers and microtasks a few times over. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 0));
}
