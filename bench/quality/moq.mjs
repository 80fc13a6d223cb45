// Path `moq-moq` (docs/design/quality.md §2.1): two moq-phone processes
// through moq-relay over raw QUIC, each phone through its own `moq-bench
// impair` proxy: A's link has the profile both ways, B's is clean.
// A (the caller) plays a.wav, B (who answers) plays b.wav; each records what it hears.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { child, deadline, phoneBin, startProxy, startRelay, freePort } from "./lib.mjs";

/** The "audio: played … fec … concealed … underruns … late …" line moq-phone prints at the end. */
export function parseAudioLine(text) {
  const m = text.match(/audio: (.*)$/);
  if (!m) return undefined;
  const out = {};
  for (const [, k, v] of m[1].matchAll(/(\w+) (\d+)/g)) out[k] = Number(v);
  return out;
}

export async function setup() {
  const relay = await startRelay(await freePort());
  let n = 0;
  return {
    stop: () => relay.stop(),
    /** One call; resolves with its two directions' inputs for scoring. */
    call: (c) => call(relay, c, ++n),
  };
}

async function call(relay, { profile, seed, dir, speech, secs }, n) {
  const to = `127.0.0.1:${relay.port}`;
  const pa = await startProxy({ to, up: profile.name, seed });
  const pb = await startProxy({ to, up: "clean", seed: seed + 1 });
  const a = `alice${n}`;
  const b = `bob${n}`;
  const phone = (proxy, user, args) =>
    child(phoneBin, ["--relay", `moqt://127.0.0.1:${proxy.port}`, "--insecure", "--as", user, ...args], { name: `moq-phone ${user}`, env: { RUST_LOG: "warn" } });
  const heardByA = join(dir, "a-heard.wav");
  const heardByB = join(dir, "b-heard.wav");
  const B = phone(pb, b, ["answer", "--play", speech.b, "--record", heardByB, "--wait-secs", "30"]);
  try {
    await B.line(/^registered /, 10000);
    const A = phone(pa, a, ["call", b, "--play", speech.a, "--record", heardByA, "--hangup-after", String(secs)]);
    try {
      const [ea, eb] = await Promise.all([A.line(/^established/, 15000), B.line(/^established/, 15000)]);
      await deadline(Promise.all([A.exited, B.exited]), (secs + 15) * 1000, "the call's end");
      const text = (c) => c.lines.map((l) => l.text);
      const stats = (c) => {
        const a = parseAudioLine(text(c).find((t) => /^audio: /.test(t)) ?? "") ?? {};
        const frames = (a.played ?? 0) + (a.fec ?? 0) + (a.red ?? 0) + (a.concealed ?? 0);
        return {
          ...a,
          // The report's common keys (per call): time played out, concealed time, in ms.
          played_ms: frames * 20,
          concealed_ms: (a.concealed ?? 0) * 20,
          ended: (text(c).find((t) => /^ended: /.test(t)) ?? "ended: ?").slice(7),
        };
      };
      // Clock anchors (wall ms). Each phone records from the first playout tick after
      // "established" (driver.rs); the caller sends from its first tick after "established",
      // the callee from its first tick after answering, which it does as soon as it rings
      // (no --after-ms; the call machine takes the answer in state Ringing, machine.rs), so
      // from its "ringing" line. Each is late by up to one 20 ms tick phase; a
      // `--record` sidecar (out.wav.json) with the exact first-sample times, where moq-phone
      // writes one, replaces them.
      const ib = await B.line(/^ringing$/, 1000);
      const anchors = {
        aSend: sidecar(heardByA, "first_sent_unix_us") ?? ea.t,
        aRec: sidecar(heardByA, "first_sample_unix_us") ?? ea.t,
        bSend: sidecar(heardByB, "first_sent_unix_us") ?? ib.t,
        bRec: sidecar(heardByB, "first_sample_unix_us") ?? eb.t,
      };
      const outage = (recStart) => (profile.outage ? { at: (pa.epochMs + profile.outage.at * 1000 - recStart) / 1000, len: profile.outage.len } : undefined);
      return {
        setupMs: { a: ea.t - pa.epochMs, b: eb.t - pa.epochMs },
        anchors: { ...anchors, sidecar: sidecar(heardByB, "first_sample_unix_us") !== undefined },
        directions: [
          // B hears A: the loss is on the sender's link.
          { side: "sender", who: "B hears A", sent: speech.a, received: heardByB, offsetMs: anchors.bRec - anchors.aSend, outage: outage(anchors.bRec), receiver: stats(B) },
          // A hears B: the loss is on the listener's link.
          { side: "listener", who: "A hears B", sent: speech.b, received: heardByA, offsetMs: anchors.aRec - anchors.bSend, outage: outage(anchors.aRec), receiver: stats(A) },
        ],
        logs: { a: A.log(), b: B.log() },
      };
    } finally {
      await A.stop();
    }
  } finally {
    await B.stop();
    await pa.stop();
    await pb.stop();
  }
}


/** A key (µs since the epoch) of the recording's sidecar `out.wav.json`, in ms; undefined without one. */
function sidecar(wav, key) {
  const p = `${wav}.json`;
  if (!existsSync(p)) return undefined;
  try {
    const v = JSON.parse(readFileSync(p, "utf8"))[key];
    return typeof v === "number" ? v / 1000 : undefined;
  } catch {
    return undefined;
  }
}
