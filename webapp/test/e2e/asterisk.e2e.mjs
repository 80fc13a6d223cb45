// The browser phone and an Asterisk PBX through chan_moq: a real Asterisk 22
// (chan_moq/harness/asterisk.sh, a Debian sid chroot) in its own network
// namespace, our moq-relay and headless Chromium in that namespace too, so
// all three meet on its 127.0.0.1:4443. Started once for the file.
//
// Extension 100 answers, plays a 440 Hz tone and then echoes the caller's
// fake microphone (660 Hz); a page must hear the one and then the other,
// and its hangup must leave Asterisk without channels. alice calls it over
// WebTransport, bob over the WebRTC fallback (issue 14: ?transport=webrtc,
// his audio rides RTP through the relay's gateway). Then Asterisk calls
// carol (WebRTC): `channel originate Local/dial-carol@moq-test extension
// 100@moq-test`, whose dial-carol runs Dial(MOQ/carol); her page rings, she
// answers and hears the same Playback and Echo, and Dial() reports ANSWER
// once she hangs up. The same for bob, after his call: a WebRTC page's next
// call must not start with the end of its last one (engine.ts keeps the
// remote track's <audio> element draining between calls).
//
// Root only (chroot, namespaces) and needs target/debug/libchan_moq.so
// (cargo build -p chan_moq; MOQ_CHAN_MOQ_SO overrides): fails without them,
// unless MOQ_TEST_ASTERISK=0 skips it deliberately (as it does chan_moq's
// Rust tests). The first run builds the chroot (asterisk.sh build: a
// download, minutes).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

const repo = resolve(L.webappDir, "..");
const harness = join(repo, "chan_moq/harness/asterisk.sh");
const moduleSo = process.env.MOQ_CHAN_MOQ_SO ?? join(repo, "target/debug/libchan_moq.so");
/** Harness instance: the chroot's /opt/<name> and the network namespace. */
const INSTANCE = "web-ast";
/** The relay as the pages see it, inside the namespace (L.openPhone takes a relay's `base`). */
const RELAY = { base: "http://127.0.0.1:4443/" };

const PLAYBACK_HZ = 440;
const PLAYBACK_S = 3;
const MIC_HZ = 660;
const TONES = [PLAYBACK_HZ, MIC_HZ, 550, 1000];
/** Analysis windows (s): the tones heard, and what comes before the Playback. */
const WIN = 0.25;
const ONSET_WIN = 0.02;

const MOQ_CONF = "[general]\nrelay = moqt://127.0.0.1:4443\ninsecure = yes\ncontext = moq-test\ncodecs = slin48\nreconnect_ms = 100\n";
/** What Dial(MOQ/<user>) logs to messages.log when it returns, after the user. */
const RESULT = "DIAL-RESULT";
const DIALPLAN = `exten => 100,1,Answer()
 same => n,Playback(/opt/${INSTANCE}/tone440)
 same => n,Echo()
exten => _dial-.,1,Dial(MOQ/\${EXTEN:5},30,g)
 same => n,Log(NOTICE,${RESULT} \${EXTEN:5} \${DIALSTATUS} \${HANGUPCAUSE})`;

/** Skipped only when asked (MOQ_TEST_ASTERISK=0); a missing prerequisite fails the tests. */
const skip = process.env.MOQ_TEST_ASTERISK === "0" ? "MOQ_TEST_ASTERISK=0: the Asterisk tests are skipped" : false;

function requirePrerequisites() {
  const skipHint = "or skip the Asterisk tests with MOQ_TEST_ASTERISK=0";
  assert.equal(process.getuid?.(), 0, `this test runs Asterisk in a chroot and network namespaces, which needs root: run npm run e2e as root, ${skipHint}`);
  assert.ok(existsSync(moduleSo), `${moduleSo} not found: build it with cargo build -p chan_moq (or set MOQ_CHAN_MOQ_SO), ${skipHint}`);
}

/** Runs asterisk.sh for this instance; resolves with its exit code and output. */
function sh(args, env = {}) {
  return new Promise((res, rej) => {
    const p = spawn("bash", [harness, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, MOQ_ASTERISK_INSTANCE: INSTANCE, ...env } });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.once("error", rej);
    p.once("close", (code) => res({ code, out, err }));
  });
}

