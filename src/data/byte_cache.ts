/**
 * A compact on-disk cache for 8-bit image datasets, so that large JSON sources are parsed only once.
 *
 * Layout (little-endian): 8-byte magic `NIPU8DS1`, then uint32 count, height, width, channels, then
 * `count` label bytes, then `count * h * w * c` pixel bytes (NHWC). Nothing else; the file size must match.
 *
 * @module
 */
import { type Dataset, validateDataset } from "./dataset.ts";

/** An image dataset kept as bytes (pixels 0..255, NHWC), before conversion to floats. */
export interface ByteDataset {
  count: number;
  shape: [number, number, number];
  labels: Uint8Array;
  pixels: Uint8Array;
}

const MAGIC = "NIPU8DS1";
const HEADER_BYTES = MAGIC.length + 4 * 4;

/** Serialises a byte dataset into the cache layout. */
export function encodeByteDataset(data: ByteDataset): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + data.labels.length + data.pixels.length);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(out.buffer);
  [data.count, ...data.shape].forEach((value, i) => view.setUint32(MAGIC.length + 4 * i, value, true));
  out.set(data.labels, HEADER_BYTES);
  out.set(data.pixels, HEADER_BYTES + data.labels.length);
  return out;
}

/**
 * Parses the cache layout. Throws an error naming `source` and the byte offset when the magic is wrong or
 * the size does not match the header.
 */
export function decodeByteDataset(bytes: Uint8Array, source: string): ByteDataset {
  if (bytes.length < HEADER_BYTES) {
    throw new Error(`${source}: ${bytes.length} bytes is shorter than the ${HEADER_BYTES}-byte header`);
  }
  const magic = new TextDecoder().decode(bytes.subarray(0, MAGIC.length));
  if (magic !== MAGIC) throw new Error(`${source}: bad magic at byte 0 ("${magic}", expected "${MAGIC}")`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [count, h, w, c] = [0, 1, 2, 3].map((i) => view.getUint32(MAGIC.length + 4 * i, true));
  const expected = HEADER_BYTES + count + count * h * w * c;
  if (bytes.length !== expected) {
    throw new Error(
      `${source}: size ${bytes.length} bytes does not match the header (${count} images of ${h}x${w}x${c} ` +
        `need ${expected}); data ends at byte offset ${bytes.length}`,
    );
  }
  return {
    count,
    shape: [h, w, c],
    labels: bytes.subarray(HEADER_BYTES, HEADER_BYTES + count),
    pixels: bytes.subarray(HEADER_BYTES + count),
  };
}

/**
 * Reads a cache file; returns `null` when it is missing or unreadable as a cache (the caller rebuilds it),
 * printing the reason for a damaged file to stderr.
 */
export async function readByteCache(path: string): Promise<ByteDataset | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  try {
    return decodeByteDataset(bytes, path);
  } catch (error) {
    console.error(`ignoring damaged cache: ${(error as Error).message}`);
    return null;
  }
}

/** Writes a cache file atomically (temporary file + rename), creating its folder. */
export async function writeByteCache(path: string, data: ByteDataset): Promise<void> {
  const slash = path.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true });
  const temporary = `${path}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
  await Deno.writeFile(temporary, encodeByteDataset(data));
  await Deno.rename(temporary, path);
}

/** Converts bytes to a float {@link Dataset} with pixels scaled to [0, 1]; throws on an invalid label. */
export function byteDatasetToFloat(data: ByteDataset, name: string, classNames: string[]): Dataset {
  const images = new Float32Array(data.pixels.length);
  for (let i = 0; i < images.length; i++) images[i] = data.pixels[i] / 255;
  const dataset: Dataset = {
    name,
    images,
    labels: Int32Array.from(data.labels),
    count: data.count,
    shape: [...data.shape],
    classNames,
  };
  validateDataset(dataset);
  return dataset;
}
