#!/usr/bin/env node
// Mouth-to-ear latency of a browser → browser call (docs/CALLS.md §6), by
// tone onset, over WebTransport and over the WebRTC fallback (issue 14):
// two headless Chromium pages call each other through a real moq-relay; the
// caller's fake microphone plays 200 ms tone bursts once a second; what the
// caller's capture worklet saw and what the callee played are recorded with
// wall-clock time stamps, and each burst's onset is found on both sides.
//
//   node bench/browser-latency.mjs [--transport webtransport|webrtc|both|capture] [--secs 20] [--runs 3] [--out bench/results/browser-latency.md]
//
// --transport webtransport: WT → WT; webrtc: WebRTC → WebRTC; both (the
// default): those two and the mixed call, WebRTC caller → WT callee;
// capture: WT → WT with the track capture and with the worklet capture. The
// combinations alternate within each run, so load drifts hit them alike.
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
const transport = arg("transport", "both");
const out = arg("out", join(dirname(fileURLToPath(import.meta.url)), "results", "browser-latency.md"));
const BURST_HZ = 1000;
/** A burst heard more than this after it was said is not matched (bursts are 1 s apart). */
const MATCH_MS = 800;
/** Onsets need this much quiet before them (so a recording that starts inside a burst has no onset there). */
const QUIET_MS = 300;

const WT = "";
const RTC = "?transport=webrtc";
/** The combinations: the caller's and the callee's page query. */
const COMBOS = {
  "wt-wt": { label: "WebTransport → WebTransport", caller: WT, callee: WT },
  "rtc-rtc": { label: "WebRTC → WebRTC", caller: RTC, callee: RTC },
  "rtc-wt": { label: "WebRTC → WebTransport (mixed)", caller: RTC, callee: WT },
  // The web phone's former capture path (the AudioWorklet instead of the track's own chunks; framer.ts).
  "wt-wt-worklet": { label: "WebTransport → WebTransport, worklet capture", caller: "?capture=worklet", callee: "?capture=worklet" },
};
const PICK = { webtransport: ["wt-wt"], webrtc: ["rtc-rtc"], both: ["wt-wt", "rtc-rtc", "rtc-wt"], capture: ["wt-wt", "wt-wt-worklet"] };
if (!PICK[transport]) throw new Error(`--transport must be webtransport, webrtc, both or capture, not ${transport}`);
const combos = PICK[transport];
const kind = (query) => (query === RTC ? "webrtc" : "webtransport");

/**
 * Bench-only observation hook, added to each page before its scripts run:
 * keeps every RTCPeerConnection the page makes, so that its getStats()
 * (NetEQ's jitter buffer, the playout delay) can be read. Nothing else changes.
 */
function keepPeerConnections() {
  const PC = globalThis.RTCPeerConnection;
  if (typeof PC !== "function") return;
  globalThis.__benchPcs = [];
  globalThis.RTCPeerConnection = class extends PC {
    constructor(...a) {
      super(...a);
      globalThis.__benchPcs.push(this);
    }
  };
}

/**
 * Bench-only probe, added like {@link keepPeerConnections}: notes the arrival
 * time and size of every WebTransport datagram the page reads (a pass-through
 * TransformStream behind `datagrams.readable`). Opus packets of a tone are
 * much larger than those of silence, so a burst's onset shows as the first
 * large datagram after a quiet spell: the sender's path up to the callee's
 * page (framing, encoder, relay), apart from the callee's jitter buffer.
 */
function logDatagrams() {
  const D = globalThis.WebTransportDatagramDuplexStream;
  const desc = D && Object.getOwnPropertyDescriptor(D.prototype, "readable");
  if (!desc?.get) return;
  const piped = new WeakMap();
  globalThis.__benchDatagrams = [];
  Object.defineProperty(D.prototype, "readable", {
    configurable: true,
    get() {
      if (!piped.has(this)) {
        const log = new TransformStream({
          transform(chunk, c) {
            globalThis.__benchDatagrams.push([performance.timeOrigin + performance.now(), chunk.byteLength]);
            c.enqueue(chunk);
          },
        });
        piped.set(this, desc.get.call(this).pipeThrough(log));
      }
      return piped.get(this);
    },
  });
}