/** asterisk.sh that must succeed; resolves with its stdout. */
async function ok(args, env) {
  const r = await sh(args, env);
  if (r.code !== 0) throw new Error(`asterisk.sh ${args.join(" ")} exited ${r.code}:\n${r.out}${r.err}`);
  return r.out;
}

const cli = (cmd) => ok(["cli", cmd]);

/** Labels each `win`-second window of `x`: "-" (silence), the tone whose share of power exceeds `share`, or "?". */
function windows(x, rate, win = WIN, share = 0.9) {
  const n = Math.round(win * rate);
  const out = [];
  for (let i = 0; i + n <= x.length; i += n) {
    const t = L.dominantTone(x.subarray(i, i + n), rate, TONES);
    out.push(t.rms < 0.01 ? "-" : t.share > share ? t.freq : "?");
  }
  return out;
}

/** Set up once for the file (before), torn down once (after). */
let relay;
let browser;
/** asterisk.sh info: ROOT, MESSAGES_LOG, … */
let info = {};
/** Signed-in pages by user, made on first use. */
const pages = new Map();
let failed = false;

/** messages.log of the instance ("" before Asterisk wrote one). */
function messages() {
  try {
    return readFileSync(info.MESSAGES_LOG, "utf8");
  } catch {
    return "";
  }
}

/** Prints what a failure needs: each page's log, the relay's, the end of messages.log. */
function dumpDiagnostics() {
  const logs = [...pages].map(([user, p]) => `--- ${user}'s page log:\n${p.logs.slice(-30).join("\n")}`).join("\n");
  // (Printed: a changed e.message would not show in an AssertionError's stack.)
  console.error(`${logs}\n--- relay log:\n${relay?.log.join("").slice(-3000) ?? ""}\n--- messages.log (tail):\n${messages().split("\n").slice(-40).join("\n")}`);
}

/**
 * A test of this file. On failure it prints the diagnostics (then the
 * after hook does not add asterisk.sh stop's status to the verdict) and
 * hangs up what the test left, so the next test starts without channels.
 */
function scenario(name, body) {
  test(name, { timeout: 120_000 }, async (t) => {
    try {
      await body(t);
    } catch (e) {
      failed = true;
      dumpDiagnostics();
      await cli("channel request hangup all").catch(() => undefined);
      throw e;
    }
  });
}

/**
 * `user`'s page (its own browser context: its own sign-in settings), signed
 * in over `transport` ("webtransport" or "webrtc", forced by ?transport=).
 */
async function phone(user, transport) {
  let page = pages.get(user);
  if (!page) {
    const context = pages.size === 0 ? browser.context : await browser.browser.newContext({ viewport: { width: 390, height: 844 }, permissions: ["microphone"] });
    page = await L.openPhone(context, RELAY, `?transport=${transport}`);
    page.transport = transport;
    pages.set(user, page);
    await L.signIn(page, user);
  }
  const s = await L.state(page);
  assert.equal(s.transport, transport, `${user}'s page should be on ${transport}`);
  await L.toHome(page);
  return page;
}

/** Waits until Asterisk has a MOQ channel in direction `dir` ("in"/"out") with `user` in call `sid`. */
function moqChannel(dir, user, sid) {
  const re = new RegExp(`^MOQ/\\S+\\s+${dir}\\s+${user}\\b.*${sid}`);
  return L.until(`Asterisk's ${dir} MOQ channel with ${user}, session ${sid}`, async () => (await cli("moq show channels")).split("\n").some((l) => re.test(l)), 10000, 100);
}

/** Starts recording what `page` plays (silence until its call's audio starts): call it before the call is set up. */
const startRecording = (page) => page.evaluate(() => window.__moqTest.record(true));
const recorded = (page) => page.evaluate(() => window.__moqTest.recorded());

/**
 * Once `page`'s call is established, records 8 s more (Playback, 3 s, then
 * Echo()) and checks what it played since startRecording: nothing but
 * silence before the 440 Hz Playback (20 ms windows), the Playback for about
 * its length, then the page's own 660 Hz coming back; on WebRTC, that it all
 * went over RTP.
 */
