// moq-dc/1 (docs/design/webrtc.md §2.3): MoQ streams over data channels
// (src/session/rtc_stream.ts) on an in-memory channel pair — pieces of at
// most 16 KiB, the fin / reset / stop signals, backpressure above 1 MiB,
// closing, and garbage as a protocol violation. The shared vectors
// (docs/vectors/datachannel.json) run in datachannel_vectors.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChannelClosedBeforeOpen, ChannelViolation, DcStream, HIGH_WATER, MAX_PIECE, STREAM_OPEN_ATTEMPTS, formatSignal, openStreamChannel, parseSignal, pieces } from "../src/session/rtc_stream.js";
import { RequestStream } from "../src/session/request.js";
import { gatewayUrl, parseGatewayMessage } from "../src/session/rtc.js";
import { streamError, streamErrorCode } from "../src/session/transport.js";
import { channelPair, settle, type FakeChannel } from "./fake_channel.js";

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

async function readAll(r: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = r.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function binarySizes(ch: FakeChannel): number[] {
  return ch.sent.filter((m): m is Uint8Array => typeof m !== "string").map((m) => m.length);
}

function texts(ch: FakeChannel): string[] {
  return ch.sent.filter((m): m is string => typeof m === "string");
}

/** A stream pair on one channel: ours opened it, theirs accepted it. */
function streams(label: "moq-uni" | "moq-bi") {
  const { a, b, open } = channelPair(label);
  const violations: { side: string; e: ChannelViolation }[] = [];
  const ours = new DcStream(a, true, { violation: (e) => violations.push({ side: "ours", e }) });
  const theirs = new DcStream(b, false, { violation: (e) => violations.push({ side: "theirs", e }) });
  return { a, b, open, ours, theirs, violations };
}

describe("moq-dc/1 signals", () => {
  it("parses fin, reset <code> and stop <code>, and nothing else", () => {
    assert.deepEqual(parseSignal("fin"), { kind: "fin" });
    assert.deepEqual(parseSignal("reset 0"), { kind: "reset", code: 0 });
    assert.deepEqual(parseSignal("reset 4294967295"), { kind: "reset", code: 0xffffffff });
    assert.deepEqual(parseSignal("stop 7"), { kind: "stop", code: 7 });
    for (const bad of ["", "FIN", "fin ", " fin", "finish", "reset", "reset ", "reset -1", "reset 01", "reset 1.5", "reset 0x10", "reset 4294967296", "reset 99999999999", "stop  1", "stop 1 2", "close 0", "{\"t\":\"close\"}"]) {
      assert.equal(parseSignal(bad), undefined, JSON.stringify(bad));
    }
    for (const s of ["fin", "reset 3", "stop 0"]) assert.equal(formatSignal(parseSignal(s)!), s);
  });

  it("splits bytes into pieces of at most 16 KiB", () => {
    assert.deepEqual(pieces(new Uint8Array(0)), []);
    assert.deepEqual(pieces(new Uint8Array(MAX_PIECE)).map((p) => p.length), [MAX_PIECE]);
    assert.deepEqual(pieces(new Uint8Array(40 * 1024)).map((p) => p.length), [MAX_PIECE, MAX_PIECE, 8 * 1024]);
  });

  it("stream errors carry their code", () => {
    assert.equal(streamErrorCode(streamError("x", 9)), 9);
    assert.equal(streamErrorCode(new Error("x")), undefined);
    assert.equal(streamErrorCode(undefined), undefined);
  });
});

describe("moq-dc/1 streams", () => {
  it("a bidi stream carries bytes both ways in pieces, fin ends each direction, then the channel closes", async () => {
    const { a, b, open, ours, theirs, violations } = streams("moq-bi");
    open();
    const up = bytes(40 * 1024, 1);
    const down = bytes(100, 2);
    const w = ours.bidi.writable.getWriter();
    await w.write(up);
    await w.close();
    const got = await readAll(theirs.bidi.readable);
    assert.deepEqual(got, up);
    const tw = theirs.bidi.writable.getWriter();
    await tw.write(down);
    await tw.close();
    assert.deepEqual(await readAll(ours.bidi.readable), down);
    await settle();
    assert.deepEqual(binarySizes(a), [MAX_PIECE, MAX_PIECE, 8 * 1024]);
    assert.deepEqual(texts(a), ["fin"]);
    assert.deepEqual(texts(b), ["fin"]);
    assert.equal(a.readyState, "closed");
    assert.equal(b.readyState, "closed");
    assert.deepEqual(violations, []);
  });

  it("a uni stream: the opener writes and fins, the acceptor reads; the opener has no reader, the acceptor no writer", async () => {
    const { a, b, open, ours, theirs, violations } = streams("moq-uni");
    assert.equal(ours.readable, undefined);
    assert.equal(theirs.writable, undefined);
    const w = ours.writable!.getWriter();
    const wrote = w.write(bytes(5)); // before the channel opens: waits for it
    await settle();
    assert.deepEqual(a.sent, []);
    open();
    await wrote;
    await w.close();
    assert.deepEqual(await readAll(theirs.readable!), bytes(5));
    await settle();
    assert.deepEqual(texts(a), ["fin"]);
    assert.deepEqual(b.sent, []);
    assert.equal(a.readyState, "closed");
    assert.deepEqual(violations, []);
  });

  it("abort sends reset <code>; the reader fails with that streamErrorCode", async () => {
    const { a, open, ours, theirs } = streams("moq-uni");
    open();
    const w = ours.writable!.getWriter();
    await w.write(bytes(3));
    await w.abort(streamError("abandoned", 7));
    const r = theirs.readable!.getReader();
    assert.deepEqual((await r.read()).value, bytes(3));
    await assert.rejects(r.read(), (e: unknown) => streamErrorCode(e) === 7);
    await settle();
    assert.deepEqual(texts(a), ["reset 7"]);
    assert.equal(a.readyState, "closed");
  });

  it("cancelling the reader sends stop <code>; the writer fails with it and resets with the same code", async () => {
    const { a, b, open, ours, theirs, violations } = streams("moq-bi");
    open();
    const w = ours.bidi.writable.getWriter();
    await w.write(bytes(3));
    await theirs.bidi.readable.cancel(streamError("unknown alias", 5));
    await settle();
    assert.deepEqual(texts(b), ["stop 5"]);
    await assert.rejects(w.write(bytes(3)), (e: unknown) => streamErrorCode(e) === 5);
    await settle();
    assert.deepEqual(texts(a), ["reset 5"]);
    assert.equal(a.readyState, "open", "their direction to us is still open");
    assert.deepEqual(violations, []);
  });

  it("stopping a peer's moq-uni closes the channel at once; the opener's writes fail", async () => {
    const { b, open, ours, theirs, violations } = streams("moq-uni");
    open();
    const w = ours.writable!.getWriter();
    await w.write(bytes(3));
    await theirs.readable!.cancel(streamError("unknown alias", 5));
    await settle();
    assert.deepEqual(texts(b), ["stop 5"]);
    assert.equal(b.readyState, "closed");
    await assert.rejects(w.write(bytes(3)), (e: unknown) => streamErrorCode(e) === 5);
    assert.deepEqual(violations, []);
  });

  it("a stop that crosses our fin is no error", async () => {
    const { b, open, ours, theirs, violations } = streams("moq-bi");
    open();
    const w = ours.bidi.writable.getWriter();
    await w.close();
    b.send("stop 0"); // the peer's stop, sent before our fin arrived
    await settle();
    assert.deepEqual(violations, []);
    void theirs;
  });

  it("an acceptor's stop before the channel opened is sent once it opens", async () => {
    const { b, open, theirs } = streams("moq-uni");
    await theirs.readable!.cancel();
    assert.deepEqual(b.sent, []);
    open();
    await settle();
    assert.deepEqual(texts(b), ["stop 0"]);
  });

  it("writes wait while more than 1 MiB is buffered, and go on at bufferedamountlow", async () => {
    const { a, open, ours, theirs } = streams("moq-uni");
    open();
    a.hold = true; // the peer reads nothing for now
    const w = ours.writable!.getWriter();
    const total = 3 * 1024 * 1024;
    let done = false;
    const writing = w.write(bytes(total)).then(() => (done = true));
    await settle(20);
    assert.equal(done, false);
    assert.ok(a.bufferedAmount > HIGH_WATER && a.bufferedAmount <= HIGH_WATER + MAX_PIECE, `buffered ${a.bufferedAmount}`);
    const reading = readAll(theirs.readable!);
    a.release();
    await writing;
    await w.close();
    const got = await reading;
    assert.equal(got.length, total);
    assert.deepEqual(got, bytes(total));
    assert.ok(binarySizes(a).every((n) => n <= MAX_PIECE));
  });

  it("a channel that closes with a direction open counts as reset 0", async () => {
    const { a, open, ours, theirs } = streams("moq-bi");
    open();
    const r = theirs.bidi.readable.getReader();
    a.close();
    await assert.rejects(r.read(), (e: unknown) => streamErrorCode(e) === 0);
    await assert.rejects(ours.bidi.writable.getWriter().write(bytes(1)), (e: unknown) => streamErrorCode(e) === 0);
  });

  it("a RequestStream runs over a moq-bi channel pair", async () => {
    const { open, ours, theirs } = streams("moq-bi");
    open();
    const client = new RequestStream(0, ours.bidi);
    const server = new RequestStream(undefined, theirs.bidi, true);
    await client.send({ type: "SUBSCRIBE_NAMESPACE", requestId: 0, prefix: ["moq-phone", "v1", "users"], params: [] });
    assert.equal((await server.request)?.type, "SUBSCRIBE_NAMESPACE");
    await server.send({ type: "REQUEST_OK", params: [] });
    assert.equal((await client.next(1000))?.type, "REQUEST_OK");
    client.abort(0x1);
    await server.ended;
    assert.match(server.endReason ?? "", /reset/);
  });
});

describe("moq-dc/1 garbage is a protocol violation", () => {
  const cases: { name: string; label: "moq-uni" | "moq-bi"; from: "opener" | "acceptor"; messages: (string | Uint8Array)[] }[] = [
    { name: "an unknown signal", label: "moq-bi", from: "opener", messages: ["finish"] },
    { name: "a reset without a code", label: "moq-uni", from: "opener", messages: ["reset"] },
    { name: "a code beyond 32 bits", label: "moq-uni", from: "opener", messages: ["reset 4294967296"] },
    { name: "bytes after fin", label: "moq-bi", from: "opener", messages: ["fin", new Uint8Array([1])] },
    { name: "fin after reset", label: "moq-bi", from: "opener", messages: ["reset 1", "fin"] },
    { name: "bytes from a uni acceptor", label: "moq-uni", from: "acceptor", messages: [new Uint8Array([1])] },
    { name: "fin from a uni acceptor", label: "moq-uni", from: "acceptor", messages: ["fin"] },
    { name: "stop from a uni opener", label: "moq-uni", from: "opener", messages: ["stop 0"] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const { a, b, open, violations } = streams(c.label);
      open();
      const sender = c.from === "opener" ? a : b;
      for (const m of c.messages) sender.send(m as string);
      await settle();
      assert.equal(violations.length, 1, JSON.stringify(violations.map((v) => v.e.message)));
      assert.equal(violations[0]!.side, c.from === "opener" ? "theirs" : "ours");
      assert.equal(a.readyState, "closed");
    });
  }
});