/** Onset times (ms) in a datagram log [[ms, bytes]…]: a datagram above mid-size after ≥ QUIET_MS of small ones. */
function datagramOnsets(log) {
  if (log.length < 10) return [];
  const sizes = log.map((d) => d[1]).sort((a, b) => a - b);
  const thr = (sizes[0] + sizes[Math.floor(sizes.length * 0.95)]) / 2;
  const found = [];
  let quietSince = -Infinity;
  let quiet = false;
  for (const [t, n] of log) {
    if (n > thr) {
      if (quiet && t - quietSince >= QUIET_MS) found.push(t);
      quiet = false;
    } else if (!quiet) {
      quiet = true;
      quietSince = t;
    }
  }
  return found;
}

/** The audio RTP statistics of the page's live peer connections (summed; one connection in practice). */
function rtcStats(page) {
  return page.evaluate(async () => {
    const o = { in: {}, playout: {}, out: {} };
    const add = (into, s, keys) => {
      for (const k of keys) if (typeof s[k] === "number") into[k] = (into[k] ?? 0) + s[k];
    };
    for (const pc of globalThis.__benchPcs ?? []) {
      if (pc.connectionState === "closed") continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "audio")
          add(o.in, s, ["packetsReceived", "packetsLost", "jitterBufferDelay", "jitterBufferTargetDelay", "jitterBufferMinimumDelay", "jitterBufferEmittedCount", "concealedSamples", "totalSamplesReceived", "insertedSamplesForDeceleration", "removedSamplesForAcceleration"]);
        else if (s.type === "media-playout" && s.kind === "audio") add(o.playout, s, ["totalPlayoutDelay", "totalSamplesCount", "synthesizedSamplesDuration"]);
        else if (s.type === "outbound-rtp" && s.kind === "audio") add(o.out, s, ["packetsSent"]);
        else if (s.type === "candidate-pair" && s.nominated && typeof s.currentRoundTripTime === "number") o.rtt = s.currentRoundTripTime;
      });
    }
    return o;
  });
}

/** What the receiver's WebRTC stack did between two {@link rtcStats}: NetEQ delay, its target, the playout delay, concealment (ms). */
function rtcDelta(a, b) {
  const d = (k, part = "in") => (b[part][k] ?? 0) - (a[part][k] ?? 0);
  const emitted = d("jitterBufferEmittedCount");
  const played = d("totalSamplesCount", "playout");
  return {
    packets: d("packetsReceived"),
    lost: d("packetsLost"),
    neteq: emitted > 0 ? (d("jitterBufferDelay") / emitted) * 1000 : NaN,
    target: emitted > 0 ? (d("jitterBufferTargetDelay") / emitted) * 1000 : NaN,
    minimum: emitted > 0 ? (d("jitterBufferMinimumDelay") / emitted) * 1000 : NaN,
    playoutDelay: played > 0 ? (d("totalPlayoutDelay", "playout") / played) * 1000 : NaN,
    concealedMs: d("concealedSamples") / 48,
    stretchMs: (d("insertedSamplesForDeceleration") + d("removedSamplesForAcceleration")) / 48,
    rtt: b.rtt,
  };
}

/** Onset times (ms, wall clock) of bursts in a recording: the envelope crosses a quarter of its loud level after ≥ QUIET_MS of quiet. */
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
  const quietWins = Math.round(QUIET_MS / 2.5);
  const found = [];
  let quiet = 0;
  for (let j = 0; j < env.length; j++) {
    if (env[j] >= thr) {
      if (quiet >= quietWins && loud > 0.005) found.push(rec.startMs + (j * win * 1000) / rec.rate);
      quiet = 0;
    } else quiet++;
  }
  return found;
}

/**
 * Each burst said while the callee was recording (so it could be found
 * there: said ≥ QUIET_MS after the playout recording began, and ≥ MATCH_MS
 * before it ended) is matched with the first onset heard within MATCH_MS
 * after it; `missed` counts those with none.
 */