async function assertPlaybackThenEcho(t, page, who) {
  const atEstablished = await recorded(page);
  await L.until("8 s of playout recorded", async () => (await recorded(page)) >= atEstablished + 8 * 48000, 30000, 100);
  const r = await L.recording(page);
  const onset = windows(r.samples, r.rate, ONSET_WIN, 0.6);
  const first = onset.indexOf(PLAYBACK_HZ);
  assert.ok(first >= 0, `${who} should hear the ${PLAYBACK_HZ} Hz Playback; heard, in ${ONSET_WIN} s windows: ${onset.join(" ")}`);
  const lead = onset.slice(0, first).filter((l) => l !== "-");
  const leadMs = Math.round(lead.length * ONSET_WIN * 1000);
  assert.ok(!lead.includes(MIC_HZ) && lead.length <= 2, `${who}: the first sound should be the ${PLAYBACK_HZ} Hz Playback, not ${leadMs} ms of ${lead.join(" ")} before it (${MIC_HZ} Hz: the page's own tone from an Echo())`);
  const w = windows(r.samples.subarray(Math.round(first * ONSET_WIN * r.rate)), r.rate);
  const seen = w.join(" ");
  t.diagnostic(`${who} heard, in ${WIN} s windows from the Playback's start: ${seen}`);
  // The Playback lasts until Echo() sends the page's tone back (a glitchy window may fall between).
  let echoAt = w.indexOf(MIC_HZ);
  if (echoAt < 0) echoAt = w.length;
  const playbackS = w.slice(0, echoAt).filter((l) => l === PLAYBACK_HZ).length * WIN;
  assert.ok(playbackS >= PLAYBACK_S - 1, `${who}: the Playback should last about ${PLAYBACK_S} s, heard ${playbackS} s of ${PLAYBACK_HZ} Hz: ${seen}`);
  const echoS = w.slice(echoAt).filter((l) => l === MIC_HZ).length * WIN;
  assert.ok(echoS >= 2, `${who}: the page's ${MIC_HZ} Hz should come back from Echo() after the Playback, heard ${echoS} s of it: ${seen}`);
  if (page.transport === "webrtc") await L.assertRtpMedia(page, who);
}

/**
 * Asterisk calls `user` (on `page`): `channel originate Local/dial-<user>`,
 * whose dial-<user> runs Dial(MOQ/<user>), with extension 100 on the
 * Local channel's other end once the page answers. The page rings, answers,
 * hears Playback then Echo(), hangs up; Dial() reports ANSWER.
 */
async function dialledByAsterisk(t, page, user) {
  const before = (await L.state(page)).call?.sid;
  const results = () => messages().split("\n").filter((l) => l.includes(`${RESULT} ${user} `));
  const resultsBefore = results().length;
  await cli(`channel originate Local/dial-${user}@moq-test extension 100@moq-test`);
  const ring = await L.waitState(page, `${user}'s page ringing`, (s) => s.call && s.call.sid !== before && s.call.phase === "ringing", 20000);
  assert.equal(ring.call.direction, "incoming");
  assert.equal(ring.call.peer, "pbx");
  const sid = ring.call.sid;
  await moqChannel("out", user, sid);
  await startRecording(page);
  await page.click("#answer");
  await L.waitState(page, "the call established", (s) => s.call?.sid === sid && s.call.phase === "established");
  await assertPlaybackThenEcho(t, page, user);
  await hangUpLeavingNoChannels(page, sid);
  const result = await L.until(`Dial(MOQ/${user})'s result in messages.log`, () => results()[resultsBefore], 10000, 100);
  assert.match(result, new RegExp(`${RESULT} ${user} ANSWER 16\\b`), "Dial() answered, then a normal clearing");
}

/** The page hangs up call `sid`; the call ends as its own hangup and Asterisk is left without channels. */
async function hangUpLeavingNoChannels(page, sid) {
  await page.click("#hangup");
  const end = await L.waitState(page, "the call ended", (s) => s.call?.sid === sid && s.call.phase === "ended");
  assert.deepEqual(end.call.ended, { reason: "hangup", by_peer: false });
  await L.until("no channels left in Asterisk", async () => /^0 active channels$/m.test(await cli("core show channels count")), 10000, 100);
}

