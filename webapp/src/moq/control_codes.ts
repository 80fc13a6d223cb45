/**
 * Code points of control messages (draft-18 §10 and the IANA tables, plus
 * what draft-22 adds: docs/DRAFT22.md §3, §5, §9). Re-exported by control.ts.
 */

import { type U64 } from "./varint.js";

/**
 * The draft of draft-ietf-moq-transport a session speaks, as negotiated by
 * WT-Protocol `moqt-18` / `moqt-22` (docs/DRAFT22.md §2). Nothing in SETUP
 * names it, so every encoder and decoder of a message whose bytes differ
 * between the two is told it.
 */
export type Version = 18 | 22;

/** Message types (§10 table) of every message this module codes. */
export const MessageType = {
  REQUEST_UPDATE: 0x2,
  SUBSCRIBE: 0x3,
  SUBSCRIBE_OK: 0x4,
  REQUEST_ERROR: 0x5,
  PUBLISH_NAMESPACE: 0x6,
  REQUEST_OK: 0x7,
  NAMESPACE: 0x8,
  PUBLISH_DONE: 0xb,
  TRACK_STATUS: 0xd,
  NAMESPACE_DONE: 0xe,
  GOAWAY: 0x10,
  FETCH: 0x16,
  FETCH_OK: 0x18,
  PUBLISH: 0x1d,
  /** Draft-18 only: reserved at draft-22, where PUBLISH is answered by REQUEST_OK (docs/DRAFT22.md §3). */
  PUBLISH_OK: 0x1e,
  /** Draft-22 only: publisher to subscriber on a subscription's stream, never answered (docs/DRAFT22.md §4). */
  PUBLISH_STATE_NOTIFY: 0x22,
  SUBSCRIBE_NAMESPACE: 0x50,
  SUBSCRIBE_TRACKS: 0x51,
  /** SETUP (§10.3); also the stream type of a control stream (§3.4). */
  SETUP: 0x2f00,
} as const;
export type MessageTypeName = keyof typeof MessageType;

/** The seven message types that may open a request stream (§3.3). */
export function startsRequest(t: U64): boolean {
  return (
    t === MessageType.SUBSCRIBE ||
    t === MessageType.PUBLISH ||
    t === MessageType.FETCH ||
    t === MessageType.TRACK_STATUS ||
    t === MessageType.PUBLISH_NAMESPACE ||
    t === MessageType.SUBSCRIBE_NAMESPACE ||
    t === MessageType.SUBSCRIBE_TRACKS
  );
}

/** Message Parameter types (§10.2, IANA table). */
export const ParameterType = {
  OBJECT_DELIVERY_TIMEOUT: 0x02,
  AUTHORIZATION_TOKEN: 0x03,
  RENDEZVOUS_TIMEOUT: 0x04,
  SUBGROUP_DELIVERY_TIMEOUT: 0x06,
  EXPIRES: 0x08,
  LARGEST_OBJECT: 0x09,
  FILL_TIMEOUT: 0x0a,
  FORWARD: 0x10,
  SUBSCRIBER_PRIORITY: 0x20,
  /** Draft-18's name; its value is always kept in the draft-18 form (see draft22_params.ts). */
  SUBSCRIPTION_FILTER: 0x21,
  /** Draft-22's name of 0x21: typed, with no Length on the wire (docs/DRAFT22.md §5.1). */
  LOCATION_FILTER: 0x21,
  GROUP_ORDER: 0x22,
  /** Draft-22: a backfill requested with a SUBSCRIBE, a nested parameter block (docs/DRAFT22.md §6). */
  FILL_PARAMETERS: 0x23,
  /** Draft-22 Range Filters 0x25..0x29 (docs/DRAFT22.md §5.3). */
  SUBGROUP_FILTER: 0x25,
  OBJECTID_FILTER: 0x26,
  PRIORITY_FILTER: 0x27,
  OBJECT_PROPERTY_FILTER: 0x28,
  TRACK_PROPERTY_FILTER: 0x29,
  NEW_GROUP_REQUEST: 0x32,
  TRACK_NAMESPACE_PREFIX: 0x34,
  /** Draft-22: a uint8 0/1 (docs/DRAFT22.md §5). */
  INCLUDE_PROPERTIES: 0x35,
} as const;

