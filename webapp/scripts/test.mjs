// npm test: compiles test/*.test.ts with esbuild (bundled, one file each)
// and runs them with Node's built-in test runner. No TS runtime needed.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { readdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "node_modules", ".cache", "moq-phone-tests");
const only = process.argv.slice(2);

const tests = (await readdir(join(root, "test"))).filter((f) => f.endsWith(".test.ts") && (only.length === 0 || only.some((o) => f.includes(o))));
if (tests.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
await rm(out, { recursive: true, force: true });
await build({
  entryPoints: tests.map((f) => join(root, "test", f)),
  outdir: out,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  format: "esm",
  platform: "node",
  target: ["node20"],
  sourcemap: "inline",
  logLevel: "warning",
});
const files = tests.map((f) => join(out, f.replace(/\.ts$/, ".mjs")));
const r = spawnSync(process.execPath, ["--enable-source-maps", "--test", "--test-reporter=spec", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
