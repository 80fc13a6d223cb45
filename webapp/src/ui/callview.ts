/**
 * The call screen: incoming (caller name, Answer / Decline), outgoing
 * (calling / ringing, Cancel), in call (duration, mute, hold, keypad, hang
 * up) and ended (why, docs/CALLS.md §4 outcomes). Pure rendering of a
 * {@link CallInfo}; the controller wires the buttons.
 */

import type { EndReason } from "../call/machine.js";
import type { CallInfo } from "../phone/callrun.js";
import { $, duration, setAvatar, show, text } from "./dom.js";

/** Why a call ended, in words, from this side's point of view. */
export function describeEnd(r: EndReason, info: Pick<CallInfo, "direction" | "peerDisplay">): string {
  const peer = info.peerDisplay;
  const out = info.direction === "outgoing";
  switch (r.reason) {
    case "hangup":
      return r.by_peer ? `${peer} hung up` : "You hung up";
    case "busy":
      return out ? `${peer} is busy` : "You were busy";
    case "declined":
      return out ? `${peer} declined the call` : "You declined the call";
    case "no-answer":
      return out ? `${peer} did not answer` : "Not answered";
    case "offline":
      return `${peer} is not online`;
    case "cancelled":
      return out ? "You cancelled the call" : `Missed call: ${peer} hung up before you answered`;
    case "answered-elsewhere":
      return "Answered on another device";
    case "lost-peer":
      return `The connection to ${peer} was lost`;
    case "glare":
      return `You and ${peer} called each other at once; taking ${peer}'s call`;
  }
}

function stateLine(info: CallInfo): string {
  switch (info.phase) {
    case "setup":
    case "calling":
      return "Calling…";
    case "ringing":
      return info.direction === "incoming" ? "Incoming call" : "Ringing…";
    case "connecting":
      return "Connecting…";
    case "established":
      return info.held ? "On hold" : "In call";
    case "ended":
      return "Call ended";
  }
}

export class CallView {
  private timer: ReturnType<typeof setInterval> | undefined;
  private info: CallInfo | undefined;

  /** Shows `info`; `error` is a local problem (e.g. the microphone). */
  render(info: CallInfo, error: string | undefined): void {
    this.info = info;
    const view = $("view-call");
    view.dataset["phase"] = info.phase;
    view.dataset["direction"] = info.direction;
    view.dataset["endReason"] = info.ended?.reason ?? "";
    view.classList.toggle("ringing", info.phase === "ringing" || info.phase === "calling");
    $("call-state").textContent = stateLine(info);
    setAvatar($("call-avatar"), info.peerDisplay || info.peer, info.peer.split("/")[0]);
    $("call-peer").textContent = info.peerDisplay || info.peer;
    text($("call-peer-id"), info.peerDisplay && info.peerDisplay !== info.peer ? info.peer : undefined);
    const ended = info.phase === "ended";
    const inCall = info.phase === "established";
    const incomingRinging = info.direction === "incoming" && info.phase === "ringing";
    show($("incoming-actions"), incomingRinging);
    show($("incall-actions"), inCall);
    show($("hangup-actions"), !ended && !incomingRinging);
    $("hangup-label").textContent = inCall ? "Hang up" : "Cancel";
    show($("ended-actions"), ended);
    text($("call-error"), error);
    const mute = $("mute");
    mute.setAttribute("aria-pressed", String(info.muted));
    $("mute-label").textContent = info.muted ? "Unmute" : "Mute";
    $("mute-icon").setAttribute("href", info.muted ? "#i-mic-off" : "#i-mic");
    $("hold").setAttribute("aria-pressed", String(info.held));
    $("hold-label").textContent = info.held ? "Resume" : "Hold";
    const flags = $("call-flags");
    flags.replaceChildren();
    const flag = (t: string, warn = false, id?: string) => {
      const f = document.createElement("span");
      f.className = warn ? "flag warn" : "flag";
      f.textContent = t;
      if (id) f.dataset["flag"] = id;
      flags.append(f);
    };
    if (ended && info.ended) flag(describeEnd(info.ended, info), true, "end");
    else {
      if (info.muted) flag("Muted", false, "muted");
      if (info.held) flag("On hold", true, "held");
      if (info.peerHeld) flag(`${info.peerDisplay} put you on hold`, true, "peer-held");
      if (info.dtmfIn) flag(`Keys from ${info.peerDisplay}: ${info.dtmfIn}`, false, "dtmf-in");
    }
    this.tick();
    clearInterval(this.timer);
    if (inCall) this.timer = setInterval(() => this.tick(), 500);
  }

  private tick(): void {
    const info = this.info;
    const t = $("call-timer");
    if (info?.phase === "established" && info.establishedAt !== undefined) t.textContent = duration(Date.now() - info.establishedAt);
    else if (info?.phase !== "ended") t.textContent = "";
  }

  /** Leaves the call screen. */
  stop(): void {
    clearInterval(this.timer);
    this.info = undefined;
  }
}
