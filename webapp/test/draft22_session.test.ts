// A draft-22 session (docs/DRAFT22.md §2, §6, §8): the subprotocols a
// WebTransport offers and the draft the relay picked; request streams that
// code in the session's draft, where a FIN no longer cancels (only a reset
// or STOP_SENDING does) and PUBLISH_STATE_NOTIFY is read and ignored; the
// publisher's refusals; a Joining FETCH sent as a Standalone one. Request
// streams run over the moq-dc/1 in-memory channel pair, which carries FIN,
// reset and STOP_SENDING as a QUIC stream does.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { decodeMessage, encodeMessage, fromHex, RequestErrorCode, takeFrame, toHex, utf8, type ControlMessage, type Version } from "../src/moq/index.js";
import { LiveTrack, Publication, Publisher } from "../src/session/publisher.js";
import { RequestStream } from "../src/session/request.js";
import { DcStream } from "../src/session/rtc_stream.js";
import { MoqSession, negotiatedVersion, openWebTransport, versionOfProtocol, WT_PROTOCOLS } from "../src/session/session.js";
import { fetchRequest, RequestRefused } from "../src/session/subscriber.js";
import type { BidiStream, MoqTransport } from "../src/session/transport.js";
import { channelPair, settle } from "./fake_channel.js";

/** A request stream pair in draft `v`: `client` opened it (the requester), `server` accepted it. */
function pair(v: Version): { client: RequestStream; server: RequestStream } {
  const { a, b, open } = channelPair("moq-bi");
  const ours = new DcStream(a, true, { violation: () => undefined });
  const theirs = new DcStream(b, false, { violation: () => undefined });
  open();
  return { client: new RequestStream(0, ours.bidi, false, undefined, v), server: new RequestStream(undefined, theirs.bidi, true, undefined, v) };
}

/** Whether `p` settled within a few turns of the event loop. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await settle(10);
  return done;
}

describe("draft negotiation (docs/DRAFT22.md §2)", () => {
  it("the relay's WT-Protocol names the draft; none is draft-18", () => {
    assert.equal(versionOfProtocol("moqt-22"), 22);
    assert.equal(versionOfProtocol("moqt-18"), 18);
    assert.equal(versionOfProtocol(""), 18);
    assert.equal(versionOfProtocol(undefined), 18);
    assert.throws(() => versionOfProtocol("moqt-19"), /does not speak/);
    assert.deepEqual(WT_PROTOCOLS, { 18: "moqt-18", 22: "moqt-22" });
  });

  it("the WebRTC gateway path stays draft-18", () => {
    assert.equal(negotiatedVersion({ kind: "webrtc", protocol: "moqt-22" } as unknown as MoqTransport), 18);
    assert.equal(negotiatedVersion({ kind: "webtransport", protocol: "moqt-22" } as unknown as MoqTransport), 22);
  });

  it("a WebTransport offers moqt-18 and moqt-22", () => {
    const offered: unknown[] = [];
    const saved = (globalThis as { WebTransport?: unknown }).WebTransport;
    (globalThis as { WebTransport?: unknown }).WebTransport = class {
      constructor(_url: string, opts: { protocols?: string[] }) {
        offered.push(opts.protocols);
      }
    };
    try {
      openWebTransport("https://relay.test/", undefined);
      openWebTransport("https://relay.test/", undefined, [22]);
    } finally {
      (globalThis as { WebTransport?: unknown }).WebTransport = saved;
    }
    assert.deepEqual(offered, [["moqt-18", "moqt-22"], ["moqt-22"]]);
  });
});

/** A WebTransport stand-in whose relay sends SETUP (and `control`) and chose `protocol`. */
function fakeWebTransport(protocol: string | undefined, control: Uint8Array[] = []) {
  const requests: Uint8Array[] = [];
  let closedWith: unknown;
  const never = <T>() => new ReadableStream<T>();
  const setup = encodeMessage({ type: "SETUP", options: [{ type: 0x07, value: utf8("fake relay") }] });
  const wt = {
    kind: "webtransport" as const,
    protocol,
    ready: Promise.resolve(),
    closed: new Promise<never>(() => undefined),
    close: (info: unknown) => void (closedWith = info),
    createUnidirectionalStream: async () => new WritableStream<Uint8Array>(),
    createBidirectionalStream: async (): Promise<BidiStream> => ({ readable: never<Uint8Array>(), writable: new WritableStream<Uint8Array>({ write: (c) => void requests.push(c) }) }),
    incomingUnidirectionalStreams: new ReadableStream<ReadableStream<Uint8Array>>({
      start: (c) => c.enqueue(new ReadableStream<Uint8Array>({ start: (s) => [setup, ...control].forEach((b) => s.enqueue(b)) })),
    }),
    incomingBidirectionalStreams: never<BidiStream>(),
    datagrams: { readable: never<Uint8Array>(), writable: new WritableStream<Uint8Array>() },
  };
  return { wt: wt as MoqTransport, requests, closedWith: () => closedWith };
}

