/**
 * Users, addresses and the namespaces of a call (docs/CALLS.md §1–§2).
 * Mirrors pub-sub-audio's `call/address.rs`; namespaces are lists of fields
 * (strings, UTF-8 on the wire), every one starting with `moq-phone`, `v1`.
 */

/** First two fields of every moq-phone namespace. */
export const ROOT = ["moq-phone", "v1"] as const;

/** Track names (CALLS.md §3, §6). */
export const Track = {
  EVENTS: "events",
  AUDIO: "audio",
  CATALOG: "catalog",
  /** In a device's registration namespace: `{"display": …}` per change. */
  PROFILE: "profile",
} as const;

export class AddressError extends Error {
  constructor(
    readonly kind: "BadName" | "BadAddress",
    readonly input: string,
  ) {
    super(
      kind === "BadName"
        ? `'${input}' is not a valid name: use 1-64 characters of a-z, 0-9, '.', '_' or '-'`
        : `'${input}' is not an address: use user or user/extension`,
    );
    this.name = "AddressError";
  }
}

const NAME = /^[a-z0-9._-]{1,64}$/;

/** True for a valid user, device or extension name (CALLS.md §1). */
export function isName(s: string): boolean {
  return NAME.test(s);
}

/** Throws {@link AddressError} unless `s` is a valid name. */
export function checkName(s: string): void {
  if (!isName(s)) throw new AddressError("BadName", s);
}

/** A callee: a user, or an extension behind a gateway user (`pbx/100`). */
export interface Address {
  user: string;
  ext: string | undefined;
}

export function parseAddress(s: string): Address {
  const parts = s.split("/");
  if (parts.length > 2) throw new AddressError("BadAddress", s);
  const user = parts[0] as string;
  const ext = parts[1];
  checkName(user);
  if (ext !== undefined) checkName(ext);
  return { user, ext };
}

export function formatAddress(a: Address): string {
  return a.ext === undefined ? a.user : `${a.user}/${a.ext}`;
}

/** A fresh session id (CALLS.md §1): 16 random bytes, lower-case hex. */
export function newSid(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** True for a well-formed sid. */
export function isSid(s: string): boolean {
  return /^[0-9a-f]{32}$/.test(s);
}

/** Namespace tuples of CALLS.md §2, as lists of fields. */
export const Namespaces = {
  /** `…/users/<user>/<device>`: a registered device. */
  device: (user: string, device: string): string[] => [...ROOT, "users", user, device],
  /** `…/users`: the presence prefix. */
  presence: (): string[] => [...ROOT, "users"],
  /** `…/ring/<user>`: where a user's devices watch for calls. */
  ringPrefix: (user: string): string[] => [...ROOT, "ring", user],
  /** `…/ring/<callee>/<sid>/<caller>`: the caller's namespace. */
  caller: (callee: string, sid: string, caller: string): string[] => [...ROOT, "ring", callee, sid, caller],
  /** `…/call/<sid>`: where the caller watches callee devices. */
  callPrefix: (sid: string): string[] => [...ROOT, "call", sid],
  /** `…/call/<sid>/<callee>/<device>`: a callee device's namespace. */
  callee: (sid: string, callee: string, device: string): string[] => [...ROOT, "call", sid, callee, device],
} as const;

/** A namespace as the `/`-joined path used in the catalog (`moq-phone/v1/ring/…`). */
export function namespacePath(ns: readonly string[]): string {
  return ns.join("/");
}

/**
 * Reads a two-field NAMESPACE / NAMESPACE_DONE suffix (§10.16) under one of
 * the prefixes above: `<user>/<device>` under presence, `<sid>/<caller>`
 * under a ring prefix, `<callee>/<device>` under a call prefix. `undefined`
 * when the suffix does not have that shape.
 */
export function parseSuffix(suffix: readonly string[]): [string, string] | undefined {
  if (suffix.length !== 2) return undefined;
  const [a, b] = suffix as [string, string];
  return isName(a) && isName(b) ? [a, b] : undefined;
}
