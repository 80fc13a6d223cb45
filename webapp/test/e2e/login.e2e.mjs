// Signing in with a password (issue 13): a relay started with --users and
// --signing-key answers GET /access with {mode: "tokens", login: true} and
// POST /login with a token; the page shows a password field, signs in
// through /login, registers and calls; a wrong password shows the relay's
// error and registers nothing. A token the relay refuses at SETUP (expired:
// EXPIRED_AUTH_TOKEN; signed by another key: UNAUTHORIZED) or one for
// another user (its registration refused) sends the page back to the
// sign-in screen saying so, as does a token from /login running out (after
// the call in progress). Relays that let anyone in (--auth none, and no
// key at all = this machine only) show their banner.
//
// MOQ_E2E_SCREENSHOTS=DIR writes the sign-in pages there (signin.png: the
// open relay's banner; signin-loopback.png; signin-password.png).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { sign } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as L from "./lib.mjs";

const dir = join(L.tmp, "login");
const key = join(dir, "issuer.key.pem");
const otherKey = join(dir, "other.key.pem");
const users = join(dir, "users.toml");
const PASSWORDS = { alice: "correct horse battery staple", bob: "tr0ub4dor&3" };
const shots = process.env.MOQ_E2E_SCREENSHOTS;
if (shots && !existsSync(shots)) mkdirSync(shots, { recursive: true });

function relayCli(args, input) {
  return execFileSync(L.relayBin, args, { input, stdio: ["pipe", "pipe", "pipe"] }).toString().trim();
}

function token(user, signingKey = key) {
  return relayCli(["token", "--key", signingKey, "--user", user, "--ttl", "10m"]);
}

// ---- an expired token: a real one with exp / nbf / iat moved an hour back, re-signed with the issuer key ----

/** The head of the CBOR item at `pos`: major type, argument, where its content starts. */
function cborHead(b, pos) {
  const major = b[pos] >> 5;
  const info = b[pos] & 0x1f;
  if (info < 24) return { major, arg: info, start: pos + 1 };
  const n = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
  if (!n) throw new Error(`CBOR: indefinite or reserved length at ${pos}`);
  let arg = 0;
  for (let i = 0; i < n; i++) arg = arg * 256 + b[pos + 1 + i];
  return { major, arg, start: pos + 1 + n };
}

/** Where the CBOR item at `pos` ends. */
function cborSkip(b, pos) {
  const h = cborHead(b, pos);
  switch (h.major) {
    case 2:
    case 3:
      return h.start + h.arg;
    case 4: {
      let p = h.start;
      for (let i = 0; i < h.arg; i++) p = cborSkip(b, p);
      return p;
    }
    case 5: {
      let p = h.start;
      for (let i = 0; i < 2 * h.arg; i++) p = cborSkip(b, p);
      return p;
    }
    case 6:
      return cborSkip(b, h.start);
    default:
      return h.start;
  }
}

function expiredToken(user) {
  const t = Buffer.from(token(user), "base64url");
  // tag 18, [protected bstr, unprotected map, payload bstr, signature bstr]
  const tag = cborHead(t, 0);
  assert.equal(tag.major, 6);
  const arr = cborHead(t, tag.start);
  const prot = cborHead(t, arr.start);
  const protEnd = prot.start + prot.arg;
  const payloadHead = cborHead(t, cborSkip(t, protEnd));
  const payload = t.subarray(payloadHead.start, payloadHead.start + payloadHead.arg);
  const sigHead = cborHead(t, payloadHead.start + payloadHead.arg);
  assert.equal(sigHead.arg, 64);
  // The claims map: patch exp (4), nbf (5), iat (6) in place (all 4-byte unsigned now and an hour ago).
  const now = Math.floor(Date.now() / 1000);
  const times = { 4: now - 3600, 5: now - 7200, 6: now - 7200 };
  const map = cborHead(payload, 0);
  let p = map.start;
  let patched = 0;
  for (let i = 0; i < map.arg; i++) {
    const k = cborHead(payload, p);
    const vAt = cborSkip(payload, p);
    if (k.major === 0 && k.arg in times) {
      assert.equal(payload[vAt], 0x1a, "a time claim as a 4-byte unsigned integer");
      payload.writeUInt32BE(times[k.arg], vAt + 1);
      patched += k.arg === 4 ? 1 : 0;
    }
    p = cborSkip(payload, vAt);
  }
  assert.equal(patched, 1, "the token has an exp claim");
  // Sig_structure = ["Signature1", protected, h'', payload] (RFC 9052 §4.4).
  const bstr = (x) => Buffer.concat([cborLen(2, x.length), x]);
  const toSign = Buffer.concat([Buffer.from([0x84, 0x6a]), Buffer.from("Signature1"), bstr(t.subarray(prot.start, protEnd)), Buffer.from([0x40]), bstr(payload)]);
  const sig = sign("sha256", toSign, { key: readFileSync(key), dsaEncoding: "ieee-p1363" });
  sig.copy(t, sigHead.start);
  return t.toString("base64url");
}

