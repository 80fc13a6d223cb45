// Helpers of the browser end-to-end tests: a moq-relay per test file on a
// free port, headless Chromium (Debian's /usr/bin/chromium via
// playwright-core) with a fake microphone playing a generated WAV, the CLI
// phone (moq-phone) as a peer, and tone analysis (Goertzel).
//
// No sleeps as synchronisation: everything waits for a state with a deadline.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { createSocket } from "node:dgram";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const webappDir = resolve(here, "../..");
const repo = resolve(webappDir, "..");
export const relayBin = process.env.MOQ_RELAY_BIN ?? join(repo, "target/debug/moq-relay");
export const phoneBin = process.env.MOQ_PHONE_BIN ?? join(repo, "target/debug/moq-phone");
export const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
/** WAVs written and recorded by a test run; removed at exit unless MOQ_E2E_KEEP=1. */
export const tmp = mkdtempSync(join(tmpdir(), "moq-phone-e2e-"));
if (process.env.MOQ_E2E_KEEP !== "1") process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

/** Polls `check` (sync or async) until it returns a truthy value; throws after `ms` naming `what`. */
export async function until(what, check, ms = 15000, every = 50) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

async function portFree(port) {
  const tcp = await new Promise((res) => {
    const s = createServer();
    s.once("error", () => res(false));
    s.listen({ port, host: "::", ipv6Only: false }, () => s.close(() => res(true)));
  });
  if (!tcp) return false;
  return new Promise((res) => {
    const u = createSocket({ type: "udp6", ipv6Only: false });
    u.once("error", () => res(false));
    u.bind(port, "::", () => u.close(() => res(true)));
  });
}

/** A port free for both TCP and UDP (the relay uses the same number for both). */
export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    if (await portFree(port)) return port;
  }
  throw new Error("no free port");
}

/**
 * Spawns moq-relay on `bind` serving webapp/dist, optionally behind a command
 * `prefix` (e.g. `ip netns exec NS`). `listening` resolves once the relay
 * printed its banner (it does so once its UDP and TCP sockets are bound) and
 * rejects if it exits first or stays silent for 15 s. `stop(signal)` sends
 * the signal and waits for the exit; a relay that ignores SIGTERM is killed
 * after 5 s.
 */
export function spawnRelay(bind, prefix = [], extra = []) {
  if (!existsSync(relayBin)) throw new Error(`${relayBin} not found: build it (cargo build -p moq-relay) or set MOQ_RELAY_BIN`);
  const argv = [...prefix, relayBin, "--bind", bind, "--webapp", join(webappDir, "dist"), "--drain-secs", "1", ...extra];
  const proc = spawn(argv[0], argv.slice(1), {
    stdio: ["ignore", "pipe", "pipe"],
    // The WebRTC gateway on a kernel-chosen port (as scripts/test does): the default, QUIC port + 1, may be taken.
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn", MOQ_RELAY_WEBRTC_BIND: process.env.MOQ_RELAY_WEBRTC_BIND ?? "127.0.0.1:0" },
  });
  const log = [];
  proc.stdout.on("data", (d) => log.push(String(d)));
  proc.stderr.on("data", (d) => log.push(String(d)));
  const exited = new Promise((r) => proc.once("exit", (code, sig) => r({ code, sig })));
  const listening = new Promise((res, rej) => {
    let out = "";
    const timer = setTimeout(() => rej(new Error(`moq-relay on ${bind} printed no banner within 15 s: ${log.join("")}`)), 15000);
    const onData = (d) => {
      out += String(d);
      if (/^moq-relay /m.test(out)) {
        clearTimeout(timer);
        proc.stdout.off("data", onData);
        res();
      }
    };
    proc.stdout.on("data", onData);
    exited.then(({ code, sig }) => {
      clearTimeout(timer);
      rej(new Error(`moq-relay on ${bind} exited (${code ?? sig}) before listening: ${log.join("")}`));
    });
  });
  listening.catch(() => undefined); // a caller that never awaits it sees no unhandled rejection
  return {
    proc,
    log,
    listening,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
}

/** moq-bench, for its `impair` proxy. */
export const benchBin = process.env.MOQ_BENCH_BIN ?? join(repo, "target/debug/moq-bench");

/**
 * `moq-bench impair` on 127.0.0.1:`port` (UDP) in front of the relay's QUIC;
 * resolves once it printed its first line ("impairing <addr> → …").
 */
export async function startImpair(port, relayPort, profile) {
  if (!existsSync(benchBin)) throw new Error(`${benchBin} not found: build it (cargo build -p moq-bench) or set MOQ_BENCH_BIN`);
  const proc = spawn(benchBin, ["impair", "--listen", `127.0.0.1:${port}`, "--to", `127.0.0.1:${relayPort}`, "--up", profile, "--down", profile, "--seed", "19"], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`moq-bench impair printed nothing in 10 s: ${err}`)), 10000);
    proc.stderr.on("data", (d) => {
      err += String(d);
      if (/^impairing \S+ → /m.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`moq-bench impair exited (${code}): ${err}`));
    });
  });
  return { stop: () => proc.kill("SIGTERM") };
}

