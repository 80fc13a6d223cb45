// Which transport the phone picks (src/phone/transport_choice.ts,
// docs/design/webrtc.md §4): real user-agent strings, ?transport=, a
// browser without WebTransport, the sticky fallback, and which failures
// fall back.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chooseTransport, fallenBack, noGateway, isWebKitUA, parsePref, shouldFallBack, transportLabel, type TransportEnv } from "../src/phone/transport_choice.js";

/** [name, user agent, WebKit?] */
const UAS: [string, string, boolean][] = [
  ["Chrome 148 Linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36", false],
  ["Chrome macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", false],
  ["Chromium headless", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/148.0.0.0 Safari/537.36", false],
  ["Debian Chromium", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chromium/120.0.6099.224 Chrome/120.0.6099.224 Safari/537.36", false],
  ["Edge Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86", false],
  ["Opera", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0", false],
  ["Firefox Linux", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0", false],
  ["Firefox macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0", false],
  ["Chrome Android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.135 Mobile Safari/537.36", false],
  ["Android WebView", "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/118.0.0.0 Mobile Safari/537.36", false],
  ["Samsung Internet", "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", false],
  ["Firefox Android", "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", false],
  ["Safari 26 macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.4 Safari/605.1.15", true],
  ["Safari 17 macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15", true],
  ["Safari iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", true],
  ["Safari iPad", "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1", true],
  ["Chrome iOS (CriOS)", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", true],
  ["Firefox iOS (FxiOS)", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15", true],
  ["Edge iOS", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/131.2903.68 Mobile/15E148 Safari/605.1.15", true],
  ["iOS in-app WebView", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", true],
  ["Epiphany (WebKitGTK)", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15", true],
];

function env(over: Partial<TransportEnv> = {}): TransportEnv {
  return { param: null, userAgent: UAS[0]![1], hasWebTransport: true, hasRtcPeerConnection: true, sticky: null, ...over };
}

describe("transport choice", () => {
  for (const [name, ua, webkit] of UAS) {
    it(`${name}: ${webkit ? "WebRTC" : "WebTransport"}`, () => {
      assert.equal(isWebKitUA(ua), webkit);
      assert.equal(chooseTransport(env({ userAgent: ua })).kind, webkit ? "webrtc" : "webtransport");
    });
  }

  it("?transport= forces either, whatever the browser", () => {
    const safari = UAS.find(([n]) => n.startsWith("Safari 26"))![1];
    assert.deepEqual(chooseTransport(env({ param: "webrtc" })), { kind: "webrtc", forced: true, why: "?transport=webrtc asks for WebRTC" });
    assert.equal(chooseTransport(env({ param: "WebTransport", userAgent: safari })).kind, "webtransport");
    assert.equal(chooseTransport(env({ param: "webtransport", userAgent: safari })).forced, true);
    assert.equal(chooseTransport(env({ param: "webrtc", hasRtcPeerConnection: false })).kind, "webrtc");
    assert.equal(chooseTransport(env({ param: "quic" })).forced, false, "anything else is Auto");
    assert.equal(parsePref(" webrtc "), "webrtc");
    assert.equal(parsePref(""), "auto");
    assert.equal(parsePref(null), "auto");
  });

  it("Auto: no WebTransport → WebRTC; no RTCPeerConnection → WebTransport", () => {
    assert.equal(chooseTransport(env({ hasWebTransport: false })).kind, "webrtc");
    assert.match(chooseTransport(env({ hasWebTransport: false })).why, /no WebTransport/);
    assert.equal(chooseTransport(env({ hasWebTransport: false, hasRtcPeerConnection: false })).kind, "webtransport");
  });

  it("a fallback sticks for the tab; a forced choice overrides it", () => {
    assert.equal(chooseTransport(env({ sticky: "webrtc" })).kind, "webrtc");
    assert.equal(chooseTransport(env({ sticky: "webrtc" })).fallback, true, "a fallback: undone on a relay without the gateway");
    assert.equal(chooseTransport(env({ hasWebTransport: false })).fallback, undefined, "no WebTransport: nothing to go back to");
    assert.equal(chooseTransport(env({ sticky: "webrtc", param: "webtransport" })).kind, "webtransport");
    assert.equal(chooseTransport(env({ sticky: "garbage" })).kind, "webtransport");
  });

  it("falls back after a handshake failure or a stall, never after an auth refusal or an unreachable relay", () => {
    const auto = chooseTransport(env());
    assert.equal(shouldFallBack(auto, "handshake", true), true);
    assert.equal(shouldFallBack(auto, "stall", true), true);
    assert.equal(shouldFallBack(auto, "auth", true), false);
    assert.equal(shouldFallBack(auto, "unreachable", true), false);
    assert.equal(shouldFallBack(auto, "other", true), false);
    assert.equal(shouldFallBack(auto, "handshake", false), false, "no RTCPeerConnection to fall back to");
    assert.equal(shouldFallBack(chooseTransport(env({ param: "webtransport" })), "handshake", true), false, "forced");
    assert.equal(shouldFallBack(chooseTransport(env({ hasWebTransport: false })), "handshake", true), false, "already WebRTC");
    assert.deepEqual(fallenBack("stall"), { kind: "webrtc", forced: false, fallback: true, why: "the WebTransport session stalled" });
    assert.equal(fallenBack("handshake").why, "WebTransport did not connect");
    assert.deepEqual(noGateway(), { kind: "webtransport", forced: false, why: "this relay has no WebRTC gateway" });
    assert.equal(shouldFallBack(noGateway(), "handshake", true), true, "the phone's judge knows better (fallback.test.ts)");
  });

  it("labels", () => {
    assert.equal(transportLabel("webtransport"), "WebTransport");
    assert.equal(transportLabel("webrtc"), "WebRTC");
  });
});
