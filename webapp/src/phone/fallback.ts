/**
 * When a WebTransport phone switches to WebRTC at run time (issue 14,
 * docs/design/webrtc.md §4 "Choice and fallback"), without I/O: the phone
 * (`phone.ts`) reports what it saw — how far an attempt got, heartbeats
 * answered or missed, a slow stream open — and asks {@link FallbackJudge}.
 *
 * - A failed attempt is classified by {@link classifyFailure}: the relay
 *   refusing our sign-in is `auth`; not even its HTTP side answering
 *   (the certificate fetch) is `unreachable`; the WebTransport session not
 *   opening after that is `handshake`; a session that opened but stalled —
 *   no SETUP for {@link SETUP_STALL_MS}, a registration request unanswered,
 *   or as below — is `stall`; anything else (the relay closing the session,
 *   even before its SETUP; GOAWAY…) is `other`.
 * - A stall is {@link STALL_MISSES} heartbeat misses (each still drops its
 *   session at once, as the liveness check always did, so they are misses
 *   of successive sessions) without {@link HEALTHY_HEARTBEATS} answered in a
 *   row in between, or a stream open slower than {@link STALL_STREAM_OPEN_MS}
 *   ({@link watchStreamOpens}).
 * - Handshake failures and stalls count only while the relay's HTTP side
 *   answers (the phone probes it): a relay that went away explains them,
 *   and its gateway would not answer either.
 * - Once WebTransport has opened a session in this phone's life, one failed
 *   handshake is more likely the relay restarting (its HTTP side may
 *   outlive its QUIC endpoint by a moment) than WebTransport being blocked:
 *   then it takes {@link HANDSHAKE_FAILURES} in a row.
 */

import type { MoqTransport } from "../session/transport.js";
import { STALL_MISSES, STALL_STREAM_OPEN_MS, shouldFallBack, type TransportChoice, type TransportFailure } from "./transport_choice.js";

/** Handshake failures in a row (HTTP answering) that make a fallback once WebTransport had worked in this phone. */
export const HANDSHAKE_FAILURES = 3;

/** Heartbeats answered in a row (30 s) after which earlier misses no longer count toward a stall. */
export const HEALTHY_HEARTBEATS = 30;

/** An open WebTransport session whose SETUP has not come this long (and then failed) stalled. */
export const SETUP_STALL_MS = 2500;

/**
 * How far a connection attempt got: the relay's HTTP side (certificate
 * fetch), the transport's handshake (`ready`), the SETUP exchange, or a
 * session (registering, or open).
 */
export type Reached = "http" | "handshake" | "setup" | "session";

/** How far the current attempt got, and whether its session stalled. */
export interface Progress {
  reached: Reached;
  /** The session stalled: no SETUP in time, a request unanswered, heartbeat misses, or a slow stream open. */
  stalled: boolean;
}

/** What the phone saw of a failed attempt or an ended session. */
export interface Outcome extends Progress {
  /** The relay refused our sign-in (a session close or REQUEST_ERROR code of auth.ts). */
  auth: boolean;
}

export function classifyFailure(o: Outcome): TransportFailure {
  if (o.auth) return "auth";
  if (o.reached === "http") return "unreachable";
  if (o.reached === "handshake") return "handshake";
  return o.stalled ? "stall" : "other";
}

/** Whether `f` needs the relay's HTTP side to answer before it counts (else it is `unreachable`). */
export function needsHttpProbe(f: TransportFailure): boolean {
  return f === "handshake" || f === "stall";
}

/** One phone's record of how WebTransport has fared, and its decisions. */
export class FallbackJudge {
  private worked = false;
  private handshakes = 0;
  private misses = 0;
  private streak = 0;
  /** The relay has no WebRTC gateway: nothing to fall back to. */
  private noGateway = false;

  constructor(private readonly hasRtcPeerConnection: boolean) {}

  /** Whether `choice` could fall back at all (Auto, on WebTransport, with WebRTC in the browser): else nothing need be probed. */
  mayFallBack(choice: TransportChoice | undefined): boolean {
    return !this.noGateway && choice !== undefined && shouldFallBack(choice, "handshake", this.hasRtcPeerConnection);
  }

  /** A fallback found no gateway on the relay: never again for this phone. */
  gatewayMissing(): void {
    this.noGateway = true;
  }

  /** A WebTransport session finished SETUP. */
  opened(): void {
    this.worked = true;
    this.handshakes = 0;
  }

  /** The relay answered a heartbeat. */
  answered(): void {
    this.streak += 1;
    if (this.streak >= HEALTHY_HEARTBEATS) this.misses = 0;
  }

  /** A heartbeat went unanswered (its session is being dropped): `true` when that makes a stall. */
  missed(): boolean {
    this.streak = 0;
    this.misses += 1;
    return this.misses >= STALL_MISSES;
  }

  /** Whether `failure` (after the HTTP probe) of a session over `choice` means: switch to WebRTC now. */
  decide(choice: TransportChoice | undefined, failure: TransportFailure): boolean {
    if (failure === "unreachable") {
      // The relay was away: nothing against WebTransport.
      this.handshakes = 0;
      this.misses = 0;
    }
    if (failure === "handshake") {
      this.handshakes += 1;
      if (this.worked && this.handshakes < HANDSHAKE_FAILURES) return false;
    }
    return !this.noGateway && choice !== undefined && shouldFallBack(choice, failure, this.hasRtcPeerConnection);
  }
}

/**
 * Makes `t` call `slow` when opening a stream takes longer than `ms` (the
 * open may still complete). Patches `t`'s two open methods in place and
 * returns it.
 */
export function watchStreamOpens<T extends MoqTransport>(t: T, slow: () => void, ms = STALL_STREAM_OPEN_MS): T {
  const timed = <R>(open: () => Promise<R>): Promise<R> => {
    const timer = setTimeout(slow, ms);
    let p: Promise<R>;
    try {
      p = open();
    } catch (e) {
      clearTimeout(timer);
      throw e;
    }
    return p.finally(() => clearTimeout(timer));
  };
  const uni = t.createUnidirectionalStream.bind(t);
  const bidi = t.createBidirectionalStream.bind(t);
  t.createUnidirectionalStream = (o) => timed(() => uni(o));
  t.createBidirectionalStream = (o) => timed(() => bidi(o));
  return t;
}