function cborLen(major, n) {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 256) return Buffer.from([(major << 5) | 24, n]);
  if (n < 65536) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
  throw new Error("too long");
}

// ---- the page ----

/** Waits until the page asked GET /access and shaped the form (data-mode on the form). */
async function accessShown(page, mode) {
  await L.until(`the sign-in form for mode ${mode}`, async () => (await page.getAttribute("#signin-form", "data-mode")) === mode);
}

async function signInWithPassword(page, user, password) {
  await accessShown(page, "tokens");
  await page.fill("#f-user", user);
  await page.fill("#f-password", password);
  await page.click("#signin-button");
}

/** Signs in with a token typed under Advanced → Access token (no password). */
async function signInWithToken(page, user, tok) {
  await accessShown(page, "tokens");
  await page.fill("#f-user", user);
  if (!(await page.isVisible("#f-token"))) await page.click("details.advanced summary");
  await page.fill("#f-token", tok);
  await page.click("#signin-button");
}

/** Waits for the sign-in screen with an error matching `re`; returns the text. */
async function signInError(page, re) {
  let last = "";
  await L.until(`the sign-in error ${re}`, async () => {
    last = (await page.isVisible("#signin-error")) ? ((await page.textContent("#signin-error")) ?? "") : "";
    return (await page.isVisible("#screen-signin")) && re.test(last);
  }, 15000).catch((e) => {
    e.message += `\nshown: ${JSON.stringify(last)}\npage log:\n${page.logs.slice(-20).join("\n")}`;
    throw e;
  });
  return last;
}

