/**
 * Checks a PNG before any pixel is decoded: the chunk layout, the IHDR fields, the decoded size against
 * the pixel limit, and the IDAT stream inflated with an output bound of exactly the size the header
 * implies, so that a zlib bomb cannot allocate more than the limit and data shorter or longer than the
 * header says is refused (pngjs pads short data with zeros and reads a zero-width image as NaN pixels).
 * Pure: no I/O.
 *
 * @module
 */
import { inflateSync } from "node:zlib";
import { ImageDecodeError, ImageTooLargeError } from "./errors.ts";
import { concatArrays } from "../arrays.ts";

/** What a checked PNG's IHDR says. */
export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
}

/** Allowed bit depths per colour type (PNG specification, 11.2.2). */
const BIT_DEPTHS: Record<number, readonly number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

/** Samples per pixel per colour type. */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Bookkeeping bytes the decoder (pngjs) spends on each row beyond its pixels: it allocates one buffer a
 * row, measured at about 150 bytes, so a 1 x 16 Mi image cost 2.5 GiB while its pixels are 16 MiB.
 */
export const PNG_ROW_COST = 256;

/** Adam7 passes: x start, y start, x step, y step. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [
  0,
  1,
  1,
  2,
]];

/** Bytes of the filtered (inflated) image data the header implies: a filter byte plus the packed row. */
export function pngFilteredLength(header: PngHeader): number {
  const bits = SAMPLES[header.colorType] * header.bitDepth;
  const rowBytes = (width: number) => Math.ceil((width * bits) / 8);
  if (!header.interlaced) return header.height * (1 + rowBytes(header.width));
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) {
    const width = Math.ceil(Math.max(0, header.width - x0) / dx);
    const height = Math.ceil(Math.max(0, header.height - y0) / dy);
    if (width > 0 && height > 0) total += height * (1 + rowBytes(width));
  }
  return total;
}

function chunkType(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
}

/**
 * Validates a PNG's chunks (after the 8-byte signature, which the caller has matched) and IHDR, checks its
 * size against `maxPixels`, and inflates its IDAT stream with a bound, refusing data of any other length
 * than the header implies. Returns the header. Throws
 * {@link ImageDecodeError} naming the chunk, field or byte offset, or {@link ImageTooLargeError}.
 */
export function checkPng(bytes: Uint8Array, maxPixels: number): PngHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let header: PngHeader | undefined;
  const idat: Uint8Array[] = [];
  let offset = 8;
  let ended = false;
  while (!ended) {
    if (offset + 12 > bytes.length) {
      throw new ImageDecodeError(
        `PNG decode failed: file ends at byte ${bytes.length} before its IEND chunk`,
      );
    }
    const length = view.getUint32(offset);
    const type = chunkType(bytes, offset + 4);
    const body = offset + 8;
    if (length > 0x7fffffff || body + length + 4 > bytes.length) {
      throw new ImageDecodeError(
        `PNG decode failed: chunk "${type}" at byte ${offset} declares ${length} bytes, ` +
          `${Math.max(0, bytes.length - body - 4)} follow`,
      );
    }
    if (header === undefined && type !== "IHDR") {
      throw new ImageDecodeError(
        `PNG decode failed: first chunk is "${type}" at byte ${offset}, expected IHDR`,
      );
    }
    if (type === "IHDR") {
      if (header !== undefined) {
        throw new ImageDecodeError(`PNG decode failed: second IHDR at byte ${offset}`);
      }
      if (length !== 13) {
        throw new ImageDecodeError(
          `PNG decode failed: IHDR at byte ${offset} is ${length} bytes, expected 13`,
        );
      }
      header = readIhdr(view, body);
      checkSize(header, maxPixels);
    } else if (type === "IDAT") idat.push(bytes.subarray(body, body + length));
    else if (type === "IEND") ended = true;
    offset = body + length + 4;
  }
  checkImageData(header!, idat);
  return header!;
}

function readIhdr(view: DataView, at: number): PngHeader {
  const width = view.getUint32(at);
  const height = view.getUint32(at + 4);
  const [bitDepth, colorType, compression, filter, interlace] = [8, 9, 10, 11, 12].map((i) =>
    view.getUint8(at + i)
  );
  const field = (name: string, value: number, offset: number, expected: string) =>
    new ImageDecodeError(`PNG decode failed: IHDR ${name} ${value} at byte ${at + offset}; ${expected}`);
  if (width === 0 || width > 0x7fffffff) throw field("width", width, 0, "must be 1 to 2^31-1");
  if (height === 0 || height > 0x7fffffff) throw field("height", height, 4, "must be 1 to 2^31-1");
  const depths = BIT_DEPTHS[colorType];
  if (depths === undefined) throw field("colour type", colorType, 9, "expected 0, 2, 3, 4 or 6");
  if (!depths.includes(bitDepth)) {
    throw field("bit depth", bitDepth, 8, `colour type ${colorType} allows ${depths.join(", ")}`);
  }
  if (compression !== 0) throw field("compression method", compression, 10, "expected 0");
  if (filter !== 0) throw field("filter method", filter, 11, "expected 0");
  if (interlace > 1) throw field("interlace method", interlace, 12, "expected 0 or 1");
  return { width, height, bitDepth, colorType, interlaced: interlace === 1 };
}

/**
 * The pixel limit, and the decoder's memory: its filtered rows (with {@link PNG_ROW_COST} each) may take at
 * most 8 bytes a pixel of the limit, twice an RGBA image of `maxPixels`, so a 4096 x 4096 RGBA image passes
 * the default limit while a 1 x 16 Mi one (16 Mi rows) does not.
 */
function checkSize(header: PngHeader, maxPixels: number): void {
  const { width, height } = header;
  if (width * height > maxPixels) {
    throw new ImageTooLargeError(`PNG is ${width}x${height} = ${width * height} pixels, limit ${maxPixels}`);
  }
  const filtered = pngFilteredLength(header);
  const cost = filtered + height * PNG_ROW_COST;
  if (cost > 8 * maxPixels) {
    throw new ImageTooLargeError(
      `PNG is ${width}x${height}: its ${filtered} bytes of rows and ${height} rows at ${PNG_ROW_COST} bytes ` +
        `each need ${cost} bytes to decode, limit ${8 * maxPixels} (8 bytes x ${maxPixels} pixels)`,
    );
  }
}

/** Inflates the IDAT stream, allowing one byte more than expected so that longer data is seen. */
function checkImageData(header: PngHeader, idat: Uint8Array[]): void {
  const expected = pngFilteredLength(header);
  const compressed = idat.length === 1 ? idat[0] : concat(idat);
  if (compressed.length === 0) {
    throw new ImageDecodeError(
      `PNG decode failed: no image data (IDAT is empty); the header needs ${expected}`,
    );
  }
  let inflated: Uint8Array;
  try {
    inflated = inflateSync(compressed, { maxOutputLength: expected + 1 });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_BUFFER_TOO_LARGE") {
      throw new ImageDecodeError(
        `PNG decode failed: IDAT inflates to more than the ${expected} bytes that ` +
          `${header.width}x${header.height} needs`,
      );
    }
    throw new ImageDecodeError(`PNG decode failed: IDAT is not a zlib stream: ${(error as Error).message}`);
  }
  if (inflated.length !== expected) {
    throw new ImageDecodeError(
      `PNG decode failed: IDAT inflates to ${inflated.length} bytes, ${
        inflated.length < expected ? "fewer" : "more"
      } ` +
        `than the ${expected} that ${header.width}x${header.height} needs`,
    );
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  return concatArrays(parts, (n) => new Uint8Array(n));
}
