/**
 * The control messages the web phone codes (draft-18 §10), as plain data.
 * One representation serves both drafts: a draft-22 message is read into
 * and written from the draft-18 form (docs/DRAFT22.md §4), as moq-wire's
 * draft22 module does, so the session code is the same whatever was
 * negotiated. Re-exported by control.ts.
 */

import type { BytesLike } from "./bytes.js";
import type { Property } from "./properties.js";
import type { U64 } from "./varint.js";
import type { Location, Parameter, Tuple } from "./control_fields.js";

/** SETUP (§10.3): Setup Options as Key-Value-Pairs spanning the payload. */
export interface Setup {
  type: "SETUP";
  options: Property[];
}

/** SUBSCRIBE (§10.7). */
export interface Subscribe {
  type: "SUBSCRIBE";
  requestId: U64;
  namespace: Tuple;
  name: BytesLike;
  params: Parameter[];
}

/** PUBLISH (§10.10). `properties`: Track Properties (§2.5), raw Key-Value-Pairs. */
export interface Publish {
  type: "PUBLISH";
  requestId: U64;
  namespace: Tuple;
  name: BytesLike;
  trackAlias: U64;
  params: Parameter[];
  properties: Uint8Array;
}

/** Fetch Type (§10.12). */
export const FetchType = {
  STANDALONE: 0x1,
  RELATIVE_JOINING: 0x2,
  ABSOLUTE_JOINING: 0x3,
} as const;
export type FetchTypeValue = (typeof FetchType)[keyof typeof FetchType];

/**
 * Standalone Fetch (§10.12.1). `end` is the last Location plus one (Object
 * 0: whole group), at draft-22 too: its FETCH carries the range as an
 * inclusive LOCATION_FILTER, converted at the wire (docs/DRAFT22.md §4, §5.1).
 */
export interface StandaloneFetch {
  namespace: Tuple;
  name: BytesLike;
  start: Location;
  end: Location;
}

/** Joining Fetch (§10.12.2). */
export interface JoiningFetch {
  joiningRequestId: U64;
  joiningStart: U64;
}

/**
 * FETCH (§10.12.3): `standalone` for type 0x1, `joining` for 0x2 / 0x3.
 * Draft-22 has no Fetch Type and no Joining FETCH: its FETCH is always read
 * as a Standalone one, and a Joining one cannot be written (docs/DRAFT22.md §4, §6).
 */
export interface Fetch {
  type: "FETCH";
  requestId: U64;
  fetchType: FetchTypeValue;
  standalone?: StandaloneFetch;
  joining?: JoiningFetch;
  params: Parameter[];
}

/** TRACK_STATUS (§10.14). */
export interface TrackStatus {
  type: "TRACK_STATUS";
  requestId: U64;
  namespace: Tuple;
  name: BytesLike;
  params: Parameter[];
}

/** PUBLISH_NAMESPACE (§10.15). */
export interface PublishNamespace {
  type: "PUBLISH_NAMESPACE";
  requestId: U64;
  namespace: Tuple;
  params: Parameter[];
}

/** SUBSCRIBE_NAMESPACE (§10.18). */
export interface SubscribeNamespace {
  type: "SUBSCRIBE_NAMESPACE";
  requestId: U64;
  prefix: Tuple;
  params: Parameter[];
}

/** SUBSCRIBE_TRACKS (§10.19). */
export interface SubscribeTracks {
  type: "SUBSCRIBE_TRACKS";
  requestId: U64;
  prefix: Tuple;
  params: Parameter[];
}

/** REQUEST_UPDATE (§10.9), sent on an existing request stream. */
export interface RequestUpdate {
  type: "REQUEST_UPDATE";
  requestId: U64;
  params: Parameter[];
}

/**
 * REQUEST_OK (§10.5): PUBLISH_NAMESPACE_OK, SUBSCRIBE_NAMESPACE_OK,
 * TRACK_STATUS_OK… `properties` (Track Properties) is non-empty only in
 * TRACK_STATUS_OK; decoding always fills it (moq-wire drops it).
 */
