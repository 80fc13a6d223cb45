/**
 * The web phone's controller: sign in, the home view (presence, dial box),
 * the call screen, the connection status and error states. Owns the
 * {@link Phone} (docs/CALLS.md) and the {@link AudioEngine}.
 */

import { AddressError, isName } from "../call/address.js";
import { AudioEngine } from "../media/engine.js";
import { MicError } from "../media/types.js";
import type { CallRun } from "../phone/callrun.js";
import { Phone, type Connection, type PhoneConfig } from "../phone/phone.js";
import type { OnlineUser } from "../phone/presence.js";
import { browserTransportEnv, chooseTransport, transportLabel } from "../phone/transport_choice.js";
import { accessBanner, fetchAccess, localExpiry, login, LoginError, planSignIn, refusalMessage, type Access } from "./access.js";
import { CallView, describeEnd } from "./callview.js";
import { $, el, setAvatar, show, text } from "./dom.js";
import { draftsFromQuery, loadSettings, relayEndpoints, saveSettings, unsupportedReason } from "./settings.js";

/** How long the "call ended" screen stays before going home. */
const ENDED_SCREEN_MS = 4000;

export class App {
  phone: Phone | undefined;
  readonly audio: AudioEngine;
  private readonly callView = new CallView();
  private shown: CallRun | undefined;
  private callError: string | undefined;
  private endTimer: ReturnType<typeof setTimeout> | undefined;
  private countdown: ReturnType<typeof setInterval> | undefined;
  /** What the relay's GET /access said (`undefined`: nothing, e.g. an older relay). */
  access: Access | undefined;
  /** The GET /access under way, for a sign-in submitted before it answered. */
  private accessReady: Promise<void> = Promise.resolve();
  /** The relay field's text the last GET /access was for. */
  private accessFor = "";
  private accessSeq = 0;
  private signingIn = false;

  constructor() {
    this.audio = new AudioEngine(new URL(".", document.baseURI));
  }