describe("a session speaks the draft the relay chose", () => {
  const sessions: MoqSession[] = [];
  after(() => sessions.forEach((s) => s.close()));

  it("moqt-22: requests and GOAWAY in draft-22 form", async () => {
    const f = fakeWebTransport("moqt-22", [fromHex("1000020000")]);
    const s = await MoqSession.connect("https://relay.test/", { transport: f.wt });
    sessions.push(s);
    assert.equal(s.version, 22);
    assert.equal(s.peerImplementation, "fake relay");
    await s.request((requestId) => ({ type: "FETCH", requestId, fetchType: 0x1, standalone: { namespace: ["ns"], name: "t", start: { group: 5, object: 0 }, end: { group: 5, object: 0 } }, params: [] }));
    assert.equal(toHex(f.requests[0] as Uint8Array), "16000d0001026e7301740121030500" + "00");
    await settle(10);
    assert.ok(s.goneAway, "the Request ID-less GOAWAY was read");
  });

  it("no subprotocol named: draft-18", async () => {
    const f = fakeWebTransport(undefined);
    const s = await MoqSession.connect("https://relay.test/", { transport: f.wt });
    sessions.push(s);
    assert.equal(s.version, 18);
    await s.request((requestId) => ({ type: "FETCH", requestId, fetchType: 0x1, standalone: { namespace: ["ns"], name: "t", start: { group: 5, object: 0 }, end: { group: 5, object: 0 } }, params: [] }));
    assert.equal(toHex(f.requests[0] as Uint8Array), "16000d000101026e7301740500050000");
  });

  it("a subprotocol the phone did not offer fails the connection", async () => {
    const f = fakeWebTransport("moqt-19");
    await assert.rejects(MoqSession.connect("https://relay.test/", { transport: f.wt }), /moqt-19/);
    assert.ok(f.closedWith(), "the transport was closed");
  });
});

describe("request streams at draft-22 (docs/DRAFT22.md §8)", () => {
  it("a requester's FIN does not cancel; a reset does", async () => {
    const { client, server } = pair(22);
    await client.send({ type: "SUBSCRIBE", requestId: 0, namespace: ["ns"], name: "t", params: [] });
    assert.equal((await server.request)?.type, "SUBSCRIBE");
    client.close();
    await server.ended;
    assert.equal(server.endReason, "end");
    assert.equal(await settled(server.cancelled), false, "FIN is not a cancel");
    // STOP_SENDING on the responder's side is.
    client.abort();
    assert.equal(await settled(server.cancelled), true);
  });

  it("cancel() resets at draft-22 and FINs at draft-18", async () => {
    for (const v of [22, 18] as const) {
      const { client, server } = pair(v);
      await client.send({ type: "SUBSCRIBE_NAMESPACE", requestId: 0, prefix: ["p"], params: [] });
      await server.request;
      client.cancel();
      await server.ended;
      if (v === 22) assert.match(server.endReason ?? "", /reset/);
      else assert.equal(server.endReason, "end");
      assert.equal(await settled(server.cancelled), true, `draft-${v}`);
    }
  });

  it("PUBLISH_STATE_NOTIFY is read and ignored", async () => {
    const { client, server } = pair(22);
    await client.send({ type: "SUBSCRIBE", requestId: 0, namespace: ["ns"], name: "t", params: [] });
    await server.request;
    await server.send({ type: "SUBSCRIBE_OK", trackAlias: 1, params: [{ type: 0x22, value: 1 }], properties: new Uint8Array(0) });
    await server.send({ type: "PUBLISH_STATE_NOTIFY", params: [{ type: 0x10, value: 0 }] });
    await server.send({ type: "PUBLISH_DONE", status: 2, streamCount: 0, reason: "" });
    server.close();
    const ok = await client.next(1000);
    assert.deepEqual(ok?.type === "SUBSCRIBE_OK" && ok.params, [], "GROUP_ORDER left out of SUBSCRIBE_OK");
    assert.equal((await client.next(1000))?.type, "PUBLISH_DONE");
    assert.equal(await client.next(1000), undefined);
  });
});

