// Signing in through the relay (issue 13): the answers of GET /access and
// POST /login as the page reads them (src/ui/access.ts), what the sign-in
// form does with them, and which close / REQUEST_ERROR codes send the phone
// back to the sign-in screen (src/phone/auth.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { requestAuthFailure, sessionAuthFailure } from "../src/phone/auth.js";
import { accessBanner, fetchAccess, localExpiry, login, LoginError, parseAccess, parseLogin, planSignIn, refusalMessage, TOKEN_NEEDED } from "../src/ui/access.js";

/** A fetch that answers every request with `status` and `body` (JSON unless a string), recording the requests. */
function fakeFetch(status: number, body: unknown, headers: Record<string, string> = {}) {
  const calls: { url: string; init: RequestInit | undefined }[] = [];
  const f = (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), init });
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return new Response(status === 204 ? null : text, { status, headers: { "content-type": "application/json", ...headers } });
  }) as typeof fetch;
  return { f, calls };
}

const failingFetch = (async () => {
  throw new TypeError("Failed to fetch");
}) as typeof fetch;

describe("GET /access", () => {
  it("reads the three modes and the login flag", () => {
    assert.deepEqual(parseAccess(200, { mode: "tokens", login: true }), { mode: "tokens", login: true });
    assert.deepEqual(parseAccess(200, { mode: "open", login: false }), { mode: "open", login: false });
    assert.deepEqual(parseAccess(200, { mode: "loopback", login: false }), { mode: "loopback", login: false });
  });

  it("takes a missing or non-boolean login as no login", () => {
    assert.deepEqual(parseAccess(200, { mode: "tokens" }), { mode: "tokens", login: false });
    assert.deepEqual(parseAccess(200, { mode: "tokens", login: "yes" }), { mode: "tokens", login: false });
  });

  it("knows nothing from an older relay's 404, an unknown mode or a body that is not an object", () => {
    assert.equal(parseAccess(404, { error: "not found" }), undefined);
    assert.equal(parseAccess(200, { mode: "sometimes", login: true }), undefined);
    assert.equal(parseAccess(200, null), undefined);
    assert.equal(parseAccess(200, "tokens"), undefined);
    assert.equal(parseAccess(500, { mode: "open", login: false }), undefined);
  });

  it("fetches the URL it is given and never throws", async () => {
    const ok = fakeFetch(200, { mode: "open", login: false });
    assert.deepEqual(await fetchAccess("http://relay:4443/access", ok.f), { mode: "open", login: false });
    assert.equal(ok.calls[0]?.url, "http://relay:4443/access");
    assert.equal(await fetchAccess("http://relay/access", fakeFetch(404, "Not Found").f), undefined);
    assert.equal(await fetchAccess("http://relay/access", fakeFetch(200, "<html>").f), undefined);
    assert.equal(await fetchAccess("http://relay/access", failingFetch), undefined);
  });
});