/** Starts moq-relay on `port` serving webapp/dist (with `extra` arguments); resolves once it is listening. */
export async function startRelay(port, extra = []) {
  const relay = spawnRelay(`[::]:${port}`, [], extra);
  await relay.listening;
  return { ...relay, port, base: `http://127.0.0.1:${port}/` };
}

/**
 * A mono 16-bit WAV (48 kHz unless `rate` says otherwise): `silenceS` of
 * silence, then a sine of `freq` Hz for `toneS`. Written to `path`, else to
 * `name` in the tests' temp dir; returns the path.
 */
export function writeToneWav(name, freq, { toneS = 20, silenceS = 0, amplitude = 0.5, rate = 48000, path = undefined } = {}) {
  const n = Math.round((silenceS + toneS) * rate);
  const data = Buffer.alloc(n * 2);
  const start = Math.round(silenceS * rate);
  for (let i = start; i < n; i++) data.writeInt16LE(Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * freq * (i - start)) / rate)), i * 2);
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
  const out = path ?? join(tmp, name);
  writeFileSync(out, Buffer.concat([h, data]));
  return out;
}

/** Samples (float, -1..1) and rate of a 16-bit PCM WAV file (as moq-phone --record writes). */
export function readWav(path) {
  const b = readFileSync(path);
  let pos = 12;
  let rate = 48000;
  let channels = 1;
  while (pos + 8 <= b.length) {
    const id = b.toString("ascii", pos, pos + 4);
    const len = b.readUInt32LE(pos + 4);
    if (id === "fmt ") {
      channels = b.readUInt16LE(pos + 10);
      rate = b.readUInt32LE(pos + 12);
    } else if (id === "data") {
      const n = Math.floor(len / 2 / channels);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = b.readInt16LE(pos + 8 + i * 2 * channels) / 32768;
      return { samples: out, rate };
    }
    pos += 8 + len + (len % 2);
  }
  throw new Error(`${path}: no data chunk`);
}

/** Power of `freq` in `x` (Goertzel), normalised by length. */
export function goertzel(x, rate, freq) {
  const w = (2 * Math.PI * freq) / rate;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < x.length; i++) {
    const s0 = x[i] + c * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.length * x.length);
}

/** Which of `candidates` (Hz) dominates `x`, with its share of their total power, and the RMS. */
export function dominantTone(x, rate, candidates) {
  const powers = candidates.map((f) => goertzel(x, rate, f));
  const total = powers.reduce((a, b) => a + b, 0) || 1;
  let best = 0;
  for (let i = 1; i < powers.length; i++) if (powers[i] > powers[best]) best = i;
  let sq = 0;
  for (let i = 0; i < x.length; i++) sq += x[i] * x[i];
  return { freq: candidates[best], share: powers[best] / total, rms: Math.sqrt(sq / (x.length || 1)) };
}

/**
 * Headless Chromium whose fake microphone plays `wav`; `viewport` defaults to
 * a phone. `micAllowed: false` makes the page's microphone request fail as
 * if the user denied it; `hostRules` are extra --host-resolver-rules;
 * `executablePath` replaces the browser binary (e.g. a wrapper that runs it
 * in a network namespace). WebRTC to a relay on this machine works with
 * the loopback flags passed here (`--allow-loopback-in-peer-connection`,
 * and host candidates as IPs rather than mDNS names).
 */
