/**
 * The media worker (bundled to dist/media-worker.js): hosts the Opus
 * encoder and decoder ({@link MediaHost}) off the main thread, talking to
 * the page and to the two worklets over MessagePorts. Reports whether
 * WebCodecs exists here; if not, the page runs the host itself.
 */

import { MediaHost, hasWebCodecs, type HostCommand, type HostEvent } from "./host.js";

const scope = globalThis as unknown as {
  postMessage(m: HostEvent, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<HostCommand>) => void) | null;
};
const host = new MediaHost({ postMessage: (m, transfer) => scope.postMessage(m, transfer ?? []) });
scope.onmessage = (e) => host.command(e.data);
scope.postMessage({ t: "ready", webcodecs: hasWebCodecs() });
