// The shared moq-dc/1 vectors (docs/vectors/datachannel.json, written with
// the relay's sans-IO relay/src/webrtc/streams.rs) run against the browser's
// stream adapter (src/session/rtc_stream.ts) and moq-gw codec (rtc.ts).
//
// The vectors model one side of a peer connection as one state machine. Here
// each moq-uni / moq-bi channel is a DcStream on a scripted channel, and this
// runner plays the rest: it turns inputs into peer messages and local stream
// calls, and what the adapter does into the vectors' outputs. Outputs of a
// step are compared as a set (the adapter's come through WHATWG stream
// promises, whose order is not the state machine's). Scenarios about what
// only the relay's side has — a transport that refuses sends (`full`), the
// receive budget, the peer-stream cap, datagrams, which channels a session
// accepts — are listed as skipped with the reason.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatGatewayMessage, parseGatewayMessage, type GatewayMessage } from "../src/session/rtc.js";
import { DcStream, type DataChannelLike } from "../src/session/rtc_stream.js";
import { streamError, streamErrorCode } from "../src/session/transport.js";
import { settle } from "./fake_channel.js";
import { readVectors } from "./helpers.js";

type Bytes = string | { fill: number; len: number };
interface Scenario {
  name: string;
  limits?: unknown;
  steps: { in: unknown[]; out: unknown[][] }[];
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function bytesOf(v: Bytes): Uint8Array {
  if (typeof v === "string") return Uint8Array.from(v.match(/../g) ?? [], (h) => parseInt(h, 16));
  return new Uint8Array(v.len).fill(v.fill);
}

/** A channel whose peer is the script: sends and closes become outputs. */
class ScriptedChannel implements DataChannelLike {
  readyState: RTCDataChannelState = "open";
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  binaryType: BinaryType = "arraybuffer";
  closedByUs = false;
  private readonly listeners = new Map<string, ((ev: MessageEvent) => void)[]>();

  readonly protocol = "moqt-18";

  constructor(
    readonly label: string,
    readonly id: number,
    private readonly run: Runner,
  ) {}

  addEventListener(type: string, l: (ev: MessageEvent) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), l]);
  }

  private emit(type: string, data?: unknown): void {
    for (const l of this.listeners.get(type) ?? []) l({ data } as MessageEvent);
  }

  send(data: string | ArrayBufferView): void {
    if (typeof data === "string") this.run.out(["send-text", this.id, data]);
    else this.run.out(["send", this.id, hex(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))]);
  }

  close(): void {
    if (this.closedByUs || this.readyState === "closed") return;
    this.closedByUs = true;
    this.readyState = "closing";
    if (!this.run.violated) this.run.out(["close", this.id]);
  }

  inject(data: string | Uint8Array): void {
    this.emit("message", typeof data === "string" ? data : data.slice().buffer);
  }

  peerClosed(): void {
    if (this.readyState === "closed") return;
    const mine = this.closedByUs;
    this.readyState = "closed";
    if (!mine && !this.run.violated) this.run.out(["closed", this.id]);
    this.emit("close");
  }
}

interface Chan {
  kind: "uni" | "bi" | "gw" | "dgram";
  ch?: ScriptedChannel;
  writer?: WritableStreamDefaultWriter<Uint8Array>;
  reader?: ReadableStreamDefaultReader<Uint8Array>;
  sendEnded: boolean;
  recvEnded: boolean;
  weReset: boolean;
  weStopped: boolean;
}

class Runner {
  readonly outputs: unknown[][] = [];
  readonly chans = new Map<number, Chan>();
  violated = false;

  out(o: unknown[]): void {
    this.outputs.push(o);
  }

  private violation(): void {
    if (this.violated) return;
    this.violated = true;
    this.out(["violation"]);
  }

  /** The state a local request on `id` meets, or undefined when it may go ahead. */
  private refuse(id: number, dir: "send" | "recv"): string | undefined {
    if (this.violated) return "closed";
    const c = this.chans.get(id);
    if (!c || (c.ch && (c.ch.closedByUs || c.ch.readyState === "closed"))) return "unknown";
    if (dir === "send" ? !c.writer : !c.reader) return "direction";
    if (dir === "send" ? c.sendEnded : c.recvEnded) return "ended";
    return undefined;
  }

