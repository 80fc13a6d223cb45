/**
 * Sign-in settings kept in localStorage (never the token), the device id
 * (per tab, in sessionStorage: two tabs are two devices, CALLS.md §1), the
 * relay's addresses, and what this browser lacks for the phone.
 */

import { AudioEngine } from "../media/engine.js";
import type { Version } from "../moq/control.js";

const KEY = "moq-phone";

export interface Settings {
  user: string;
  display: string;
  /** Relay URL typed under "Advanced"; empty = the relay serving this page. */
  relay: string;
  /** This tab's device id (CALLS.md §1): random, kept across reloads of the tab. */
  device: string;
}

/** The device id of this tab, made once (two tabs signed in as one user are two devices). */
function tabDevice(): string {
  try {
    const d = sessionStorage.getItem(`${KEY}.device`);
    if (d && /^[a-z0-9._-]{1,64}$/.test(d)) return d;
  } catch {
    /* storage off: a new id per page load */
  }
  const b = new Uint8Array(4);
  crypto.getRandomValues(b);
  const d = "web-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  try {
    sessionStorage.setItem(`${KEY}.device`, d);
  } catch {
    /* not kept */
  }
  return d;
}

export function loadSettings(): Settings {
  let s: Partial<Settings> = {};
  try {
    s = JSON.parse(localStorage.getItem(KEY) ?? "{}") as Partial<Settings>;
  } catch {
    /* private mode or corrupt: defaults */
  }
  return { user: s.user ?? "", display: s.display ?? "", relay: s.relay ?? "", device: tabDevice() };
}

export function saveSettings(s: Omit<Settings, "device">): Settings {
  try {
    localStorage.setItem(KEY, JSON.stringify(s));
  } catch {
    /* not persisted */
  }
  return { ...s, device: tabDevice() };
}

/**
 * The relay's WebTransport URL and certificate-hash URL. By default the
 * relay that served this page: it listens for WebTransport on the same port
 * number (UDP) and publishes its development certificate's SHA-256 at
 * `/certificate.sha256`. A `?relay=` query parameter or the "Relay" field
 * picks another one.
 */
export function relayEndpoints(typed: string): { relayUrl: string; certificateUrl: string | undefined } {
  const param = new URLSearchParams(location.search).get("relay") ?? "";
  const chosen = typed || param;
  if (!chosen) {
    const port = location.port || (location.protocol === "https:" ? "443" : "80");
    return { relayUrl: `https://${location.hostname}:${port}/`, certificateUrl: new URL("/certificate.sha256", location.href).href };
  }
  let u: URL;
  try {
    u = new URL(chosen.includes("://") ? chosen : `https://${chosen}`);
  } catch {
    throw new Error(`"${chosen}" is not a relay URL: use https://host:port/`);
  }
  if (u.protocol !== "https:") throw new Error("The relay URL must start with https:// (WebTransport)");
  // The relay serves its certificate hash over plain HTTP on the same port.
  return { relayUrl: u.href, certificateUrl: `http://${u.host}/certificate.sha256` };
}

/** Why this browser cannot run the phone, or `undefined` when it can. */
export function unsupportedReason(): string | undefined {
  if (!window.isSecureContext) return "This page must be opened over https:// or on localhost: browsers only allow WebTransport and the microphone on secure pages.";
  // Without WebTransport the phone falls back to WebRTC (transport_choice.ts), through the relay's gateway.
  if (typeof WebTransport !== "function" && typeof RTCPeerConnection !== "function") return "This browser has neither WebTransport nor WebRTC. Use a recent Chrome, Edge or Firefox.";
  if (!AudioEngine.supported()) return "This browser lacks AudioWorklet or WebAssembly. Use a recent Chrome, Edge or Firefox.";
  return undefined;
}

/**
 * The drafts the page offers: `?draft=22` or `?draft=18` pins one (to try a
 * relay at a given draft, docs/DRAFT22.md); anything else offers both and
 * the relay picks.
 */
export function draftsFromQuery(search: string): readonly Version[] | undefined {
  const d = new URLSearchParams(search).get("draft");
  return d === "22" ? [22] : d === "18" ? [18] : undefined;
}