export interface RequestOk {
  type: "REQUEST_OK";
  params: Parameter[];
  properties?: Uint8Array;
}

/**
 * REQUEST_ERROR (§10.6.2). For REDIRECT (0x34) the Redirect structure
 * (§10.6.1) is kept as its bytes in `redirect`: checked when decoded (it must
 * be there and end the message), written as given; a REDIRECT without it is
 * written with an empty Redirect (retry here, same name), as moq-wire's
 * `control::RequestError` does.
 */
export interface RequestError {
  type: "REQUEST_ERROR";
  code: U64;
  retryInterval: U64;
  reason: string;
  redirect?: Uint8Array;
}

/** SUBSCRIBE_OK (§10.8). `properties`: Track Properties, raw. */
export interface SubscribeOk {
  type: "SUBSCRIBE_OK";
  trackAlias: U64;
  params: Parameter[];
  properties: Uint8Array;
}

/**
 * PUBLISH_OK (0x1E, §10.5 format without Track Properties). At draft-22 it
 * is written as a REQUEST_OK (0x07) carrying EXPIRES only, and 0x1E is
 * refused (docs/DRAFT22.md §3, §4).
 */
export interface PublishOk {
  type: "PUBLISH_OK";
  params: Parameter[];
}

/** PUBLISH_DONE (§10.11). */
export interface PublishDone {
  type: "PUBLISH_DONE";
  status: U64;
  streamCount: U64;
  reason: string;
}

/** NAMESPACE (§10.16): a namespace suffix after the SUBSCRIBE_NAMESPACE prefix. */
export interface Namespace {
  type: "NAMESPACE";
  suffix: Tuple;
}

/** NAMESPACE_DONE (§10.17). */
export interface NamespaceDone {
  type: "NAMESPACE_DONE";
  suffix: Tuple;
}

/**
 * FETCH_OK (§10.13). `endLocation` is draft-18's (the last Object plus one;
 * Object 0: the whole group) whatever the draft: draft-22 writes the last
 * Object itself and no parameters, converted at the wire (docs/DRAFT22.md §4).
 */
export interface FetchOk {
  type: "FETCH_OK";
  endOfTrack: boolean;
  endLocation: Location;
  params: Parameter[];
  properties: Uint8Array;
}

/**
 * GOAWAY (§10.4). `requestId` is present when sent on the control stream and
 * absent on a request stream (moq-wire's `control::GoAway` reads and writes
 * it; its `Response::GoAway` drops it). Draft-22's GOAWAY has no Request ID:
 * it is not written there, and one received is refused (docs/DRAFT22.md §4).
 */
export interface GoAway {
  type: "GOAWAY";
  uri: string;
  timeoutMs: U64;
  requestId?: U64;
}

/**
 * PUBLISH_STATE_NOTIFY (draft-22 only, 0x22): the publisher's new Largest
 * Object, Forward State or filter on a subscription's request stream;
 * never answered (docs/DRAFT22.md §4, §10.2). Its LOCATION_FILTER, if any,
 * is kept as the other subscription parameters are (draft22_params.ts).
 */
export interface PublishStateNotify {
  type: "PUBLISH_STATE_NOTIFY";
  params: Parameter[];
}

/** A request-initiating message (§3.3): it opens a request stream. */
export type RequestMessage = Subscribe | Publish | Fetch | TrackStatus | PublishNamespace | SubscribeNamespace | SubscribeTracks;

/** A response or follow-up on a request stream, or GOAWAY. */
export type ResponseMessage =
  | RequestUpdate
  | RequestOk
  | RequestError
  | SubscribeOk
  | PublishOk
  | PublishDone
  | Namespace
  | NamespaceDone
  | FetchOk
  | GoAway
  | PublishStateNotify;

export type ControlMessage = Setup | RequestMessage | ResponseMessage;