  step(input: unknown[]): void {
    const [op, a, b, c, d] = input as [string, number, unknown, unknown, unknown];
    const chan = this.chans.get(a);
    switch (op) {
      case "open": {
        if (this.violated) return;
        const label = b as string;
        const kind = ({ "moq-uni": "uni", "moq-bi": "bi", "moq-gw": "gw", "moq-dgram": "dgram" } as const)[label]!;
        const entry: Chan = { kind, sendEnded: false, recvEnded: false, weReset: false, weStopped: false };
        this.chans.set(a, entry);
        this.out(["opened", a, kind, d]);
        void c;
        if (kind === "gw" || kind === "dgram") return;
        const ch = new ScriptedChannel(label, a, this);
        entry.ch = ch;
        const s = new DcStream(ch, d === "us", { violation: () => this.violation() });
        if (s.writable) {
          const w = s.writable.getWriter();
          entry.writer = w;
          w.closed.then(
            () => undefined,
            (e: unknown) => {
              if (!this.violated && !entry.weReset) this.out(["stopped", a, streamErrorCode(e)]);
              entry.sendEnded = true;
            },
          );
        }
        if (s.readable) {
          const r = s.readable.getReader();
          entry.reader = r;
          void (async () => {
            try {
              for (;;) {
                const { done, value } = await r.read();
                if (this.violated || entry.weStopped) return;
                if (done) {
                  entry.recvEnded = true;
                  return this.out(["fin", a]);
                }
                this.out(["data", a, hex(value)]);
              }
            } catch (e) {
              entry.recvEnded = true;
              if (!this.violated && !entry.weStopped) this.out(["reset", a, streamErrorCode(e)]);
            }
          })();
        }
        return;
      }
      case "binary":
      case "text": {
        if (this.violated || !chan) return;
        if (chan.kind === "gw") {
          const m = parseGatewayMessage(b as string);
          return m ? this.out(["gw", m]) : this.violation();
        }
        return chan.ch?.inject(op === "text" ? (b as string) : bytesOf(b as Bytes));
      }
      case "closed":
        return chan?.ch?.peerClosed();
      case "write":
      case "finish":
      case "reset": {
        const why = this.refuse(a, "send");
        if (why) return this.out(["error", why]);
        if (op === "write") return void chan!.writer!.write(bytesOf(b as Bytes)).catch(() => undefined);
        chan!.sendEnded = true;
        if (op === "finish") return void chan!.writer!.close().catch(() => undefined);
        chan!.weReset = true;
        return void chan!.writer!.abort(streamError("reset", b as number)).catch(() => undefined);
      }
      case "stop": {
        const why = this.refuse(a, "recv");
        if (why) return this.out(["error", why]);
        chan!.weStopped = true;
        chan!.recvEnded = true;
        return void chan!.reader!.cancel(streamError("stop", b as number)).catch(() => undefined);
      }
      case "datagram": {
        // What rtc.ts's datagram writable does: one message on moq-dgram, when there is one.
        const dg = [...this.chans.entries()].find(([, ch]) => ch.kind === "dgram");
        if (this.violated || !dg) return this.out(["error", this.violated ? "closed" : "unknown"]);
        return this.out(["send", dg[0], a as unknown as string]);
      }
      case "gw": {
        const gw = [...this.chans.entries()].find(([, ch]) => ch.kind === "gw");
        if (this.violated || !gw) return this.out(["error", this.violated ? "closed" : "unknown"]);
        return this.out(["send-text", gw[0], formatGatewayMessage(a as unknown as GatewayMessage)]);
      }
    }
    throw new Error(`unknown input ${op}`);
  }
}

/** Why this runner leaves a scenario to the relay's side, if it does. */
function notHere(s: Scenario): string | undefined {
  if (s.limits) return "limits (receive budget, peer-stream cap) are the gateway's";
  const kinds = new Map<number, string>();
  let gws = 0;
  for (const { in: i } of s.steps) {
    const [op, id, x, proto] = i as [string, number, unknown, unknown];
    if (["full", "writable", "consumed"].includes(op)) return `input ${op}: a transport that refuses sends and read accounting are the gateway's`;
    if (op === "open") {
      if (!["moq-uni", "moq-bi", "moq-gw", "moq-dgram"].includes(x as string) || proto !== "moqt-18") return "which channels a session accepts is rtc.ts's (not sans-IO)";
      if (x === "moq-gw" && ++gws > 1) return "which channels a session accepts is rtc.ts's (not sans-IO)";
      kinds.set(id, x as string);
    }
    if ((op === "binary" && ["moq-gw", "moq-dgram"].includes(kinds.get(id) ?? "")) || (op === "text" && kinds.get(id) === "moq-dgram")) return "the moq-gw / moq-dgram message kinds are rtc.ts's";
  }
  return undefined;
}

/** An output as compared: bytes as hex, a violation by its tag only. */
function norm(o: unknown[]): string {
  if (o[0] === "violation") return JSON.stringify(["violation"]);
  if (o[0] === "send" || o[0] === "data") return JSON.stringify([o[0], o[1], hex(bytesOf(o[2] as Bytes))]);
  if (o[0] === "gw") return JSON.stringify(["gw", JSON.parse(JSON.stringify(o[1]))]);
  return JSON.stringify(o);
}

let file: { max_message: number; scenarios: Scenario[] } | undefined;
try {
  file = readVectors("datachannel.json") as typeof file;
} catch {
  file = undefined;
}

describe("moq-dc/1 shared vectors (docs/vectors/datachannel.json)", () => {
  if (!file) {
    it("are not there yet (relay build-plan commit 4)", (t) => t.skip("docs/vectors/datachannel.json does not exist"));
    return;
  }
  it("use the piece size the adapter uses", () => assert.equal(file!.max_message, 16 * 1024));
  for (const s of file.scenarios) {
    const skip = notHere(s);
    it(s.name, { skip }, async () => {
      const run = new Runner();
      for (const [n, st] of s.steps.entries()) {
        run.outputs.length = 0;
        run.step(st.in);
        await settle(8);
        const got = run.outputs.map(norm).sort();
        const want = st.out.map(norm).sort();
        assert.deepEqual(got, want, `step ${n}: ${JSON.stringify(st.in).slice(0, 120)}`);
      }
    });
  }
});
