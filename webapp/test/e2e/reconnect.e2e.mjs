// The relay goes away and comes back on the same port (with a new
// development certificate): each page notices, shows it, reconnects by
// itself with backoff, re-registers (presence comes back) and can call
// again. Three ways to lose the relay: killed (SIGKILL), frozen (SIGSTOP:
// no packet, no ICMP; only the phone's heartbeat notices) and a graceful
// restart (SIGTERM: GOAWAY, then close).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

let port;
let relay;
let A;
let alice;
let bob;

async function bothBack() {
  await L.waitState(alice, "alice registered again", (s) => s.connection === "online" && s.presence.includes("bob"), 30000);
  await L.waitState(bob, "bob registered again", (s) => s.connection === "online" && s.presence.includes("alice"), 30000);
}

async function callWorks() {
  const sid = await L.dial(alice, "bob");
  await L.waitState(bob, "bob ringing", (x) => x.call?.sid === sid && x.call.phase === "ringing");
  await bob.click("#answer");
  await L.waitState(alice, "established", (x) => x.call?.sid === sid && x.call.phase === "established");
  return sid;
}

async function hangup(sid) {
  await alice.click("#hangup");
  await L.waitState(bob, "ended", (x) => x.call?.sid === sid && x.call.phase === "ended");
}

describe("relay restart", () => {
  before(async () => {
    port = await L.freePort();
    relay = await L.startRelay(port);
    A = await L.launchBrowser(L.writeToneWav("tone.wav", 440));
    alice = await L.openPhone(A.context, relay);
    bob = await L.openPhone(A.context, relay);
    await L.signIn(alice, "alice");
    await L.signIn(bob, "bob");
    await bothBack();
  });

  after(async () => {
    await A?.browser.close();
    if (relay?.proc.signalCode === null && relay.proc.exitCode === null) relay.proc.kill("SIGCONT");
    await relay?.stop("SIGKILL");
  });

  test("killed during a call: the call ends (lost peer), the pages reconnect and re-register", async () => {
    const sid = await callWorks();
    const oldHash = await (await fetch(relay.base + "certificate.sha256")).text();
    await relay.stop("SIGKILL");
    for (const p of [alice, bob]) {
      const s = await L.waitState(p, "the call ends", (x) => x.call?.sid === sid && x.call.phase === "ended", 10000);
      assert.equal(s.call.ended.reason, "lost-peer");
      await L.waitState(p, "disconnected", (x) => x.connection !== "online");
    }
    await L.until("the banner", async () => /Can't reach the relay|Reconnecting/.test((await alice.textContent("#banner")) ?? ""));
    assert.equal(await alice.getAttribute("#me-status", "data-state") === "online", false);
    relay = await L.startRelay(port);
    const newHash = await (await fetch(relay.base + "certificate.sha256")).text();
    assert.notEqual(newHash, oldHash, "a restarted relay has a new certificate");
    await bothBack();
    await L.until("the banner goes", async () => !(await alice.isVisible("#banner")));
    await hangup(await callWorks());
  });

  test("frozen (no packets at all): the heartbeat notices within seconds", async () => {
    const t0 = Date.now();
    relay.proc.kill("SIGSTOP");
    try {
      await L.waitState(alice, "alice notices the silent relay", (s) => s.connection !== "online", 10000);
      const noticed = Date.now() - t0;
      assert.ok(noticed < 8000, `noticed after ${noticed} ms`);
    } finally {
      relay.proc.kill("SIGCONT");
    }
    await relay.stop("SIGKILL");
    relay = await L.startRelay(port);
    await bothBack();
    await hangup(await callWorks());
  });

  test("graceful restart (SIGTERM: GOAWAY, then close)", async () => {
    await relay.stop("SIGTERM");
    await L.waitState(alice, "alice leaves", (s) => s.connection !== "online", 10000);
    relay = await L.startRelay(port);
    await bothBack();
    await hangup(await callWorks());
  });
});