describe("sign in with a password (POST /login)", () => {
  let relay;
  let browser;
  let other;

  before(async () => {
    mkdirSync(dir, { recursive: true });
    relayCli(["keygen", "--out", key]);
    relayCli(["keygen", "--out", otherKey]);
    for (const [user, pw] of Object.entries(PASSWORDS)) relayCli(["user", "add", user, "--users", users, "--password-stdin"], `${pw}\n`);
    relay = await L.startRelay(await L.freePort(), ["--users", users, "--signing-key", key]);
    browser = await L.launchBrowser(L.writeToneWav("login-alice.wav", 440));
    other = await L.launchBrowser(L.writeToneWav("login-bob.wav", 740));
  });

  after(async () => {
    await browser?.browser.close();
    await other?.browser.close();
    await relay?.stop();
  });

  test("GET /access says tokens with login; the page asks for a password and shows no banner", async () => {
    const r = await fetch(new URL("/access", relay.base));
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { mode: "tokens", login: true });
    const page = await L.openPhone(browser.context, relay);
    await accessShown(page, "tokens");
    assert.equal(await page.isVisible("#f-password"), true);
    assert.equal(await page.isVisible("#access-banner"), false);
    assert.equal(await page.isVisible("#token-needed"), false);
    // The token field is still there, for an externally issued token.
    assert.equal(await page.isVisible("#f-token"), false);
    await page.click("details.advanced summary");
    assert.equal(await page.isVisible("#f-token"), true);
    if (shots) {
      await page.click("details.advanced summary");
      await page.fill("#f-user", "alice");
      await page.fill("#f-password", "password");
      await page.screenshot({ path: join(shots, "signin-password.png") });
    }
    await page.close();
  });

  test("a wrong password shows the relay's error and registers nothing", async () => {
    const page = await L.openPhone(browser.context, relay);
    const answered = page.waitForResponse((r) => r.url().endsWith("/login"));
    await signInWithPassword(page, "alice", "not her password");
    const r = await answered;
    assert.equal(r.status(), 401);
    const { error } = await r.json();
    assert.equal(typeof error, "string");
    const shown = await signInError(page, /wrong user name or password/i);
    assert.equal(shown.toLowerCase().replace(/\.$/, ""), error.toLowerCase().replace(/\.$/, ""));
    assert.equal(await page.isVisible("#screen-main"), false);
    assert.equal((await L.state(page)).connection, "offline");
    // An unknown user gets the same answer (no telling which users exist).
    await signInWithPassword(page, "mallory", "whatever");
    await signInError(page, /wrong user name or password/i);
    assert.equal((await L.state(page)).connection, "offline");
    await page.close();
  });

  test("the right password signs in through /login: registered, and two such pages call each other", async () => {
    const alice = await L.openPhone(browser.context, relay);
    const bob = await L.openPhone(other.context, relay);
    const login = alice.waitForResponse((r) => r.url().endsWith("/login"));
    await signInWithPassword(alice, "alice", PASSWORDS.alice);
    const r = await login;
    assert.equal(r.status(), 200);
    const body = await r.json();
    assert.equal(body.user, "alice");
    assert.ok(body.expires > Date.now() / 1000, "expires in the future");
    await L.waitState(alice, "alice online", (s) => s.connection === "online");
    // The password left the form; the token is in memory only.
    assert.equal(await alice.inputValue("#f-password"), "");
    const stored = await alice.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    assert.ok(!stored.includes(body.token), "the token is not in web storage");
    assert.ok(!stored.includes(PASSWORDS.alice), "the password is not in web storage");

    await signInWithPassword(bob, "bob", PASSWORDS.bob);
    await L.waitState(bob, "bob online", (s) => s.connection === "online");
    await L.waitState(alice, "alice sees bob", (s) => s.presence.includes("bob"));
    await L.waitState(bob, "bob sees alice", (s) => s.presence.includes("alice"));

    const sid = await L.dial(alice, "bob");
    await L.waitState(bob, "bob's phone rings", (x) => x.call?.sid === sid && x.call.phase === "ringing");
    await bob.click("#answer");
    await L.waitState(alice, "established at alice", (x) => x.call?.sid === sid && x.call.phase === "established");
    await L.waitState(bob, "established at bob", (x) => x.call?.sid === sid && x.call.phase === "established");
    await alice.click("#hangup");
    await L.waitState(bob, "ended at bob", (x) => x.call?.sid === sid && x.call.phase === "ended");
    await alice.close();
    await bob.close();
  });

  test("an expired token: back to sign-in with 'Your sign-in expired'", async () => {
    const page = await L.openPhone(browser.context, relay);
    await signInWithToken(page, "alice", expiredToken("alice"));
    await signInError(page, /^Your sign-in expired — sign in again/);
    assert.equal((await L.state(page)).connection, "offline");
    await page.close();
  });

  test("a token signed by another key: back to sign-in with 'The relay refused your token'", async () => {
    const page = await L.openPhone(browser.context, relay);
    await signInWithToken(page, "alice", token("alice", otherKey));
    await signInError(page, /^The relay refused your token/);
    assert.equal((await L.state(page)).connection, "offline");
    // Signing in again with the password works from there.
    await page.fill("#f-token", "");
    await signInWithPassword(page, "alice", PASSWORDS.alice);
    await L.waitState(page, "alice online", (s) => s.connection === "online");
    await page.close();
  });

  test("a token for another user: back to sign-in saying it does not let you sign in as that name", async () => {
    const page = await L.openPhone(browser.context, relay);
    await signInWithToken(page, "bob", token("alice"));
    await signInError(page, /^The relay refused your token: it does not let you sign in as "bob"/);
    await page.close();
  });

  // Last: it spends this address's sign-in attempts.
  test("too many attempts: the relay's rate-limit text is shown", async () => {
    const page = await L.openPhone(browser.context, relay);
    let last;
    for (let i = 0; i < 30 && last?.status() !== 429; i++) {
      const answered = page.waitForResponse((r) => r.url().endsWith("/login"));
      await signInWithPassword(page, "alice", `guess ${i}`);
      last = await answered;
      await page.waitForSelector("#signin-button:not([disabled])");
    }
    assert.equal(last.status(), 429);
    assert.match(last.headers()["retry-after"] ?? "", /^\d+$/);
    const { error } = await last.json();
    const shown = await signInError(page, /too many/i);
    assert.equal(shown, `${error.charAt(0).toUpperCase()}${error.slice(1).replace(/\.$/, "")}.`);
    assert.equal((await L.state(page)).connection, "offline");
    await page.close();
  });
});

