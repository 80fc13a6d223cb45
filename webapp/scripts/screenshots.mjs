// npm run screenshots: takes the README's screenshots (webapp/screenshots/)
// of the real phone against a real relay: sign in, home with the presence
// list, an incoming call, a call in progress and the keypad, on a phone-sized
// viewport (390×844) and on a desktop one (1280×800), and the banner shown
// while the relay is unreachable.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import * as L from "../test/e2e/lib.mjs";

const out = join(L.webappDir, "screenshots");
mkdirSync(out, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(out, `${name}.png`) });

const b = await import("node:child_process").then(({ spawnSync }) => spawnSync(process.execPath, [join(L.webappDir, "scripts/build.mjs")], { stdio: "inherit" }));
if (b.status !== 0) process.exit(1);

const relay = await L.startRelay(await L.freePort());
const carol = L.startCliPhone(relay, ["--as", "carol", "register"]);
const phone = await L.launchBrowser(L.writeToneWav("alice.wav", 440));
const other = await L.launchBrowser(L.writeToneWav("bob.wav", 740));
const desktop = await L.launchBrowser(L.writeToneWav("dave.wav", 620), { viewport: { width: 1280, height: 800 } });
try {
  const alice = await L.openPhone(phone.context, relay);
  const bob = await L.openPhone(other.context, relay);
  const dave = await L.openPhone(desktop.context, relay);
  await alice.fill("#f-user", "alice");
  await alice.fill("#f-display", "Alice Liddell");
  await shot(alice, "phone-1-sign-in");
  await shot(dave, "desktop-1-sign-in");
  await alice.click("#signin-button");
  await L.waitState(alice, "alice online", (s) => s.connection === "online");
  await L.signIn(bob, "bob", "Bob Builder");
  await L.signIn(dave, "dave", "Dave Bowman");
  for (const p of [alice, dave]) {
    await L.waitState(p, "presence", (s) => ["bob", "carol"].every((u) => s.presence.includes(u)));
    await L.until("display names", async () => /Bob Builder/.test(await p.textContent("#presence")));
  }
  await alice.fill("#dial-input", "pbx/100");
  await shot(alice, "phone-2-home");
  await shot(dave, "desktop-2-home");
  await alice.fill("#dial-input", "");

  // bob calls alice: the incoming-call screen.
  await L.dial(bob, "alice");
  await L.waitState(alice, "alice ringing", (s) => s.call?.phase === "ringing");
  await shot(alice, "phone-3-incoming");
  await alice.click("#answer");
  const s = await L.waitState(alice, "established", (x) => x.call?.phase === "established");
  await L.until("a few seconds of call", async () => (await alice.textContent("#call-timer")) >= "00:03", 10000, 200);
  await shot(alice, "phone-4-in-call");
  await alice.click("#mute");
  await alice.click("#keypad-toggle");
  for (const k of ["1", "0", "0", "#"]) await alice.click(`.keys button[data-key="${k}"]`);
  await shot(alice, "phone-5-keypad");
  await alice.click("#hangup");
  await L.waitState(alice, "ended", (x) => x.call?.sid === s.call.sid && x.call.phase === "ended");
  await shot(alice, "phone-6-ended");

  // Desktop: dave calls bob; bob answers.
  await L.toHome(bob);
  const sid = await L.dial(dave, "bob");
  await L.waitState(bob, "bob ringing", (x) => x.call?.sid === sid && x.call.phase === "ringing");
  await bob.click("#answer");
  await L.waitState(dave, "established", (x) => x.call?.sid === sid && x.call.phase === "established");
  await L.until("a few seconds of call", async () => (await dave.textContent("#call-timer")) >= "00:02", 10000, 200);
  await shot(dave, "desktop-3-in-call");
  await dave.click("#hangup");

  // The relay goes away: the banner says so and counts down to the next try.
  await L.toHome(alice);
  await carol.kill();
  await relay.stop("SIGKILL");
  await L.waitState(alice, "disconnected", (x) => x.connection === "waiting", 15000);
  await L.until("the banner", () => alice.isVisible("#banner"));
  await shot(alice, "phone-7-reconnecting");
  console.log(`screenshots in ${out}`);
} finally {
  for (const x of [phone, other, desktop]) await x.browser.close();
  await carol.kill();
  await relay.stop();
}
