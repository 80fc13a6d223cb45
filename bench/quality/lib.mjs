// Shared pieces of the quality harness (issue 19, docs/design/quality.md §2):
// the impairment proxies (`moq-bench impair`), child processes that are always
// cleaned up, deadlines, WAV files and the scoring step (score.py).
//
// Every wait has a deadline; a call that misses one becomes a row with its
// reason, never a hang.
import { spawn, execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "../..");
export const benchBin = process.env.MOQ_BENCH_BIN ?? join(repo, "target/debug/moq-bench");
export const venvPython = process.env.QUALITY_PYTHON ?? join(repo, "target/quality-venv/bin/python");

/** Wall clock in ms with sub-ms resolution (performance's, anchored to the epoch). */
export const wallMs = () => performance.timeOrigin + performance.now();

/** Every child still running; {@link killAll} ends them (at exit, on a timeout). */
const children = new Set();

/**
 * Spawns `cmd args` with its stdout and stderr split into lines; each line is
 * kept with its arrival time (`wallMs`). `line(re, ms)` waits for one.
 */
export function child(cmd, args, { env = {}, name = cmd } = {}) {
  const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  children.add(proc);
  const lines = []; // { t, stream, text }
  const watchers = new Set();
  let closed = false;
  const feed = (stream) => {
    let buf = "";
    return (d) => {
      buf += String(d);
      const parts = buf.split("\n");
      buf = parts.pop();
      const t = wallMs();
      for (const text of parts) lines.push({ t, stream, text });
      for (const w of watchers) w();
    };
  };
  proc.stdout.on("data", feed("out"));
  proc.stderr.on("data", feed("err"));
  const exited = new Promise((r) =>
    proc.once("close", (code, sig) => {
      closed = true;
      children.delete(proc);
      for (const w of watchers) w();
      r({ code, sig });
    }),
  );
  proc.once("error", (e) => lines.push({ t: wallMs(), stream: "err", text: `spawn failed: ${e.message}` }));
  return {
    proc,
    lines,
    exited,
    log: () => lines.map((l) => l.text).join("\n"),
    /** The first line matching `re` (as `{t, text, m}`), waiting up to `ms`. */
    line(re, ms = 15000) {
      return new Promise((res, rej) => {
        const check = () => {
          const l = lines.find((x) => re.test(x.text));
          if (l) {
            done();
            res({ ...l, m: l.text.match(re) });
          } else if (closed) {
            done();
            rej(new Error(`${name} exited before printing ${re}: ${tail(lines)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          rej(new Error(`${name}: no ${re} within ${ms} ms: ${tail(lines)}`));
        }, ms);
        const done = () => {
          clearTimeout(timer);
          watchers.delete(check);
        };
        watchers.add(check);
        check();
      });
    },
    /** SIGTERM, then SIGKILL after 3 s; resolves when it is gone. */
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(t);
      }
      return exited;
    },
  };
}

const tail = (lines) => lines.slice(-8).map((l) => l.text).join(" | ").slice(-600);

/** Kills every child still running (SIGKILL): the harness's own processes only. */
export function killAll() {
  for (const p of children) p.kill("SIGKILL");
}
process.on("exit", killAll);

/** `p`, or a rejection naming `what` after `ms`. */
export function deadline(p, ms, what) {
  let timer;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error(`${what}: timed out after ${ms / 1000} s`)), ms);
    }),
  ]);
}

/**
 * The proxy's first stderr line (bench/src/main.rs, `impair`): its address
 * and the links' time zero. Exported for the self-test.
 */
export function parseProxyLine(text) {
  const m = text.match(/^impairing (\S+):(\d+) → \S+: .*epoch_unix_us (\d+)/);
  if (!m) return undefined;
  return { host: m[1], port: Number(m[2]), epochMs: Number(m[3]) / 1000 };
}

/**
 * `moq-bench impair` from `listen` (default a free port) to `to`, `up` / `down`
 * profiles, `seed`; resolves once it is bound, with its port and epoch. `prefix` runs it
 * otherwise (e.g. `ip netns exec NS moq-bench`).
 */
export async function startProxy({ to, up, down = up, seed, listen = "127.0.0.1:0", prefix = [benchBin] }) {
  const c = child(prefix[0], [...prefix.slice(1), "impair", "--listen", listen, "--to", to, "--up", up, "--down", down, "--seed", String(seed)], { name: "moq-bench impair" });
  const l = await c.line(/^impairing /, 10000);
  const p = parseProxyLine(l.text);
  if (!p) throw new Error(`moq-bench impair: unexpected first line ${JSON.stringify(l.text)} (is target/debug/moq-bench current?)`);
  return { ...p, stop: () => c.stop(), child: c };
}

/**
 * The named profiles with their outage windows, from `moq-bench impair
 * --list` (link.rs is the one place they are defined).
 */
export function listProfiles() {
  const out = execFileSync(benchBin, ["impair", "--list"], { encoding: "utf8" });
  return parseProfileList(out);
}

/** Parses `impair --list` lines: `name   Profile { …, outages: [(10s, 300ms)] }`. */
export function parseProfileList(out) {
  const secs = (v, unit) => Number(v) * (unit === "ms" ? 0.001 : unit === "µs" ? 1e-6 : 1);
  const profiles = [];
  for (const line of out.split("\n")) {
    const m = line.match(/^(\S+)\s+Profile \{(.*)\}\s*$/);
    if (!m) continue;
    const o = m[2].match(/outages: \[\(([\d.]+)(ms|µs|s), ([\d.]+)(ms|µs|s)\)/);
    profiles.push({ name: m[1], outage: o ? { at: secs(o[1], o[2]), len: secs(o[3], o[4]) } : undefined });
  }
  return profiles;
}

/** Seed of (profile, run): the same on every path, so each path meets the same loss pattern. */
export function seedFor(profile, run) {
  let h = 2166136261;
  for (const ch of `${profile}#${run}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h % 1000000007 || 1;
}

/** The 16-bit samples of a PCM WAV's data chunk. */
export function readWav16(path) {
  const buf = readFileSync(path);
  for (let off = 12; off + 8 <= buf.length; ) {
    const id = buf.toString("ascii", off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === "data") return new Int16Array(buf.buffer.slice(buf.byteOffset + off + 8, buf.byteOffset + off + 8 + size));
    off += 8 + size + (size & 1);
  }
  throw new Error(`${path}: no data chunk`);
}

/** Writes float samples (-1..1) as a 16-bit mono WAV. */
export function writeWav(path, samples, rate = 48000) {
  const data = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32767))), i * 2);
  const h = Buffer.alloc(44);
  h.write("RIFF", 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write("WAVEfmt ", 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36);
  h.writeUInt32LE(data.length, 40);
  writeFileSync(path, Buffer.concat([h, data]));
  return path;
}

/**
 * First audio after answer (design §2.3 point 7): from the page's "established" (wall ms) to the
 * first 10 ms of its playout above -50 dBFS (a full-scale sine is 0 dBFS), in ms; undefined if the
 * recording started later or nothing was heard.
 */
export function firstAudioMs(tap, establishedMs) {
  if (establishedMs === undefined || !(tap.startMs <= establishedMs)) return undefined;
  const n = 480;
  const threshold = 10 ** (-50 / 10) / 2; // mean square of a sine at -50 dBFS
  const from = Math.floor(((establishedMs - tap.startMs) * 48000) / 1000);
  for (let i = Math.max(0, from); i + n <= tap.samples.length; i += n) {
    let sq = 0;
    for (let j = i; j < i + n; j++) sq += tap.samples[j] * tap.samples[j];
    if (sq / n > threshold) return ((i - from) * 1000) / 48000;
  }
  return undefined;
}

/** Base64 little-endian int16 PCM (the pages' recordings) → float samples. */
export function pcmFromBase64(b64) {
  const b = Buffer.from(b64, "base64");
  const x = new Float32Array(b.length >> 1);
  for (let i = 0; i < x.length; i++) x[i] = b.readInt16LE(i * 2) / 32768;
  return x;
}

/**
 * Scores one call direction with score.py. `offsetMs` = received recording's
 * first sample minus the sent one's (wall clock); `outage` = {at, len} in s on
 * RECEIVED's timeline. Resolves with the JSON, or rejects with score.py's one line.
 */
export function score(sent, received, { offsetMs = 0, outage, minDelayMs, maxDelayMs } = {}) {
  const args = [join(here, "score.py"), sent, received, "--start-offset-ms", offsetMs.toFixed(2)];
  if (outage) args.push("--outage-at", Math.max(0, outage.at).toFixed(3), "--outage-len", String(outage.len));
  if (minDelayMs !== undefined) args.push("--min-delay-ms", String(minDelayMs));
  if (maxDelayMs !== undefined) args.push("--max-delay-ms", String(maxDelayMs));
  const c = child(venvPython, args, { name: "score.py" });
  return deadline(c.exited, 120000, "score.py").then(({ code }) => {
    const out = c.lines.filter((l) => l.stream === "out").map((l) => l.text).join("\n");
    const err = c.lines.filter((l) => l.stream === "err").map((l) => l.text).join(" ");
    if (code !== 0) throw new Error(`score.py exit ${code}: ${err.slice(0, 400)}`);
    return JSON.parse(out);
  });
}

/** A port free for TCP and UDP on 127.0.0.1 (a TCP front and a proxy share it). */
export async function freePort() {
  const { createSocket } = await import("node:dgram");
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const tcp = await new Promise((r) => {
      const s = createServer();
      s.once("error", () => r(false));
      s.listen(port, "127.0.0.1", () => s.close(() => r(true)));
    });
    if (!tcp) continue;
    const udp = await new Promise((r) => {
      const u = createSocket("udp4");
      u.once("error", () => r(false));
      u.bind(port, "127.0.0.1", () => u.close(() => r(true)));
    });
    if (udp) return port;
  }
  throw new Error("no free port");
}

// The TCP front in front of a proxied relay: the e2e tests' own (webapp/test/e2e/lib.mjs).
export { tcpFront } from "../../webapp/test/e2e/lib.mjs";

export const exists = existsSync;

export const relayBin = process.env.MOQ_RELAY_BIN ?? join(repo, "target/debug/moq-relay");
export const phoneBin = process.env.MOQ_PHONE_BIN ?? join(repo, "target/debug/moq-phone");
/** The web phone the relay serves: webapp/dist, or QUALITY_WEBAPP (e.g. a build of another commit). */
export const webappDist = process.env.QUALITY_WEBAPP ?? join(repo, "webapp/dist");

/** moq-relay on 127.0.0.1:`port` (UDP and TCP) serving webapp/dist; resolves once it printed its banner. */
export async function startRelay(port, extra = []) {
  const c = child(relayBin, ["--bind", `127.0.0.1:${port}`, "--webapp", webappDist, "--drain-secs", "1", ...extra], {
    name: "moq-relay",
    env: { RUST_LOG: process.env.RUST_LOG ?? "warn", MOQ_RELAY_WEBRTC_BIND: process.env.MOQ_RELAY_WEBRTC_BIND ?? "127.0.0.1:0" },
  });
  await c.line(/^moq-relay /, 15000);
  return { port, base: `http://127.0.0.1:${port}/`, stop: () => c.stop(), child: c };
}

export const turnBin = ["/usr/bin/turnserver", "/usr/sbin/turnserver"].find((p) => existsSync(p));
export const TURN_SECRET = "quality-turn-secret";

/**
 * coturn on 127.0.0.1:`port` over UDP (as webapp/test/e2e/turn.e2e.mjs runs it, with UDP on), with
 * TURN REST credentials (`use-auth-secret`, {@link turnCredentials}); relays between allocations on
 * loopback. Resolves once it logs that it listens.
 */
export async function startTurn(port, dir) {
  if (!turnBin) throw new Error("turnserver not found: apt-get install coturn");
  const c = child(
    turnBin,
    [
      "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", `--listening-port=${port}`, "--no-tcp", "--no-tls", "--no-dtls", "--no-cli",
      "--use-auth-secret", `--static-auth-secret=${TURN_SECRET}`, "--realm=quality.test", "--allow-loopback-peers",
      `--pidfile=${join(dir, `turn-${port}.pid`)}`, `--db=${join(dir, `turn-${port}.db`)}`, "--log-file=stdout", "--simple-log",
    ],
    { name: "turnserver" },
  );
  // "Total General servers" comes once its listeners and relay threads are up.
  await c.line(/Total General servers/, 15000).catch(async (e) => {
    await c.stop();
    throw e;
  });
  return { port, stop: () => c.stop(), child: c };
}

/** TURN REST credentials (draft-uberti-behave-turn-rest) for coturn's `use-auth-secret`. */
export async function turnCredentials(user = "q", ttlS = 3600) {
  const { createHmac } = await import("node:crypto");
  const username = `${Math.floor(Date.now() / 1000) + ttlS}:${user}`;
  return { username, credential: createHmac("sha1", TURN_SECRET).update(username).digest("base64") };
}
