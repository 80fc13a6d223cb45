// npm run build: bundles the web phone into dist/ and copies the page next
// to it. The relay serves webapp/dist when it has index.html, else webapp/
// itself (relay/src/config.rs), so index.html and style.css stay in webapp/.
//
//   dist/moq-phone.js      the page (src/main.ts: UI, phone, MoQ session)
//   dist/media-worker.js   the Opus encoder worker (src/media/worker.ts)
//   dist/audio-worklet.js  capture and playout worklets (src/media/worklet.ts), with the decoder
//
// Both of the latter embed libopus-wasm (wasm inlined). Its Node-only branch imports
// node:module; that import is left external and never runs in a browser.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
const result = await build({
  entryPoints: {
    "moq-phone": join(root, "src/main.ts"),
    "media-worker": join(root, "src/media/worker.ts"),
    "audio-worklet": join(root, "src/media/worklet.ts"),
  },
  outdir: dist,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
  metafile: true,
  external: ["node:*"],
});
for (const f of ["index.html", "style.css"]) await copyFile(join(root, f), join(dist, f));
for (const [file, { bytes }] of Object.entries(result.metafile.outputs)) if (!file.endsWith(".map")) console.log(`${file}  ${bytes} bytes`);
console.log("dist/index.html dist/style.css");
