/**
 * Checks a JPEG's markers before any pixel is decoded: one supported frame (SOF0, SOF1 or SOF2, 8-bit, 1 to
 * 4 components) with both dimensions above 0, the decoded size against the pixel limit, at most
 * {@link MAX_JPEG_SCANS} scans (a progressive JPEG of 10,000 near-empty scans makes the decoder visit every
 * block 10,000 times; libjpeg-turbo's djpeg has `-maxscans` for the same reason), well-formed restart
 * intervals, and enough bytes for the declared size: a sequential scan codes every 8x8 block in at least
 * 2 bits (a DC difference and an end of block), so a 152-byte file cannot hold a 4000x4000 image. Pure: no
 * I/O.
 *
 * @module
 */
import { ImageDecodeError, ImageTooLargeError } from "./errors.ts";

/** Most scans (SOS markers) accepted in one JPEG. Real progressive encoders write about 10. */
export const MAX_JPEG_SCANS = 100;

/** What a checked JPEG's frame header says. */
export interface JpegHeader {
  width: number;
  height: number;
  /** Colour components (1 grey, 3 YCbCr, 4 CMYK). */
  components: number;
  progressive: boolean;
  scans: number;
}

/** SOF markers jpeg-js decodes: baseline, extended sequential, progressive (all Huffman-coded). */
const SUPPORTED_FRAMES = new Set([0xc0, 0xc1, 0xc2]);

function isFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function fail(message: string): ImageDecodeError {
  return new ImageDecodeError(`JPEG decode failed: ${message}`);
}

interface Frame extends Omit<JpegHeader, "scans"> {
  /** 8x8 blocks of all components, each padded to whole blocks. */
  blocks: number;
}

/**
 * Validates a JPEG's markers, checks its size against `maxPixels` and counts its scans. Returns the
 * header. Throws {@link ImageDecodeError} naming the marker and byte offset, or {@link ImageTooLargeError}.
 */
export function checkJpeg(bytes: Uint8Array, maxPixels: number): JpegHeader {
  let frame: Frame | undefined;
  let scans = 0;
  let offset = 2; // after SOI
  while (offset < bytes.length) {
    if (bytes[offset] !== 0xff) {
      throw fail(
        `expected a marker at byte ${offset}, found 0x${bytes[offset].toString(16).padStart(2, "0")}`,
      );
    }
    while (bytes[offset] === 0xff && offset < bytes.length) offset++; // fill bytes
    if (offset >= bytes.length) break;
    const marker = bytes[offset];
    const at = offset - 1;
    offset++;
    if (marker === 0xd9) break; // EOI
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // no length
    if (offset + 2 > bytes.length) throw fail(`marker 0xff${marker.toString(16)} at byte ${at} is cut off`);
    const length = (bytes[offset] << 8) | bytes[offset + 1];
    if (length < 2 || offset + length > bytes.length) {
      throw fail(
        `segment 0xff${marker.toString(16)} at byte ${at} declares ${length} bytes, ` +
          `${bytes.length - offset} follow`,
      );
    }
    const body = bytes.subarray(offset + 2, offset + length);
    if (isFrame(marker)) {
      if (frame !== undefined) throw fail(`second frame header (SOF) at byte ${at}`);
      frame = readFrame(marker, body, at, maxPixels);
    } else if (marker === 0xdd && length !== 4) {
      throw fail(`restart interval (DRI) at byte ${at} is ${length} bytes long, expected 4`);
    } else if (marker === 0xda) {
      if (frame === undefined) throw fail(`scan (SOS) at byte ${at} comes before the frame header`);
      const count = body[0];
      if (count < 1 || count > 4 || length !== 6 + 2 * count) {
        throw fail(`scan header (SOS) at byte ${at} has ${count} components in ${length} bytes`);
      }
      if (++scans > MAX_JPEG_SCANS) {
        throw fail(`more than ${MAX_JPEG_SCANS} scans (SOS markers); the one at byte ${at} is too many`);
      }
      offset = entropyEnd(bytes, offset + length);
      continue;
    }
    offset += length;
  }
  if (frame === undefined) throw fail("no frame header (SOF marker)");
  if (scans === 0) throw fail("no scan (SOS marker)");
  // Sequential scans code each block in at least 2 bits; progressive ones can skip blocks in runs.
  const minimum = frame.progressive ? 0 : Math.ceil((frame.blocks * 2) / 8);
  if (bytes.length < minimum) {
    throw fail(
      `${frame.width}x${frame.height} has ${frame.blocks} blocks, which take at least ${minimum} bytes; ` +
        `the file has ${bytes.length}`,
    );
  }
  const { blocks: _, ...header } = frame;
  return { ...header, scans };
}

