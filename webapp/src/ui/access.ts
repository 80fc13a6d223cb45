/**
 * Signing in to the relay (issue 13): what the relay's `GET /access` says
 * about who may use it, `POST /login` (user name and password → an access
 * token), what the sign-in form does with both, and what to tell the user
 * when the relay later refuses the token. Pure logic: `fetch` is a
 * parameter, nothing here touches the page.
 *
 * The token is kept in memory only (the {@link PhoneConfig} of the running
 * phone), never in storage.
 */

import type { AuthFailureKind } from "../phone/auth.js";

/**
 * - `tokens`: every session needs a token;
 * - `open`: started with `--auth none`, anyone may register as anyone;
 * - `loopback`: no key configured, only clients on the relay's machine may connect.
 */
export type AccessMode = "tokens" | "open" | "loopback";

export interface Access {
  mode: AccessMode;
  /** `POST /login` works (the relay has a users file and a signing key). */
  login: boolean;
}

const MODES: readonly string[] = ["tokens", "open", "loopback"];

/**
 * The relay's answer to `GET /access`, or `undefined` when it says nothing
 * usable (an older relay answers 404; a relay elsewhere may refuse the
 * cross-origin request): then the page shows no banner and only the token
 * field.
 */
export function parseAccess(status: number, body: unknown): Access | undefined {
  if (status !== 200 || typeof body !== "object" || body === null) return undefined;
  const { mode, login } = body as Record<string, unknown>;
  if (typeof mode !== "string" || !MODES.includes(mode)) return undefined;
  return { mode: mode as AccessMode, login: login === true };
}

/** `GET url` (the relay's `/access`) → {@link parseAccess}; `undefined` on any failure or after `timeoutMs`. */
export async function fetchAccess(url: string, fetchFn: typeof fetch = fetch, timeoutMs = 3000): Promise<Access | undefined> {
  try {
    const r = await fetchFn(url, { cache: "no-store", headers: { accept: "application/json" }, signal: AbortSignal.timeout(timeoutMs) });
    const body: unknown = r.status === 200 ? await r.json() : undefined;
    return parseAccess(r.status, body);
  } catch {
    return undefined;
  }
}

/** A successful `POST /login`. */
export interface LoginToken {
  /** The access token (base64url CAT), as `moq-relay token` prints one. */
  token: string;
  /** The user name the token is for. */
  user: string;
  /** When it expires (Unix seconds, the relay's clock). */
  expires: number;
  /** Seconds it is valid for from now, by the relay's clock (its `Date` header), when known. */
  validFor?: number;
}

/** A refused or failed `POST /login`; `message` is what to show the user. */
export class LoginError extends Error {
  constructor(
    message: string,
    /** The HTTP status, or 0 when the relay could not be reached. */
    readonly status: number,
  ) {
    super(message);
    this.name = "LoginError";
  }
}

/** The relay's text as a sentence: capital first letter, full stop. */
function sentence(s: string): string {
  const t = s.trim().replace(/[.\s]+$/, "");
  return t ? `${t.charAt(0).toUpperCase()}${t.slice(1)}.` : "";
}

/**
 * The relay's answer to `POST /login`: the token, or a {@link LoginError}
 * carrying the relay's `error` text (wrong password, too many attempts…),
 * with the wait from `Retry-After` when the relay gave one and its text
 * does not already say to wait.
 */
export function parseLogin(status: number, body: unknown, retryAfter: string | null = null): LoginToken {
  const b = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  if (status === 200) {
    const { token, user, expires } = b;
    if (typeof token === "string" && /^[A-Za-z0-9_-]+=*$/.test(token) && typeof user === "string" && user && typeof expires === "number") {
      return { token, user, expires };
    }
    throw new LoginError("The relay's sign-in answer is not one this page understands.", status);
  }
  let message = typeof b["error"] === "string" && b["error"].trim() ? sentence(b["error"]) : "";
  if (!message) {
    message =
      status === 401
        ? "Wrong user name or password."
        : status === 404
          ? "This relay has no password sign-in."
          : status === 429
            ? "Too many sign-in attempts."
            : `Sign-in failed (HTTP ${status}).`;
  }
  const wait = retryAfter !== null && /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter.trim()) : undefined;
  if (status === 429 && wait !== undefined && !/\d|\bwait\b|\btry again\b/i.test(message)) message += ` Try again in ${wait} s.`;
  throw new LoginError(message, status);
}

