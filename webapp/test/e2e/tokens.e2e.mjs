// Access tokens in the browser phone (issue 13): against a relay started with
// --auth-key, people sign in with the token `moq-relay token` printed for
// them (Advanced → Access token), come online and ring each other.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

let relay;
let browser;
const key = join(L.tmp, "issuer.key.pem");

function token(user) {
  return execFileSync(L.relayBin, ["token", "--key", key, "--user", user, "--ttl", "10m"]).toString().trim();
}

async function signInWithToken(page, user) {
  await page.fill("#f-user", user);
  // Once GET /access said "tokens" the field is on the form; before, under Advanced.
  if (!(await page.isVisible("#f-token"))) await page.click("details.advanced summary");
  await page.fill("#f-token", token(user));
  await page.click("#signin-button");
  await L.waitState(page, `${user} online`, (s) => s.connection === "online");
}

describe("access tokens", () => {
  before(async () => {
    execFileSync(L.relayBin, ["keygen", "--out", key]);
    relay = await L.startRelay(await L.freePort(), ["--auth-key", join(L.tmp, "issuer.key.pub.pem")]);
    browser = await L.launchBrowser(L.writeToneWav("tone.wav", 440));
  });

  after(async () => {
    await browser?.browser.close();
    await relay?.stop();
  });

  test("GET /access says tokens without login: the token field is on the form, and without a token the page says how to get one", async () => {
    const r = await fetch(new URL("/access", relay.base));
    assert.deepEqual(await r.json(), { mode: "tokens", login: false });
    const page = await L.openPhone(browser.context, relay);
    await L.until("the token form", async () => (await page.getAttribute("#signin-form", "data-mode")) === "tokens");
    assert.equal(await page.isVisible("#token-needed"), true);
    assert.equal(await page.isVisible("#f-token"), true, "the token field is outside Advanced");
    assert.equal(await page.isVisible("#f-password"), false);
    assert.equal(await page.isVisible("#access-banner"), false);
    await page.fill("#f-user", "carol");
    await page.click("#signin-button");
    await L.until("what to do", async () => (await page.isVisible("#signin-error")) && /access token.*moq-relay token/.test((await page.textContent("#signin-error")) ?? ""));
    assert.equal(await page.isVisible("#screen-main"), false);
    assert.equal((await L.state(page)).connection, "offline");
    await page.close();
  });

  test("signed-in users with their tokens see each other and ring each other", async () => {
    const alice = await L.openPhone(browser.context, relay);
    const bob = await L.openPhone(browser.context, relay);
    await signInWithToken(alice, "alice");
    await signInWithToken(bob, "bob");
    await L.waitState(alice, "alice sees bob", (s) => s.presence.includes("bob"));
    const sid = await L.dial(alice, "bob");
    const s = await L.waitState(bob, "bob's phone rings", (x) => x.call?.sid === sid && x.call.phase === "ringing");
    assert.equal(s.call.sid, sid);
  });
});