describe("moq-gw messages", () => {
  it("parses close, audio-out and audio-in, and nothing else", () => {
    assert.deepEqual(parseGatewayMessage('{"t":"close","code":2,"reason":"bad token"}'), { t: "close", code: 2, reason: "bad token" });
    assert.deepEqual(parseGatewayMessage('{"t":"close","code":0}'), { t: "close", code: 0, reason: "" });
    assert.deepEqual(parseGatewayMessage('{"t":"audio-out","alias":3,"priority":128}'), { t: "audio-out", alias: 3, priority: 128 });
    assert.deepEqual(parseGatewayMessage('{"t":"audio-out","alias":null,"priority":128}'), { t: "audio-out", alias: null, priority: 128 });
    assert.deepEqual(parseGatewayMessage('{"t":"audio-in","alias":7}'), { t: "audio-in", alias: 7 });
    for (const bad of ["", "fin", "null", "[]", '{"t":"close"}', '{"t":"close","code":-1}', '{"t":"close","code":1,"reason":5}', '{"t":"audio-in"}', '{"t":"audio-in","alias":"7"}', '{"t":"audio-out","alias":1,"priority":256}', '{"t":"hello"}']) {
      assert.equal(parseGatewayMessage(bad), undefined, bad);
    }
  });

  it("the gateway is /webrtc on the relay's HTTP side", () => {
    assert.equal(gatewayUrl("http://localhost:4443/"), "http://localhost:4443/webrtc");
    assert.equal(gatewayUrl("http://relay.example:4443/certificate.sha256"), "http://relay.example:4443/webrtc");
  });
});

