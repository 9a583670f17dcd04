/**
 * A minimal protobuf wire-format writer and top-level reader. The fuzzer builds its requests at the byte
 * level, not through proto-loader, so that it can send what a generated client never would: unknown enum
 * numbers, negative or huge int64 dims, wrong wire types, truncated or bit-flipped messages.
 *
 * @module
 */
import { concatArrays } from "../arrays.ts";

/** One field of a message: its number and already-encoded value. */
type Field = { number: number; wireType: 0 | 1 | 2 | 5; bytes: Uint8Array };

/** Encodes an unsigned or two's-complement (negative) integer as a varint (up to 64 bits). */
export function varint(value: number | bigint): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Uint8Array.from(out);
}

function concat(parts: Uint8Array[]): Uint8Array {
  return concatArrays(parts, (n) => new Uint8Array(n));
}

/** Builds one message field by field, in the order they are added (repeats allowed, as on the wire). */
export class MessageWriter {
  readonly #fields: Field[] = [];

  /** A varint field (int32/int64/uint32/bool/enum). */
  varint(number: number, value: number | bigint): this {
    this.#fields.push({ number, wireType: 0, bytes: varint(value) });
    return this;
  }

  /** A double field (fixed64). */
  double(number: number, value: number): this {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, value, true);
    this.#fields.push({ number, wireType: 1, bytes });
    return this;
  }

  /** A length-delimited field: bytes, a string, or a nested message. */
  bytes(number: number, value: Uint8Array | string | MessageWriter): this {
    const payload = typeof value === "string"
      ? new TextEncoder().encode(value)
      : value instanceof MessageWriter
      ? value.finish()
      : value;
    this.#fields.push({ number, wireType: 2, bytes: concat([varint(payload.length), payload]) });
    return this;
  }

  /** A packed repeated varint field (proto3's default for repeated scalars). */
  packed(number: number, values: (number | bigint)[]): this {
    return this.bytes(number, concat(values.map((v) => varint(v))));
  }

  /** The encoded message. */
  finish(): Uint8Array {
    return concat(this.#fields.map((f) => concat([varint((f.number << 3) | f.wireType), f.bytes])));
  }
}

/**
 * The top-level fields of a message: varints as bigint, length-delimited fields as bytes; stops quietly at
 * the first malformed byte (the fuzzer only reads its own server's answers with it).
 */
export function readFields(bytes: Uint8Array): Map<number, (bigint | Uint8Array)[]> {
  const fields = new Map<number, (bigint | Uint8Array)[]>();
  let offset = 0;
  const readVarint = (): bigint | undefined => {
    let result = 0n;
    for (let shift = 0n; offset < bytes.length && shift < 70n; shift += 7n) {
      const byte = bytes[offset++];
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
    return undefined;
  };
  while (offset < bytes.length) {
    const key = readVarint();
    if (key === undefined) break;
    const number = Number(key >> 3n);
    const wireType = Number(key & 7n);
    let value: bigint | Uint8Array | undefined;
    if (wireType === 0) value = readVarint();
    else if (wireType === 2) {
      const length = readVarint();
      if (length === undefined || offset + Number(length) > bytes.length) break;
      value = bytes.subarray(offset, offset + Number(length));
      offset += Number(length);
    } else if (wireType === 1 || wireType === 5) {
      offset += wireType === 1 ? 8 : 4;
      continue;
    } else break;
    if (value === undefined) break;
    fields.set(number, [...(fields.get(number) ?? []), value]);
  }
  return fields;
}