describe("browser ↔ Asterisk (chan_moq)", { skip }, () => {
  before(
    async () => {
      try {
        requirePrerequisites();
        const built = await sh(["build"]);
        if (built.code !== 0) {
          throw new Error(`the Asterisk chroot could not be built: asterisk.sh build (root, Debian's mirror) exited ${built.code}, or skip the Asterisk tests with MOQ_TEST_ASTERISK=0:\n${built.out}${built.err}`);
        }
        await sh(["stop"]); // leftovers of an earlier run of this instance, if any
        info = Object.fromEntries((await ok(["info"])).trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
        const confDir = join(L.tmp, "asterisk-conf");
        mkdirSync(confDir, { recursive: true });
        writeFileSync(join(confDir, "moq.conf"), MOQ_CONF);
        await ok(["conf", confDir], { MOQ_DIALPLAN: DIALPLAN });
        // 8 kHz: what Asterisk's format_wav plays.
        L.writeToneWav("tone440.wav", PLAYBACK_HZ, { toneS: PLAYBACK_S, amplitude: 8000 / 32767, rate: 8000, path: join(info.ROOT, "opt", INSTANCE, "tone440.wav") });
        await ok(["install-module", moduleSo]);
        await ok(["start"]);
        // moq-relay serving the web phone on 127.0.0.1:4443 inside the namespace
        // (its WebRTC gateway on a port of the namespace's loopback).
        relay = L.spawnRelay("127.0.0.1:4443", ["ip", "netns", "exec", INSTANCE]);
        await relay.listening;
        // Asterisk reports no events to the test: poll its CLI (with a deadline).
        await L.until("chan_moq registered with the relay", async () => {
          if (relay.proc.exitCode !== null) throw new Error(`relay exited: ${relay.log.join("")}`);
          return (await cli("moq show status")).includes("Registered:   yes");
        }, 20000, 100);
        // Chromium in the namespace: playwright drives it over inherited pipes,
        // which `ip netns exec` passes on.
        const wrapper = join(L.tmp, "chromium-netns.sh");
        writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${INSTANCE} ${L.chromiumPath} "$@"\n`);
        chmodSync(wrapper, 0o755);
        browser = await L.launchBrowser(L.writeToneWav("asterisk-mic.wav", MIC_HZ, { toneS: 60 }), { executablePath: wrapper });
      } catch (e) {
        failed = true;
        dumpDiagnostics();
        throw e;
      }
    },
    { timeout: 600_000 },
  );

  after(async () => {
    await browser?.browser.close().catch(() => undefined);
    await relay?.stop();
    const stop = await sh(["stop"]);
    // asterisk.sh stop fails if Asterisk did not exit cleanly (e.g. a crash at shutdown).
    if (!failed && stop.code !== 0) assert.fail(`asterisk.sh stop exited ${stop.code}:\n${stop.out}${stop.err}`);
  });

  for (const [user, transport] of [
    ["alice", "webtransport"],
    ["bob", "webrtc"],
  ]) {
    scenario(`${user} (${transport}) calls pbx/100: hears its Playback, then the page's own tone from Echo(); the page's hangup leaves no channels`, async (t) => {
      const page = await phone(user, transport);
      if (transport === "webrtc") assert.equal(await page.textContent("#me-status-text"), "Online · WebRTC");
      await startRecording(page);
      const sid = await L.dial(page, "pbx/100");
      await L.waitState(page, "the call established", (s) => s.call?.sid === sid && s.call.phase === "established", 20000);
      await moqChannel("in", user, sid);
      await assertPlaybackThenEcho(t, page, user);
      await hangUpLeavingNoChannels(page, sid);
    });
  }

  scenario("Asterisk dials carol (webrtc) with Dial(MOQ/carol): her page rings, she answers and hears Playback then Echo(); her hangup leaves no channels", async (t) => {
    await dialledByAsterisk(t, await phone("carol", "webrtc"), "carol");
  });

  scenario(
    "bob (webrtc), dialled after his call to pbx/100, hears the new call's Playback first, not the end of his last call's Echo()",
    async (t) => {
      assert.ok(pages.has("bob"), "bob's call to pbx/100 (an earlier test) comes first");
      await dialledByAsterisk(t, await phone("bob", "webrtc"), "bob");
    },
  );
});