describe("the publisher at draft-22", () => {
  const fakeSession = () => {
    let alias = 1;
    return { takeAlias: () => alias++, sendDatagram: () => undefined } as unknown as MoqSession;
  };

  for (const v of [22, 18] as const) {
    it(`draft-${v}: the relay's FIN ${v === 22 ? "keeps" : "ends"} a subscription; its reset ends it`, async () => {
      const track = new LiveTrack("audio", fakeSession(), 128);
      const { client, server } = pair(v);
      await client.send({ type: "SUBSCRIBE", requestId: 1, namespace: ["ns"], name: "audio", params: [] });
      const req = await server.request;
      assert.equal(req?.type, "SUBSCRIBE");
      await track.accept(req as Extract<ControlMessage, { type: "SUBSCRIBE" }>, server);
      assert.equal((await client.next(1000))?.type, "SUBSCRIBE_OK");
      assert.ok(track.wanted);
      client.close();
      await settle(10);
      assert.equal(track.wanted, v === 22);
      client.abort();
      await settle(10);
      assert.equal(track.wanted, false);
    });
  }

  it("refuses Range Filters and backfills rather than ignoring them", async () => {
    const p = new Publisher(fakeSession());
    p.add(["ns"]).live("t", 128);
    const cases: [string, number][] = [
      ["03000c0001026e7301740125020000", RequestErrorCode.INVALID_FILTER],
      ["0300100001026e73017402210502040121" + "0102", RequestErrorCode.NOT_SUPPORTED],
      ["03000b0001026e73017401210" + "102", RequestErrorCode.NOT_SUPPORTED],
    ];
    for (const [hex, code] of cases) {
      const { client, server } = pair(22);
      const frame = takeFrame(fromHex(hex))?.frame;
      assert.ok(frame);
      await client.send(decodeMessage(frame, 22)); // the same bytes again (draft22_wire.test.ts)
      const req = await server.request;
      assert.ok(req, hex);
      p.handle(req, server);
      const r = await client.next(1000);
      assert.deepEqual(r?.type === "REQUEST_ERROR" && r.code, code, hex);
    }
  });

  it("withdraws a namespace with a reset", async () => {
    const { client, server } = pair(22);
    const session = { request: async (make: (id: number) => ControlMessage) => (await client.send(make(0)), client) } as unknown as MoqSession;
    const pub = new Publication(["ns"], session);
    const published = pub.publish(1000);
    assert.equal((await server.request)?.type, "PUBLISH_NAMESPACE");
    await server.send({ type: "REQUEST_OK", params: [] });
    await published;
    await pub.withdraw();
    await server.ended;
    assert.match(server.endReason ?? "", /reset/);
  });
});

describe("a Joining FETCH at draft-22 (docs/DRAFT22.md §6)", () => {
  const sub = { requestId: 4, largest: { group: 7, object: 2 }, namespace: ["moq-phone", "alice"], name: "events" };

  it("is a Joining FETCH at draft-18", () => {
    const m = fetchRequest({ kind: "joining", subscription: sub, start: 3 }, 6, 18);
    assert.deepEqual(m, { type: "FETCH", requestId: 6, fetchType: 0x3, joining: { joiningRequestId: 4, joiningStart: 3 }, params: [] });
  });

  it("is the Standalone FETCH of its range at draft-22: from {G, 0} to the Joining Location, inclusive", () => {
    const m = fetchRequest({ kind: "joining", subscription: sub, start: 3 }, 6, 22);
    assert.deepEqual(m.standalone, { namespace: ["moq-phone", "alice"], name: "events", start: { group: 3, object: 0 }, end: { group: 7, object: 3 } });
    // LOCATION_FILTER ABSOLUTE_RANGE {3, 0}, 4 groups on, through Object 2.
    assert.ok(toHex(encodeMessage(m, 22)).endsWith("0121" + "0403000402"));
  });

  it("with nothing published before the subscription, or from a later group, there is nothing to join", () => {
    const invalidRange = (e: unknown) => e instanceof RequestRefused && e.code === RequestErrorCode.INVALID_RANGE;
    assert.throws(() => fetchRequest({ kind: "joining", subscription: { ...sub, largest: undefined }, start: 0 }, 6, 22), invalidRange);
    assert.throws(() => fetchRequest({ kind: "joining", subscription: sub, start: 8 }, 6, 22), invalidRange);
    assert.deepEqual(fetchRequest({ kind: "joining", subscription: sub, start: 7 }, 6, 22).standalone?.start, { group: 7, object: 0 });
  });
});
