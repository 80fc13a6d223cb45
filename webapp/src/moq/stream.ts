/**
 * Glue between the sans-IO parsers and WebTransport-style streams: a
 * WebTransport session hands out `ReadableStream<Uint8Array>`s (incoming
 * unidirectional streams, the readable half of bidirectional streams,
 * `datagrams.readable`) and takes `Uint8Array` chunks on writers. Nothing
 * here depends on WebTransport itself, so it runs under Node as well.
 */

import { ByteQueue } from "./bytes.js";
import { FrameReader, MessageType, type Frame } from "./control.js";
import { WireError } from "./errors.js";
import { FETCH_HEADER, FetchParser, type FetchItem } from "./fetch.js";
import { SubgroupParser, isSubgroupType, type SubgroupEvent } from "./subgroup.js";
import { readVarint, type U64 } from "./varint.js";

/** Padding stream type (§11.5.1): read and discarded. */
export const PADDING_STREAM = 0x132b3e28;

/** What a unidirectional stream carries, from its first vi64 (§3.4). */
export type UniStreamKind = "control" | "subgroup" | "fetch" | "padding";

/** Classifies a unidirectional stream type; unknown types are `InvalidType`. */
export function uniStreamKind(type: U64): UniStreamKind {
  if (type === MessageType.SETUP) return "control";
  if (type === FETCH_HEADER) return "fetch";
  if (type === PADDING_STREAM) return "padding";
  if (isSubgroupType(type)) return "subgroup";
  throw WireError.invalidType(type);
}

/** The stream type at the start of `buf`, or `undefined` if incomplete. */
export function peekStreamType(buf: Uint8Array): U64 | undefined {
  return readVarint(buf, 0)?.value;
}

/** The chunks of a readable stream; the reader lock is released at the end. */
export async function* chunks(readable: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  const reader = readable.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      if (value.length > 0) yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Control messages from a control stream (which starts with SETUP) or a
 * request stream. Ends when the stream ends; a stream that ends inside a
 * message throws `Truncated`.
 */
export async function* controlFrames(source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): AsyncGenerator<Frame, void, undefined> {
  const fr = new FrameReader();
  for await (const c of iterate(source)) {
    fr.push(c);
    for (let f = fr.next(); f !== undefined; f = fr.next()) yield f;
  }
  fr.finish();
}

/** Header and objects of a SUBGROUP stream, checked at FIN. */
export async function* subgroupEvents(
  source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  maxObjectSize?: number,
): AsyncGenerator<SubgroupEvent, void, undefined> {
  const p = new SubgroupParser(maxObjectSize);
  for await (const c of iterate(source)) {
    p.push(c);
    for (let e = p.next(); e !== undefined; e = p.next()) yield e;
  }
  p.finish();
}

/** Items of a FETCH_HEADER stream, checked at FIN. */
export async function* fetchItems(
  source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  maxObjectSize?: number,
): AsyncGenerator<FetchItem, void, undefined> {
  const p = new FetchParser(maxObjectSize);
  for await (const c of iterate(source)) {
    p.push(c);
    for (let i = p.next(); i !== undefined; i = p.next()) yield i;
  }
  p.finish();
}

/**
 * Reads the stream type of an incoming unidirectional stream and hands back
 * the kind plus all chunks (the type included) for the matching parser:
 *
 * ```ts
 * const { kind, stream } = await classifyUniStream(incoming);
 * if (kind === "subgroup") for await (const e of subgroupEvents(stream)) …
 * ```
 */
export async function classifyUniStream(
  readable: ReadableStream<Uint8Array>,
): Promise<{ kind: UniStreamKind; type: U64; stream: AsyncIterable<Uint8Array> }> {
  const it = chunks(readable);
  const head = new ByteQueue();
  for (;;) {
    const type = peekStreamType(head.view());
    if (type !== undefined) {
      const first = head.take(head.length);
      return { kind: uniStreamKind(type), type, stream: prepend(first, it) };
    }
    const r = await it.next();
    if (r.done) throw WireError.truncated();
    head.push(r.value);
  }
}

async function* prepend(first: Uint8Array, rest: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  if (first.length > 0) yield first;
  for (;;) {
    const r = await rest.next();
    if (r.done) return;
    yield r.value;
  }
}

function iterate(source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  return isReadableStream(source) ? chunks(source) : source;
}

function isReadableStream(s: unknown): s is ReadableStream<Uint8Array> {
  return typeof s === "object" && s !== null && typeof (s as { getReader?: unknown }).getReader === "function";
}
