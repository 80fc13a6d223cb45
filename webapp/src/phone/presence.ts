/**
 * Who is online (docs/CALLS.md §3): a SUBSCRIBE_NAMESPACE of `…/users`
 * lists `<user>/<device>` for every registered device (NAMESPACE) and says
 * when one leaves (NAMESPACE_DONE). A user is online while at least one of
 * its devices is. Each device's `profile` track carries its display name.
 */

import { Namespaces, Track, parseSuffix } from "../call/address.js";
import type { MoqSession } from "../session/session.js";
import { fetchObjects, subscribe, subscribeNamespace, type NamespaceWatch, type Subscription } from "../session/subscriber.js";

export interface OnlineUser {
  user: string;
  /** Display name from a device's `profile`, or the user name. */
  display: string;
  devices: number;
}

interface Device {
  display: string | undefined;
  profile: Subscription | undefined;
  gone: boolean;
}

export class Presence {
  private readonly users = new Map<string, Map<string, Device>>();
  private watch: NamespaceWatch | undefined;

  constructor(
    private readonly session: MoqSession,
    private readonly changed: (list: OnlineUser[]) => void,
  ) {}

  /** Starts watching; resolves at the relay's REQUEST_OK. */
  async start(): Promise<void> {
    this.watch = await subscribeNamespace(this.session, Namespaces.presence(), {
      namespace: (sfx) => {
        const p = parseSuffix(sfx);
        if (p) this.add(p[0], p[1]);
      },
      done: (sfx) => {
        const p = parseSuffix(sfx);
        if (p) this.remove(p[0], p[1]);
      },
    });
  }

  list(): OnlineUser[] {
    const out: OnlineUser[] = [];
    for (const [user, devices] of this.users) {
      const display = [...devices.values()].map((d) => d.display).find((d) => d) ?? user;
      out.push({ user, display, devices: devices.size });
    }
    return out.sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
  }

  isOnline(user: string): boolean {
    return (this.users.get(user)?.size ?? 0) > 0;
  }

  private add(user: string, device: string): void {
    let devices = this.users.get(user);
    if (!devices) this.users.set(user, (devices = new Map()));
    if (devices.has(device)) return;
    const d: Device = { display: undefined, profile: undefined, gone: false };
    devices.set(device, d);
    this.changed(this.list());
    void this.followProfile(user, device, d);
  }

  private remove(user: string, device: string): void {
    const devices = this.users.get(user);
    const d = devices?.get(device);
    if (!devices || !d) return;
    d.gone = true;
    d.profile?.close();
    devices.delete(device);
    if (devices.size === 0) this.users.delete(user);
    this.changed(this.list());
  }

  /** `profile`: one JSON object per change, `{"display": …}` (CALLS.md §3). */
  private async followProfile(user: string, device: string, d: Device): Promise<void> {
    let newest = -1;
    const apply = (group: number, payload: Uint8Array): void => {
      if (group < newest || d.gone) return;
      newest = group;
      try {
        const v = JSON.parse(new TextDecoder().decode(payload)) as { display?: unknown };
        if (typeof v.display === "string" && v.display.trim()) {
          d.display = v.display.trim().slice(0, 64);
          this.changed(this.list());
        }
      } catch {
        /* not JSON: keep the user name */
      }
    };
    try {
      const sub = await subscribe(this.session, Namespaces.device(user, device), Track.PROFILE, (o) => apply(Number(o.groupId), o.payload));
      d.profile = sub;
      if (d.gone) return sub.close();
      // What was published before we subscribed comes by Joining FETCH (draft-18 §10.12.2).
      if (sub.largest && newest < 0) {
        const g = Number(sub.largest.group);
        const objs = await fetchObjects(this.session, { kind: "joining", subscription: sub, start: g }).catch(() => []);
        for (const o of objs) apply(Number(o.groupId), o.payload);
      }
    } catch {
      // Devices without a profile track (the CLI phone, the PBX) show their user name.
    }
  }

  stop(): void {
    this.watch?.close();
    for (const devices of this.users.values()) for (const d of devices.values()) d.profile?.close();
    this.users.clear();
  }
}