  start(): void {
    const bad = unsupportedReason();
    if (bad) {
      text($("unsupported"), bad);
      ($("signin-button") as HTMLButtonElement).disabled = true;
    }
    const s = loadSettings();
    ($("f-user") as HTMLInputElement).value = s.user;
    ($("f-display") as HTMLInputElement).value = s.display;
    ($("f-relay") as HTMLInputElement).value = s.relay;
    $("signin-form").addEventListener("submit", (e) => {
      e.preventDefault();
      void this.signIn();
    });
    // Who may use the relay (and whether it takes passwords): asked now, and again for another relay.
    this.loadAccess();
    // While typing (settled for 400 ms) as well as on change: the form's layout (banner, password
    // field) then settles before the user reaches for "Sign in", not under the pointer as they click.
    let typing: ReturnType<typeof setTimeout> | undefined;
    $("f-relay").addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => this.loadAccess(), 400);
    });
    $("f-relay").addEventListener("change", () => {
      clearTimeout(typing);
      if (this.accessFor !== this.relayField()) this.loadAccess();
    });
    $("signout").addEventListener("click", () => this.signOut());
    $("dial-form").addEventListener("submit", (e) => {
      e.preventDefault();
      void this.dial(($("dial-input") as HTMLInputElement).value);
    });
    $("dial-input").addEventListener("input", () => text($("dial-error"), undefined));
    $("answer").addEventListener("click", () => void this.answer());
    $("decline").addEventListener("click", () => this.phone?.act({ action: "decline" }));
    $("hangup").addEventListener("click", () => this.phone?.act({ action: "hangup" }));
    $("mute").addEventListener("click", () => this.phone?.act({ action: "mute", on: !this.shown?.info.muted }));
    $("hold").addEventListener("click", () => this.phone?.act({ action: this.shown?.info.held ? "unhold" : "hold" }));
    $("keypad-toggle").addEventListener("click", () => {
      const pad = $("keypad");
      pad.hidden = !pad.hidden;
      $("keypad-toggle").setAttribute("aria-pressed", String(!pad.hidden));
      $("view-call").classList.toggle("keypad-open", !pad.hidden);
    });
    for (const key of document.querySelectorAll<HTMLButtonElement>(".keys button")) {
      key.addEventListener("click", () => {
        const digit = key.dataset["key"] ?? "";
        this.phone?.act({ action: "dtmf", digit });
        $("dtmf-sent").textContent += digit;
      });
    }
    $("ended-ok").addEventListener("click", () => this.home());
    $("banner-retry").addEventListener("click", () => this.phone?.retryNow());
    $("notice-close").addEventListener("click", () => show($("notice"), false));
    // Leaving the page hangs up and unregisters (best effort).
    window.addEventListener("pagehide", () => this.phone?.stop());
    // Browsers start audio only after a gesture: any tap unlocks it.
    document.addEventListener("pointerdown", () => this.audio.unlock(), { capture: true });
  }

  private relayField(): string {
    return ($("f-relay") as HTMLInputElement).value.trim();
  }

  /** Asks the chosen relay's GET /access and shapes the sign-in form (and the banner) by its answer. */
  private loadAccess(): void {
    const seq = ++this.accessSeq;
    this.accessFor = this.relayField();
    let url: string;
    try {
      const { relayUrl, certificateUrl } = relayEndpoints(this.accessFor);
      url = new URL("/access", certificateUrl ?? relayUrl).href;
    } catch {
      this.applyAccess(undefined);
      return;
    }
    this.accessReady = fetchAccess(url).then((a) => {
      if (seq === this.accessSeq) this.applyAccess(a);
    });
  }

  private applyAccess(a: Access | undefined): void {
    this.access = a;
    const form = $("signin-form");
    form.dataset["mode"] = a?.mode ?? "unknown";
    form.dataset["login"] = String(a?.login ?? false);
    // The banner: loud when anyone may sign in as anyone.
    const banner = accessBanner(a);
    const el = $("access-banner");
    if (banner) {
      el.dataset["mode"] = a?.mode ?? "";
      $("access-title").textContent = `${banner.title}: `;
      $("access-text").textContent = banner.text;
      $("access-icon").setAttribute("href", a?.mode === "loopback" ? "#i-laptop" : "#i-warn");
    }
    show(el, banner !== undefined);
    // A password when the relay takes one; the token field stays for externally issued tokens.
    show($("password-field"), a?.login === true);
    const tokenRequired = a?.mode === "tokens" && !a.login;
    show($("token-needed"), tokenRequired);
    $(tokenRequired ? "token-slot-main" : "token-slot-advanced").append($("token-field"));
    $("token-note").textContent = tokenRequired ? "" : a?.login ? "(instead of a password)" : "(optional)";
    const tokenInput = $<HTMLInputElement>("f-token");
    tokenInput.placeholder = tokenRequired ? "paste your token" : "from `moq-relay token`, if your relay asks for one";
  }

  private async signIn(): Promise<void> {
    if (this.signingIn) return;
    let user = ($("f-user") as HTMLInputElement).value.trim().toLowerCase();
    const password = ($("f-password") as HTMLInputElement).value;
    const typedToken = ($("f-token") as HTMLInputElement).value.trim();
    const relay = ($("f-relay") as HTMLInputElement).value.trim();
    if (!isName(user)) {
      return text($("signin-error"), "Use 1–64 lower-case letters, digits, '.', '_' or '-' for your name.");
    }
    let endpoints;
    try {
      endpoints = relayEndpoints(relay);
    } catch (e) {
      return text($("signin-error"), (e as Error).message);
    }
    text($("signin-error"), undefined);
    this.audio.unlock();
    const button = $<HTMLButtonElement>("signin-button");
    this.signingIn = true;
    button.disabled = true;
    let token: string | undefined;
    let tokenExpires: number | undefined;
    try {
      if (this.accessFor !== relay) this.loadAccess();
      await this.accessReady;
      const plan = planSignIn(this.access, password, typedToken);
      if (plan.kind === "error") return text($("signin-error"), plan.message);
      if (plan.kind === "token") token = plan.token;
      if (plan.kind === "login") {
        button.textContent = "Signing in…";
        const loginUrl = new URL("/login", endpoints.certificateUrl ?? endpoints.relayUrl).href;
        const got = await login(loginUrl, user, plan.password);
        token = got.token;
        tokenExpires = localExpiry(got);
        if (isName(got.user)) user = got.user;
        ($("f-password") as HTMLInputElement).value = "";
      }
    } catch (e) {
      return text($("signin-error"), e instanceof LoginError ? e.message : `Sign-in failed: ${(e as Error).message}`);
    } finally {
      this.signingIn = false;
      button.disabled = unsupportedReason() !== undefined;
      button.textContent = "Sign in";
    }
    ($("f-user") as HTMLInputElement).value = user;
    const display = ($("f-display") as HTMLInputElement).value.trim() || user;
    const s = saveSettings({ user, display, relay });
    // The token lives only in this phone's config (memory), never in storage.
    const cfg: PhoneConfig = {
      user,
      display,
      device: s.device,
      token,
      tokenExpires,
      ...endpoints,
      transport: chooseTransport(browserTransportEnv()),
      versions: draftsFromQuery(location.search),
    };
    this.phone = new Phone(cfg, this.audio, {
      connection: (c) => this.connection(c),
      presence: (u) => this.presence(u),
      call: (run) => this.call(run),
      notice: (m) => this.notice(m),
    });
    setAvatar($("me-avatar"), display, user);
    $("me-name").textContent = display === user ? user : `${display} (${user})`;
    show($("screen-signin"), false);
    show($("screen-main"), true);
    $("app").dataset["screen"] = "main";
    this.home();
    this.phone.start();
  }

  /** Back to the sign-in screen; `why` (the relay refused the sign-in) is shown there. */
  private signOut(why?: string): void {
    this.phone?.stop();
    this.phone = undefined;
    this.callView.stop();
    this.shown = undefined;
    clearInterval(this.countdown);
    show($("screen-main"), false);
    show($("screen-signin"), true);
    $("app").dataset["screen"] = "signin";
    text($("signin-error"), why);
    if (why) (this.access?.login ? $("f-password") : $("f-user")).focus();
  }

  private connection(c: Connection): void {
    if (c.state === "refused") {
      // The relay will not take this token again: sign in anew.
      const hadToken = this.phone?.cfg.token !== undefined;
      const user = this.phone?.cfg.user ?? "";
      console.warn(`the relay refused the sign-in (${c.kind}): ${c.error}`);
      return this.signOut(refusalMessage(c.kind, hadToken, user, this.access));
    }
    const status = $("me-status");
    status.dataset["state"] = c.state;
    clearInterval(this.countdown);
    const labels: Record<Connection["state"], string> = { offline: "Offline", connecting: "Connecting…", online: "Online", waiting: "Disconnected", refused: "Signed out", unavailable: "Offline" };
    $("me-status-text").textContent = c.state === "online" ? `Online · ${transportLabel(c.transport)}` : labels[c.state];
    // Why this transport (a fallback says what failed), on hover.
    const why = this.phone?.cfg.transport?.why;
    status.title = c.state === "online" && why ? `${transportLabel(c.transport)}: ${why}` : "";
    const banner = $("banner");
    if (c.state === "unavailable") {
      $("banner-text").textContent = c.error;
      show($("banner-retry"), false);
      show(banner, true);
    } else if (c.state === "waiting") {
      const update = () => {
        const s = Math.max(0, Math.ceil((c.retryAt - Date.now()) / 1000));
        $("banner-text").textContent = `Can't reach the relay: ${c.error.replace(/[.\s]+$/, "")}. Retrying${s > 0 ? ` in ${s} s` : "…"}`;
      };
      update();
      this.countdown = setInterval(update, 500);
      show($("banner-retry"), true);
      show(banner, true);
    } else if (c.state === "connecting" && c.attempt > 0) {
      $("banner-text").textContent = "Reconnecting to the relay…";
      show($("banner-retry"), false);
      show(banner, true);
    } else {
      show(banner, c.state === "connecting" ? banner.hidden === false : false);
    }
    ($("dial-button") as HTMLButtonElement).disabled = c.state !== "online";
  }

  private presence(users: OnlineUser[]): void {
    const list = $("presence");
    list.replaceChildren(
      ...users.map((u) => {
        const li = el("li");
        li.dataset["user"] = u.user;
        const av = el("div", "avatar list");
        setAvatar(av, u.display, u.user);
        const who = el("div", "who");
        who.append(el("div", "name", u.display), el("div", "id", u.display === u.user ? (u.devices > 1 ? `${u.devices} devices` : "online") : u.user));
        const call = el("button", "btn call");
        call.type = "button";
        call.innerHTML = '<svg class="icon"><use href="#i-phone"/></svg>';
        call.setAttribute("aria-label", `Call ${u.display}`);
        call.addEventListener("click", () => void this.dial(u.user));
        li.append(av, who, call);
        return li;
      }),
    );
    show($("presence-empty"), users.length === 0);
  }

  private notice(message: string): void {
    $("notice-text").textContent = message;
    show($("notice"), true);
  }

  private async dial(address: string): Promise<void> {
    const phone = this.phone;
    if (!phone || !address.trim()) return;
    text($("dial-error"), undefined);
    this.audio.unlock();
    try {
      await phone.dial(address);
      ($("dial-input") as HTMLInputElement).value = "";
    } catch (e) {
      const msg = e instanceof AddressError ? `"${address}" is not an address: use user or user/extension, e.g. bob or pbx/100.` : (e as Error).message;
      text($("dial-error"), e instanceof MicError ? msg : msg.charAt(0).toUpperCase() + msg.slice(1));
    }
  }

  private async answer(): Promise<void> {
    this.audio.unlock();
    try {
      this.callError = undefined;
      await this.phone?.answer();
    } catch (e) {
      this.callError = (e as Error).message;
      if (this.shown) this.callView.render(this.shown.info, this.callError);
    }
  }

  private call(run: CallRun): void {
    // An incoming call shows once it rings; one that ended before never does.
    if (run !== this.shown && (run.info.phase === "setup" || run.info.phase === "ended")) return;
    if (run !== this.shown) {
      this.callError = undefined;
      $("dtmf-sent").textContent = "";
      show($("keypad"), false);
      $("keypad-toggle").setAttribute("aria-pressed", "false");
      $("view-call").classList.remove("keypad-open");
    }
    this.shown = run;
    clearTimeout(this.endTimer);
    show($("view-home"), false);
    show($("view-call"), true);
    this.callView.render(run.info, this.callError);
    if (run.info.phase === "ended") {
      const why = run.info.ended ? describeEnd(run.info.ended, run.info) : "";
      const last = $("last-call");
      last.textContent = `Last call: ${run.info.peerDisplay} — ${why}`;
      last.dataset["endReason"] = run.info.ended?.reason ?? "";
      show(last, true);
      this.endTimer = setTimeout(() => this.home(), ENDED_SCREEN_MS);
    }
  }

  /** Back to the home view (unless a call is going on). */
  private home(): void {
    clearTimeout(this.endTimer);
    const cur = this.phone?.call;
    if (cur && !cur.isOver) return this.call(cur);
    this.callView.stop();
    show($("view-call"), false);
    show($("view-home"), true);
  }
}
