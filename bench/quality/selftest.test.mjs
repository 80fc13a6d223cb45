// The harness's own fast self-tests (no processes, no browser): option parsing, the proxy's first
// line, the profile list, moq-phone's audio line, seeds. Run: node --test bench/quality/
import assert from "node:assert/strict";
import { test } from "node:test";
import { firstAudioMs, parseProfileList, parseProxyLine, seedFor } from "./lib.mjs";
import { parseAudioLine } from "./moq.mjs";
import { parseArgs, QUICK_PROFILES } from "./run.mjs";

const ALL = ["clean", "loss1", "loss3", "loss5", "loss10", "bursty5", "jitter20", "jitter60", "loss2-jitter20", "cap500k", "outage300ms", "outage2s"];

test("the proxy's first line gives its port and epoch", () => {
  const p = parseProxyLine("impairing 127.0.0.1:40123 → 127.0.0.1:4443: up loss3, down loss3, seed 7, epoch_unix_us 1765000000123456 (outages start 10s after it)");
  assert.deepEqual(p, { host: "127.0.0.1", port: 40123, epochMs: 1765000000123.456 });
  assert.equal(parseProxyLine("impairing 127.0.0.1:1 → x: up a, down b (no epoch)"), undefined);
});

test("profiles and their outages come from `impair --list`", () => {
  const out = [
    "clean            Profile { loss: None, delay: 10ms, jitter: 0ns, reorder: false, rate_bps: None, queue: 200ms, cross_bps: 0, outages: [] }",
    "outage300ms      Profile { loss: None, delay: 10ms, jitter: 0ns, reorder: false, rate_bps: None, queue: 200ms, cross_bps: 0, outages: [(10s, 300ms)] }",
    "outage2s         Profile { loss: None, delay: 10ms, jitter: 0ns, reorder: false, rate_bps: None, queue: 200ms, cross_bps: 0, outages: [(10s, 2s)] }",
  ].join("\n");
  assert.deepEqual(parseProfileList(out), [
    { name: "clean", outage: undefined },
    { name: "outage300ms", outage: { at: 10, len: 0.3 } },
    { name: "outage2s", outage: { at: 10, len: 2 } },
  ]);
});

test("moq-phone's audio statistics line", () => {
  assert.deepEqual(parseAudioLine("audio: played 1449 fec 3 concealed 12 underruns 1 late 0"), { played: 1449, fec: 3, concealed: 12, underruns: 1, late: 0 });
  assert.equal(parseAudioLine("established"), undefined);
});

test("options: defaults, --quick, and bad values refused", () => {
  const d = parseArgs([], ALL);
  assert.deepEqual(d.profiles, ALL);
  assert.equal(d.runs, 3);
  assert.deepEqual(d.paths, ["moq-moq", "wt-wt", "ref-rtc", "rtc-wt", "pbx-echo"]);
  const q = parseArgs(["--quick"], ALL);
  assert.deepEqual(q.profiles, QUICK_PROFILES);
  assert.equal(q.runs, 1);
  assert.equal(parseArgs(["--quick", "--runs", "2"], ALL).runs, 2);
  assert.deepEqual(parseArgs(["--paths", "wt-wt", "--profiles", "loss5"], ALL).profiles, ["loss5"]);
  assert.throws(() => parseArgs(["--paths", "nope"], ALL), /no path nope/);
  assert.throws(() => parseArgs(["--profiles", "loss4"], ALL), /no profile loss4/);
  assert.throws(() => parseArgs(["--runs", "0"], ALL), /--runs/);
  assert.throws(() => parseArgs(["--runs"], ALL), /needs a value/);
  assert.throws(() => parseArgs(["--bogus"], ALL), /unknown option/);
});

test("seeds depend on profile and run only (every path meets the same loss pattern)", () => {
  assert.equal(seedFor("loss3", 1), seedFor("loss3", 1));
  assert.notEqual(seedFor("loss3", 1), seedFor("loss3", 2));
  assert.notEqual(seedFor("loss3", 1), seedFor("loss5", 1));
  assert.ok(seedFor("clean", 1) > 0);
});

test("first audio after the answer: the first 10 ms above -50 dBFS after `established`", () => {
  const samples = new Float32Array(48000);
  // A -40 dBFS sine from 300 ms on; -60 dBFS noise-like ripple before it does not count.
  for (let i = 0; i < samples.length; i++) samples[i] = (i >= 14400 ? 0.01 : 0.001) * Math.sin(i * 0.3);
  const tap = { startMs: 1000, samples };
  assert.equal(firstAudioMs(tap, 1100), 200); // established 100 ms into the recording
  assert.equal(firstAudioMs(tap, 900), undefined); // the recording started after it
  assert.equal(firstAudioMs({ startMs: 0, samples: new Float32Array(4800) }, 0), undefined); // silence
});