describe("openStreamChannel: a channel the gateway closes before it opens", () => {
  /** Channels made in turn: the first `refused` are closed by the gateway (a failed DCEP), the next opens. */
  function gateway(refused: number) {
    const made: Array<{ a: FakeChannel; b: FakeChannel }> = [];
    const create = () => {
      const p = channelPair("moq-uni");
      made.push(p);
      const n = made.length;
      setTimeout(() => {
        if (n <= refused) p.b.close();
        else p.open();
      }, 0);
      return p.a;
    };
    return { made, create };
  }

  it("is tried again on a new channel, and what is written goes on the one that opened", async () => {
    const g = gateway(2);
    const s = await openStreamChannel(g.create, {}, 1000);
    assert.equal(g.made.length, 3);
    assert.equal(s.channel, g.made[2]!.a);
    const w = s.writable!.getWriter();
    await w.write(new Uint8Array([1, 2, 3]));
    await w.close();
    await settle();
    assert.deepEqual(g.made[2]!.a.sent, [new Uint8Array([1, 2, 3]), "fin"]);
    for (const m of g.made.slice(0, 2)) assert.deepEqual(m.a.sent, []);
  });

  it(`gives up after ${STREAM_OPEN_ATTEMPTS} channels`, async () => {
    const g = gateway(STREAM_OPEN_ATTEMPTS);
    await assert.rejects(openStreamChannel(g.create, {}, 1000), ChannelClosedBeforeOpen);
    assert.equal(g.made.length, STREAM_OPEN_ATTEMPTS);
  });

  it("a channel that never opens is not retried (the timeout is the error)", async () => {
    const made: FakeChannel[] = [];
    const create = () => {
      const p = channelPair("moq-uni");
      made.push(p.a);
      return p.a;
    };
    await assert.rejects(openStreamChannel(create, {}, 20), /did not open in time/);
    assert.equal(made.length, 1);
  });
});
