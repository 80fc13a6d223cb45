// The browser phone and the Rust CLI phone (target/debug/moq-phone) call
// each other through moq-relay: browser → moq-phone and moq-phone →
// browser, with audio checked both ways (the browser decodes the CLI's WAV
// tone; the CLI records the browser's fake-microphone tone).
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

const BROWSER_HZ = 440;
const CLI_HZ = 620;
const TONES = [BROWSER_HZ, CLI_HZ, 740];

let relay;
let A;
let page;
let cliWav;

/** What the browser played during the call, minus 0.25 s at each end. */
async function browserHeard() {
  const r = await L.recording(page);
  const cut = Math.round(0.25 * r.rate);
  assert.ok(r.samples.length > 4 * cut, `recorded only ${r.samples.length} samples`);
  return L.dominantTone(r.samples.subarray(cut, r.samples.length - cut), r.rate, TONES);
}

function cliHeard(path) {
  const w = L.readWav(path);
  assert.ok(w.samples.length > w.rate, `the CLI recorded only ${w.samples.length} samples`);
  // Skip the first 0.5 s (jitter buffer start, the browser's echo canceller settling).
  return L.dominantTone(w.samples.subarray(w.rate / 2), w.rate, TONES);
}

function assertTone(t, hz, who) {
  assert.equal(t.freq, hz, `${who} should hear ${hz} Hz, got ${JSON.stringify(t)}`);
  assert.ok(t.share > 0.9 && t.rms > 0.01, `${who}: tone too weak or impure: ${JSON.stringify(t)}`);
}

describe("browser ↔ moq-phone (CLI)", () => {
  before(async () => {
    relay = await L.startRelay(await L.freePort());
    A = await L.launchBrowser(L.writeToneWav("browser.wav", BROWSER_HZ));
    cliWav = L.writeToneWav("cli.wav", CLI_HZ, { toneS: 10 });
    page = await L.openPhone(A.context, relay);
    await L.signIn(page, "alice", "Alice");
  });

  after(async () => {
    await A?.browser.close();
    await relay?.stop();
  });

  test("browser → moq-phone: the CLI answers, plays a tone, hangs up after 3 s", async () => {
    const rec = join(L.tmp, "carol-heard.wav");
    const carol = L.startCliPhone(relay, ["--as", "carol", "answer", "--play", cliWav, "--record", rec, "--hangup-after", "3"]);
    try {
      await L.waitState(page, "alice sees carol online", (s) => s.presence.includes("carol"));
      const sid = await L.dial(page, "carol");
      await L.waitState(page, "established", (x) => x.call?.sid === sid && x.call.phase === "established");
      await page.evaluate(() => window.__moqTest.record(true));
      const end = await L.waitState(page, "ended", (x) => x.call?.sid === sid && x.call.phase === "ended", 20000);
      assert.deepEqual(end.call.ended, { reason: "hangup", by_peer: true });
      await carol.line(/^ended: hangup$/);
      await carol.line(/^invite from alice to carol$/);
      assert.equal(await carol.exited, 0);
      assertTone(await browserHeard(), CLI_HZ, "the browser");
      assertTone(cliHeard(rec), BROWSER_HZ, "moq-phone");
    } finally {
      await carol.kill();
    }
  });

  test("moq-phone → browser: the browser answers, the CLI hangs up after 3 s", async () => {
    const rec = join(L.tmp, "dave-heard.wav");
    const dave = L.startCliPhone(relay, ["--as", "dave", "call", "alice", "--play", cliWav, "--record", rec, "--hangup-after", "3"]);
    try {
      const sid = (await dave.line(/^session [0-9a-f]{32}$/)).split(" ")[1];
      const s = await L.waitState(page, "alice ringing", (x) => x.call?.sid === sid && x.call.phase === "ringing", 20000);
      assert.equal(await page.textContent("#call-peer"), "dave");
      await dave.line(/^ringing$/);
      await page.click("#answer");
      await L.waitState(page, "established", (x) => x.call?.sid === s.call.sid && x.call.phase === "established");
      await page.evaluate(() => window.__moqTest.record(true));
      await dave.line(/^established with device web-/);
      const end = await L.waitState(page, "ended", (x) => x.call?.sid === s.call.sid && x.call.phase === "ended", 20000);
      assert.deepEqual(end.call.ended, { reason: "hangup", by_peer: true });
      await dave.line(/^ended: hangup$/);
      assert.equal(await dave.exited, 0);
      assertTone(await browserHeard(), CLI_HZ, "the browser");
      assertTone(cliHeard(rec), BROWSER_HZ, "moq-phone");
    } finally {
      await dave.kill();
    }
  });

  test("moq-phone → browser: the browser hangs up, DTMF from the CLI shows", async () => {
    const dave = L.startCliPhone(relay, ["--as", "dave", "call", "alice", "--dtmf", "42#", "--dtmf-after", "0.2"]);
    try {
      const sid = (await dave.line(/^session [0-9a-f]{32}$/)).split(" ")[1];
      const s = await L.waitState(page, "alice ringing", (x) => x.call?.sid === sid && x.call.phase === "ringing", 20000);
      await page.click("#answer");
      await L.waitState(page, "the digits", (x) => x.call?.sid === s.call.sid && x.call.dtmfIn === "42#");
      await page.click("#hangup");
      await dave.line(/^ended: hangup by peer$/);
      assert.equal((await L.state(page)).call.ended.reason, "hangup");
    } finally {
      await dave.kill();
    }
  });
});

