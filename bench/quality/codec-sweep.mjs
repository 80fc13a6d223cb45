// The codec alone: the bench's speech (target/quality/a.wav, b.wav) through
// libopus 1.6.1 in WebAssembly — the web phone's encoder and decoder
// (webapp/src/media/opus.ts: VoIP, complexity 9, FEC on, DTX off) — at each
// bitrate and expected loss, no packet lost, scored with score.py (PESQ
// P.862.2). The table behind the bitrates in pub-sub-audio/src/audio/adapt.rs.
//
//   node bench/quality/codec-sweep.mjs [--bitrates 32000,40000,48000,56000,64000] [--loss 2,10,20]
//
// Needs `bench/quality/run` to have made the speech and the venv once
// (or: bash bench/quality/setup.sh && bash bench/quality/speech.sh).
import { execFileSync } from "node:child_process";
import { readWav16, writeWav } from "./lib.mjs";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
// An ESM-only package: resolved from the web phone's node_modules by its own package.json.
const pkg = join(repo, "webapp/node_modules/libopus-wasm");
const main = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));
const entry = main.exports?.["."]?.import ?? main.exports?.["."]?.default ?? main.module ?? main.main;
const opus = await import(pathToFileURL(join(pkg, typeof entry === "string" ? entry : entry.default)).href);
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return (i > 0 ? process.argv[i + 1] : dflt).split(",").map(Number);
};
const bitrates = arg("bitrates", "32000,40000,48000,56000,64000");
const losses = arg("loss", "2,10,20");
const py = join(repo, "target/quality-venv/bin/python");
const dir = mkdtempSync(join(tmpdir(), "codec-sweep-"));



async function through(pcm, bitrate, loss) {
  const enc = await opus.createEncoder({ sampleRate: 48000, channels: 1, application: opus.Application.Voip, bitrate, complexity: 9, fec: true, dtx: false, packetLossPercent: loss, signal: opus.Signal.Auto });
  const dec = await opus.createDecoder({ sampleRate: 48000, channels: 1 });
  const out = new Int16Array(pcm.length);
  let bytes = 0;
  for (let i = 0; i + 960 <= pcm.length; i += 960) {
    const f = Float32Array.from(pcm.subarray(i, i + 960), (v) => v / 32768);
    const p = enc.encodeFloat(f);
    bytes += p.length;
    const y = dec.decodeFloat(p);
    for (let j = 0; j < 960; j++) out[i + j] = Math.max(-32768, Math.min(32767, Math.round((y[j] ?? 0) * 32768)));
  }
  enc.free();
  dec.free();
  return { out, kbps: (bytes * 8) / (pcm.length / 48000) / 1000 };
}

console.log("| voice | bitrate (kbit/s) | expected loss % | payload kbit/s | PESQ median | PESQ worst |");
console.log("|---|---|---|---|---|---|");
for (const voice of ["a", "b"]) {
  const sent = join(repo, "target/quality", `${voice}.wav`);
  const pcm = readWav16(sent);
  for (const bitrate of bitrates)
    for (const loss of losses) {
      const { out, kbps } = await through(pcm, bitrate, loss);
      const heard = join(dir, `${voice}-${bitrate}-${loss}.wav`);
      writeWav(heard, Float32Array.from(out, (v) => v / 32768));
      const s = JSON.parse(execFileSync(py, [join(repo, "bench/quality/score.py"), sent, heard, "--brief"], { encoding: "utf8" }));
      console.log(`| ${voice} | ${bitrate / 1000} | ${loss} | ${kbps.toFixed(1)} | ${s.mos_median} | ${s.mos_worst} |`);
    }
}
