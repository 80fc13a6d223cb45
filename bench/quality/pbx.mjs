// Path `pbx-echo` (docs/design/quality.md §2.1): a web phone dials an
// Asterisk Echo() extension through chan_moq; its own capture is the
// reference and the loop crosses A's proxy twice (up and down) plus
// chan_moq's receive and send paths, so the row is "loop": two one-way
// delays plus Echo().
//
// Asterisk runs in a chroot in its own network namespace
// (chan_moq/harness/asterisk.sh, as webapp/test/e2e/asterisk.e2e.mjs runs
// it); the relay, the proxy, the page's TCP front and Chromium run in that
// namespace too, so all meet on its 127.0.0.1. Root only; needs the chroot
// (asterisk.sh build) and target/debug/libchan_moq.so (MOQ_CHAN_MOQ_SO).
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as E from "../../webapp/test/e2e/lib.mjs";
import { benchBin, child, deadline, relayBin, repo, startProxy, webappDist } from "./lib.mjs";
import { saveTap, webReceiver } from "./browser.mjs";

const INSTANCE = "quality-ast";
const harness = join(repo, "chan_moq/harness/asterisk.sh");
const moduleSo = process.env.MOQ_CHAN_MOQ_SO ?? join(repo, "target/debug/libchan_moq.so");
const MOQ_CONF = "[general]\nrelay = moqt://127.0.0.1:4443\ninsecure = yes\ncontext = moq-test\ncodecs = slin48\nreconnect_ms = 100\n";
const DIALPLAN = "exten => 100,1,Answer()\n same => n,Echo()";
/** A TCP front (node, in the namespace): argv = listen port, relay port. Prints "listening". */
const FRONT_JS = `const net=require("net");const [p,t]=process.argv.slice(-2).map(Number);
net.createServer((c)=>{const u=net.connect(t,"127.0.0.1");for(const s of [c,u]){s.on("error",()=>{});s.on("close",()=>{c.destroy();u.destroy();});}c.pipe(u);u.pipe(c);})
.listen(p,"127.0.0.1",()=>console.log("listening"));`;

/** asterisk.sh ARGS for our instance; resolves with its output, rejects on a non-zero exit. */
async function sh(args, env = {}) {
  const c = child("bash", [harness, ...args], { name: `asterisk.sh ${args[0]}`, env: { MOQ_ASTERISK_INSTANCE: INSTANCE, ...env } });
  const { code } = await deadline(c.exited, 600000, `asterisk.sh ${args[0]}`);
  if (code !== 0) throw new Error(`asterisk.sh ${args.join(" ")} exited ${code}: ${c.log().slice(-600)}`);
  return c.log();
}

const inNs = (cmd, args, name) => child("ip", ["netns", "exec", INSTANCE, cmd, ...args], { name, env: { RUST_LOG: "warn", MOQ_RELAY_WEBRTC_BIND: "127.0.0.1:0" } });

export async function setup({ speech, out }) {
  if (process.getuid?.() !== 0) throw new Error("pbx-echo needs root (Asterisk in a chroot and a network namespace)");
  if (!existsSync(moduleSo)) throw new Error(`${moduleSo} not found: cargo build -p chan_moq --lib (or set MOQ_CHAN_MOQ_SO)`);
  if (!existsSync(join(repo, "target/asterisk/root"))) throw new Error("no Asterisk chroot in target/asterisk: run chan_moq/harness/asterisk.sh build (root, a download)");
  await sh(["stop"]).catch(() => undefined); // leftovers of an earlier run
  const confDir = join(out, "asterisk-conf");
  mkdirSync(confDir, { recursive: true });
  writeFileSync(join(confDir, "moq.conf"), MOQ_CONF);
  await sh(["conf", confDir], { MOQ_DIALPLAN: DIALPLAN });
  await sh(["install-module", moduleSo]);
  await sh(["start"]);
  const relay = inNs(relayBin, ["--bind", "127.0.0.1:4443", "--webapp", webappDist, "--drain-secs", "1"], "moq-relay (netns)");
  const stopAll = async (browser) => {
    await browser?.browser.close().catch(() => undefined);
    await relay.stop();
    await sh(["stop"]).catch(() => undefined);
  };
  try {
    await relay.line(/^moq-relay /, 15000);
    await E.until("chan_moq registered with the relay", async () => (await sh(["cli", "moq show status"])).includes("Registered:   yes"), 20000, 200);
    const wrapper = join(out, "chromium-netns.sh");
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${INSTANCE} ${E.chromiumPath} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const browser = await E.launchBrowser(speech.a, { executablePath: wrapper });
    let n = 0;
    return { stop: () => stopAll(browser), call: (c) => call(browser, c, ++n) };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

async function call(browser, { profile, seed, dir, secs }, n) {
  const port = 20000 + Math.floor(Math.random() * 40000);
  const front = inNs(process.execPath, ["-e", FRONT_JS, String(port), "4443"], "tcp front (netns)");
  let pa;
  let page;
  try {
    await front.line(/^listening/, 10000);
    pa = await startProxy({ listen: `127.0.0.1:${port}`, to: "127.0.0.1:4443", up: profile.name, seed, prefix: ["ip", "netns", "exec", INSTANCE, benchBin] });
    page = await E.openPhone(browser.context, { base: `http://127.0.0.1:${port}/` });
    await E.signIn(page, `pat${n}`);
    const sid = await E.dial(page, "pbx/100");
    await E.waitState(page, "the call established", (s) => s.call?.sid === sid && s.call.phase === "established", 20000);
    await page.evaluate(() => Promise.all([window.__moqTest.record(true, "capture"), window.__moqTest.record(true, "playout")]));
    await deadline(E.until("the call's speech recorded", async () => (await page.evaluate(() => window.__moqTest.recorded("playout"))) >= secs * 48000, (secs + 20) * 1000, 250), (secs + 25) * 1000, "recording");
    const cap = await saveTap(page, "capture", join(dir, "a-sent.wav"));
    const play = await saveTap(page, "playout", join(dir, "a-heard.wav"));
    const stats = await page.evaluate(() => window.__moqTest.stats()).catch(() => undefined);
    const s = await E.state(page).catch(() => undefined);
    const ended = s?.call?.sid === sid && s.call.phase === "ended" ? (s.call.ended?.reason ?? "ended") : undefined;
    if (!ended) await page.click("#hangup", { timeout: 5000 }).catch(() => undefined);
    const outage = profile.outage ? { at: (pa.epochMs + profile.outage.at * 1000 - play.startMs) / 1000, len: profile.outage.len } : undefined;
    return {
      setupMs: {},
      directions: [{ side: "loop", who: "A hears itself through Echo()", sent: cap.path, received: play.path, offsetMs: play.startMs - cap.startMs, outage, receiver: { ...webReceiver(stats), ended } }],
    };
  } finally {
    await page?.close().catch(() => undefined);
    await pa?.stop();
    await front.stop();
  }
}
