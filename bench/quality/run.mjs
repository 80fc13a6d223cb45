// The quality harness's orchestrator (issue 19, docs/design/quality.md §2):
// for each path, profile and run it places one call whose media crosses
// `moq-bench impair`, scores both directions with score.py and appends one
// JSON line per direction (or per failure, with its reason) to
// OUT/calls.jsonl. `bench/quality/run` builds, runs this, then report.py.
//
//   node bench/quality/run.mjs [--quick] [--paths a,b] [--profiles x,y] [--runs N] [--out DIR]
import { appendFileSync, mkdirSync, writeFileSync, statSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { cpus, loadavg, totalmem, hostname } from "node:os";
import { join } from "node:path";
import { benchBin, deadline, killAll, listProfiles, phoneBin, relayBin, repo, score, seedFor, wallMs, webappDist } from "./lib.mjs";

export const PATHS = ["moq-moq", "wt-wt", "ref-rtc", "rtc-wt", "pbx-echo"];
// Every path by default; one that cannot run here (pbx-echo without root or the Asterisk chroot)
// gives rows saying why.
const DEFAULT_PATHS = PATHS;
export const QUICK_PROFILES = ["clean", "loss3", "bursty5", "jitter60", "outage2s"];
/** What a call may take at most, set-up and teardown included (design §2.4: 60 s; the speech is ~26 s). */
const CALL_TIMEOUT_MS = 75000;

/** Command-line options; throws a one-line message on a bad one. */
export function parseArgs(argv, allProfiles) {
  const o = { quick: false, paths: DEFAULT_PATHS, profiles: undefined, runs: 3, out: join(repo, "target/quality/run"), settleS: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--quick") o.quick = true;
    else if (a === "--paths") o.paths = val().split(",");
    else if (a === "--profiles") o.profiles = val().split(",");
    else if (a === "--runs") o.runs = Number(val());
    else if (a === "--out") o.out = val();
    else if (a === "--settle") o.settleS = Number(val());
    else throw new Error(`unknown option ${a} (--quick, --paths, --profiles, --runs, --out, --settle)`);
  }
  if (o.quick) {
    o.profiles ??= QUICK_PROFILES;
    if (!argv.includes("--runs")) o.runs = 1;
  }
  // Before each call, wait up to this long for the 1-min load average to drop below 1.
  o.settleS ??= o.quick ? 5 : 20;
  o.profiles ??= allProfiles;
  for (const p of o.paths) if (!PATHS.includes(p)) throw new Error(`no path ${p}; paths: ${PATHS.join(", ")}`);
  for (const p of o.profiles) if (!allProfiles.includes(p)) throw new Error(`no profile ${p}; profiles: ${allProfiles.join(", ")}`);
  if (!(Number.isInteger(o.runs) && o.runs >= 1)) throw new Error("--runs must be a whole number >= 1");
  return o;
}

const modules = {
  "moq-moq": () => import("./moq.mjs"),
  "wt-wt": () => import("./browser.mjs").then((m) => m.wtwt),
  "rtc-wt": () => import("./browser.mjs").then((m) => m.rtcwt),
  "ref-rtc": () => import("./rtc.mjs"),
  "pbx-echo": () => import("./pbx.mjs"),
};

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10000 }).trim();
  } catch {
    return "not found";
  }
}

/** Machine, versions, commit, date: the report's header. */
function meta(o) {
  const speechWav = join(repo, "target/quality/a.wav");
  return {
    date: new Date().toISOString(),
    label: process.env.QUALITY_LABEL,
    command: `bench/quality/run ${process.argv.slice(2).join(" ")}`.trim(),
    commit: sh("git", ["-C", repo, "rev-parse", "--short", "HEAD"]),
    dirty: sh("git", ["-C", repo, "status", "--porcelain", "--untracked-files=no"]).split("\n").filter(Boolean).length,
    machine: { host: hostname(), cpu: cpus()[0]?.model, cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), kernel: sh("uname", ["-r"]) },
    versions: {
      chromium: sh("/usr/bin/chromium", ["--version"]),
      coturn: sh("dpkg-query", ["-W", "-f=${Version}", "coturn"]),
      libopus: sh("pkg-config", ["--modversion", "opus"]),
      espeak: sh("espeak-ng", ["--version"]).split("\n")[0],
      pesq: sh(join(repo, "target/quality-venv/bin/python"), ["-c", "import importlib.metadata as m; print(m.version('pesq'))"]),
      node: process.version,
    },
    // What was measured: the binaries and the web phone's build, by modification time (others may
    // be rebuilding while the bench runs; QUALITY_NO_BUILD=1 measures them as they are).
    builds: Object.fromEntries(
      [relayBin, phoneBin, benchBin, join(webappDist, "index.html")].map((f) => {
        try {
          return [f, statSync(f).mtime.toISOString()];
        } catch {
          return [f, "missing"];
        }
      }),
    ),
    speech: { a: speechWav, bytes: (() => { try { return statSync(speechWav).size; } catch { return 0; } })() },
    options: o,
  };
}

