// The WebRTC fallback through a TURN server (issue 14; README, "WebRTC
// gateway"): a browser on a network that blocks UDP to the relay reaches the
// gateway only through TURN over TCP. A real coturn (Debian's, installed by
// scripts/test) listens on TCP only (--no-udp) with a shared secret
// (use-auth-secret); moq-relay is told the server and the secret
// (--webrtc-ice-server, --webrtc-turn-secret-file) and hands each page
// credentials at GET /webrtc. The pages are limited to relayed candidates
// (iceTransportPolicy "relay", set by an init script: the network's
// blocking, as the browser sees it), so they come online and hear each
// other only if the credentials work and the media goes through coturn;
// coturn's log must show their allocations.
//
// Needs /usr/sbin/turnserver or /usr/bin/turnserver (apt-get install
// coturn): fails without it unless MOQ_TEST_TURN=0 skips it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

const skip = process.env.MOQ_TEST_TURN === "0" ? "MOQ_TEST_TURN=0: the TURN test is skipped" : false;
const turnBin = ["/usr/bin/turnserver", "/usr/sbin/turnserver"].find((p) => existsSync(p));
const A_HZ = 520;
const B_HZ = 880;
const TONES = [A_HZ, B_HZ];

let relay;
let turn;
const browsers = [];

/** coturn on 127.0.0.1:`port`, TCP only, with `secret`; resolves once it listens. */
async function startTurn(port, secret) {
  const dir = join(L.tmp, `turn-${port}`);
  const args = [
    "-n",
    "--listening-ip=127.0.0.1",
    "--relay-ip=127.0.0.1",
    `--listening-port=${port}`,
    "--no-udp",
    "--no-tls",
    "--no-dtls",
    "--no-cli",
    "--use-auth-secret",
    `--static-auth-secret=${secret}`,
    "--realm=moq.test",
    // The gateway is on loopback here; a deployed TURN server relays to the relay's public address.
    "--allow-loopback-peers",
    `--pidfile=${dir}.pid`,
    `--db=${dir}.db`,
    "--log-file=stdout",
    "--simple-log",
    "--verbose",
  ];
  const proc = spawn(turnBin, args, { stdio: ["ignore", "pipe", "pipe"] });
  const log = [];
  proc.stdout.on("data", (d) => log.push(String(d)));
  proc.stderr.on("data", (d) => log.push(String(d)));
  await L.until("coturn listening", async () => {
    if (proc.exitCode !== null) throw new Error(`turnserver exited ${proc.exitCode}: ${log.join("")}`);
    return canConnect(port);
  });
  return { proc, log, stop: () => proc.kill() };
}

async function canConnect(port) {
  const { connect } = await import("node:net");
  return new Promise((res) => {
    const s = connect(port, "127.0.0.1", () => {
      s.end();
      res(true);
    });
    s.once("error", () => res(false));
  });
}

/** A WebRTC page that may use relayed (TURN) candidates only. */
async function relayOnlyPage(hz, name) {
  const b = await L.launchBrowser(L.writeToneWav(name, hz));
  browsers.push(b);
  await b.context.addInitScript(() => {
    const Native = globalThis.RTCPeerConnection;
    const relayOnly = (c) => ({ ...(c ?? {}), iceTransportPolicy: "relay" });
    class RelayOnly extends Native {
      constructor(c) {
        super(relayOnly(c));
      }
      setConfiguration(c) {
        return super.setConfiguration(relayOnly(c));
      }
    }
    globalThis.RTCPeerConnection = RelayOnly;
  });
  return L.openPhone(b.context, relay, "?transport=webrtc");
}

describe("WebRTC fallback through TURN over TCP (coturn)", { skip }, () => {
  before(async () => {
    assert.ok(turnBin, "turnserver not found: install coturn (apt-get install coturn; scripts/test does), or skip with MOQ_TEST_TURN=0");
    const secret = "e2e-turn-secret";
    const secretFile = join(L.tmp, "turn.secret");
    writeFileSync(secretFile, `${secret}\n`);
    const turnPort = await L.freePort();
    turn = await startTurn(turnPort, secret);
    relay = await L.startRelay(await L.freePort(), ["--webrtc-ice-server", `turn:127.0.0.1:${turnPort}?transport=tcp`, "--webrtc-turn-secret-file", secretFile]);
  });

  after(async () => {
    for (const b of browsers) await b.browser.close();
    await relay?.stop();
    turn?.stop();
  });

  test("two pages limited to relayed candidates sign in, call and hear each other through coturn", async () => {
    const ann = await relayOnlyPage(A_HZ, "turn-a.wav");
    const ben = await relayOnlyPage(B_HZ, "turn-b.wav");
    await L.signIn(ann, "ann");
    await L.signIn(ben, "ben");
    for (const p of [ann, ben]) assert.equal(await p.textContent("#me-status-text"), "Online · WebRTC");
    await L.callBothWays(ann, ben, { a: "ann", b: "ben", aHz: A_HZ, bHz: B_HZ, tones: TONES, rtp: [ann, ben] });
    // Both went through coturn: a TCP allocation each, authenticated with the relay's credentials.
    const log = turn.log.join("");
    const allocations = log.split("\n").filter((l) => /ALLOCATE/.test(l) && /success/.test(l));
    assert.ok(allocations.length >= 2, `coturn should log two successful allocations:\n${log.slice(-4000)}`);
  });
});
