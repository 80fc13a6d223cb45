// The web phone picks WebRTC by itself (issue 14, docs/design/webrtc.md §4),
// in real headless Chromium against real moq-relays:
//
// - a Safari user agent (WebTransport still present) goes to WebRTC at once;
// - WebTransport blocked while the relay's HTTP side answers: the page is
//   served through a TCP-only front (a port whose UDP nobody listens on, as
//   on a network that blocks UDP), so its WebTransport handshake really
//   fails while /certificate.sha256 and POST /webrtc pass; the page falls
//   back to WebRTC by itself, stays there for the tab, and calls a
//   WebTransport page with audio both ways;
// - the same on a relay without the gateway: the page goes back to
//   WebTransport (retrying, saying why) instead of stopping;
// - WebTransport stalling (a UDP relay in front goes quiet after the
//   session opened, and again for the next one) while HTTP answers: the
//   page falls back after the second heartbeat miss;
// - a relay restarting (graceful: GOAWAY, then close) does not make a
//   WebTransport page fall back;
// - on a relay that requires tokens, a WebRTC page with a token signed by
//   another key, or one for another user, is signed out with the refusal,
//   while a WebRTC page signed in on that relay stays online and calls.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { connect as tcpConnect, createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

const WT_HZ = 740;
const FB_HZ = 520;
const TONES = [WT_HZ, FB_HZ];
const SAFARI_26 = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.4 Safari/605.1.15";

const browsers = [];

async function browser(hz, name) {
  const b = await L.launchBrowser(L.writeToneWav(name, hz));
  browsers.push(b);
  return b;
}

/**
 * A front for the relay on `port`: every TCP connection is piped to the
 * relay's TCP port (its HTTP side). With `udp` false nothing listens on UDP
 * `port`, so WebTransport to `https://127.0.0.1:<port>/` fails at its
 * handshake. With `udp` true each client's QUIC flow is relayed to the
 * relay's UDP port, and `stall(ms)` silences flows (both ways) from the
 * moment they are `ms` old: a path that passes handshakes and then goes
 * quiet while HTTP still answers.
 */
