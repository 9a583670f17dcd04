/**
 * Joining typed arrays, which the core, the evaluation and the audio front end all do with their batches.
 *
 * @module
 */

/** The parts one after another in one new array made by `make(totalLength)`. */
export function concatArrays<T extends Float32Array | Int32Array | Uint8Array>(
  parts: readonly T[],
  make: (length: number) => T,
): T {
  const out = make(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
