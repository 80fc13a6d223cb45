// Request streams (src/session/request.ts) over an in-memory bidi pair: the
// first message of an incoming stream is its request, later ones are
// responses in order; timeouts; FIN ends the stream.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RequestStream, RequestTimeout } from "../src/session/request.js";
import { backoffMs } from "../src/phone/phone.js";
import { describeEnd } from "../src/ui/callview.js";

function pair(): { client: RequestStream; server: RequestStream } {
  const up = new TransformStream<Uint8Array, Uint8Array>();
  const down = new TransformStream<Uint8Array, Uint8Array>();
  const client = new RequestStream(0, { readable: down.readable, writable: up.writable });
  const server = new RequestStream(undefined, { readable: up.readable, writable: down.writable }, true);
  return { client, server };
}

describe("RequestStream", () => {
  it("carries a request, then responses in order, then the end", async () => {
    const { client, server } = pair();
    await client.send({ type: "SUBSCRIBE_NAMESPACE", requestId: 0, prefix: ["moq-phone", "v1", "users"], params: [] });
    const req = await server.request;
    assert.equal(req?.type, "SUBSCRIBE_NAMESPACE");
    await server.send({ type: "REQUEST_OK", params: [] });
    await server.send({ type: "NAMESPACE", suffix: ["alice", "d1"] });
    server.close();
    assert.equal((await client.next(1000))?.type, "REQUEST_OK");
    const ns = await client.next(1000);
    assert.equal(ns?.type, "NAMESPACE");
    assert.equal(await client.next(1000), undefined);
    await client.ended;
    assert.equal(client.endReason, "end");
    assert.ok(client.done);
  });

  it("tells its owner of a REQUEST_ERROR as it arrives (EXPIRED_AUTH_TOKEN signs the phone out)", async () => {
    const up = new TransformStream<Uint8Array, Uint8Array>();
    const down = new TransformStream<Uint8Array, Uint8Array>();
    const errors: [number, string][] = [];
    const client = new RequestStream(0, { readable: down.readable, writable: up.writable }, false, (code, reason) => errors.push([code, reason]));
    const server = new RequestStream(undefined, { readable: up.readable, writable: down.writable }, true);
    await client.send({ type: "REQUEST_UPDATE", requestId: 2, params: [] });
    await server.request;
    await server.send({ type: "REQUEST_OK", params: [] });
    await server.send({ type: "REQUEST_ERROR", code: 0x5, retryInterval: 0, reason: "token expired" });
    assert.equal((await client.next(1000))?.type, "REQUEST_OK");
    const e = await client.next(1000);
    assert.equal(e?.type, "REQUEST_ERROR");
    assert.deepEqual(errors, [[0x5, "token expired"]]);
  });

  it("times out waiting for an answer", async () => {
    const { client } = pair();
    await assert.rejects(client.next(30, "SUBSCRIBE_OK"), RequestTimeout);
  });

  it("a stream that ends inside a message is an error, not a clean end", async () => {
    const up = new TransformStream<Uint8Array, Uint8Array>();
    const down = new TransformStream<Uint8Array, Uint8Array>();
    const client = new RequestStream(0, { readable: down.readable, writable: up.writable });
    const w = down.writable.getWriter();
    await w.write(new Uint8Array([0x07, 0x00, 0x05, 0x00]));
    await w.close();
    assert.equal(await client.next(1000), undefined);
    assert.notEqual(client.endReason, "end");
  });
});

describe("reconnection backoff", () => {
  it("doubles from 0.5 s to 8 s with ±20 % jitter", () => {
    assert.equal(backoffMs(0, () => 0.5), 500);
    assert.equal(backoffMs(1, () => 0.5), 1000);
    assert.equal(backoffMs(4, () => 0.5), 8000);
    assert.equal(backoffMs(30, () => 0.5), 8000);
    assert.equal(backoffMs(0, () => 0), 400);
    assert.equal(backoffMs(0, () => 1), 600);
  });
});

describe("why a call ended, in words", () => {
  it("depends on the side", () => {
    const out = { direction: "outgoing" as const, peerDisplay: "Bob" };
    const inc = { direction: "incoming" as const, peerDisplay: "Alice" };
    assert.equal(describeEnd({ reason: "hangup", by_peer: true }, out), "Bob hung up");
    assert.equal(describeEnd({ reason: "hangup", by_peer: false }, out), "You hung up");
    assert.equal(describeEnd({ reason: "declined" }, out), "Bob declined the call");
    assert.equal(describeEnd({ reason: "declined" }, inc), "You declined the call");
    assert.equal(describeEnd({ reason: "busy" }, out), "Bob is busy");
    assert.equal(describeEnd({ reason: "offline" }, out), "Bob is not online");
    assert.match(describeEnd({ reason: "cancelled" }, inc), /^Missed call/);
  });
});
