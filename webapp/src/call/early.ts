/**
 * Audio heard before the call is established with its sender
 * (docs/CALLS.md §6, "Before the answer"). The caller subscribes to the
 * `audio` of every ringing device and a device sends from its own
 * `answer`, so frames can overtake the `answer` event or come from a device
 * that loses the race. Only the device the call is established with is
 * played; until then the newest {@link KEPT_FRAMES} of each sender are kept
 * and the winner's are played first, in order. Sans-IO and generic over the
 * frame; the same rule as pub-sub-audio's `call/early.rs`.
 */

/** Frames kept per sender before the answer: 100 ms of 20 ms frames (CALLS.md §7). */
export const KEPT_FRAMES = 5;

/** A sender: the callee device a caller hears, or `null` (the caller, at a callee). */
export type Sender = string | null;

export class EarlyAudio<T> {
  /** The sender the call is established with, once it is (`undefined` before). */
  private peer: Sender | undefined = undefined;
  private readonly kept = new Map<Sender, T[]>();

  /**
   * A frame from `sender`: returned when it is to be played now (the
   * established peer); otherwise kept (before establishment, the oldest
   * beyond KEPT_FRAMES dropped) or dropped (another sender after it).
   */
  frame(sender: Sender, frame: T): T | undefined {
    if (this.peer !== undefined) return this.peer === sender ? frame : undefined;
    let q = this.kept.get(sender);
    if (!q) this.kept.set(sender, (q = []));
    if (q.length === KEPT_FRAMES) q.shift();
    q.push(frame);
    return undefined;
  }

  /** The call is established with `sender`: its kept frames, oldest first; every other sender's are dropped. */
  established(sender: Sender): T[] {
    this.peer = sender;
    const mine = this.kept.get(sender) ?? [];
    this.kept.clear();
    return mine;
  }

  /** Whether `sender` is the established peer. */
  isPeer(sender: Sender): boolean {
    return this.peer !== undefined && this.peer === sender;
  }
}