/**
 * Reads SOFn. The limits: width x height <= `maxPixels`, and the decoder's sample planes (every component
 * padded to whole 8x8 blocks) at most 4 x `maxPixels` samples, the size of an RGBA image of the limit; so
 * a 4096x4096 colour JPEG passes the default limit, as the same PNG does, and a 1 x 16 Mi one does not.
 */
function readFrame(marker: number, body: Uint8Array, at: number, maxPixels: number): Frame {
  if (!SUPPORTED_FRAMES.has(marker)) {
    throw fail(
      `frame type SOF${marker - 0xc0} at byte ${at} is not supported (baseline, extended or progressive ` +
        "Huffman JPEG only)",
    );
  }
  const [precision, components] = [body[0], body[5]];
  const height = (body[1] << 8) | body[2];
  const width = (body[3] << 8) | body[4];
  if (precision !== 8) throw fail(`sample precision ${precision} at byte ${at + 4}; only 8-bit is supported`);
  if (height === 0) throw fail(`frame height 0 at byte ${at + 5}; the height must be in the frame header`);
  if (width === 0) throw fail(`frame width 0 at byte ${at + 7}`);
  if (components < 1 || components > 4 || body.length !== 6 + 3 * components) {
    throw fail(`frame header at byte ${at} has ${components} components in ${body.length + 2} bytes`);
  }
  if (width * height > maxPixels) {
    throw new ImageTooLargeError(`JPEG is ${width}x${height} = ${width * height} pixels, limit ${maxPixels}`);
  }
  const sampling = Array.from({ length: components }, (_, i) => body[7 + 3 * i]);
  const h = sampling.map((s) => s >> 4);
  const v = sampling.map((s) => s & 15);
  if ([...h, ...v].some((f) => f < 1 || f > 4)) {
    throw fail(`frame header at byte ${at} has a sampling factor outside 1..4`);
  }
  const [hMax, vMax] = [Math.max(...h), Math.max(...v)];
  const [mcuColumns, mcuRows] = [Math.ceil(width / (8 * hMax)), Math.ceil(height / (8 * vMax))];
  // The decoder allocates whole MCUs of blocks per component, 64 samples a block.
  const blocks = h.reduce((sum, hi, i) => sum + mcuColumns * hi * mcuRows * v[i], 0);
  if (blocks * 64 > 4 * maxPixels) {
    throw new ImageTooLargeError(
      `JPEG is ${width}x${height} with ${components} components: ${blocks} blocks of 64 samples to decode, ` +
        `limit ${4 * maxPixels} samples (4 x ${maxPixels} pixels)`,
    );
  }
  return { width, height, components, progressive: marker === 0xc2, blocks };
}

/** The offset of the first marker after a scan's entropy-coded data (stuffed 0xff00 and RSTn skipped). */
function entropyEnd(bytes: Uint8Array, from: number): number {
  for (let i = from; i + 1 < bytes.length; i++) {
    if (bytes[i] !== 0xff) continue;
    const next = bytes[i + 1];
    if (next === 0x00 || (next >= 0xd0 && next <= 0xd7) || next === 0xff) continue;
    return i;
  }
  return bytes.length;
}
