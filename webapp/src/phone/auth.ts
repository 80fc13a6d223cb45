/**
 * When the relay stops accepting this phone's sign-in (issue 13): which
 * session close codes (draft-18 §3.5) and REQUEST_ERROR codes (§10.6) mean
 * "sign in again" rather than "the network failed, retry". A phone that gets
 * one stops reconnecting; retrying with the same token cannot succeed.
 */

import { RequestErrorCode, SessionError } from "../moq/control.js";

/**
 * - `expired`: the token's time is up (EXPIRED_AUTH_TOKEN);
 * - `refused`: the relay does not accept the token, or wants one and got
 *   none (UNAUTHORIZED, MALFORMED_AUTH_TOKEN at SETUP);
 * - `user`: the token is good but not for the name we registered under
 *   (REQUEST_ERROR UNAUTHORIZED to our registration).
 */
export type AuthFailureKind = "expired" | "refused" | "user";

/** Thrown inside the phone when the relay refused our sign-in. */
export class AuthFailed extends Error {
  constructor(
    readonly kind: AuthFailureKind,
    detail: string,
  ) {
    super(detail);
    this.name = "AuthFailed";
  }
}

/** What a session close code says about our sign-in, if anything. */
export function sessionAuthFailure(code: number | undefined): AuthFailureKind | undefined {
  switch (code) {
    case SessionError.EXPIRED_AUTH_TOKEN:
      return "expired";
    case SessionError.UNAUTHORIZED:
    case SessionError.MALFORMED_AUTH_TOKEN:
    case SessionError.UNKNOWN_AUTH_TOKEN_ALIAS:
      return "refused";
    default:
      return undefined;
  }
}

/**
 * What a REQUEST_ERROR code says about our sign-in. EXPIRED_AUTH_TOKEN on
 * any request means the session's token ran out; UNAUTHORIZED only counts
 * for our own registration (elsewhere it refuses one request, e.g. a call we
 * are not in, and the session goes on).
 */
export function requestAuthFailure(code: number | undefined, registration: boolean): AuthFailureKind | undefined {
  if (code === RequestErrorCode.EXPIRED_AUTH_TOKEN) return "expired";
  if (registration && code === RequestErrorCode.MALFORMED_AUTH_TOKEN) return "refused";
  if (registration && code === RequestErrorCode.UNAUTHORIZED) return "user";
  return undefined;
}
