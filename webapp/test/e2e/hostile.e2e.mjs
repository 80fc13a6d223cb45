// The web phone facing hostile callers through a real relay (issue 20,
// `moq-bench hostile-caller`): an INVITE flood from a session that then
// vanishes without a word, a call whose events and audio start with junk
// (an unknown event, a 10 kB event, bytes that are no JSON, a non-Opus
// payload, junk LOC properties), and a caller that vanishes mid-call. Each
// time the page ends the call by itself with a reason, stays registered and
// usable; the junk call still plays the caller's real audio.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

let relay;
let B;
let bob;

/** Runs `moq-bench hostile-caller` against bob; resolves with its exit code and output. */
function hostileCaller(kind, count = 1) {
  if (!existsSync(L.benchBin)) throw new Error(`${L.benchBin} not found: build it (cargo build -p moq-bench) or set MOQ_BENCH_BIN`);
  const args = ["hostile-caller", "--relay", `moqt://127.0.0.1:${relay.port}`, "--to", "bob", "--kind", kind, "--count", String(count)];
  const proc = spawn(L.benchBin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: "warn" } });
  let out = "";
  proc.stdout.on("data", (d) => (out += String(d)));
  proc.stderr.on("data", (d) => (out += String(d)));
  const done = new Promise((resolve) => proc.once("exit", (code) => resolve({ code, out })));
  return { done, kill: () => proc.kill("SIGKILL") };
}

/** Waits for bob's phone to ring for a call from mallory; returns its sid. */
async function ringing() {
  const s = await L.waitState(bob, "bob ringing for mallory", (x) => x.call?.phase === "ringing" && x.call.direction === "incoming");
  return s.call.sid;
}

async function ended(sid, ms = 20000) {
  return (await L.waitState(bob, `call ${sid} ended`, (x) => x.call?.sid === sid && x.call.phase === "ended", ms)).call.ended;
}

/** Back home, registered, the dial pad usable. */
async function stillUsable() {
  await L.toHome(bob);
  await L.waitState(bob, "bob still online", (s) => s.connection === "online");
  assert.ok(await bob.isVisible("#dial-input"));
}

describe("hostile callers at the web phone", () => {
  before(async () => {
    // A ringing callee learns that its caller vanished when the relay drops the caller's session
    // (PUBLISH_NAMESPACE_DONE → "cancelled"): at the QUIC idle timeout, 30 s on the relay's defaults,
    // 5 s here so the test does not wait for it.
    relay = await L.startRelay(await L.freePort(), ["--idle-timeout-secs", "5"]);
    B = await L.launchBrowser(L.writeToneWav("bob.wav", 740));
    bob = await L.openPhone(B.context, relay);
    await L.signIn(bob, "bob");
  });

  after(async () => {
    await B?.browser.close();
    await relay?.stop();
  });

  test("an INVITE flood from a caller that vanishes: one rings, it ends by itself", async () => {
    const h = hostileCaller("flood", 10);
    const sid = await ringing();
    const r = await h.done;
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /10 invites delivered/);
    assert.deepEqual(await ended(sid), { reason: "cancelled" });
    await stillUsable();
    assert.notEqual((await L.state(bob)).call?.phase, "ringing", "no other invite of the flood is left ringing");
  });

  test("junk events and audio, then real audio: the call goes on and plays the caller's tone", async () => {
    const h = hostileCaller("garbage");
    const sid = await ringing();
    await bob.click("#answer");
    await L.waitState(bob, "established", (x) => x.call?.sid === sid && x.call.phase === "established");
    await L.assertHears(bob, 440, "bob hearing mallory's audio after the junk", [440, 740]);
    const r = await h.done;
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(await ended(sid), { reason: "hangup", by_peer: true });
    await stillUsable();
  });

  test("a caller that vanishes mid-call: the call ends as lost", async () => {
    const h = hostileCaller("vanish");
    const sid = await ringing();
    await bob.click("#answer");
    const r = await h.done;
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /leaving mid-call/);
    assert.equal((await ended(sid)).reason, "lost-peer");
    await stillUsable();
  });
});
