// Paths `wt-wt` and `rtc-wt` (docs/design/quality.md §2.1): two headless
// Chromiums running the web phone. Each page is served from its own port,
// where a TCP front passes HTTP to the relay and a `moq-bench impair` proxy on
// the same UDP port passes its QUIC (settings.ts: the page takes its
// WebTransport URL from its own origin). A's proxy has the profile, B's is
// clean. In `rtc-wt` page A runs the WebRTC fallback (`?transport=webrtc`)
// with relayed candidates only, through coturn behind A's proxy.
//
// Audio in: Chromium's fake capture device plays a.wav / b.wav (looped).
// Audio out: the page's test hook records its capture (the reference: what
// the page encodes) and its playout, each with its first sample's wall clock.
import { join } from "node:path";
import * as E from "../../webapp/test/e2e/lib.mjs";
import { deadline, firstAudioMs, freePort, pcmFromBase64, startProxy, startRelay, startTurn, tcpFront, writeWav, TURN_SECRET } from "./lib.mjs";

/** Normalises a web phone's playout statistics to the report's keys. */
export function webReceiver(stats) {
  // Numbers only: a receiver under development may add debugging arrays.
  const p = Object.fromEntries(Object.entries(stats?.playout ?? {}).filter(([, v]) => typeof v === "number"));
  const frames = (p.played ?? 0) + (p.fec ?? 0) + (p.concealed ?? 0);
  return {
    ...p,
    played_ms: frames * 20 || undefined,
    concealed_ms: p.concealedMs ?? (p.concealed !== undefined ? p.concealed * 20 : undefined),
  };
}

/**
 * Saves one tap of a page's recording (the web phone's test hook, or `dump`) as a 48 kHz WAV;
 * returns { path, startMs }.
 */
export async function saveTap(page, node, path, dump = (pg, n) => pg.evaluate((x) => window.__moqTest.recording(x), n)) {
  const r = await dump(page, node);
  if (r.rate !== 48000) throw new Error(`${node} recorded at ${r.rate} Hz, the scoring needs 48000`);
  const samples = pcmFromBase64(r.pcm);
  writeWav(path, samples, r.rate);
  return { path, startMs: r.startMs, samples };
}

/** Resolves in the page with the wall clock (ms) at which its call is established, polled every 5 ms. */
const establishedAt = (page) =>
  page.evaluate(
    () =>
      new Promise((res) => {
        const t = setInterval(() => {
          if (window.__moqTest.state().call?.phase === "established") {
            clearInterval(t);
            res(performance.timeOrigin + performance.now());
          }
        }, 5);
      }),
  );

/** A page whose RTCPeerConnections may use relayed (TURN) candidates only (as turn.e2e.mjs does). */
async function relayOnly(context) {
  await context.addInitScript(() => {
    const Native = globalThis.RTCPeerConnection;
    const only = (c) => ({ ...(c ?? {}), iceTransportPolicy: "relay" });
    class RelayOnly extends Native {
      constructor(c) {
        super(only(c));
      }
      setConfiguration(c) {
        return super.setConfiguration(only(c));
      }
    }
    globalThis.RTCPeerConnection = RelayOnly;
  });
}

function make(kind) {
  return {
    async setup({ speech, out }) {
      const extra = [];
      let turn;
      let turnFront;
      if (kind === "rtc-wt") {
        // The relay hands page A TURN credentials for a fixed port, where A's proxy (re-started
        // for each call with the call's profile) forwards to coturn.
        turnFront = await freePort();
        turn = await startTurn(await freePort(), out);
        const { writeFileSync } = await import("node:fs");
        const secretFile = join(out, "turn.secret");
        writeFileSync(secretFile, `${TURN_SECRET}\n`);
        extra.push("--webrtc-ice-server", `turn:127.0.0.1:${turnFront}?transport=udp`, "--webrtc-turn-secret-file", secretFile);
      }
      const relay = await startRelay(await freePort(), extra);
      const A = await E.launchBrowser(speech.a);
      const B = await E.launchBrowser(speech.b);
      if (kind === "rtc-wt") await relayOnly(A.context);
      let n = 0;
      return {
        async stop() {
          for (const b of [A, B]) await b.browser.close().catch(() => undefined);
          await relay.stop();
          await turn?.stop();
        },
        call: (c) => call({ kind, relay, A, B, turn, turnFront }, c, ++n),
      };
    },
  };
}

