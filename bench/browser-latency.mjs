#!/usr/bin/env node
// Mouth-to-ear latency of a browser → browser call (docs/CALLS.md §6), by
// tone onset: two headless Chromium pages call each other through a real
// moq-relay; the caller's fake microphone plays 200 ms tone bursts once a
// second; the caller's capture worklet and the callee's playout worklet
// record with wall-clock time stamps, and each burst's onset is found on
// both sides.
//
//   node bench/browser-latency.mjs [--secs 20] [--runs 3] [--out bench/results/browser-latency.md]
//
// Needs the built web phone and its tools (cd webapp && npm ci && npm run
// build), target/debug/moq-relay (or MOQ_RELAY_BIN) and /usr/bin/chromium
// (webapp/scripts/ensure-chromium.sh). Reported, not asserted.
import { readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as L from "../webapp/test/e2e/lib.mjs";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const secs = Number(arg("secs", "20"));
const runs = Number(arg("runs", "3"));
const out = arg("out", join(dirname(fileURLToPath(import.meta.url)), "results", "browser-latency.md"));
const BURST_HZ = 1000;

/** A WAV of 200 ms bursts of BURST_HZ, one per second. */
function burstWav() {
  const path = L.writeToneWav("bursts-base.wav", BURST_HZ, { toneS: 0.2, silenceS: 0.8 });
  return path;
}

/** Onset times (ms, wall clock) of bursts in a recording: the envelope crosses a quarter of its loud level after ≥ 300 ms of quiet. */
function onsets(rec) {
  const win = Math.round(rec.rate / 400); // 2.5 ms
  const env = [];
  for (let i = 0; i + win <= rec.samples.length; i += win) {
    let s = 0;
    for (let k = i; k < i + win; k++) s += rec.samples[k] * rec.samples[k];
    env.push(Math.sqrt(s / win));
  }
  const sorted = [...env].sort((a, b) => a - b);
  const loud = sorted[Math.floor(sorted.length * 0.95)] ?? 0;
  const thr = loud / 4;
  const quietWins = Math.round(300 / 2.5);
  const found = [];
  let quiet = quietWins;
  for (let j = 0; j < env.length; j++) {
    if (env[j] >= thr) {
      if (quiet >= quietWins && loud > 0.005) found.push(rec.startMs + (j * win * 1000) / rec.rate);
      quiet = 0;
    } else quiet++;
  }
  return found;
}

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function run() {
  const relay = await L.startRelay(await L.freePort());
  const A = await L.launchBrowser(burstWav());
  const B = await L.launchBrowser(L.writeToneWav("silence.wav", 440, { amplitude: 0 }));
  try {
    const alice = await L.openPhone(A.context, relay);
    const bob = await L.openPhone(B.context, relay);
    await L.signIn(alice, "alice");
    await L.signIn(bob, "bob");
    const sid = await L.dial(alice, "bob");
    await L.waitState(bob, "ringing", (s) => s.call?.sid === sid && s.call.phase === "ringing");
    await bob.click("#answer");
    await L.waitState(alice, "established", (s) => s.call?.sid === sid && s.call.phase === "established");
    await alice.evaluate(() => window.__moqTest.record(true, "capture"));
    await L.recordFor(bob, secs + 1, "playout");
    // Statistics first: copying the recordings out stalls the audio threads.
    const stats = await bob.evaluate(() => window.__moqTest.stats());
    const said = await L.recording(alice, "capture");
    const heard = await L.recording(bob, "playout");
    const s = onsets(said);
    const h = onsets(heard);
    const lat = [];
    for (const t of h) {
      const before = s.filter((x) => x <= t && t - x < 800);
      if (before.length) lat.push(t - before[before.length - 1]);
    }
    // The microphone's own latency (reported by the browser) comes before the capture worklet.
    const input = said.latency.input;
    return { lat: lat.map((x) => x + input), bursts: s.length, heardBursts: h.length, stats, latency: { ...heard.latency, input } };
  } finally {
    await A.browser.close();
    await B.browser.close();
    await relay.stop();
  }
}

const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ")[0];
const rows = [];
for (let i = 0; i < runs; i++) {
  const load = loadavg();
  const r = await run();
  if (r.lat.length === 0) throw new Error(`run ${i + 1}: no burst matched (${r.bursts} said, ${r.heardBursts} heard)`);
  const row = {
    run: i + 1,
    n: r.lat.length,
    said: r.bursts,
    p50: pct(r.lat, 50),
    p90: pct(r.lat, 90),
    min: Math.min(...r.lat),
    max: Math.max(...r.lat),
    jb: r.stats.playout,
    latency: r.latency,
    thread: r.stats.codecThread,
    load,
  };
  console.log(JSON.stringify(row));
  rows.push(row);
}

const f = (x) => x.toFixed(1);
const chromium = execFileSync(L.chromiumPath, ["--version"]).toString().trim().split("\n").pop();
const lines = [
  "# Mouth-to-ear latency, browser → browser",
  "",
  `\`node bench/browser-latency.mjs --secs ${secs} --runs ${runs}\` on ${new Date().toISOString().slice(0, 10)}, ${chromium}, headless, 2 cores, loopback, debug build of moq-relay.`,
  "",
  "Two headless Chromium pages (each its own browser process) call each other through moq-relay over WebTransport. The caller's fake microphone",
  `plays 200 ms bursts of ${BURST_HZ} Hz once a second; echo cancellation and noise suppression are on. Path: getUserMedia → AudioContext (48 kHz) →`,
  "capture AudioWorklet → media worker (WebCodecs Opus, 20 ms, FEC) → OBJECT_DATAGRAM → relay → OBJECT_DATAGRAM → worker (AudioDecoder) →",
  "playout AudioWorklet (adaptive jitter buffer, 2–10 frames) → speaker. Each burst's onset is found in what the caller's capture worklet saw",
  "(time stamped through AudioContext.getOutputTimestamp, minus the browser's render latency, plus the microphone latency the browser reports)",
  "and in what the callee's playout worklet played (time stamped for when it reaches the speaker, so the reported output latency is included).",
  "Both pages share the host clock. Fake devices: the real device latencies of a phone or laptop come on top. Reported, not asserted.",
  "",
  "The jitter buffer sizes itself from measured arrival jitter (98th percentile over 5 s, plus one frame); on this 2-core machine other",
  "work (compilers, test suites) running at the same time shows up as arrival spikes, so the load average at the start of each run is given.",
  "",
  "| run | load average | bursts matched | mouth-to-ear p50 (ms) | p90 (ms) | min (ms) | max (ms) | jitter buffer target / depth at end (frames) | underruns | concealed | browser-reported input / base / output latency (ms) | codec runs in |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ...rows.map(
    (r) =>
      `| ${r.run} | ${r.load} | ${r.n} of ${r.said} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.min)} | ${f(r.max)} | ${r.jb.target} / ${r.jb.depth} | ${r.jb.underruns} | ${r.jb.concealed} | ${f(r.latency.input)} / ${f(r.latency.base)} / ${f(r.latency.output)} | ${r.thread} |`,
  ),
  "",
];
writeFileSync(out, lines.join("\n"));
console.log(`wrote ${out}`);
