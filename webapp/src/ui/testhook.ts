/**
 * `window.__moqTest`: what the browser end-to-end tests (test/e2e) and the
 * latency bench read from a page. Read-only views of the phone's state,
 * plus a recorder of what the playout plays (the decoded call audio).
 */

import type { App } from "./app.js";

function base64Int16(pcm: Float32Array): string {
  const i16 = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) i16[i] = Math.max(-32768, Math.min(32767, Math.round((pcm[i] as number) * 32767)));
  const bytes = new Uint8Array(i16.buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function installTestHook(app: App): void {
  (window as unknown as { __moqTest: unknown }).__moqTest = {
    state: () => {
      const p = app.phone;
      return {
        connection: p?.connection.state ?? "offline",
        /** "webtransport" or "webrtc": the online session's, else the one the phone will use. */
        transport: p?.connection.state === "online" ? p.connection.transport : p?.transport,
        /** The draft the online session speaks (18 or 22). */
        draft: p?.connection.state === "online" ? p.connection.draft : undefined,
        presence: p?.online().map((u) => u.user) ?? [],
        call: p?.call ? { ...p.call.info } : undefined,
      };
    },
    /** Starts recording the playout (or, with node "capture", the microphone) from now on; `false` stops. */
    record: (on = true, node: "playout" | "capture" = "playout") => app.audio.record(on, node),
    /** How many samples are recorded so far (cheap; poll this, not `recording`). */
    recorded: (node: "playout" | "capture" = "playout") => app.audio.recorded(node),
    /** The recording as base64 little-endian int16 PCM. */
    recording: async (node: "playout" | "capture" = "playout") => {
      const r = await app.audio.dump(node);
      return { pcm: base64Int16(r.pcm), rate: r.rate, startMs: r.startMs, samples: r.pcm.length, latency: r.latency };
    },
    stats: async () => ({ playout: await app.audio.playoutStats(), codec: await app.audio.codecStats(), codecThread: await app.audio.codecThread(), error: app.audio.lastError }),
  };
}
