// The browser phone calls an Asterisk extension through chan_moq: a real
// Asterisk 22 (chan_moq/harness/asterisk.sh, a Debian sid chroot) in its own
// network namespace, our moq-relay and headless Chromium in that namespace
// too, so all three meet on its 127.0.0.1:4443. alice dials pbx/100, which
// answers, plays a 440 Hz tone and then echoes her fake microphone (660 Hz);
// the page must hear the one and then the other, and its hangup must leave
// Asterisk without channels.
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
import { describe, test } from "node:test";
import * as L from "./lib.mjs";

const repo = resolve(L.webappDir, "..");
const harness = join(repo, "chan_moq/harness/asterisk.sh");
const moduleSo = process.env.MOQ_CHAN_MOQ_SO ?? join(repo, "target/debug/libchan_moq.so");
/** Harness instance: the chroot's /opt/<name> and the network namespace. */
const INSTANCE = "web-ast";
const BASE = "http://127.0.0.1:4443/";

const PLAYBACK_HZ = 440;
const PLAYBACK_S = 3;
const MIC_HZ = 660;
const TONES = [PLAYBACK_HZ, MIC_HZ, 550, 1000];
/** Analysis window (s). */
const WIN = 0.25;

const MOQ_CONF = "[general]\nrelay = moqt://127.0.0.1:4443\ninsecure = yes\ncontext = moq-test\ncodecs = slin48\nreconnect_ms = 100\n";
const DIALPLAN = `exten => 100,1,Answer()
 same => n,Playback(/opt/${INSTANCE}/tone440)
 same => n,Echo()`;

/** Skipped only when asked (MOQ_TEST_ASTERISK=0); a missing prerequisite fails the test. */
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

/** Labels each WIN-second window of `x`: "-" (silence), a frequency, or "?" (no tone dominates). */
function windows(x, rate) {
  const n = Math.round(WIN * rate);
  const out = [];
  for (let i = 0; i + n <= x.length; i += n) {
    const t = L.dominantTone(x.subarray(i, i + n), rate, TONES);
    out.push(t.rms < 0.01 ? "-" : t.share > 0.9 ? t.freq : "?");
  }
  return out;
}

describe("browser → Asterisk (chan_moq)", () => {
  test("alice calls pbx/100: hears its Playback, then her own voice from Echo(); her hangup leaves no channels", { skip, timeout: 600_000 }, async (t) => {
    requirePrerequisites();
    let relay;
    let browser;
    let page;
    let passed = false;
    try {
      const built = await sh(["build"]);
      if (built.code !== 0) {
        throw new Error(`the Asterisk chroot could not be built: asterisk.sh build (root, Debian's mirror) exited ${built.code}, or skip the Asterisk tests with MOQ_TEST_ASTERISK=0:\n${built.out}${built.err}`);
      }
      await sh(["stop"]); // leftovers of an earlier run of this instance, if any
      const info = Object.fromEntries((await ok(["info"])).trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      const confDir = join(L.tmp, "asterisk-conf");
      mkdirSync(confDir, { recursive: true });
      writeFileSync(join(confDir, "moq.conf"), MOQ_CONF);
      await ok(["conf", confDir], { MOQ_DIALPLAN: DIALPLAN });
      // 8 kHz: what Asterisk's format_wav plays.
      L.writeToneWav("tone440.wav", PLAYBACK_HZ, { toneS: PLAYBACK_S, amplitude: 8000 / 32767, rate: 8000, path: join(info.ROOT, "opt", INSTANCE, "tone440.wav") });
      await ok(["install-module", moduleSo]);
      await ok(["start"]);
      // moq-relay serving the web phone on 127.0.0.1:4443 inside the namespace.
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
      page = await browser.context.newPage();
      page.logs = [];
      page.on("console", (m) => page.logs.push(`${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => page.logs.push(`pageerror: ${e.message}`));
      assert.ok((await page.goto(BASE))?.ok(), "the web phone from the relay in the namespace");
      await L.signIn(page, "alice");

      const sid = await L.dial(page, "pbx/100");
      await L.waitState(page, "the call established", (s) => s.call?.sid === sid && s.call.phase === "established", 20000);
      await page.evaluate(() => window.__moqTest.record(true));
      await L.until(`Asterisk's MOQ channel from alice, session ${sid}`, async () => (await cli("moq show channels")).split("\n").some((l) => l.includes(sid) && /\balice\b/.test(l)), 10000, 100);

      // Playback (3 s), then Echo(): 8 s covers both.
      await L.until("8 s of playout recorded", async () => (await page.evaluate(() => window.__moqTest.recorded())) >= 8 * 48000, 30000, 100);
      const r = await L.recording(page);
      const w = windows(r.samples, r.rate);
      const seen = w.join(" ");
      t.diagnostic(`heard, in ${WIN} s windows: ${seen}`);
      const first = w.findIndex((l) => l !== "-");
      assert.equal(w[first], PLAYBACK_HZ, `the first sound should be the ${PLAYBACK_HZ} Hz Playback; heard, in ${WIN} s windows: ${seen}`);
      // The Playback lasts until Echo() sends alice's tone back (a glitchy window may fall between).
      let echoAt = w.indexOf(MIC_HZ);
      if (echoAt < 0) echoAt = w.length;
      const playbackS = w.slice(first, echoAt).filter((l) => l === PLAYBACK_HZ).length * WIN;
      assert.ok(playbackS >= PLAYBACK_S - 1, `the Playback should last about ${PLAYBACK_S} s, heard ${playbackS} s of ${PLAYBACK_HZ} Hz: ${seen}`);
      const echoS = w.slice(echoAt).filter((l) => l === MIC_HZ).length * WIN;
      assert.ok(echoS >= 2, `alice's ${MIC_HZ} Hz should come back from Echo() after the Playback, heard ${echoS} s of it: ${seen}`);

      await page.click("#hangup");
      const end = await L.waitState(page, "the call ended", (s) => s.call?.sid === sid && s.call.phase === "ended");
      assert.deepEqual(end.call.ended, { reason: "hangup", by_peer: false });
      await L.until("no channels left in Asterisk", async () => /^0 active channels$/m.test(await cli("core show channels count")), 10000, 100);
      passed = true;
    } catch (e) {
      const info = await sh(["info"]).catch(() => ({ out: "" }));
      const messages = /^MESSAGES_LOG=(.*)$/m.exec(info.out)?.[1];
      let tail = "";
      try {
        if (messages) tail = readFileSync(messages, "utf8").split("\n").slice(-40).join("\n");
      } catch {}
      // (Printed: a changed e.message would not show in an AssertionError's stack.)
      console.error(`--- page log:\n${page?.logs.slice(-30).join("\n") ?? ""}\n--- relay log:\n${relay?.log.join("").slice(-3000) ?? ""}\n--- messages.log (tail):\n${tail}`);
      throw e;
    } finally {
      await browser?.browser.close().catch(() => undefined);
      await relay?.stop();
      const stop = await sh(["stop"]);
      // asterisk.sh stop fails if Asterisk did not exit cleanly (e.g. a crash at shutdown).
      if (passed && stop.code !== 0) assert.fail(`asterisk.sh stop exited ${stop.code}:\n${stop.out}${stop.err}`);
    }
  });
});