/** Setup Option types (§10.3.1). */
export const SetupOption = {
  PATH: 0x01,
  AUTHORIZATION_TOKEN: 0x03,
  MAX_AUTH_TOKEN_CACHE_SIZE: 0x04,
  AUTHORITY: 0x05,
  /** Draft-22 (docs/DRAFT22.md §2): not sent, so the relay may send no Range Filter. */
  MAX_FILTER_RANGES: 0x06,
  MOQT_IMPLEMENTATION: 0x07,
  /** Draft-22 (docs/DRAFT22.md §2). */
  MAX_REQUEST_UPDATES: 0x08,
} as const;

/** REQUEST_ERROR codes (§10.6, IANA table). */
export const RequestErrorCode = {
  INTERNAL_ERROR: 0x0,
  UNAUTHORIZED: 0x1,
  TIMEOUT: 0x2,
  NOT_SUPPORTED: 0x3,
  MALFORMED_AUTH_TOKEN: 0x4,
  EXPIRED_AUTH_TOKEN: 0x5,
  GOING_AWAY: 0x6,
  EXCESSIVE_LOAD: 0x9,
  DOES_NOT_EXIST: 0x10,
  INVALID_RANGE: 0x11,
  MALFORMED_TRACK: 0x12,
  DUPLICATE_SUBSCRIPTION: 0x19,
  UNINTERESTED: 0x20,
  PREFIX_OVERLAP: 0x30,
  NAMESPACE_TOO_LARGE: 0x31,
  INVALID_JOINING_REQUEST_ID: 0x32,
  UNSUPPORTED_EXTENSION: 0x33,
  REDIRECT: 0x34,
  /** Draft-22 (docs/DRAFT22.md §9). */
  CONFLICTING_FILTERS: 0x35,
  /** Draft-22: a Range Filter the receiver did not allow with MAX_FILTER_RANGES (docs/DRAFT22.md §9). */
  INVALID_FILTER: 0x36,
} as const;

/** PUBLISH_DONE status codes (§10.11). */
export const PublishDoneCode = {
  INTERNAL_ERROR: 0x0,
  UNAUTHORIZED: 0x1,
  TRACK_ENDED: 0x2,
  SUBSCRIPTION_ENDED: 0x3,
  GOING_AWAY: 0x4,
  TOO_FAR_BEHIND: 0x5,
  EXPIRED: 0x6,
  UPDATE_FAILED: 0x8,
  EXCESSIVE_LOAD: 0x9,
  MALFORMED_TRACK: 0x12,
} as const;

/** Session termination codes (§3.5). */
export const SessionError = {
  NO_ERROR: 0x0,
  INTERNAL_ERROR: 0x1,
  UNAUTHORIZED: 0x2,
  PROTOCOL_VIOLATION: 0x3,
  INVALID_REQUEST_ID: 0x4,
  DUPLICATE_TRACK_ALIAS: 0x5,
  KEY_VALUE_FORMATTING_ERROR: 0x6,
  GOAWAY_TIMEOUT: 0x10,
  CONTROL_MESSAGE_TIMEOUT: 0x11,
  DATA_STREAM_TIMEOUT: 0x12,
  AUTH_TOKEN_CACHE_OVERFLOW: 0x13,
  DUPLICATE_AUTH_TOKEN_ALIAS: 0x14,
  MALFORMED_AUTH_TOKEN: 0x16,
  UNKNOWN_AUTH_TOKEN_ALIAS: 0x17,
  EXPIRED_AUTH_TOKEN: 0x18,
  /** Draft-22 (docs/DRAFT22.md §9). */
  TOO_MANY_REQUEST_UPDATES: 0x1b,
} as const;

/** Stream reset / STOP_SENDING codes (§3.3.3). */
export const StreamError = {
  INTERNAL_ERROR: 0x0,
  CANCELLED: 0x1,
  DELIVERY_TIMEOUT: 0x2,
  SESSION_CLOSED: 0x3,
  GOING_AWAY: 0x4,
  TOO_FAR_BEHIND: 0x5,
  UNKNOWN_OBJECT_STATUS: 0x6,
  EXPIRED_AUTH_TOKEN: 0x7,
  EXCESSIVE_LOAD: 0x9,
  MALFORMED_TRACK: 0x12,
} as const;

