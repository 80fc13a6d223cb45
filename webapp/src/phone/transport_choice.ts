/**
 * Which transport the phone's MoQ session runs over (issue 14,
 * docs/design/webrtc.md §4 "Choice and fallback"), as pure functions:
 *
 * - `?transport=webrtc|webtransport` forces one;
 * - otherwise (Auto) WebRTC when the browser has no WebTransport, or is
 *   WebKit — Safari (`Safari/` and `Version/` without Chrome, Chromium, Edg
 *   or OPR), whose WebTransport stalls (WebKit bug 319818), or any iOS
 *   browser (CriOS, FxiOS… are WebKit too);
 * - else WebTransport, and WebRTC after a WebTransport failure that is not
 *   the relay refusing our sign-in (that would fail the same way) and not
 *   the relay being unreachable (so would the gateway be), or after a stall;
 * - a fallback sticks for the tab (sessionStorage), so reconnects skip the
 *   dead path.
 */

import type { TransportKind } from "../session/transport.js";

export type TransportPref = "auto" | TransportKind;

/** What the choice depends on, read from the page by {@link browserTransportEnv}. */
export interface TransportEnv {
  /** The `transport` query parameter, if any. */
  param: string | null;
  userAgent: string;
  hasWebTransport: boolean;
  hasRtcPeerConnection: boolean;
  /** What an earlier fallback in this tab stored ({@link STICKY_KEY}). */
  sticky: string | null;
}

export interface TransportChoice {
  kind: TransportKind;
  /** Forced by `?transport=`: never falls back. */
  forced: boolean;
  /** WebRTC after WebTransport failed (now, or earlier in this tab): WebTransport is still worth trying where the relay has no gateway. */
  fallback?: true;
  /** Why, in words for the user and the log. */
  why: string;
}

/** The sessionStorage key of a fallback that sticks for the tab. */
export const STICKY_KEY = "moq-phone.transport";

/** `?transport=` as a preference; anything else is Auto. */
export function parsePref(v: string | null | undefined): TransportPref {
  const t = (v ?? "").trim().toLowerCase();
  return t === "webrtc" || t === "webtransport" ? t : "auto";
}

/** Any iOS / iPadOS browser: all of them are WebKit underneath. */
export function isIosUA(ua: string): boolean {
  return /\b(iPhone|iPad|iPod)\b/.test(ua) || /\b(CriOS|FxiOS|EdgiOS|OPiOS|GSA)\//.test(ua);
}

/** Safari proper, or any browser on iOS: WebKit, whose WebTransport we do not trust. */
export function isWebKitUA(ua: string): boolean {
  if (isIosUA(ua)) return true;
  return /\bSafari\//.test(ua) && /\bVersion\//.test(ua) && !/\b(Chrome|Chromium|Edg|OPR)\//.test(ua);
}

export function chooseTransport(env: TransportEnv): TransportChoice {
  const pref = parsePref(env.param);
  if (pref === "webrtc") return { kind: "webrtc", forced: true, why: "?transport=webrtc asks for WebRTC" };
  if (pref === "webtransport") return { kind: "webtransport", forced: true, why: "?transport=webtransport asks for WebTransport" };
  if (!env.hasRtcPeerConnection) return { kind: "webtransport", forced: false, why: "this browser has no WebRTC" };
  if (!env.hasWebTransport) return { kind: "webrtc", forced: false, why: "this browser has no WebTransport" };
  if (isWebKitUA(env.userAgent)) return { kind: "webrtc", forced: false, why: "WebTransport in Safari and on iOS stalls" };
  if (parsePref(env.sticky) === "webrtc") return { kind: "webrtc", forced: false, fallback: true, why: "WebTransport failed earlier in this tab" };
  return { kind: "webtransport", forced: false, why: "this browser has WebTransport" };
}

/** How a WebTransport session attempt or session ended, for {@link shouldFallBack}. */
export type TransportFailure =
  /** The relay refused our sign-in (UNAUTHORIZED, EXPIRED_AUTH_TOKEN…): the gateway would too. */
  | "auth"
  /** Not even the relay's HTTP side answered: the gateway would not either. */
  | "unreachable"
  /** The HTTP side answered but the WebTransport session did not open or did not finish SETUP. */
  | "handshake"
  /** An open session went silent: its heartbeat missed twice, or a stream took over 2 s to open. */
  | "stall"
  /** Anything else (signed out, GOAWAY, the relay closing the session normally…). */
  | "other";

/** Whether to switch from WebTransport to WebRTC after `failure`. */
export function shouldFallBack(choice: TransportChoice, failure: TransportFailure, hasRtcPeerConnection: boolean): boolean {
  if (choice.kind !== "webtransport" || choice.forced || !hasRtcPeerConnection) return false;
  return failure === "handshake" || failure === "stall";
}

/** After falling back: WebRTC for the rest of this tab's life. */
export function fallenBack(failure: TransportFailure): TransportChoice {
  return { kind: "webrtc", forced: false, fallback: true, why: failure === "stall" ? "the WebTransport session stalled" : "WebTransport did not connect" };
}

/** After a fallback found no WebRTC gateway on the relay: WebTransport again, the only way there. */
export function noGateway(): TransportChoice {
  return { kind: "webtransport", forced: false, why: "this relay has no WebRTC gateway" };
}

/** Heartbeat misses of one open session in a row that count as a stall. */
export const STALL_MISSES = 2;
/** A stream open slower than this counts as a stall. */
export const STALL_STREAM_OPEN_MS = 2000;

/** The page's inputs to {@link chooseTransport}. */
export function browserTransportEnv(): TransportEnv {
  let sticky: string | null = null;
  try {
    sticky = sessionStorage.getItem(STICKY_KEY);
  } catch {
    /* storage off */
  }
  return {
    param: new URLSearchParams(location.search).get("transport"),
    userAgent: navigator.userAgent,
    hasWebTransport: typeof WebTransport === "function",
    hasRtcPeerConnection: typeof RTCPeerConnection === "function",
    sticky,
  };
}

/** Keeps a fallback for the tab, or (`undefined`) forgets it. */
export function rememberFallback(choice: TransportChoice | undefined): void {
  try {
    if (!choice) sessionStorage.removeItem(STICKY_KEY);
    else if (!choice.forced && choice.kind === "webrtc") sessionStorage.setItem(STICKY_KEY, "webrtc");
  } catch {
    /* not kept */
  }
}

/** The transport's name as the UI shows it. */
export function transportLabel(kind: TransportKind): string {
  return kind === "webrtc" ? "WebRTC" : "WebTransport";
}
