// npm run build: bundles src/index.ts to dist/moq-phone.js and copies the
// page(s) next to it. The relay serves webapp/dist when it has index.html,
// else webapp/ itself (relay/src/config.rs), so index.html stays in webapp/.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
const result = await build({
  entryPoints: { "moq-phone": join(root, "src/index.ts") },
  outdir: dist,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
  metafile: true,
});
await copyFile(join(root, "index.html"), join(dist, "index.html"));
for (const [file, { bytes }] of Object.entries(result.metafile.outputs)) console.log(`${file}  ${bytes} bytes`);
console.log("dist/index.html");
