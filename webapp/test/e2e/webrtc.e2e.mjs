// The WebRTC fallback (issue 14, docs/design/webrtc.md) in real headless
// Chromium against a real moq-relay's gateway (POST /webrtc, ICE-lite on
// loopback: launchBrowser passes --allow-loopback-in-peer-connection and
// --disable-features=WebRtcHideLocalIpsWithMdns). A page forced onto WebRTC
// (?transport=webrtc) signs in and registers; it calls a WebTransport page
// and is called by one, with each side hearing the other's fake-microphone
// tone — the WebRTC side's audio rides RTP (its mic on the RTP sender, the
// peer's audio from the remote track), not WebCodecs frames — and mutes and
// holds; it calls the CLI phone (moq-phone answer), whose recording holds
// its tone while it hears the CLI's, and is called by it (moq-phone call);
// calling an unknown user ends the call as over WebTransport; a page without
// WebTransport (deleted by an init script) picks WebRTC by itself, and two
// such pages call each other.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

const RTC_HZ = 440;
const WT_HZ = 740;
const AUTO_HZ = 620;
const TONES = [RTC_HZ, WT_HZ, AUTO_HZ];

let relay;
const browsers = [];
/** Pages: `rtc` on WebRTC (?transport=webrtc), `wt` on WebTransport. */
let rtc;
let wt;

async function browser(hz, name) {
  const b = await L.launchBrowser(L.writeToneWav(name, hz));
  browsers.push(b);
  return b;
}

const assertTone = L.assertTone;
const assertHears = (page, hz, who) => L.assertHears(page, hz, who, TONES);

async function assertSilence(page, who) {
  const t = L.dominantTone(await L.hear(page), 48000, TONES);
  assert.ok(t.rms < 0.005, `${who} should hear silence, got ${JSON.stringify(t)}`);
}

const connect = L.connectCall;
const hangUp = L.hangUpCall;
const assertRtpMedia = L.assertRtpMedia;
const metrics = () => L.metrics(relay);

async function rtpFrames() {
  const m = await metrics();
  return { in: m['moq_relay_webrtc_rtp_frames_total{dir="in"}'] ?? 0, out: m['moq_relay_webrtc_rtp_frames_total{dir="out"}'] ?? 0 };
}

/** After a call between rita (WebRTC) and a CLI phone recording to `rec`: each heard the other's tone, rita's over RTP. */
async function assertHeardWithCli(rec) {
  const r = await L.recording(rtc);
  const cut = Math.round(0.25 * r.rate);
  assertTone(L.dominantTone(r.samples.subarray(cut, r.samples.length - cut), r.rate, TONES), AUTO_HZ, "rita (WebRTC) hearing moq-phone");
  const w = L.readWav(rec);
  assert.ok(w.samples.length > w.rate, `the CLI recorded only ${w.samples.length} samples`);
  assertTone(L.dominantTone(w.samples.subarray(w.rate / 2), w.rate, TONES), RTC_HZ, "moq-phone hearing rita (WebRTC)");
  await assertRtpMedia(rtc, "rita");
}

