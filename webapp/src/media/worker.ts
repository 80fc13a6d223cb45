/**
 * The media worker (bundled to dist/media-worker.js): hosts the Opus encoder
 * ({@link MediaHost}) off the main thread, talking to the page and to the
 * capture worklet over MessagePorts. Says "ready" once libopus has loaded.
 */

import { MediaHost, type HostCommand, type HostEvent } from "./host.js";

const scope = globalThis as unknown as {
  postMessage(m: HostEvent, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<HostCommand>) => void) | null;
};
const host = new MediaHost({ postMessage: (m, transfer) => scope.postMessage(m, transfer ?? []) });
scope.onmessage = (e) => host.command(e.data);
void host.ready().then(() => scope.postMessage({ t: "ready" }));
