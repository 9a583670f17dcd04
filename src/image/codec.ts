/**
 * PNG and JPEG decoding and encoding of 8-bit images (`pngjs`, `jpeg-js`). Every image's header is checked
 * first (`png_header.ts`, `jpeg_header.ts`): bad bytes raise {@link ImageDecodeError} with the reason;
 * sizes beyond a pixel limit raise {@link ImageTooLargeError} before any pixel buffer is allocated. The
 * decoders are synchronous and CPU-bound: the server runs them in workers (`src/server/decode_pool.ts`).
 *
 * @module
 */
import pngjs from "pngjs";
import jpeg from "jpeg-js";
import { Buffer } from "node:buffer";
import { ImageDecodeError } from "./errors.ts";
import { checkJpeg } from "./jpeg_header.ts";
import { checkPng } from "./png_header.ts";

export { ImageDecodeError, ImageTooLargeError } from "./errors.ts";

/** A decoded 8-bit image, row-major, `channels` interleaved values per pixel. */
export interface RawImage {
  width: number;
  height: number;
  /** 1 (gray), 3 (RGB) or 4 (RGBA). */
  channels: 1 | 3 | 4;
  data: Uint8Array;
}

/** The encoded image formats understood here. */
export type ImageFormatName = "png" | "jpeg";

/** Default limit on decoded pixels (width * height): 16 megapixels. */
export const DEFAULT_MAX_PIXELS = 16 * 1024 * 1024;

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Detects PNG or JPEG from the magic bytes; `undefined` when neither. */
export function detectImageFormat(bytes: Uint8Array): ImageFormatName | undefined {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  return undefined;
}

/**
 * Decodes a PNG or JPEG image (format detected when not given). Throws {@link ImageDecodeError} or
 * {@link ImageTooLargeError}.
 */
export function decodeImage(
  bytes: Uint8Array,
  format?: ImageFormatName,
  maxPixels: number = DEFAULT_MAX_PIXELS,
): RawImage {
  const detected = detectImageFormat(bytes);
  if (detected === undefined) {
    throw new ImageDecodeError(
      `not a PNG or JPEG image (${bytes.length} bytes, first bytes ${hexPrefix(bytes)})`,
    );
  }
  if (format !== undefined && format !== detected) {
    throw new ImageDecodeError(`image declared as ${format} but its bytes are ${detected}`);
  }
  return detected === "png" ? decodePng(bytes, maxPixels) : decodeJpeg(bytes, maxPixels);
}

function hexPrefix(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ") || "none";
}

function decodePng(bytes: Uint8Array, maxPixels: number): RawImage {
  checkPng(bytes, maxPixels);
  try {
    const png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return { width: png.width, height: png.height, channels: 4, data: new Uint8Array(png.data) };
  } catch (error) {
    throw new ImageDecodeError(`PNG decode failed: ${(error as Error).message}`);
  }
}

/**
 * jpeg-js's own limits are set above what {@link checkJpeg} lets through, so that the header check is the one
 * limit: its megapixels are 10^6 pixels (the old 2^20-based value refused a 4096x4096 JPEG that the same
 * PNG passed), and its memory count for an image within the limit is at most 4 x `maxPixels` samples of
 * 4-byte coefficients, 1-byte planes, 1-byte output planes and the RGBA result, 7 x 4 bytes a pixel.
 */
function decodeJpeg(bytes: Uint8Array, maxPixels: number): RawImage {
  checkJpeg(bytes, maxPixels);
  try {
    const decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: Math.ceil(maxPixels / 1e6) + 1,
      maxMemoryUsageInMB: Math.ceil((maxPixels * 4 * 7) / (1024 * 1024)) + 16,
    });
    return { width: decoded.width, height: decoded.height, channels: 4, data: new Uint8Array(decoded.data) };
  } catch (error) {
    throw new ImageDecodeError(`JPEG decode failed: ${(error as Error).message ?? String(error)}`);
  }
}

function toRgba(image: RawImage): Uint8Array {
  if (image.channels === 4) return image.data;
  const pixels = image.width * image.height;
  const out = new Uint8Array(pixels * 4);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) {
      out[p * 4 + c] = image.data[p * image.channels + (image.channels === 1 ? 0 : c)];
    }
    out[p * 4 + 3] = 255;
  }
  return out;
}

/** Encodes an image as PNG (gray images stay 8-bit gray, others RGBA). */
export function encodePng(image: RawImage): Uint8Array {
  const gray = image.channels === 1;
  const png = new pngjs.PNG({
    width: image.width,
    height: image.height,
    colorType: gray ? 0 : 6,
    inputColorType: gray ? 0 : 6,
    inputHasAlpha: !gray,
  });
  const data = gray ? image.data : toRgba(image);
  png.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(pngjs.PNG.sync.write(png, { colorType: gray ? 0 : 6, inputColorType: gray ? 0 : 6 }));
}

/** Encodes an image as baseline JPEG at the given quality (1-100). */
export function encodeJpeg(image: RawImage, quality = 90): Uint8Array {
  const encoded = jpeg.encode({ width: image.width, height: image.height, data: toRgba(image) }, quality);
  return new Uint8Array(encoded.data);
}

/** Encodes in the named format. */
export function encodeImage(image: RawImage, format: ImageFormatName, jpegQuality = 90): Uint8Array {
  return format === "png" ? encodePng(image) : encodeJpeg(image, jpegQuality);
}
