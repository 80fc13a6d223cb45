// GET /webrtc (issue 14): the STUN/TURN servers the relay hands the page
// for its RTCPeerConnection (src/session/rtc.ts fetchIceServers), asked
// with the page's token; anything unexpected means none (host candidates
// alone still work where UDP reaches the relay).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fetchIceServers } from "../src/session/rtc.js";

function answering(status: number, body: string) {
  const seen: { url: string; auth: string | undefined }[] = [];
  const f = (async (url: string | URL | Request, init?: RequestInit) => {
    seen.push({ url: String(url), auth: (init?.headers as Record<string, string> | undefined)?.["Authorization"] });
    return new Response(body, { status, headers: { "content-type": "application/json" } });
  }) as typeof fetch;
  return { f, seen };
}

describe("GET /webrtc: ICE servers", () => {
  it("takes the relay's servers, TURN credentials included, asking with the token", async () => {
    const servers = [{ urls: ["stun:stun.example.org"] }, { urls: ["turns:turn.example.org:443?transport=tcp"], username: "1700000000:alice", credential: "Cd/49soE35ICqcJF/bCTn8Z4OyE=" }];
    const { f, seen } = answering(200, JSON.stringify({ iceServers: servers }));
    assert.deepEqual(await fetchIceServers("https://relay.example/webrtc", "tok", f), servers);
    assert.deepEqual(seen, [{ url: "https://relay.example/webrtc", auth: "Bearer tok" }]);
  });

  it("none from an older relay (405), a refusal, garbage or a failed fetch", async () => {
    assert.deepEqual(await fetchIceServers("u", undefined, answering(405, "").f), []);
    assert.deepEqual(await fetchIceServers("u", undefined, answering(401, "access token refused").f), []);
    assert.deepEqual(await fetchIceServers("u", undefined, answering(200, "not json").f), []);
    assert.deepEqual(await fetchIceServers("u", undefined, answering(200, JSON.stringify({ iceServers: [{ urls: 5 }, { urls: "stun:ok" }] })).f), [{ urls: "stun:ok" }]);
    const failing = (async () => {
      throw new TypeError("Failed to fetch");
    }) as typeof fetch;
    assert.deepEqual(await fetchIceServers("u", undefined, failing), []);
  });
});