describe("WebRTC fallback through the relay's gateway", () => {
  before(async () => {
    relay = await L.startRelay(await L.freePort());
    const R = await browser(RTC_HZ, "rtc.wav");
    const W = await browser(WT_HZ, "wt.wav");
    rtc = await L.openPhone(R.context, relay, "?transport=webrtc");
    wt = await L.openPhone(W.context, relay);
  });

  after(async () => {
    for (const b of browsers) await b.browser.close();
    await relay?.stop();
  });

  test("?transport=webrtc: the page signs in over WebRTC and registers", async () => {
    await L.signIn(rtc, "rita", "Rita WebRTC");
    await L.signIn(wt, "walt");
    const s = await L.state(rtc);
    assert.equal(s.transport, "webrtc");
    assert.equal(await rtc.textContent("#me-status-text"), "Online · WebRTC");
    assert.equal((await L.state(wt)).transport, "webtransport");
    // Registered: each sees the other, with the WebRTC page's display name.
    await L.waitState(rtc, "rita sees walt", (x) => x.presence.includes("walt"));
    await L.waitState(wt, "walt sees rita", (x) => x.presence.includes("rita"));
    await L.until("rita's display name in walt's list", async () => (await wt.textContent('#presence li[data-user="rita"] .name')) === "Rita WebRTC");
    const m = await metrics();
    assert.equal(m["moq_relay_webrtc_peers"], 1, "one browser on the gateway");
  });

  test("WebRTC calls WebTransport: audio both ways over RTP, mute, hold, the callee hangs up", async () => {
    const before = await rtpFrames();
    const sid = await connect(rtc, wt, "walt");
    await assertHears(wt, RTC_HZ, "walt (WebTransport) hearing rita (WebRTC)");
    await assertHears(rtc, WT_HZ, "rita (WebRTC) hearing walt (WebTransport)");
    await assertRtpMedia(rtc, "rita");
    const after = await rtpFrames();
    assert.ok(after.in - before.in >= 50, `the gateway turned rita's RTP into datagrams: ${JSON.stringify({ before, after })}`);
    assert.ok(after.out - before.out >= 50, `the gateway turned walt's datagrams into RTP: ${JSON.stringify({ before, after })}`);
    // Mute on the WebRTC side: its track is disabled, the RTP sender sends silence.
    await rtc.click("#mute");
    await L.waitState(rtc, "muted", (x) => x.call?.muted === true);
    await assertSilence(wt, "walt while rita is muted");
    await rtc.click("#mute");
    await L.waitState(rtc, "unmuted", (x) => x.call?.muted === false);
    await assertHears(wt, RTC_HZ, "walt after rita unmuted");
    // Hold on the WebRTC side: audio-out unbound and the track off the sender; then back.
    await rtc.click("#hold");
    await L.waitState(wt, "walt sees the hold", (x) => x.call?.peerHeld === true);
    await assertSilence(wt, "walt while rita holds");
    await assertSilence(rtc, "rita while she holds");
    await rtc.click("#hold");
    await L.waitState(wt, "walt sees the unhold", (x) => x.call?.peerHeld === false);
    await assertHears(wt, RTC_HZ, "walt after rita resumed");
    await assertHears(rtc, WT_HZ, "rita after she resumed");
    await hangUp(wt, rtc, sid);
  });

  test("WebTransport calls WebRTC: audio both ways, the caller hangs up", async () => {
    await L.toHome(rtc);
    const sid = await connect(wt, rtc, "rita");
    assert.equal(await rtc.textContent("#call-peer"), "walt");
    await assertHears(rtc, WT_HZ, "rita (WebRTC) hearing walt (WebTransport)");
    await assertHears(wt, RTC_HZ, "walt (WebTransport) hearing rita (WebRTC)");
    await assertRtpMedia(rtc, "rita");
    await hangUp(wt, rtc, sid);
  });

  test("WebRTC calls moq-phone (CLI): it answers, plays a tone, hangs up after 3 s; audio both ways", async () => {
    await L.toHome(rtc);
    const rec = join(L.tmp, "carol-heard.wav");
    const carol = L.startCliPhone(relay, ["--as", "carol", "answer", "--play", L.writeToneWav("carol.wav", AUTO_HZ, { toneS: 10 }), "--record", rec, "--hangup-after", "3"]);
    try {
      await L.waitState(rtc, "rita sees carol online", (s) => s.presence.includes("carol"));
      const sid = await L.dial(rtc, "carol");
      await L.waitState(rtc, "established", (x) => x.call?.sid === sid && x.call.phase === "established");
      await rtc.evaluate(() => window.__moqTest.record(true));
      const end = await L.waitState(rtc, "ended", (x) => x.call?.sid === sid && x.call.phase === "ended", 20000);
      assert.deepEqual(end.call.ended, { reason: "hangup", by_peer: true });
      await carol.line(/^ended: hangup$/);
      assert.equal(await carol.exited, 0);
      await assertHeardWithCli(rec);
    } finally {
      await carol.kill();
    }
  });

  test("moq-phone (CLI) calls WebRTC: the page answers, the CLI hangs up after 3 s; audio both ways", async () => {
    await L.toHome(rtc);
    const rec = join(L.tmp, "dave-heard.wav");
    const dave = L.startCliPhone(relay, ["--as", "dave", "call", "rita", "--play", L.writeToneWav("dave.wav", AUTO_HZ, { toneS: 10 }), "--record", rec, "--hangup-after", "3"]);
    try {
      const sid = (await dave.line(/^session [0-9a-f]{32}$/)).split(" ")[1];
      await L.waitState(rtc, "rita ringing", (x) => x.call?.sid === sid && x.call.phase === "ringing", 20000);
      assert.equal(await rtc.textContent("#call-peer"), "dave");
      await rtc.click("#answer");
      await L.waitState(rtc, "established", (x) => x.call?.sid === sid && x.call.phase === "established");
      await rtc.evaluate(() => window.__moqTest.record(true));
      await dave.line(/^established with device web-/);
      const end = await L.waitState(rtc, "ended", (x) => x.call?.sid === sid && x.call.phase === "ended", 20000);
      assert.deepEqual(end.call.ended, { reason: "hangup", by_peer: true });
      await dave.line(/^ended: hangup$/);
      assert.equal(await dave.exited, 0);
      await assertHeardWithCli(rec);
    } finally {
      await dave.kill();
    }
  });

  test("WebRTC calls an unknown user: the call ends 'offline' with the same message as over WebTransport", async () => {
    await L.toHome(rtc);
    const sid = await L.dial(rtc, "nobody");
    const s = await L.waitState(rtc, "the call ends", (x) => x.call?.sid === sid && x.call.phase === "ended");
    assert.equal(s.call.ended.reason, "offline");
    assert.match(await rtc.textContent('[data-flag="end"]'), /nobody is not online/);
    assert.equal((await L.state(rtc)).connection, "online", "the session goes on");
  });

  test("no WebTransport (deleted by an init script): the page picks WebRTC by itself and calls another such page", async () => {
    const pages = [];
    for (const [hz, name] of [
      [AUTO_HZ, "auto.wav"],
      [RTC_HZ, "auto2.wav"],
    ]) {
      const { context } = await browser(hz, name);
      await context.addInitScript(() => delete globalThis.WebTransport);
      pages.push(await L.openPhone(context, relay));
    }
    const [ada, ben] = pages;
    assert.equal(await ada.evaluate(() => typeof globalThis.WebTransport), "undefined");
    await L.signIn(ada, "ada");
    await L.signIn(ben, "ben");
    for (const p of pages) {
      assert.equal((await L.state(p)).transport, "webrtc");
      assert.equal(await p.textContent("#me-status-text"), "Online · WebRTC");
    }
    await L.waitState(ada, "ada sees ben", (x) => x.presence.includes("ben"));
    const sid = await connect(ada, ben, "ben");
    // Both legs on the gateway: RTP → datagrams → RTP each way.
    await assertHears(ben, AUTO_HZ, "ben hearing ada (both WebRTC)");
    await assertHears(ada, RTC_HZ, "ada hearing ben (both WebRTC)");
    for (const [p, who] of [
      [ada, "ada"],
      [ben, "ben"],
    ])
      await assertRtpMedia(p, who);
    await hangUp(ben, ada, sid);
    assert.equal((await metrics())["moq_relay_webrtc_peers"], 3, "rita, ada and ben on the gateway");
  });
});