export async function launchBrowser(wav, { viewport = { width: 390, height: 844 }, micAllowed = true, hostRules = "", executablePath = chromiumPath } = {}) {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // Only loopback: no DNS lookups of Google update servers (see the browser notes).
      `--host-resolver-rules=${hostRules}MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE ::1`,
      ...(micAllowed ? ["--use-fake-ui-for-media-stream"] : []),
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${wav}`,
      "--autoplay-policy=no-user-gesture-required",
      // The WebRTC fallback (issue 14) to the relay's gateway on loopback.
      "--allow-loopback-in-peer-connection",
      "--disable-features=WebRtcHideLocalIpsWithMdns",
    ],
  });
  const context = await browser.newContext({ viewport, permissions: micAllowed ? ["microphone"] : [] });
  return { browser, context };
}

/** A page on the relay's web phone; console lines are kept in `page.logs`. */
export async function openPhone(context, relay, query = "") {
  const page = await context.newPage();
  page.logs = [];
  page.on("console", (m) => page.logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => page.logs.push(`pageerror: ${e.message}`));
  await page.goto(relay.base + query);
  return page;
}

/** Signs in and waits until registered (status "online"). */
export async function signIn(page, user, display = "") {
  await page.fill("#f-user", user);
  if (display) await page.fill("#f-display", display);
  await page.click("#signin-button");
  await waitState(page, `${user} online`, (s) => s.connection === "online");
}

/**
 * Leaves a "call ended" screen (it also goes by itself after 4 s) for the
 * home view. A call still up (a test that failed before its hangup) is hung
 * up first, so one failure does not fail every test after it.
 */
export async function toHome(page) {
  if (await page.isVisible("#hangup")) await page.click("#hangup", { timeout: 2000 }).catch(() => undefined);
  if (await page.isVisible("#ended-ok")) await page.click("#ended-ok", { timeout: 2000 }).catch(() => undefined);
  await page.waitForSelector("#dial-input", { state: "visible", timeout: 10000 });
}

/** Dials `to` from the home view; resolves with the new outgoing call's sid. */
export async function dial(page, to) {
  const before = (await state(page)).call?.sid;
  await toHome(page);
  await page.fill("#dial-input", to);
  await page.click("#dial-button");
  const s = await waitState(page, `a call to ${to}`, (x) => x.call && x.call.sid !== before && x.call.direction === "outgoing");
  return s.call.sid;
}

/** The page's phone state (window.__moqTest.state()). */
export function state(page) {
  return page.evaluate(() => window.__moqTest.state());
}

/** Waits until `pred(state)` holds. */
export async function waitState(page, what, pred, ms = 15000) {
  let last;
  try {
    return await until(what, async () => {
      last = await state(page);
      return pred(last) ? last : false;
    }, ms);
  } catch (e) {
    e.message += `\nlast state: ${JSON.stringify(last)}\npage log:\n${page.logs.slice(-30).join("\n")}`;
    throw e;
  }
}

/** The call's phase on the page ("calling", "ringing", "established", "ended"…), or undefined. */
export const phase = (s) => s.call?.phase;

/** Starts recording the playout (or "capture") and waits until `seconds` are recorded. */
export async function recordFor(page, seconds, node = "playout") {
  await page.evaluate((n) => window.__moqTest.record(true, n), node);
  await until(`${seconds} s of ${node} recorded`, async () => (await page.evaluate((n) => window.__moqTest.recorded(n), node)) >= seconds * 48000, (seconds + 15) * 1000, 100);
}

/** Decodes the page's playout (or "capture") recording. */
export async function recording(page, node = "playout") {
  const r = await page.evaluate((n) => window.__moqTest.recording(n), node);
  const b = Buffer.from(r.pcm, "base64");
  const x = new Float32Array(b.length / 2);
  for (let i = 0; i < x.length; i++) x[i] = b.readInt16LE(i * 2) / 32768;
  return { samples: x, rate: r.rate, startMs: r.startMs, latency: r.latency };
}

/** The CLI phone as a child process; `lines` collects its stdout. */
export function startCliPhone(relay, args) {
  const proc = spawn(phoneBin, ["--relay", `https://127.0.0.1:${relay.port}`, "--insecure", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: "warn" } });
  const lines = [];
  const err = [];
  /** Called on every new line and when the process's output ends. */
  const watchers = new Set();
  let closed = false;
  let buf = "";
  proc.stdout.on("data", (d) => {
    buf += String(d);
    const parts = buf.split("\n");
    buf = parts.pop();
    lines.push(...parts);
    for (const w of watchers) w();
  });
  proc.stderr.on("data", (d) => err.push(String(d)));
  proc.once("close", () => {
    closed = true;
    for (const w of watchers) w();
  });
  const exited = new Promise((r) => proc.once("exit", (code) => r(code)));
  return {
    proc,
    lines,
    err,
    exited,
    /** Waits for a stdout line matching `re` (an event: each line is checked as it arrives). */
    line(re, ms = 15000) {
      return new Promise((resolve, reject) => {
        const fail = (why) => {
          done();
          reject(new Error(`${why} waiting for moq-phone line ${re}\nstdout:\n${lines.join("\n")}\nstderr:\n${err.join("")}`));
        };
        const check = () => {
          const l = lines.find((x) => re.test(x));
          if (l !== undefined) {
            done();
            resolve(l);
          } else if (closed) fail("moq-phone exited");
        };
        const timer = setTimeout(() => fail(`timed out after ${ms} ms`), ms);
        const done = () => {
          clearTimeout(timer);
          watchers.delete(check);
        };
        watchers.add(check);
        check();
      });
    },
    kill() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      return exited;
    },
  };
}