describe("POST /login", () => {
  it("returns the token, user and expiry of a 200", () => {
    assert.deepEqual(parseLogin(200, { token: "0oRD_w", user: "alice", expires: 1767225600 }), { token: "0oRD_w", user: "alice", expires: 1767225600 });
  });

  it("refuses a 200 it cannot use", () => {
    assert.throws(() => parseLogin(200, { token: "not base64url!", user: "alice", expires: 1 }), LoginError);
    assert.throws(() => parseLogin(200, { token: "0oRD_w", user: "alice" }), /not one this page understands/);
    assert.throws(() => parseLogin(200, undefined), LoginError);
  });

  it("shows the relay's error text, as a sentence", () => {
    assert.throws(() => parseLogin(401, { error: "wrong user name or password" }), (e: unknown) => e instanceof LoginError && e.status === 401 && e.message === "Wrong user name or password.");
    assert.throws(() => parseLogin(404, { error: "this relay has no users file" }), { message: "This relay has no users file." });
    assert.throws(() => parseLogin(400, { error: "bad JSON: expected value" }), { message: "Bad JSON: expected value." });
  });

  it("adds Retry-After to a rate limit that does not say how long", () => {
    assert.throws(() => parseLogin(429, { error: "too many sign-in attempts" }, "30"), { message: "Too many sign-in attempts. Try again in 30 s." });
    assert.throws(() => parseLogin(429, { error: "too many attempts: try again in 12 s" }, "12"), { message: "Too many attempts: try again in 12 s." });
    assert.throws(() => parseLogin(429, { error: "slow down" }, null), { message: "Slow down." });
    assert.throws(() => parseLogin(429, { error: "too many sign-in attempts from your address; wait a minute and try again" }, "6"), {
      message: "Too many sign-in attempts from your address; wait a minute and try again.",
    });
  });

  it("says something useful when the relay gave no error text", () => {
    assert.throws(() => parseLogin(401, undefined), { message: "Wrong user name or password." });
    assert.throws(() => parseLogin(404, "Not Found"), { message: "This relay has no password sign-in." });
    assert.throws(() => parseLogin(502, { error: "" }), { message: "Sign-in failed (HTTP 502)." });
  });

  it("posts the user name and password as JSON", async () => {
    const ok = fakeFetch(200, { token: "abc_-9", user: "alice", expires: 99 });
    assert.deepEqual(await login("http://relay/login", "alice", "s3cret \"x\"", ok.f), { token: "abc_-9", user: "alice", expires: 99 });
    const call = ok.calls[0];
    assert.equal(call?.url, "http://relay/login");
    assert.equal(call?.init?.method, "POST");
    assert.equal(new Headers(call?.init?.headers).get("content-type"), "application/json");
    assert.deepEqual(JSON.parse(String(call?.init?.body)), { user: "alice", password: 's3cret "x"' });
  });

  it("knows how long the token is valid by the relay's clock, so a browser clock that is off does not matter", async () => {
    const relayNow = Date.parse("Sun, 06 Dec 2026 23:23:02 GMT");
    const expires = relayNow / 1000 + 3600;
    const t = await login("http://relay/login", "alice", "pw", fakeFetch(200, { token: "abc", user: "alice", expires }, { date: "Sun, 06 Dec 2026 23:23:02 GMT" }).f);
    assert.equal(t.validFor, 3600);
    // This browser's clock is a day ahead: the token still has an hour by it.
    const browserNow = relayNow + 86400_000;
    assert.equal(localExpiry(t, browserNow), browserNow / 1000 + 3600);
    // Without a Date header, the relay's expiry as it is.
    const u = await login("http://relay/login", "alice", "pw", fakeFetch(200, { token: "abc", user: "alice", expires }).f);
    assert.equal(u.validFor, undefined);
    assert.equal(localExpiry(u, browserNow), expires);
  });

  it("reads the error and Retry-After of a refusal, and says when the relay is unreachable", async () => {
    await assert.rejects(login("http://relay/login", "alice", "nope", fakeFetch(401, { error: "wrong user name or password" }).f), { message: "Wrong user name or password." });
    await assert.rejects(login("http://relay/login", "alice", "x", fakeFetch(429, { error: "too many sign-in attempts" }, { "retry-after": "7" }).f), { message: "Too many sign-in attempts. Try again in 7 s." });
    await assert.rejects(login("http://relay/login", "alice", "x", fakeFetch(400, "not json").f), { message: "Sign-in failed (HTTP 400)." });
    await assert.rejects(login("http://relay/login", "alice", "x", failingFetch), (e: unknown) => e instanceof LoginError && e.status === 0 && /Can't reach the relay/.test(e.message));
  });
});

describe("the sign-in form", () => {
  const tokens = { mode: "tokens", login: true } as const;
  const tokensOnly = { mode: "tokens", login: false } as const;
  const open = { mode: "open", login: false } as const;
  const loopback = { mode: "loopback", login: false } as const;

  it("signs in with the password when the relay has /login", () => {
    assert.deepEqual(planSignIn(tokens, "pw", ""), { kind: "login", password: "pw" });
    assert.deepEqual(planSignIn(tokens, "pw", "tok"), { kind: "login", password: "pw" });
  });

  it("uses a typed token as is (an externally issued one)", () => {
    assert.deepEqual(planSignIn(tokens, "", "tok"), { kind: "token", token: "tok" });
    assert.deepEqual(planSignIn(tokensOnly, "", "tok"), { kind: "token", token: "tok" });
    assert.deepEqual(planSignIn(undefined, "", "tok"), { kind: "token", token: "tok" });
    assert.deepEqual(planSignIn(open, "", "tok"), { kind: "token", token: "tok" });
  });

  it("asks for what a token relay needs instead of connecting without", () => {
    assert.deepEqual(planSignIn(tokens, "", ""), { kind: "error", message: "Enter your password." });
    assert.deepEqual(planSignIn(tokensOnly, "", ""), { kind: "error", message: TOKEN_NEEDED });
    assert.match(TOKEN_NEEDED, /access token/);
    assert.match(TOKEN_NEEDED, /moq-relay token/);
  });

  it("connects without a token to an open relay or one that did not say", () => {
    assert.deepEqual(planSignIn(open, "", ""), { kind: "none" });
    assert.deepEqual(planSignIn(loopback, "", ""), { kind: "none" });
    assert.deepEqual(planSignIn(undefined, "", ""), { kind: "none" });
    // No /login to send a password to.
    assert.deepEqual(planSignIn(undefined, "pw", ""), { kind: "none" });
  });

  it("shows a banner for open and loopback relays only", () => {
    assert.match(accessBanner(open)?.title ?? "", /^Open relay$/);
    assert.match(accessBanner(open)?.text ?? "", /anyone who can reach it can sign in as anyone/i);
    assert.match(accessBanner(loopback)?.title ?? "", /this machine only/);
    assert.match(accessBanner(loopback)?.text ?? "", /README/);
    assert.equal(accessBanner(tokens), undefined);
    assert.equal(accessBanner(tokensOnly), undefined);
    assert.equal(accessBanner(undefined), undefined);
  });
});

describe("the relay refusing the sign-in", () => {
  it("session close codes: EXPIRED_AUTH_TOKEN expired; UNAUTHORIZED and MALFORMED_AUTH_TOKEN refused; others are not about the token", () => {
    assert.equal(sessionAuthFailure(0x18), "expired");
    assert.equal(sessionAuthFailure(0x2), "refused");
    assert.equal(sessionAuthFailure(0x16), "refused");
    assert.equal(sessionAuthFailure(0x17), "refused");
    for (const c of [undefined, 0x0, 0x1, 0x3, 0x10]) assert.equal(sessionAuthFailure(c), undefined);
  });

  it("REQUEST_ERROR codes: EXPIRED_AUTH_TOKEN anywhere; UNAUTHORIZED only for our registration", () => {
    assert.equal(requestAuthFailure(0x5, false), "expired");
    assert.equal(requestAuthFailure(0x5, true), "expired");
    assert.equal(requestAuthFailure(0x1, true), "user");
    assert.equal(requestAuthFailure(0x1, false), undefined);
    assert.equal(requestAuthFailure(0x4, true), "refused");
    for (const c of [undefined, 0x0, 0x2, 0x9, 0x10]) assert.equal(requestAuthFailure(c, true), undefined);
  });

  it("says what happened on the sign-in screen", () => {
    assert.equal(refusalMessage("expired", true, "alice"), "Your sign-in expired — sign in again.");
    assert.match(refusalMessage("refused", true, "alice"), /^The relay refused your token/);
    assert.match(refusalMessage("refused", false, "alice"), /needs you to sign in/);
    assert.match(refusalMessage("user", true, "alice"), /"alice"/);
    assert.match(refusalMessage("refused", false, "alice", { mode: "loopback", login: false }), /own machine/);
    assert.match(refusalMessage("refused", true, "alice", { mode: "loopback", login: false }), /^The relay refused your token/);
  });
});