/** `POST url` (the relay's `/login`) with the user name and password → {@link parseLogin}. */
export async function login(url: string, user: string, password: string, fetchFn: typeof fetch = fetch): Promise<LoginToken> {
  let r: Response;
  try {
    r = await fetchFn(url, {
      method: "POST",
      cache: "no-store",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ user, password }),
    });
  } catch (e) {
    throw new LoginError(`Can't reach the relay to sign in (${e instanceof Error ? e.message : String(e)}).`, 0);
  }
  let body: unknown;
  try {
    body = await r.json();
  } catch {
    body = undefined;
  }
  const got = parseLogin(r.status, body, r.headers.get("retry-after"));
  const relayNow = Date.parse(r.headers.get("date") ?? "");
  return Number.isFinite(relayNow) ? { ...got, validFor: got.expires - relayNow / 1000 } : got;
}

/**
 * When the token expires by this browser's clock (Unix seconds): the
 * relay's expiry moved by how far the two clocks differ, when the relay's
 * `Date` told us.
 */
export function localExpiry(t: LoginToken, now = Date.now()): number {
  return t.validFor !== undefined ? now / 1000 + t.validFor : t.expires;
}

/** What the sign-in form does on submit. */
export type SignInPlan =
  /** `POST /login` with the password, then connect with the token it returns. */
  | { kind: "login"; password: string }
  /** Connect with the token typed under "Access token". */
  | { kind: "token"; token: string }
  /** Connect without a token (an open relay, or one that did not say). */
  | { kind: "none" }
  /** Don't connect: tell the user this. */
  | { kind: "error"; message: string };

/** The message for a relay that wants a token and has no password sign-in. */
export const TOKEN_NEEDED =
  "This relay only lets in people with an access token. Ask whoever runs it for one (they make it with moq-relay token --user <your name>) and paste it under Access token.";

/**
 * Decides how to sign in from what the relay said (`undefined`: it did not
 * say) and what was typed. A password goes to `/login` when the relay has
 * it; a typed token is used as is (an externally issued token); a relay that
 * needs a token gets neither only with a message saying what to do.
 */
export function planSignIn(access: Access | undefined, password: string, token: string): SignInPlan {
  if (password && access?.login) return { kind: "login", password };
  if (token) return { kind: "token", token };
  if (access?.login && access.mode === "tokens") return { kind: "error", message: "Enter your password." };
  if (access?.mode === "tokens") return { kind: "error", message: TOKEN_NEEDED };
  return { kind: "none" };
}

/** The banner for a relay that lets anyone in, or `undefined` for one that checks tokens (or did not say). */
export function accessBanner(access: Access | undefined): { title: string; text: string } | undefined {
  switch (access?.mode) {
    case "open":
      return {
        title: "Open relay",
        text: "Anyone who can reach it can sign in as anyone, and answer their calls. Fine for a test; don't use it for real calls.",
      };
    case "loopback":
      return {
        title: "Open to this machine only",
        text: "Anyone on this computer can sign in as anyone; other devices are refused. See the README (Access tokens) to add users.",
      };
    default:
      return undefined;
  }
}

/**
 * What the sign-in screen says after the relay refused the phone's token
 * (session closed with EXPIRED_AUTH_TOKEN / UNAUTHORIZED, or a request
 * refused with EXPIRED_AUTH_TOKEN). `hadToken`: whether we sent one.
 */
export function refusalMessage(kind: AuthFailureKind, hadToken: boolean, user: string, access?: Access): string {
  switch (kind) {
    case "expired":
      return "Your sign-in expired — sign in again.";
    case "user":
      return `The relay refused your token: it does not let you sign in as "${user}".`;
    case "refused":
      if (hadToken) return "The relay refused your token — sign in again.";
      if (access?.mode === "loopback") return "This relay only lets in clients on its own machine. To use it from here, its administrator has to add users (see the README).";
      return "This relay needs you to sign in: it refused a session without a token.";
  }
}
