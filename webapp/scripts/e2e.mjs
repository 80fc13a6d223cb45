// npm run e2e: builds the page, then runs the browser end-to-end tests
// (test/e2e/*.e2e.mjs) one file at a time with Node's test runner. Each
// file starts its own moq-relay (../target/debug/moq-relay or
// $MOQ_RELAY_BIN) on a free port and headless Chromium ($CHROMIUM or
// /usr/bin/chromium, driven by playwright-core). Installs nothing: see
// scripts/ensure-chromium.sh for the browser.
//
//   npm run e2e                 every file
//   npm run e2e -- reconnect    only files whose name contains "reconnect"
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(chromium)) {
  console.error(`${chromium} not found: run webapp/scripts/ensure-chromium.sh (as root) or set CHROMIUM`);
  process.exit(1);
}
const only = process.argv.slice(2);
const dir = join(root, "test", "e2e");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".e2e.mjs") && (only.length === 0 || only.some((o) => f.includes(o))))
  .map((f) => join(dir, f));
if (files.length === 0) {
  console.error("no e2e test file matched");
  process.exit(1);
}
const b = spawnSync(process.execPath, [join(root, "scripts", "build.mjs")], { stdio: "inherit" });
if (b.status !== 0) process.exit(b.status ?? 1);
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", ...files], { stdio: "inherit", cwd: root });
process.exit(r.status ?? 1);
