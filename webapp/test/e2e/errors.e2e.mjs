// The phone's error states, each with a clear message: microphone denied,
// no WebTransport (an insecure page), an unreachable relay (which it
// keeps retrying, and reaches once the relay is up), and a browser that
// needs the WebRTC fallback (issue 14) on a relay without its gateway.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

let relay;
const browsers = [];

async function browser(opts) {
  const b = await L.launchBrowser(L.writeToneWav("tone.wav", 440), opts);
  browsers.push(b);
  return b;
}

describe("error states", () => {
  before(async () => {
    // A relay without the WebRTC gateway (--webrtc-max-peers 0 turns it off: POST /webrtc answers 501).
    relay = await L.startRelay(await L.freePort(), ["--webrtc-max-peers", "0"]);
  });

  after(async () => {
    for (const b of browsers) await b.browser.close();
    await relay?.stop();
  });

  test("microphone denied: the call is not placed, the user is told why", async () => {
    const { context } = await browser({ micAllowed: false });
    const alice = await L.openPhone(context, relay);
    const bob = await L.openPhone(context, relay);
    await L.signIn(alice, "alice");
    await L.signIn(bob, "bob");
    await L.waitState(alice, "alice sees bob", (s) => s.presence.includes("bob"));
    await alice.fill("#dial-input", "bob");
    await alice.click("#dial-button");
    await L.until("the microphone error", async () => /Microphone access was denied/.test((await alice.textContent("#dial-error")) ?? ""));
    assert.equal((await L.state(alice)).call, undefined, "no call was placed");
    assert.equal((await L.state(bob)).call, undefined, "bob's phone did not ring");
  });

  test("no WebTransport on an insecure page: sign-in is disabled with the reason", async () => {
    const { context } = await browser({ hostRules: "MAP insecure.test 127.0.0.1, " });
    const page = await context.newPage();
    await page.goto(`http://insecure.test:${relay.port}/`);
    await L.until("the unsupported message", () => page.isVisible("#unsupported"));
    assert.match(await page.textContent("#unsupported"), /https:\/\/ or on localhost/);
    assert.equal(await page.isDisabled("#signin-button"), true);
  });

  test("relay unreachable: the status says so, retries, and connects once the relay is up", async () => {
    const { context } = await browser();
    const port = await L.freePort();
    const page = await L.openPhone(context, relay);
    await page.fill("#f-user", "carol");
    await page.click("details.advanced summary");
    await page.fill("#f-relay", `https://127.0.0.1:${port}/`);
    // The form reshapes for the relay typed (its GET /access fails: no banner); sign in once it has.
    await page.waitForSelector('#signin-form[data-mode="unknown"]', { state: "attached" });
    await page.click("#signin-button");
    await L.waitState(page, "waiting", (s) => s.connection === "waiting");
    await L.until("the banner", async () => /Can't reach the relay: the relay is unreachable\. Retrying/.test((await page.textContent("#banner-text")) ?? ""));
    assert.equal(await page.textContent("#me-status-text"), "Disconnected");
    assert.equal(await page.isDisabled("#dial-button"), true);
    const late = await L.startRelay(port);
    try {
      await page.click("#banner-retry");
      await L.waitState(page, "online at last", (s) => s.connection === "online", 20000);
      assert.equal(await page.textContent("#me-status-text"), "Online · WebTransport");
      assert.equal((await L.state(page)).transport, "webtransport");
    } finally {
      await late.stop();
    }
  });

  // On a relay without the WebRTC gateway (an older relay, or one with it off), a browser that needs it is told so, once.
  for (const [name, query, setup, why] of [
    ["?transport=webrtc", "?transport=webrtc", undefined, /asks for WebRTC.*Leave out \?transport=webrtc/],
    ["no WebTransport", "", () => delete globalThis.WebTransport, /no WebTransport.*Use a recent Chrome/],
  ]) {
    test(`WebRTC chosen (${name}) on a relay without the gateway: the phone stops and says why`, async () => {
      const { context } = await browser();
      if (setup) await context.addInitScript(setup);
      const page = await L.openPhone(context, relay, query);
      await page.fill("#f-user", "dave");
      await page.click("#signin-button");
      const s = await L.waitState(page, "unavailable", (st) => st.connection === "unavailable");
      assert.equal(s.transport, "webrtc");
      const banner = (await page.textContent("#banner-text")) ?? "";
      assert.match(banner, /This browser needs the relay's WebRTC gateway, which this relay does not offer yet/);
      assert.match(banner, why);
      assert.equal(await page.isVisible("#banner-retry"), false);
      assert.equal(await page.textContent("#me-status-text"), "Offline");
      await page.close();
    });
  }
});