// ---- calls between pages (webrtc.e2e.mjs, fallback.e2e.mjs) ----

/** `from` dials `to`, the `callee` page answers; resolves with the sid once both are established. */
export async function connectCall(from, callee, to) {
  const sid = await dial(from, to);
  await waitState(callee, "the callee ringing", (x) => x.call?.sid === sid && x.call.phase === "ringing");
  await callee.click("#answer");
  for (const p of [from, callee]) await waitState(p, "established", (x) => x.call?.sid === sid && x.call.phase === "established");
  return sid;
}

/** `page` hangs up call `sid`; both it and `other` see it end by hangup. */
export async function hangUpCall(page, other, sid) {
  await page.click("#hangup");
  for (const p of [page, other]) {
    const s = await waitState(p, `call ${sid} ended`, (x) => x.call?.sid === sid && x.call.phase === "ended");
    if (s.call.ended.reason !== "hangup") throw new Error(`call ${sid} ended by ${JSON.stringify(s.call.ended)}, not a hangup`);
  }
}

/** The last `tail` s of `seconds` of what `page` plays. */
export async function hear(page, seconds = 2, tail = 1.2) {
  await recordFor(page, seconds);
  const r = await recording(page);
  return r.samples.subarray(r.samples.length - Math.round(tail * r.rate));
}

/** Throws unless `t` (from {@link dominantTone}) is a clean `hz` tone. */
export function assertTone(t, hz, who) {
  if (t.freq !== hz) throw new Error(`${who} should hear ${hz} Hz, got ${JSON.stringify(t)}`);
  if (!(t.share > 0.9 && t.rms > 0.01)) throw new Error(`${who}: tone too weak or impure: ${JSON.stringify(t)}`);
}

/** `page` plays a clean `hz` tone (of the `tones` the test uses). */
export async function assertHears(page, hz, who, tones) {
  assertTone(dominantTone(await hear(page), 48000, tones), hz, who);
}

/** A WebRTC page's audio went over RTP: its WebCodecs encoder and playout buffer saw no frame. */
export async function assertRtpMedia(page, who) {
  const st = await page.evaluate(() => window.__moqTest.stats());
  if (st.codec.encoded !== 0 || st.playout.received !== 0) throw new Error(`${who}'s audio did not ride RTP (WebCodecs frames seen): ${JSON.stringify(st)}`);
}

/**
 * `caller` (named `a`) calls `callee` (user `b`) and each hears the other's
 * tone (`aHz`, `bHz` among `tones`); the pages in `rtp` had their audio on
 * RTP; then `hangUp` ("caller" or "callee") ends it.
 */
export async function callBothWays(caller, callee, { a, b, aHz, bHz, tones, rtp = [], hangUp = "caller" }) {
  await waitState(caller, `${a} sees ${b}`, (x) => x.presence.includes(b));
  const sid = await connectCall(caller, callee, b);
  await assertHears(callee, aHz, `${b} hearing ${a}`, tones);
  await assertHears(caller, bHz, `${a} hearing ${b}`, tones);
  for (const p of rtp) await assertRtpMedia(p, p === caller ? a : b);
  if (hangUp === "caller") await hangUpCall(caller, callee, sid);
  else await hangUpCall(callee, caller, sid);
  return sid;
}

/** The relay's /metrics as { "name{labels}": value }. */
export async function metrics(relay) {
  const text = await (await fetch(`${relay.base}metrics`)).text();
  return Object.fromEntries(
    text
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => {
        const i = l.lastIndexOf(" ");
        return [l.slice(0, i), Number(l.slice(i + 1))];
      }),
  );
}

/**
 * A TCP front on 127.0.0.1:`port` piping every connection to `toPort` (the
 * relay's HTTP side): a page served from `port` reaches the relay's web
 * phone and certificate over TCP there (settings.ts relayEndpoints), while
 * its QUIC (UDP, the same port number) goes to whatever listens on UDP —
 * an impairment proxy in the quality tests and bench/quality.
 */
export async function tcpFront(port, toPort) {
  const sockets = new Set();
  const server = createServer((c) => {
    const u = tcpConnect(toPort, "127.0.0.1");
    for (const s of [c, u]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        sockets.delete(s);
        c.destroy();
        u.destroy();
      });
    }
    c.pipe(u);
    u.pipe(c);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    base: `http://127.0.0.1:${port}/`,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
