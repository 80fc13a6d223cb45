// Test helpers: locating the shared vectors (docs/vectors/ at the repo root)
// from wherever the compiled test runs.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Reads docs/vectors/<name>, searching upwards from this file. */
export function readVectors(name: string): unknown {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = join(dir, "docs", "vectors", name);
    if (existsSync(p)) return JSON.parse(readFileSync(p, "utf8"));
    const up = dirname(dir);
    if (up === dir) throw new Error(`docs/vectors/${name} not found above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** Splits `bytes` into chunks of the given sizes (cycling), for streaming tests. */
export function splitBytes(bytes: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  let i = 0;
  while (pos < bytes.length) {
    const n = Math.max(1, sizes[i++ % sizes.length] ?? 1);
    out.push(bytes.slice(pos, pos + n));
    pos += n;
  }
  return out;
}

/** A ReadableStream that yields the given chunks, as a WebTransport stream would. */
export function readableOf(chunks: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const c = chunks[i++];
      if (c === undefined) controller.close();
      else controller.enqueue(c);
    },
  });
}
