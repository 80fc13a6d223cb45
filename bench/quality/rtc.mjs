// Path `ref-rtc` (docs/design/quality.md §2.1): the reference — two
// headless Chromiums in a plain peer-to-peer WebRTC call (rtc-ref.html:
// Opus, NetEQ, FEC, congestion control as Chromium ships them) with
// relayed candidates only, through coturn over UDP. Each browser reaches
// coturn through its own `moq-bench impair` proxy (A's has the profile, B's
// is clean); coturn relays between the two allocations on loopback.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as E from "../../webapp/test/e2e/lib.mjs";
import { deadline, freePort, startProxy, startTurn, turnCredentials } from "./lib.mjs";
import { saveTap } from "./browser.mjs";

const here = dirname(fileURLToPath(import.meta.url));

/** NetEQ's figures (RTCInboundRtpStreamStats) in the report's keys. */
export function netEqReceiver(st) {
  const i = st?.inbound ?? {};
  const ms = (samples) => (typeof samples === "number" ? samples / 48 : undefined);
  return {
    codec: st?.codec,
    played_ms: typeof i.totalSamplesDuration === "number" ? i.totalSamplesDuration * 1000 : ms(i.totalSamplesReceived),
    concealed_ms: ms(i.concealedSamples),
    // fecPacketsReceived counts packets carrying FEC (every one, with in-band FEC on), not frames
    // rebuilt from it: kept apart from our receivers' FEC-recovered counts.
    fec_packets: i.fecPacketsReceived,
    concealment_events: i.concealmentEvents,
    packets_lost: i.packetsLost,
    accel_ms: ms(i.removedSamplesForAcceleration),
    decel_ms: ms(i.insertedSamplesForDeceleration),
    jitter_buffer_ms: i.jitterBufferEmittedCount ? (i.jitterBufferDelay / i.jitterBufferEmittedCount) * 1000 : undefined,
    rtt_ms: typeof st?.pair?.currentRoundTripTime === "number" ? st.pair.currentRoundTripTime * 1000 : undefined,
  };
}

export async function setup({ speech, out }) {
  const html = readFileSync(join(here, "rtc-ref.html"));
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(html);
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  const turn = await startTurn(await freePort(), out);
  const A = await E.launchBrowser(speech.a);
  const B = await E.launchBrowser(speech.b);
  return {
    async stop() {
      for (const b of [A, B]) await b.browser.close().catch(() => undefined);
      await turn.stop();
      server.close();
    },
    call: (c) => call({ base: `http://127.0.0.1:${port}/`, turn, A, B }, c),
  };
}

async function call({ base, turn, A, B }, { profile, seed, dir, secs }) {
  const to = `127.0.0.1:${turn.port}`;
  const pa = await startProxy({ to, up: profile.name, seed });
  const pb = await startProxy({ to, up: "clean", seed: seed + 1 });
  const pages = [];
  try {
    const pageA = await A.context.newPage();
    const pageB = await B.context.newPage();
    pages.push(pageA, pageB);
    for (const p of pages) {
      p.logs = [];
      p.on("console", (m) => p.logs.push(`${m.type()}: ${m.text()}`));
      await p.goto(base);
    }
    const cred = await turnCredentials();
    const ice = (proxy) => [{ urls: `turn:127.0.0.1:${proxy.port}?transport=udp`, ...cred }];
    const offer = await pageA.evaluate((i) => window.ref.offer(i), ice(pa));
    const answer = await pageB.evaluate(([i, o]) => window.ref.answer(i, o), [ice(pb), offer]);
    await pageA.evaluate((a) => window.ref.accept(a), answer);
    for (const p of pages) await E.until("WebRTC connected with a remote track", async () => {
      const s = await p.evaluate(() => window.ref.state());
      if (s.connection === "failed") throw new Error(`connection failed: ${JSON.stringify(s)}`);
      return s.connection === "connected" && s.remote;
    }, 15000);
    const established = Date.now();
    for (const p of pages) await p.evaluate(() => {
      window.ref.record(true, "capture");
      window.ref.record(true, "playout");
    });
    const want = secs * 48000;
    await deadline(
      E.until("the call's speech recorded", async () => {
        const r = await Promise.all(pages.map((p) => p.evaluate(() => window.ref.recorded("playout"))));
        return r.every((x) => x >= want);
      }, (secs + 20) * 1000, 250),
      (secs + 25) * 1000,
      "recording",
    );
    const tap = (p, node, file) => saveTap(p, node, join(dir, file), (pg, n) => pg.evaluate((x) => window.ref.recording(x), n));
    const capA = await tap(pageA, "capture", "a-sent.wav");
    const capB = await tap(pageB, "capture", "b-sent.wav");
    const playA = await tap(pageA, "playout", "a-heard.wav");
    const playB = await tap(pageB, "playout", "b-heard.wav");
    const [statsA, statsB] = await Promise.all(pages.map((p) => p.evaluate(() => window.ref.stats()).catch((e) => ({ error: e.message }))));
    const outage = (recStart) => (profile.outage ? { at: (pa.epochMs + profile.outage.at * 1000 - recStart) / 1000, len: profile.outage.len } : undefined);
    return {
      setupMs: { a: established - pa.epochMs, b: established - pa.epochMs },
      directions: [
        { side: "sender", who: "B hears A", sent: capA.path, received: playB.path, offsetMs: playB.startMs - capA.startMs, outage: outage(playB.startMs), receiver: netEqReceiver(statsB) },
        { side: "listener", who: "A hears B", sent: capB.path, received: playA.path, offsetMs: playA.startMs - capB.startMs, outage: outage(playA.startMs), receiver: netEqReceiver(statsA) },
      ],
      stats: { a: statsA, b: statsB },
      logs: { a: pageA.logs.slice(-20).join("\n"), b: pageB.logs.slice(-20).join("\n") },
    };
  } finally {
    for (const p of pages) {
      await p.evaluate(() => window.ref?.close()).catch(() => undefined);
      await p.close().catch(() => undefined);
    }
    await pa.stop();
    await pb.stop();
  }
}