async function front(port, relay, { udp = false } = {}) {
  const sockets = new Set();
  const server = createServer((c) => {
    const u = tcpConnect(relay.port, "127.0.0.1");
    for (const s of [c, u]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        sockets.delete(s);
        c.destroy();
        u.destroy();
      });
    }
    c.pipe(u);
    u.pipe(c);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  /** Client "addr:port" → its socket towards the relay and when the flow began. */
  const flows = new Map();
  let stallAfter = Infinity;
  const quiet = (f) => Date.now() - f.born >= stallAfter;
  let sock;
  if (udp) {
    sock = createSocket("udp4");
    sock.on("message", (msg, from) => {
      const key = `${from.address}:${from.port}`;
      let f = flows.get(key);
      if (!f) {
        const up = createSocket("udp4");
        f = { up, born: Date.now() };
        flows.set(key, f);
        const flow = f;
        up.on("message", (m) => quiet(flow) || sock.send(m, from.port, from.address));
        up.on("error", () => undefined);
      }
      if (!quiet(f)) f.up.send(msg, relay.port, "127.0.0.1");
    });
    await new Promise((resolve, reject) => {
      sock.once("error", reject);
      sock.bind(port, "127.0.0.1", resolve);
    });
  }
  return {
    base: `http://127.0.0.1:${port}/`,
    /** How many QUIC flows (client ports) have passed through so far. */
    flows: () => flows.size,
    stall(ms) {
      stallAfter = ms;
    },
    close() {
      for (const s of sockets) s.destroy();
      for (const f of flows.values()) f.up.close();
      sock?.close();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const switched = (page) => page.logs.filter((l) => /switching to WebRTC/.test(l));

async function assertOnlineOver(page, transport, label, ms = 15000) {
  await L.waitState(page, `online over ${transport}`, (x) => x.connection === "online" && x.transport === transport, ms);
  assert.equal(await page.textContent("#me-status-text"), `Online · ${label}`);
}

describe("the page's own choice of WebRTC", () => {
  let relay;
  let wt;

  before(async () => {
    relay = await L.startRelay(await L.freePort());
    const W = await browser(WT_HZ, "fb-wt.wav");
    wt = await L.openPhone(W.context, relay);
    await L.signIn(wt, "walt");
    await assertOnlineOver(wt, "webtransport", "WebTransport");
  });

  after(async () => {
    for (const b of browsers.splice(0)) await b.browser.close();
    await relay?.stop();
  });

  test("a Safari user agent (WebTransport present): the page picks WebRTC by itself", async () => {
    const { browser: b } = browsers[0];
    const context = await b.newContext({ userAgent: SAFARI_26, viewport: { width: 390, height: 844 }, permissions: ["microphone"] });
    try {
      const page = await L.openPhone(context, relay);
      assert.equal(await page.evaluate(() => typeof WebTransport), "function");
      assert.equal(await page.evaluate(() => navigator.userAgent), SAFARI_26);
      await L.signIn(page, "sally");
      await assertOnlineOver(page, "webrtc", "WebRTC");
      assert.deepEqual(switched(page), [], "chosen up front, not after a failure");
      assert.equal(await page.getAttribute("#me-status", "title"), "WebRTC: WebTransport in Safari and on iOS stalls");
      await L.waitState(page, "sally sees walt", (x) => x.presence.includes("walt"));
      await L.waitState(wt, "walt sees sally", (x) => x.presence.includes("sally"));
    } finally {
      await context.close();
    }
  });

  // A real failure rather than a WebTransport replaced by an init script: the
  // page's QUIC packets go to a UDP port with no socket (the kernel answers
  // "port unreachable"), exactly what a network that blocks UDP does, while
  // its HTTP requests reach the relay through the front.
  test("WebTransport blocked (UDP), HTTP answers: the page falls back to WebRTC by itself, stays there for the tab, and calls a WebTransport page", async () => {
    const tcpOnly = await front(await L.freePort(), relay);
    try {
      const { context } = await browser(FB_HZ, "fb.wav");
      const page = await L.openPhone(context, tcpOnly);
      await page.fill("#f-user", "fern");
      await page.click("#signin-button");
      await assertOnlineOver(page, "webrtc", "WebRTC", 30000);
      assert.equal(switched(page).length, 1, `one switch: ${page.logs.join("\n")}`);
      assert.match(switched(page)[0], /WebTransport did not connect/);
      assert.equal(await page.getAttribute("#me-status", "title"), "WebRTC: WebTransport did not connect");
      assert.equal(await page.evaluate(() => sessionStorage.getItem("moq-phone.transport")), "webrtc");
      await L.until("fern alone on the gateway", async () => (await L.metrics(relay))["moq_relay_webrtc_peers"] === 1);

      // Audio both ways with a WebTransport page, hers over RTP.
      await L.callBothWays(page, wt, { a: "fern", b: "walt", aHz: FB_HZ, bHz: WT_HZ, tones: TONES, rtp: [page], hangUp: "callee" });

      // The choice sticks for the tab: after a reload the page goes straight to WebRTC.
      await page.reload();
      await L.signIn(page, "fern");
      await assertOnlineOver(page, "webrtc", "WebRTC");
      assert.equal(switched(page).length, 1, "no second WebTransport failure");
    } finally {
      await tcpOnly.close();
    }
  });

  test("WebTransport blocked, and the relay has no WebRTC gateway: the page goes back to WebTransport and keeps retrying, saying why", async () => {
    const bare = await L.startRelay(await L.freePort(), ["--webrtc-max-peers", "0"]);
    const tcpOnly = await front(await L.freePort(), bare);
    try {
      const { context } = await browser(FB_HZ, "fb-nogw.wav");
      const page = await L.openPhone(context, tcpOnly);
      await page.fill("#f-user", "gus");
      await page.click("#signin-button");
      await L.waitState(page, "back on WebTransport, waiting", (x) => x.connection === "waiting" && x.transport === "webtransport", 30000);
      assert.equal(switched(page).length, 1, "it tried WebRTC once");
      assert.ok(page.logs.some((l) => /^warning: back to WebTransport: This browser needs the relay's WebRTC gateway/.test(l)), page.logs.join("\n"));
      await L.until("the banner", async () => /no WebRTC gateway to fall back to\. Retrying/.test((await page.textContent("#banner-text")) ?? ""));
      assert.equal(await page.evaluate(() => sessionStorage.getItem("moq-phone.transport")), null, "the fallback is forgotten");
      // The next attempt is WebTransport again, failing as before, with no second switch.
      await L.until("another WebTransport attempt failing", async () => /cannot open a WebTransport session/.test((await page.textContent("#banner-text")) ?? ""), 20000);
      const s = await L.state(page);
      assert.equal(s.transport, "webtransport");
      assert.notEqual(s.connection, "unavailable");
      assert.equal(switched(page).length, 1);
    } finally {
      await tcpOnly.close();
      await bare.stop();
    }
  });

  // Real QUIC through a UDP relay that goes quiet: first for the open session
  // (its heartbeat misses; the page reconnects, its HTTP check passing), then
  // for the new session too, 3 s after it began (after its first heartbeats
  // were answered): the second miss is a stall.
  test("WebTransport stalls (packets stop, HTTP answers), twice: the page falls back to WebRTC by itself", async () => {
    const path = await front(await L.freePort(), relay, { udp: true });
    try {
      const { context } = await browser(FB_HZ, "fb-stall.wav");
      const page = await L.openPhone(context, path);
      await L.signIn(page, "stan");
      await assertOnlineOver(page, "webtransport", "WebTransport");
      assert.ok(path.flows() >= 1, "the session runs through the front");
      path.stall(3000);
      await assertOnlineOver(page, "webrtc", "WebRTC", 40000);
      const misses = page.logs.filter((l) => /^warning: relay not responding/.test(l));
      assert.equal(misses.length, 2, `two heartbeat misses:\n${page.logs.join("\n")}`);
      assert.equal(switched(page).length, 1);
      assert.match(switched(page)[0], /the WebTransport session stalled/);
      assert.ok(path.flows() >= 2, "it reconnected over WebTransport once before falling back");
      await L.waitState(page, "stan sees walt", (x) => x.presence.includes("walt"));
    } finally {
      await path.close();
    }
  });

  test("a relay restarting (GOAWAY, then close) does not make a WebTransport page fall back", async () => {
    const { context } = await browser(WT_HZ, "fb-restart.wav");
    const page = await L.openPhone(context, relay);
    await L.signIn(page, "ruth");
    await assertOnlineOver(page, "webtransport", "WebTransport");
    const port = relay.port;
    await relay.stop("SIGTERM");
    await L.waitState(page, "ruth notices", (x) => x.connection !== "online", 10000);
    relay = await L.startRelay(port);
    await L.waitState(page, "ruth back", (x) => x.connection === "online", 30000);
    await assertOnlineOver(page, "webtransport", "WebTransport");
    assert.deepEqual(switched(page), []);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("moq-phone.transport")), null);
  });
});

describe("WebRTC on a relay that requires tokens", () => {
  const dir = L.tmp;
  const key = join(dir, "fb-issuer.key.pem");
  const otherKey = join(dir, "fb-other.key.pem");
  let relay;
  let good;

  const token = (user, signingKey = key) => execFileSync(L.relayBin, ["token", "--key", signingKey, "--user", user, "--ttl", "10m"]).toString().trim();

  async function signInWithToken(page, user, tok) {
    await L.until("the token form", async () => (await page.getAttribute("#signin-form", "data-mode")) === "tokens");
    await page.fill("#f-user", user);
    if (!(await page.isVisible("#f-token"))) await page.click("details.advanced summary");
    await page.fill("#f-token", tok);
    await page.click("#signin-button");
  }

  /** Waits for the sign-in screen showing an error matching `re`. */
  async function signedOut(page, re) {
    let shown = "";
    await L.until(`the sign-in error ${re}`, async () => {
      shown = (await page.isVisible("#signin-error")) ? ((await page.textContent("#signin-error")) ?? "") : "";
      return (await page.isVisible("#screen-signin")) && re.test(shown);
    }).catch((e) => {
      e.message += `\nshown: ${JSON.stringify(shown)}\npage log:\n${page.logs.slice(-20).join("\n")}`;
      throw e;
    });
    assert.equal((await L.state(page)).connection, "offline");
  }

  before(async () => {
    execFileSync(L.relayBin, ["keygen", "--out", key]);
    execFileSync(L.relayBin, ["keygen", "--out", otherKey]);
    relay = await L.startRelay(await L.freePort(), ["--auth-key", join(dir, "fb-issuer.key.pub.pem")]);
    const { context } = await browser(WT_HZ, "fb-tok.wav");
    good = await L.openPhone(context, relay, "?transport=webrtc");
    await signInWithToken(good, "alice", token("alice"));
    await assertOnlineOver(good, "webrtc", "WebRTC");
    // Any moment alice's page is not online from here on is a disturbance.
    await good.evaluate(() => {
      window.__drops = 0;
      setInterval(() => {
        if (window.__moqTest.state().connection !== "online") window.__drops++;
      }, 20);
    });
  });

  after(async () => {
    for (const b of browsers.splice(0)) await b.browser.close();
    await relay?.stop();
  });

  // The first is refused at POST /webrtc (401); the second gets its session and then its registration refused.
  for (const [what, user, tok, re, post] of [
    ["a token signed by another key", "mallory", () => token("mallory", otherKey), /^The relay refused your token/, 401],
    ["a token for another user", "bob", () => token("alice"), /^The relay refused your token: it does not let you sign in as "bob"/, 201],
  ]) {
    test(`${what} over WebRTC: signed out with the refusal; another WebRTC page on the relay is undisturbed`, async () => {
      const { context } = await browser(FB_HZ, `fb-bad-${user}.wav`);
      const page = await L.openPhone(context, relay, "?transport=webrtc");
      const posts = [];
      page.on("response", (r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/webrtc" && posts.push(r.status()));
      await signInWithToken(page, user, tok());
      await signedOut(page, re);
      assert.deepEqual(posts, [post], "one offer to the gateway, no retry");
      assert.equal(await good.evaluate(() => window.__drops), 0, "alice stayed online");
      await L.until("only alice on the gateway", async () => (await L.metrics(relay))["moq_relay_webrtc_peers"] === 1);
    });
  }

  test("the undisturbed page still calls: alice (WebRTC) rings carol (WebTransport, good token)", async () => {
    const { context } = await browser(FB_HZ, "fb-carol.wav");
    const carol = await L.openPhone(context, relay);
    await signInWithToken(carol, "carol", token("carol"));
    await assertOnlineOver(carol, "webtransport", "WebTransport");
    await L.waitState(good, "alice sees carol", (x) => x.presence.includes("carol"));
    const sid = await L.connectCall(good, carol, "carol");
    await L.hangUpCall(carol, good, sid);
    assert.equal(await good.evaluate(() => window.__drops), 0, "alice stayed online throughout");
  });
});