async function call(env, { profile, seed, dir, secs }, n) {
  const { kind, relay, A, B } = env;
  const relayTo = `127.0.0.1:${relay.port}`;
  const cleanups = [];
  const pages = [];
  try {
    // Party A: the impaired one.
    let pageA;
    let pa;
    if (kind === "rtc-wt") {
      pa = await startProxy({ listen: `127.0.0.1:${env.turnFront}`, to: `127.0.0.1:${env.turn.port}`, up: profile.name, seed });
      cleanups.push(() => pa.stop());
      pageA = await E.openPhone(A.context, relay, "?transport=webrtc");
    } else {
      const port = await freePort();
      const front = await tcpFront(port, relay.port);
      cleanups.push(() => front.close());
      pa = await startProxy({ listen: `127.0.0.1:${port}`, to: relayTo, up: profile.name, seed });
      cleanups.push(() => pa.stop());
      pageA = await E.openPhone(A.context, front);
    }
    pages.push(pageA);
    const portB = await freePort();
    const frontB = await tcpFront(portB, relay.port);
    cleanups.push(() => frontB.close());
    const pb = await startProxy({ listen: `127.0.0.1:${portB}`, to: relayTo, up: "clean", seed: seed + 1 });
    cleanups.push(() => pb.stop());
    const pageB = await E.openPhone(B.context, frontB);
    pages.push(pageB);
    const a = `ann${n}`;
    const b = `ben${n}`;
    await E.signIn(pageA, a);
    await E.signIn(pageB, b);
    // Recording from before the dial: the first audio after the answer is measured on it.
    for (const p of [pageA, pageB]) await p.evaluate(() => Promise.all([window.__moqTest.record(true, "capture"), window.__moqTest.record(true, "playout")]));
    const estA = establishedAt(pageA).catch(() => undefined);
    const estB = establishedAt(pageB).catch(() => undefined);
    const sid = await E.connectCall(pageA, pageB, b);
    const established = Date.now();
    const [tEstA, tEstB] = await deadline(Promise.all([estA, estB]), 5000, "established times");
    // The call's speech: secs of playout from the answer on.
    const atAnswer = await Promise.all([pageA, pageB].map((p) => p.evaluate(() => window.__moqTest.recorded("playout"))));
    await deadline(
      E.until("the call's speech recorded", async () => {
        const r = await Promise.all([pageA, pageB].map((p) => p.evaluate(() => window.__moqTest.recorded("playout"))));
        return r.every((x, i) => x >= atAnswer[i] + secs * 48000);
      }, (secs + 20) * 1000, 250),
      (secs + 25) * 1000,
      "recording",
    );
    const capA = await saveTap(pageA, "capture", join(dir, "a-sent.wav"));
    const capB = await saveTap(pageB, "capture", join(dir, "b-sent.wav"));
    const playA = await saveTap(pageA, "playout", join(dir, "a-heard.wav"));
    const playB = await saveTap(pageB, "playout", join(dir, "b-heard.wav"));
    const statsA = await pageA.evaluate(() => window.__moqTest.stats()).catch((e) => ({ error: e.message }));
    const statsB = await pageB.evaluate(() => window.__moqTest.stats()).catch((e) => ({ error: e.message }));
    // The call may have ended on its own (an outage the call did not survive): that is a finding,
    // kept with the scores, not a failure of the run.
    const ended = {};
    for (const [who, p] of [["a", pageA], ["b", pageB]]) {
      const s = await E.state(p).catch(() => undefined);
      ended[who] = s?.call?.sid === sid && s.call.phase === "ended" ? (s.call.ended?.reason ?? "ended") : undefined;
    }
    if (!ended.a && !ended.b) await E.hangUpCall(pageA, pageB, sid).catch(() => undefined);
    const outage = (recStart) => (profile.outage ? { at: (pa.epochMs + profile.outage.at * 1000 - recStart) / 1000, len: profile.outage.len } : undefined);
    const rxA = { ...(kind === "rtc-wt" ? { note: "Chromium NetEQ (RTP fallback)" } : webReceiver(statsA)), ended: ended.a, first_audio_ms: firstAudioMs(playA, tEstA) };
    return {
      setupMs: { a: established - pa.epochMs, b: established - pa.epochMs },
      directions: [
        { side: "sender", who: "B hears A", sent: capA.path, received: playB.path, offsetMs: playB.startMs - capA.startMs, outage: outage(playB.startMs), receiver: { ...webReceiver(statsB), ended: ended.b, first_audio_ms: firstAudioMs(playB, tEstB) } },
        { side: "listener", who: "A hears B", sent: capB.path, received: playA.path, offsetMs: playA.startMs - capB.startMs, outage: outage(playA.startMs), receiver: rxA },
      ],
      logs: { a: pageA.logs.slice(-40).join("\n"), b: pageB.logs.slice(-40).join("\n") },
    };
  } finally {
    for (const p of pages) await p.close().catch(() => undefined);
    for (const f of cleanups.reverse()) await f();
  }
}

export const wtwt = make("wt-wt");
export const rtcwt = make("rtc-wt");
