/**
 * Puts a peer's `events` back in order (docs/CALLS.md §5), sans-IO. Mirrors
 * `follow_events` of pub-sub-audio's phone/driver.rs.
 *
 * Events are one object per group, groups numbered from 0, so what is
 * missing is visible. Nothing here depends on a relay's cache:
 *
 * - events published before our SUBSCRIBE are not sent on it (draft-18
 *   §10.7: "Objects from the past are retrieved using FETCH"); SUBSCRIBE_OK
 *   carries the Joining Location (LARGEST_OBJECT, §10.2.11) when anything was
 *   published, and an Absolute Joining FETCH from group 0 (§10.12.2) returns
 *   everything up to it;
 * - groups may arrive out of order (§2.3.1): a hole is waited for
 *   ({@link GAP_WAIT_MS}), then asked for once with a Standalone FETCH
 *   (§10.12.1), and skipped once it is {@link MAX_HOLE_MS} old; a FETCH
 *   that comes back without it does not skip it sooner (the relay answers
 *   from what it has, §9.1, and the object may still be on its way — a
 *   WebRTC page's stream that had to be opened again came 300+ ms late
 *   under load); only the Joining FETCH, the one source of what it
 *   covers, skips its hole at once;
 * - with nothing arriving at all and no Joining Location, everything is
 *   asked for once after {@link QUIET_WAIT_MS}.
 *
 * Each event is delivered once, in group order.
 */

export const GAP_WAIT_MS = 300;
export const MAX_HOLE_MS = 1000;
export const QUIET_WAIT_MS = 500;

/** What the sequencer wants done. */
export interface SequencerIo {
  deliver(group: number, payload: Uint8Array): void;
  /** Joining FETCH from group 0 of the subscription. */
  fetchJoining(): void;
  /** Standalone FETCH of groups `from`..`to` (exclusive). */
  fetchRange(from: number, to: number): void;
  /** Groups `from`..`to` (exclusive) were given up on (Rust's `Output::Skipped`): for the log. */
  skipped?(from: number, to: number): void;
}

/** A range far beyond any call's events: "everything". */
export const EVERYTHING = 2 ** 32;

export class EventSequencer {
  private next = 0;
  private readonly pending = new Map<number, Uint8Array>();
  private knownEnd: number;
  private inFlight: { from: number; to: number; joining: boolean } | undefined;
  private holeSince: number | undefined;
  /** The Joining FETCH came back without the hole: nothing else can fill it. */
  private holeFetched = false;
  /** A Standalone FETCH covering the hole was asked for (once per hole). */
  private holeAsked = false;
  private quietFetched = false;
  private readonly started: number;
  private readonly joining: boolean;

  /** `joiningGroup`: the group of SUBSCRIBE_OK's LARGEST_OBJECT, if any. */
  constructor(
    private readonly io: SequencerIo,
    joiningGroup: number | undefined,
    now: number,
  ) {
    this.started = now;
    this.joining = joiningGroup !== undefined;
    this.knownEnd = joiningGroup === undefined ? 0 : joiningGroup + 1;
    if (joiningGroup !== undefined) {
      this.inFlight = { from: 0, to: joiningGroup + 1, joining: true };
      io.fetchJoining();
    }
  }

  /** The next group to deliver. */
  get expected(): number {
    return this.next;
  }

  /** An object of group `group` arrived on the subscription. */
  object(group: number, payload: Uint8Array, now: number): number | undefined {
    if (group >= this.next) {
      this.knownEnd = Math.max(this.knownEnd, group);
      if (!this.pending.has(group)) this.pending.set(group, payload);
    }
    return this.step(now);
  }

  /** A FETCH of groups `from`..`to` came back (possibly failed: no objects). */
  fetched(from: number, to: number, objects: ReadonlyArray<[number, Uint8Array]>, now: number): number | undefined {
    const joining = this.inFlight?.joining === true;
    this.inFlight = undefined;
    for (const [g, p] of objects) if (g >= this.next && !this.pending.has(g)) this.pending.set(g, p);
    if (this.holeSince !== undefined && from <= this.next && this.next < to) {
      if (joining) this.holeFetched = true;
      else this.holeAsked = true;
    }
    return this.step(now);
  }

  /** Delivers what it can, skips or asks for holes; returns when to call again. */
  step(now: number): number | undefined {
    let hole = false;
    let holeEnd = 0;
    let firstPending: number | undefined;
    let joiningPending = false;
    for (;;) {
      for (let p = this.pending.get(this.next); p !== undefined; p = this.pending.get(this.next)) {
        this.pending.delete(this.next);
        this.io.deliver(this.next, p);
        this.next++;
        this.holeSince = undefined;
        this.holeFetched = false;
        this.holeAsked = false;
      }
      firstPending = this.pending.size > 0 ? Math.min(...this.pending.keys()) : undefined;
      holeEnd = Math.max(firstPending ?? 0, this.knownEnd);
      hole = holeEnd > this.next;
      if (hole && this.holeSince === undefined) this.holeSince = now;
      // The Joining FETCH is the only source of what it covers: wait for it.
      joiningPending = this.inFlight !== undefined && this.inFlight.joining && this.next < this.inFlight.to;
      const tooLong = this.holeSince !== undefined && now >= this.holeSince + MAX_HOLE_MS && !joiningPending;
      if (hole && (this.holeFetched || tooLong)) {
        const to = firstPending ?? holeEnd;
        this.io.skipped?.(this.next, to);
        this.next = to;
        this.holeSince = undefined;
        this.holeFetched = false;
        this.holeAsked = false;
        continue;
      }
      break;
    }
    const quiet = !hole && this.next === 0 && !this.joining && !this.quietFetched;
    const ask = this.inFlight === undefined && ((hole && !this.holeAsked) || quiet);
    let wake: number | undefined;
    if (hole && this.holeSince !== undefined && ask) wake = this.holeSince + GAP_WAIT_MS;
    else if (hole && this.holeSince !== undefined && !joiningPending) wake = this.holeSince + MAX_HOLE_MS;
    else if (quiet && ask) wake = this.started + QUIET_WAIT_MS;
    if (ask && wake !== undefined && now >= wake) {
      if (hole) {
        this.holeAsked = true;
        this.inFlight = { from: this.next, to: holeEnd, joining: false };
        this.io.fetchRange(this.next, holeEnd);
      } else {
        this.quietFetched = true;
        this.inFlight = { from: 0, to: EVERYTHING, joining: false };
        this.io.fetchRange(0, EVERYTHING);
      }
      return this.step(now);
    }
    return wake;
  }
}
