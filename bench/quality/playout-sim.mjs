// The web phone's receiver offline: the bench's speech, encoded as the web
// phone encodes it (libopus in WebAssembly, 20 ms frames, FEC), sent over a
// simulated link (bench/src/link.rs's model: base delay + uniform extra
// delay, order kept unless --reorder, random or Gilbert–Elliott loss), played
// by webapp/src/media/receiver.ts (the controller, FEC/PLC, stretch) with the
// render thread modelled as Chromium runs a worklet (a wake-up every 10 ms
// that renders the quanta due), scored with score.py (PESQ, delay).
//
// What it is for: tuning the controller's thresholds in seconds instead of
// browser calls. What it leaves out: the page's main thread between the
// network and the worklet, the encoder's real-time pacing, QUIC. Compare
// configurations with each other here; compare paths in bench/quality/run.
//
//   node bench/quality/playout-sim.mjs [--voice a|b] [--jitter 60] [--delay 10] [--loss 0]
//        [--burst 0] [--red 0] [--reorder] [--seed 1] [--config '{"marginMs":10}'] [--runs 3]
//
// Prints one JSON line per run and the medians. Needs the speech and the
// venv (bench/quality/run makes them) and webapp's node_modules (esbuild).
import { execFileSync } from "node:child_process";
import { readWav16, writeWav } from "./lib.mjs";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const voice = opt("voice", "a");
const jitter = Number(opt("jitter", "60"));
const delay = Number(opt("delay", "10"));
const loss = Number(opt("loss", "0"));
const burst = Number(opt("burst", "0"));
const reorder = args.includes("--reorder");
const seed0 = Number(opt("seed", "1"));
const runs = Number(opt("runs", "3"));
const config = JSON.parse(opt("config", "{}"));
/** REDUNDANT_FRAME distance the sender uses throughout (0: none; the phones switch it by report, quality.md §4.2). */
const red = Number(opt("red", "0"));
const QUANTUM = 128;
/** Chromium wakes a worklet's render thread about every 10 ms and renders the quanta due then. */
const WAKE_MS = 10;

const dir = mkdtempSync(join(tmpdir(), "playout-sim-"));
// The receiver and the codec, bundled from the web phone's sources by its own esbuild.
const { build } = await import(pathToFileURL(join(repo, "webapp/node_modules/esbuild/lib/main.js")).href);
const entry = join(dir, "entry.ts");
writeFileSync(entry, `export { Receiver } from ${JSON.stringify(join(repo, "webapp/src/media/receiver.ts"))};\nexport { OpusFrameDecoder, OpusFrameEncoder } from ${JSON.stringify(join(repo, "webapp/src/media/opus.ts"))};\n`);
await build({ entryPoints: [entry], outfile: join(dir, "rx.mjs"), bundle: true, format: "esm", platform: "node", logLevel: "warning", nodePaths: [join(repo, "webapp/node_modules")] });
const { Receiver, OpusFrameDecoder, OpusFrameEncoder } = await import(pathToFileURL(join(dir, "rx.mjs")).href);



/** xorshift64* in [0, 1) (seeded; not link.rs's stream, the same kind of link). */
function rng(seed) {
  let s = (BigInt(seed) * 0x9e3779b97f4a7c15n + 1n) & 0xffffffffffffffffn;
  return () => {
    s ^= s >> 12n; s ^= (s << 25n) & 0xffffffffffffffffn; s ^= s >> 27n;
    return Number(((s * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn) >> 11n) / 2 ** 53;
  };
}

const sent = join(repo, "target/quality", `${voice}.wav`);
const pcm = readWav16(sent);
const frames = Math.floor(pcm.length / 960);
const enc = await OpusFrameEncoder.create();
const packets = [];
for (let n = 0; n < frames; n++) packets.push(enc.encode(Float32Array.from(pcm.subarray(n * 960, n * 960 + 960), (v) => v / 32768)).slice());

async function once(seed) {
  const r = rng(seed);
  // The link: arrival times (ms) of the packets that survive.
  const arrivals = [];
  let last = 0;
  let bad = false;
  for (let n = 0; n < frames; n++) {
    // Gilbert–Elliott when --burst > 1 (mean burst length), else random loss.
    if (burst > 1) {
      const p = loss / (burst * (1 - loss));
      bad = bad ? r() >= 1 / burst : r() < p;
      if (bad) continue;
    } else if (r() < loss) continue;
    let at = 20 * n + delay + jitter * r();
    if (!reorder) at = Math.max(at, last);
    last = at;
    arrivals.push([at, n]);
  }
  arrivals.sort((x, y) => x[0] - y[0]);
  const rx = new Receiver(await OpusFrameDecoder.create(), config);
  const out = new Float32Array(pcm.length + 48000 * 2);
  let rendered = 0;
  let i = 0;
  const q = new Float32Array(QUANTUM);
  for (let wake = 0; rendered + QUANTUM <= out.length; wake += WAKE_MS) {
    while (i < arrivals.length && arrivals[i][0] <= wake) {
      const [at, n] = arrivals[i++];
      rx.push(n, undefined, at, packets[n]);
      if (red > 0 && n >= red) rx.pushRedundant(n - red, at, packets[n - red]);
    }
    // Render ahead up to the next wake-up.
    while (rendered + QUANTUM <= out.length && rendered < ((wake + WAKE_MS) * 48000) / 1000) {
      rx.render(q);
      out.set(q, rendered);
      rendered += QUANTUM;
    }
  }
  const heard = join(dir, `heard-${seed}.wav`);
  writeWav(heard, out);
  const s = JSON.parse(execFileSync(join(repo, "target/quality-venv/bin/python"), [join(repo, "bench/quality/score.py"), sent, heard, "--brief"], { encoding: "utf8" }));
  const st = rx.report();
  return { seed, mos: s.mos_median, delay_ms: s.delay_ms_p50, underruns: st.underruns, concealed: st.concealed, fec: st.fec, accel_ms: st.accelMs, expand_ms: st.expandMs, target_ms: st.targetMs };
}

const results = [];
for (let k = 0; k < runs; k++) {
  const res = await once(seed0 + k);
  console.log(JSON.stringify(res));
  results.push(res);
}
const med = (key) => {
  const v = results.map((x) => x[key]).sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
};
console.log(JSON.stringify({ config, jitter, loss, burst, red, median: Object.fromEntries(["mos", "delay_ms", "underruns", "concealed", "accel_ms", "expand_ms"].map((k) => [k, med(k)])) }));