describe("a token from /login running out", () => {
  const TTL_S = 8;
  let relay;
  let browser;
  let other;
  before(async () => {
    // No clock skew allowed: the token stops counting at its `exp` (by default 60 s later).
    relay = await L.startRelay(await L.freePort(), ["--users", users, "--signing-key", key, "--login-ttl", `${TTL_S}s`, "--token-skew-secs", "0"]);
    browser = await L.launchBrowser(L.writeToneWav("expiry-alice.wav", 440));
    other = await L.launchBrowser(L.writeToneWav("expiry-bob.wav", 740));
  });
  after(async () => {
    await browser?.browser.close();
    await other?.browser.close();
    await relay?.stop();
  });

  test("a call in progress when the token expires goes on; after it the pages say the sign-in expired", async () => {
    const alice = await L.openPhone(browser.context, relay);
    const bob = await L.openPhone(other.context, relay);
    const login = alice.waitForResponse((r) => r.url().endsWith("/login"));
    await signInWithPassword(alice, "alice", PASSWORDS.alice);
    const { expires } = await (await login).json();
    await signInWithPassword(bob, "bob", PASSWORDS.bob);
    await L.waitState(alice, "alice sees bob", (s) => s.connection === "online" && s.presence.includes("bob"));
    const sid = await L.dial(alice, "bob");
    await L.waitState(bob, "bob's phone rings", (x) => x.call?.sid === sid && x.call.phase === "ringing");
    await bob.click("#answer");
    await L.waitState(alice, "established", (x) => x.call?.sid === sid && x.call.phase === "established");
    assert.ok(Date.now() / 1000 < expires, `the call was up before the token expired (ttl ${TTL_S} s too short for this machine?)`);
    // The relay sends GOAWAY at the token's expiry: the phones keep the call and sign out after it.
    await L.until("the token's expiry", () => Date.now() / 1000 > expires + 1, (TTL_S + 5) * 1000, 100);
    for (const p of [alice, bob]) {
      const s = await L.state(p);
      assert.equal(s.call?.phase, "established", "the call survives the token's expiry");
      assert.equal(await p.isVisible("#screen-main"), true);
    }
    await alice.click("#hangup");
    await signInError(alice, /^Your sign-in expired — sign in again/);
    await signInError(bob, /^Your sign-in expired — sign in again/);
    assert.equal((await L.state(alice)).connection, "offline");
    // Signing in again gives a fresh token and a working phone.
    await signInWithPassword(alice, "alice", PASSWORDS.alice);
    await L.waitState(alice, "alice online again", (s) => s.connection === "online");
    await alice.close();
    await bob.close();
  });
});

describe("relays that let anyone in show it", () => {
  let browser;
  before(async () => {
    browser = await L.launchBrowser(L.writeToneWav("login-banner.wav", 440));
  });
  after(async () => {
    await browser?.browser.close();
  });

  test("--auth none: the open relay's banner, on the sign-in page and once signed in", async () => {
    const relay = await L.startRelay(await L.freePort(), ["--auth", "none"]);
    try {
      const r = await fetch(new URL("/access", relay.base));
      assert.deepEqual(await r.json(), { mode: "open", login: false });
      const page = await L.openPhone(browser.context, relay);
      await accessShown(page, "open");
      await page.waitForSelector("#access-banner", { state: "visible" });
      assert.match((await page.textContent("#access-banner")) ?? "", /Open relay: anyone who can reach it can sign in as anyone/i);
      assert.equal(await page.isVisible("#f-password"), false);
      if (shots) {
        await page.fill("#f-user", "alice");
        await page.screenshot({ path: join(shots, "signin.png") });
      }
      await L.signIn(page, "alice");
      assert.equal(await page.isVisible("#access-banner"), true);
    } finally {
      await relay.stop();
    }
  });

  test("no key: 'open to this machine only', and signing in without a token works from here", async () => {
    const relay = await L.startRelay(await L.freePort());
    try {
      const r = await fetch(new URL("/access", relay.base));
      assert.deepEqual(await r.json(), { mode: "loopback", login: false });
      const page = await L.openPhone(browser.context, relay);
      await accessShown(page, "loopback");
      await page.waitForSelector("#access-banner", { state: "visible" });
      const text = (await page.textContent("#access-banner")) ?? "";
      assert.match(text, /Open to this machine only/);
      assert.match(text, /README/);
      if (shots) {
        await page.fill("#f-user", "alice");
        await page.screenshot({ path: join(shots, "signin-loopback.png") });
      }
      await L.signIn(page, "alice");
    } finally {
      await relay.stop();
    }
  });
});
