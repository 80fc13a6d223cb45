/**
 * Why a data stream, datagram or control message could not be parsed.
 *
 * The kinds are those of moq-wire's `WireError` (wire/src/lib.rs), so the
 * shared vectors (docs/vectors/wire.json) name the same error on both sides.
 * Incomplete input on a stream is never an error: parsers return `undefined`
 * ("need more bytes") instead. `Truncated` is used for input that is known to
 * be complete (a datagram, a control payload, a stream at FIN).
 */
export type WireErrorKind =
  /** Unknown or invalid stream, datagram or message type. */
  | "InvalidType"
  /** A datagram, payload or stream (at FIN) ended inside a field. */
  | "Truncated"
  /** An object larger than the parser's limit. */
  | "TooLarge"
  /** An Object Status other than Normal, End of Group or End of Track (§11.2.1.1). */
  | "InvalidStatus"
  /** Properties on an object whose status is not Normal (§11.2.1.2). */
  | "PropertiesOnStatus"
  /** An Object ID above 2^64 - 1 (§11.4.2). */
  | "ObjectIdOverflow"
  /** Any other violation of a message's format. */
  | "Malformed";

export class WireError extends Error {
  readonly kind: WireErrorKind;
  /** For `Malformed`: what was being parsed ("properties", "SUBSCRIBE", …). */
  readonly what: string | undefined;

  constructor(kind: WireErrorKind, message: string, what?: string) {
    super(message);
    this.name = "WireError";
    this.kind = kind;
    this.what = what;
  }

  static invalidType(t: bigint | number): WireError {
    return new WireError("InvalidType", `invalid stream/datagram/message type 0x${t.toString(16)}`);
  }
  static truncated(): WireError {
    return new WireError("Truncated", "stream or message ended inside a field");
  }
  static tooLarge(size: bigint | number): WireError {
    return new WireError("TooLarge", `object of ${size} bytes exceeds the limit`);
  }
  static invalidStatus(s: bigint | number): WireError {
    return new WireError("InvalidStatus", `invalid object status 0x${s.toString(16)}`);
  }
  static propertiesOnStatus(): WireError {
    return new WireError("PropertiesOnStatus", "properties on an object whose status is not Normal");
  }
  static objectIdOverflow(): WireError {
    return new WireError("ObjectIdOverflow", "object id overflow");
  }
  static malformed(what: string, why: string): WireError {
    return new WireError("Malformed", `malformed ${what}: ${why}`, what);
  }
}