// Across drafts (issue 15, docs/DRAFT22.md): the browser pinned to
// draft-22 (`?draft=22`: WT-Protocol moqt-22 only) and the CLI at draft-18
// call each other through one relay, which carries each party's tracks from
// a session of one draft to a session of the other.
describe("browser at draft-22 ↔ moq-phone at draft-18", () => {
  let relay22;
  let B;
  let p22;

  before(async () => {
    cliWav ??= L.writeToneWav("cli.wav", CLI_HZ, { toneS: 10 });
    relay22 = await L.startRelay(await L.freePort());
    B = await L.launchBrowser(L.writeToneWav("browser22.wav", BROWSER_HZ));
    p22 = await L.openPhone(B.context, relay22, "?draft=22");
    await L.signIn(p22, "erin", "Erin");
  });

  after(async () => {
    await B?.browser.close();
    await relay22?.stop();
  });

  test("the browser's session speaks draft-22; a call from the draft-18 CLI carries audio both ways", async () => {
    assert.equal((await L.state(p22)).draft, 22);
    const rec = join(L.tmp, "frank-heard.wav");
    const frank = L.startCliPhone(relay22, ["--as", "frank", "call", "erin", "--play", cliWav, "--record", rec, "--hangup-after", "3"]);
    try {
      const sid = (await frank.line(/^session [0-9a-f]{32}$/)).split(" ")[1];
      const s = await L.waitState(p22, "erin ringing", (x) => x.call?.sid === sid && x.call.phase === "ringing", 20000);
      await p22.click("#answer");
      await L.waitState(p22, "established", (x) => x.call?.sid === s.call.sid && x.call.phase === "established");
      await p22.evaluate(() => window.__moqTest.record(true));
      await frank.line(/^established with device web-/);
      const end = await L.waitState(p22, "ended", (x) => x.call?.sid === s.call.sid && x.call.phase === "ended", 20000);
      assert.deepEqual(end.call.ended, { reason: "hangup", by_peer: true });
      await frank.line(/^ended: hangup$/);
      assert.equal(await frank.exited, 0);
      const r = await L.recording(p22);
      const cut = Math.round(0.25 * r.rate);
      assertTone(L.dominantTone(r.samples.subarray(cut, r.samples.length - cut), r.rate, TONES), CLI_HZ, "the draft-22 browser");
      assertTone(cliHeard(rec), BROWSER_HZ, "the draft-18 moq-phone");
    } finally {
      await frank.kill();
    }
  });
});