async function settle(s) {
  const end = Date.now() + s * 1000;
  while (loadavg()[0] > 1.0 && Date.now() < end) await new Promise((r) => setTimeout(r, 1000));
  return loadavg()[0];
}

async function main() {
  const profiles = listProfiles();
  const byName = Object.fromEntries(profiles.map((p) => [p.name, p]));
  let o;
  try {
    o = parseArgs(process.argv.slice(2), profiles.map((p) => p.name));
  } catch (e) {
    console.error(`run.mjs: ${e.message}`);
    process.exit(2);
  }
  mkdirSync(o.out, { recursive: true });
  const jsonl = join(o.out, "calls.jsonl");
  writeFileSync(jsonl, "");
  writeFileSync(join(o.out, "meta.json"), JSON.stringify(meta(o), null, 2));
  const speech = { a: join(repo, "target/quality/a.wav"), b: join(repo, "target/quality/b.wav") };
  // The longer of the two speech files, plus a margin for the last frames to arrive.
  const secs = Math.ceil(Math.max(...[speech.a, speech.b].map((f) => (statSync(f).size - 44) / 96000)) + 1.5);
  const started = Date.now();
  for (const path of o.paths) {
    let env;
    let why;
    try {
      const m = await modules[path]();
      env = await deadline(m.setup({ speech, secs, out: o.out }), 120000, `${path} set-up`);
    } catch (e) {
      why = e.message;
    }
    for (const pname of o.profiles) {
      for (let run = 1; run <= o.runs; run++) {
        const row = { path, profile: pname, run, seed: seedFor(pname, run) };
        const dir = join(o.out, path, pname, String(run));
        mkdirSync(dir, { recursive: true });
        if (!env) {
          append(jsonl, { ...row, ok: false, error: `set-up failed: ${why}` });
          continue;
        }
        row.load1 = await settle(o.settleS);
        const t0 = wallMs();
        process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${path} ${pname} run ${run} … `);
        try {
          const c = await deadline(env.call({ profile: byName[pname], seed: row.seed, dir, speech, secs }), CALL_TIMEOUT_MS, "the call");
          writeFileSync(join(dir, "call.json"), JSON.stringify({ ...c, directions: c.directions.map((d) => ({ ...d })) }, null, 2));
          const parts = [];
          for (const d of c.directions) {
            const base = { ...row, side: d.side, who: d.who, call_s: (wallMs() - t0) / 1000, setup_ms: c.setupMs, receiver: d.receiver, extra: d.extra };
            try {
              const s = await score(d.sent, d.received, { offsetMs: d.offsetMs, outage: d.outage, minDelayMs: d.minDelayMs, maxDelayMs: d.maxDelayMs });
              append(jsonl, { ...base, ok: true, score: s });
              parts.push(`${d.side} MOS ${s.mos_median} m2e ${s.delay_ms_p50} ms`);
            } catch (e) {
              append(jsonl, { ...base, ok: false, error: e.message });
              parts.push(`${d.side} failed: ${e.message.slice(0, 120)}`);
            }
          }
          process.stderr.write(`${parts.join("; ")}\n`);
        } catch (e) {
          append(jsonl, { ...row, ok: false, error: e.message });
          process.stderr.write(`FAILED: ${e.message.slice(0, 300)}\n`);
          killStrays(env);
        }
      }
    }
    if (env) await deadline(env.stop(), 60000, `${path} teardown`).catch((e) => process.stderr.write(`${e.message}\n`));
  }
  process.stderr.write(`done in ${((Date.now() - started) / 60000).toFixed(1)} min: ${jsonl}\n`);
}

function append(file, obj) {
  appendFileSync(file, `${JSON.stringify(obj)}\n`);
}

/** After a timed-out call: the path's own clean-up hook, if it has one. */
function killStrays(env) {
  env?.abandon?.();
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) {
  main()
    .catch((e) => {
      console.error(`run.mjs: ${e.stack ?? e}`);
      process.exitCode = 1;
    })
    .finally(() => {
      killAll();
      // Playwright keeps handles open; the results are written.
      setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref();
    });
}

