/**
 * Readers for the serde JSON shapes of the call machine's inputs, outputs
 * and timers (docs/vectors/calls.json, logs), split from machine.ts. They
 * are as strict as the Rust types: a missing required member is an error, a
 * missing optional device is `null`, unknown members are ignored.
 */

import { isChar, parseEvent } from "./events.js";
import type { EndReason, Input, Output, Timers, UserAction } from "./machine.js";

type Json = Record<string, unknown>;

function obj(v: unknown, what: string): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TypeError(`${what}: expected a JSON object`);
  return v as Json;
}

function strField(o: Json, key: string): string {
  const v = o[key];
  if (typeof v !== "string") throw new TypeError(`"${key}" must be a string`);
  return v;
}

function optDevice(o: Json): string | null {
  const v = o["device"];
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") throw new TypeError(`"device" must be a string or null`);
  return v;
}

function boolField(o: Json, key: string): boolean {
  const v = o[key];
  if (typeof v !== "boolean") throw new TypeError(`"${key}" must be a boolean`);
  return v;
}

function charField(o: Json, key: string): string {
  const v = strField(o, key);
  if (!isChar(v)) throw new TypeError(`"${key}" must be one character`);
  return v;
}

export function userActionFromJson(v: unknown): UserAction {
  const o = obj(v, "user action");
  const a = o["action"];
  switch (a) {
    case "answer":
    case "decline":
    case "hangup":
    case "hold":
    case "unhold":
    case "cancel-glare":
      return { action: a };
    case "dtmf":
      return { action: a, digit: charField(o, "digit") };
    case "mute":
      return { action: a, on: boolField(o, "on") };
  }
  throw new TypeError(`unknown user action ${JSON.stringify(a)}`);
}

export function inputFromJson(v: unknown): Input {
  const o = obj(v, "input");
  const tag = o["in"];
  switch (tag) {
    case "device-appeared":
    case "device-gone":
      return { in: tag, device: strField(o, "device") };
    case "peer":
      return { in: tag, device: optDevice(o), event: parseEvent(o["event"]) };
    case "media":
    case "peer-gone":
      return { in: tag, device: optDevice(o) };
    case "user":
      return { in: tag, ...userActionFromJson(o) };
  }
  throw new TypeError(`unknown input ${JSON.stringify(tag)}`);
}

function endReasonFromJson(o: Json): EndReason {
  const r = o["reason"];
  switch (r) {
    case "hangup":
      return { reason: r, by_peer: boolField(o, "by_peer") };
    case "busy":
    case "declined":
    case "no-answer":
    case "offline":
    case "cancelled":
    case "answered-elsewhere":
    case "lost-peer":
    case "glare":
      return { reason: r };
  }
  throw new TypeError(`unknown end reason ${JSON.stringify(r)}`);
}

export function outputFromJson(v: unknown): Output {
  const o = obj(v, "output");
  const tag = o["out"];
  switch (tag) {
    case "announce":
    case "withdraw":
    case "watch-devices":
      return { out: tag };
    case "send":
      return { out: tag, event: parseEvent(o["event"]) };
    case "subscribe-events":
    case "subscribe-audio":
    case "established":
      return { out: tag, device: optDevice(o) };
    case "unsubscribe":
      return { out: tag, device: strField(o, "device") };
    case "media":
    case "ring":
    case "peer-hold":
      return { out: tag, on: boolField(o, "on") };
    case "dtmf":
      return { out: tag, digit: charField(o, "digit") };
    case "ended":
      return { out: tag, ...endReasonFromJson(o) };
  }
  throw new TypeError(`unknown output ${JSON.stringify(tag)}`);
}

export function timersFromJson(v: unknown): Timers {
  const o = obj(v, "timers");
  const n = (k: keyof Timers): number => {
    const x = o[k];
    if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) throw new TypeError(`timers.${k} must be a non-negative integer`);
    return x;
  };
  return { devices_appear: n("devices_appear"), no_answer: n("no_answer"), keepalive: n("keepalive"), lost_peer: n("lost_peer") };
}