function match(said, heard) {
  const from = heard.startMs + QUIET_MS;
  const to = heard.startMs + (heard.samples.length / heard.rate) * 1000 - MATCH_MS;
  const h = onsets(heard);
  const lat = [];
  let eligible = 0;
  for (const s of onsets(said)) {
    if (s < from || s > to) continue;
    eligible++;
    const t = h.find((x) => x >= s && x - s < MATCH_MS);
    if (t !== undefined) lat.push(t - s);
  }
  return { lat, eligible, missed: eligible - lat.length, heard: h.length };
}

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** One call of combination `key` on a fresh relay; returns the matched latencies and what the receiving side reported. */
async function run(key) {
  const c = COMBOS[key];
  const relay = await L.startRelay(await L.freePort());
  const A = await L.launchBrowser(L.writeToneWav("bursts-base.wav", BURST_HZ, { toneS: 0.2, silenceS: 0.8 }));
  const B = await L.launchBrowser(L.writeToneWav("silence.wav", 440, { amplitude: 0 }));
  try {
    for (const b of [A, B]) await b.context.addInitScript(keepPeerConnections);
    await B.context.addInitScript(logDatagrams);
    const alice = await L.openPhone(A.context, relay, c.caller);
    const bob = await L.openPhone(B.context, relay, c.callee);
    await L.signIn(alice, "alice");
    await L.signIn(bob, "bob");
    for (const [p, q, who] of [
      [alice, c.caller, "caller"],
      [bob, c.callee, "callee"],
    ]) {
      const t = (await L.state(p)).transport;
      if (t !== kind(q)) throw new Error(`${key}: the ${who} is on ${t}, not ${kind(q)}`);
    }
    const sid = await L.dial(alice, "bob");
    await L.waitState(bob, "ringing", (s) => s.call?.sid === sid && s.call.phase === "ringing");
    await bob.click("#answer");
    for (const p of [bob, alice]) await L.waitState(p, "established", (s) => s.call?.sid === sid && s.call.phase === "established", 30000);
    const rtc0 = await rtcStats(bob);
    await alice.evaluate(() => window.__moqTest.record(true, "capture"));
    // A WebTransport callee's jitter buffer depth, sampled 4 times a second while recording (its mean delay).
    const depths = [];
    let sampling = c.callee !== RTC;
    const sampler = (async () => {
      while (sampling) {
        depths.push((await bob.evaluate(() => window.__moqTest.stats())).playout.depth);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    await L.recordFor(bob, secs + 1, "playout");
    sampling = false;
    await sampler;
    // Statistics first: copying the recordings out stalls the audio threads.
    const rtc1 = await rtcStats(bob);
    const stats = await bob.evaluate(() => window.__moqTest.stats());
    const callerStats = await alice.evaluate(() => window.__moqTest.stats());
    const datagrams = c.callee !== RTC ? await bob.evaluate(() => globalThis.__benchDatagrams) : [];
    // The media really took the path the combination names: over RTP the page's WebCodecs encoder and decoder see no frame.
    const rtpOk = (st, q) => (q === RTC) === (st.codec.encoded === 0);
    if (!rtpOk(callerStats, c.caller) || (c.callee === RTC && stats.playout.received !== 0))
      throw new Error(`${key}: the media did not take the expected path: caller ${JSON.stringify(callerStats.codec)}, callee ${JSON.stringify(stats.playout)}`);
    const said = await L.recording(alice, "capture");
    const heard = await L.recording(bob, "playout");
    const m = match(said, heard);
    // The microphone's own latency (reported by the browser) comes before the capture worklet.
    const input = said.latency.input;
    // Said → the first large datagram at the callee's page (WebTransport callees). From 200 ms before: an RTP
    // sender takes the microphone track directly, ahead of the capture worklet's view of it (see the notes).
    const arrivals = datagramOnsets(datagrams);
    const toPage = onsets(said).flatMap((t) => {
      const a = arrivals.find((x) => x >= t - 200 && x - t < MATCH_MS);
      return a === undefined || t < heard.startMs ? [] : [a - t + input];
    });
    const depth = depths.length ? depths.reduce((a, x) => a + x, 0) / depths.length : NaN;
    return { ...m, lat: m.lat.map((x) => x + input), toPage, stats, depth, rtc: c.callee === RTC ? rtcDelta(rtc0, rtc1) : undefined, latency: { ...heard.latency, input } };
  } finally {
    await A.browser.close();
    await B.browser.close();
    await relay.stop();
  }
}

const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ")[0];
const rows = [];
for (let i = 0; i < runs; i++) {
  for (const key of combos) {
    const load = loadavg();
    let r;
    // One retry: on a loaded machine a call set-up now and then misses its deadline; that is not what is measured.
    for (let attempt = 1; !r; attempt++) {
      try {
        r = await run(key);
      } catch (e) {
        if (attempt > 1) throw e;
        console.error(`${key} run ${i + 1}: ${e.message.split("\n")[0]}; once more`);
      }
    }
    if (r.lat.length === 0) throw new Error(`${key} run ${i + 1}: no burst matched (${r.eligible} said, ${r.heard} heard)`);
    const row = {
      key,
      run: i + 1,
      lat: r.lat,
      n: r.lat.length,
      missed: r.missed,
      p50: pct(r.lat, 50),
      p90: pct(r.lat, 90),
      min: Math.min(...r.lat),
      max: Math.max(...r.lat),
      jb: r.stats.playout,
      depth: r.depth,
      toPage: r.toPage,
      rtc: r.rtc,
      latency: r.latency,
      load,
    };
    console.log(JSON.stringify({ ...row, lat: row.lat.map(Math.round), toPage: row.toPage.map(Math.round) }));
    rows.push(row);
  }
}

const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : "–");
const summary = combos.map((key) => {
  const rs = rows.filter((r) => r.key === key);
  const lat = rs.flatMap((r) => r.lat);
  const mean = (xs) => xs.reduce((a, x) => a + x, 0) / xs.length;
  // What the callee's receive side held (NetEQ's mean delay, or the page's jitter buffer's mean depth) and its output latency.
  const buffer = mean(rs.map((r) => (r.rtc ? r.rtc.neteq : r.depth * 20)));
  const output = mean(rs.map((r) => (r.rtc ? r.rtc.playoutDelay : r.latency.output)));
  const toPage = rs.flatMap((r) => r.toPage);
  return { key, lat, p50: pct(lat, 50), p90: pct(lat, 90), n: lat.length, missed: rs.reduce((a, r) => a + r.missed, 0), buffer, output, toPage: toPage.length ? pct(toPage, 50) : NaN };
});
const ref = summary.find((s) => s.key === "wt-wt");
const ratio = (s) => (ref ? `${(s.p50 / ref.p50).toFixed(2)} / ${(s.p90 / ref.p90).toFixed(2)}` : "–");
/** What the callee's receive side held: the page's jitter buffer (WT), or NetEQ's (WebRTC). */
const receiver = (r) =>
  r.rtc
    ? `NetEQ ${f(r.rtc.neteq)} (target ${f(r.rtc.target)}, min ${f(r.rtc.minimum)}) ms; playout delay ${f(r.rtc.playoutDelay)} ms; concealed ${f(r.rtc.concealedMs)} ms, stretched ${f(r.rtc.stretchMs)} ms; ${r.rtc.lost} lost`
    : `page JB mean depth ${f(r.depth)}, target / depth at end ${r.jb.target} / ${r.jb.depth} frames; ${r.jb.underruns} underruns, ${r.jb.concealed} concealed`;

const chromium = execFileSync(L.chromiumPath, ["--version"]).toString().trim().split("\n").pop();
const lines = [
  "# Mouth-to-ear latency, browser → browser (WebTransport and the WebRTC fallback)",
  "",
  `\`node bench/browser-latency.mjs --transport ${transport} --secs ${secs} --runs ${runs}\` on ${new Date().toISOString().slice(0, 10)}, ${chromium}, headless, 2 cores, loopback, debug build of moq-relay.`,
  "",
  "| caller → callee | bursts found / missed | mouth-to-ear median (ms) | p90 (ms) | ratio to WT → WT (median / p90) | mouth → datagram in the callee's page (ms) | callee's receive buffer (ms) | callee's output latency (ms) | rest (ms) |",
  "|---|---|---|---|---|---|---|---|---|",
  ...summary.map(
    (s) =>
      `| ${COMBOS[s.key].label} | ${s.n} / ${s.missed} | ${f(s.p50)} | ${f(s.p90)} | ${ratio(s)} | ${f(s.toPage)} | ${f(s.buffer)} | ${f(s.output)} | ${f(s.p50 - s.buffer - s.output)} |`,
  ),
  "",
  `All runs' bursts pooled; a burst is missed when the callee played no onset within ${MATCH_MS} ms of it. The receive buffer is NetEQ's`,
  "mean delay for a WebRTC callee and the page's jitter buffer's mean depth (sampled 4 times a second, × 20 ms) for a WebTransport one; the output",
  "latency is WebRTC's reported playout delay, or the AudioContext's outputLatency; the rest is the median minus both (means over the calls):",
  "the sender's path, the relay and the callee's decoding. For a WebTransport callee, the median time from the burst's onset at the caller to",
  "its first large datagram read in the callee's page (a bench-only pass-through behind `datagrams.readable`; a tone's Opus packets are far",
  "larger than silence's) splits the path: the sender's side and the relay up to it, the callee's receive side after it.",
  "",
  "## Method",
  "",
  "Two headless Chromium pages (each its own browser process) call each other through a fresh moq-relay per call. The caller's fake",
  `microphone plays 200 ms bursts of ${BURST_HZ} Hz once a second; echo cancellation and noise suppression are on. The paths:`,
  "",
  "- WebTransport page: getUserMedia → the microphone track → MediaStreamTrackProcessor (10 ms chunks) → media worker (libopus in",
  "  WebAssembly, 20 ms, FEC) → OBJECT_DATAGRAM → relay → OBJECT_DATAGRAM → page → playout AudioWorklet (playout controller, libopus",
  "  decode / FEC / PLC at playout time, time-stretch; target ≥ 40 ms) → speaker. `?capture=worklet` (the former path): the microphone →",
  "  AudioContext (48 kHz) → capture AudioWorklet → media worker.",
  "- WebRTC page (`?transport=webrtc`): the microphone track → RTCRtpSender (Chromium's Opus RTP, 20 ms) → the relay's gateway, which makes",
  "  each RTP packet the OBJECT_DATAGRAM a WebTransport page would send; towards a WebRTC callee the gateway turns the datagrams back into RTP",
  "  (it keeps no buffer) → NetEQ (Chromium's WebRTC jitter buffer) → remote track → `<audio>` element → speaker.",
  "",
  "Each burst's onset is found in what the caller's capture worklet saw (time stamped through AudioContext.getOutputTimestamp, minus",
  "the browser's render latency, plus the microphone latency the browser reports) and in what the callee played, time stamped for when it",
  "reaches the speaker (the context's reported output latency included). The capture tap is the same node in both modes: a WebRTC page",
  "connects its microphone to the capture worklet too (it just sends nothing from it), so both modes share one reference point. What lies",
  "before it (the browser's audio processing, the AudioContext's input queue) is left out of every row alike, so differences between rows",
  "are real; but an RTP sender takes the microphone track directly, ahead of that queue, and so does a WebTransport page (unless",
  "`?capture=worklet`), so their rows show what that queue costs a sender that waits for it.",
  "On a WebRTC callee the playout worklet records its input, the remote track, which the `<audio>` element plays (the worklet outputs",
  "silence); its time stamps are those of the page's AudioContext, not of the `<audio>` element's own output stream. Both pages share the",
  "host clock. Fake devices: the real device latencies of a phone or laptop come on top. Reported, not asserted.",
  "",
  "The WebTransport jitter buffer sizes itself from measured arrival jitter (98th percentile over 5 s, plus one frame); on this 2-core",
  "machine other work (compilers, test suites) running at the same time shows up as arrival spikes, so the load average at the start of",
  "each call is given. The callee's receive side: for a WebTransport callee the page's jitter buffer (mean depth; target / depth at the end);",
  "for a WebRTC callee NetEQ's mean delay, target and minimum over the recording (inbound-rtp jitterBufferDelay, jitterBufferTargetDelay,",
  "jitterBufferMinimumDelay per emitted sample) and the audio playout delay WebRTC reports (media-playout totalPlayoutDelay per sample), read",
  "through a bench-only init script that keeps the page's RTCPeerConnection.",
  "",
  "## Calls",
  "",
  "| caller → callee | run | load average | bursts matched / missed | p50 (ms) | p90 (ms) | min (ms) | max (ms) | mouth → datagram in the callee's page, median (ms) | callee's receive side | callee's context base / output latency, caller's input latency (ms) |",
  "|---|---|---|---|---|---|---|---|---|---|---|",
  ...rows.map(
    (r) =>
      `| ${COMBOS[r.key].label} | ${r.run} | ${r.load} | ${r.n} / ${r.missed} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.min)} | ${f(r.max)} | ${r.toPage.length ? f(pct(r.toPage, 50)) : "–"} | ${receiver(r)} | ${f(r.latency.base)} / ${f(r.latency.output)}, ${f(r.latency.input)} |`,
  ),
  "",
];
// A "## Notes" section written by hand (findings, explanations) is kept from the previous file.
let notes = "";
try {
  const prev = readFileSync(out, "utf8");
  const at = prev.indexOf("\n## Notes\n");
  if (at >= 0) notes = prev.slice(at + 1);
} catch {
  // no previous file
}
writeFileSync(out, lines.join("\n") + (notes ? `\n${notes}` : ""));
console.log(`wrote ${out}`);
