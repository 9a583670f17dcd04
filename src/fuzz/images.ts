/**
 * Hostile PNG and JPEG files, built byte by byte: headers that lie about the size, zero dimensions,
 * truncated image data, a zlib bomb, and JPEGs with many scans or a huge declared size. Each is small on the
 * wire (a few KiB to a few hundred) so a fuzz run stays fast.
 *
 * @module
 */
import { deflateSync } from "node:zlib";
import { encodeJpeg, encodePng } from "../image/codec.ts";
import type { Rand } from "./rand.ts";

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  const typed = new TextEncoder().encode(type);
  out.set(typed, 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function ihdr(width: number, height: number, colorType: number, bitDepth = 8): Uint8Array {
  const data = new Uint8Array(13);
  const view = new DataView(data.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  data.set([bitDepth, colorType, 0, 0, 0], 8);
  return data;
}

/** A PNG file from its parts; IHDR may say anything, IDAT holds `idat` as given (already deflated). */
function rawPng(width: number, height: number, idat: Uint8Array, colorType = 0): Uint8Array {
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr(width, height, colorType)),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Deflated gray scanlines (filter byte 0 + `width` pixels per row). */
function grayScanlines(width: number, height: number, rand: Rand): Uint8Array {
  const raw = new Uint8Array((width + 1) * height);
  for (let y = 0; y < height; y++) raw.set(rand.bytes(width), y * (width + 1) + 1);
  return deflateSync(raw);
}

/** A valid gray PNG of random pixels. */
export function validPng(width: number, height: number, rand: Rand): Uint8Array {
  return encodePng({ width, height, channels: 1, data: rand.bytes(width * height) });
}

/** A valid RGB JPEG of random pixels. */
export function validJpeg(width: number, height: number, rand: Rand): Uint8Array {
  return encodeJpeg({ width, height, channels: 3, data: rand.bytes(width * height * 3) }, 80);
}

/** The hostile image kinds, each named for the reports. */
export const HOSTILE_IMAGES = {
  /** IHDR says 28x28, IDAT holds 4x4 worth of rows. */
  "png-header-larger-than-data": (r: Rand) => rawPng(28, 28, grayScanlines(4, 4, r)),
  /** IHDR says 4x4, IDAT holds 64x64 worth of rows. */
  "png-header-smaller-than-data": (r: Rand) => rawPng(4, 4, grayScanlines(64, 64, r)),
  /** Zero width. */
  "png-zero-width": (r: Rand) => rawPng(0, 28, grayScanlines(1, 28, r)),
  /** Zero height. */
  "png-zero-height": (r: Rand) => rawPng(28, 0, grayScanlines(28, 1, r)),
  /** A declared 2^31-1 x 2^31-1 image. */
  "png-huge-declared": (r: Rand) => rawPng(0x7fffffff, 0x7fffffff, grayScanlines(8, 8, r)),
  /** A declared 65535 x 65535 image (over any sane pixel limit). */
  "png-65535-square": (r: Rand) => rawPng(65535, 65535, grayScanlines(8, 8, r)),
  /** The IDAT stream cut in half. */
  "png-truncated-idat": (r: Rand) => {
    const idat = grayScanlines(28, 28, r);
    return rawPng(28, 28, idat.subarray(0, idat.length >> 1));
  },
  /** The file cut at a random byte. */
  "png-truncated-file": (r: Rand) => {
    const png = validPng(28, 28, r);
    return png.subarray(0, r.int(8, png.length - 1));
  },
  /** IDAT that is not zlib at all. */
  "png-garbage-idat": (r: Rand) => rawPng(28, 28, r.bytes(200)),
  /** zlib bomb: IHDR says 28x28, IDAT inflates to 32 MiB of zeros (about 32 KiB on the wire). */
  "png-zlib-bomb": () => zeros(32 * 1024 * 1024, (idat) => rawPng(28, 28, idat)),
  /** A consistent 2048x2048 gray image of zeros: 4 Mpixel to decode from about 4 KiB. */
  "png-decompression-heavy": () => zeros(2049 * 2048, (idat) => rawPng(2048, 2048, idat)),
  /** Bad colour type / bit depth combination (colour type 3, palette, without a PLTE chunk). */
  "png-palette-without-plte": (r: Rand) => rawPng(28, 28, grayScanlines(28, 28, r), 3),
  /** A valid JPEG whose SOF0 claims 65535 x 65535. */
  "jpeg-huge-declared": (r: Rand) => patchJpegSize(validJpeg(16, 16, r), 65535, 65535),
  /** A valid JPEG whose SOF0 claims 0 x 0. */
  "jpeg-zero-size": (r: Rand) => patchJpegSize(validJpeg(16, 16, r), 0, 0),
  /** The scan (SOS + entropy data) repeated 300 times before EOI. */
  "jpeg-many-scans": (r: Rand) => repeatScan(validJpeg(16, 16, r), 300),
  /** The file cut at a random byte. */
  "jpeg-truncated": (r: Rand) => {
    const jpeg = validJpeg(28, 28, r);
    return jpeg.subarray(0, r.int(2, jpeg.length - 1));
  },
  /** The JPEG magic followed by random bytes. */
  "jpeg-magic-then-garbage": (r: Rand) => Uint8Array.from([0xff, 0xd8, 0xff, ...r.bytes(r.int(0, 300))]),
  /** Random bytes (no known magic). */
  "image-random-bytes": (r: Rand) => r.bytes(r.int(0, 512)),
  /** An empty image. */
  "image-empty": () => new Uint8Array(),
} as const satisfies Record<string, (rand: Rand) => Uint8Array>;

/** Name of a hostile image kind. */
export type HostileImage = keyof typeof HOSTILE_IMAGES;

const deflatedZeros = new Map<number, Uint8Array>();

/** `build` applied to `size` deflated zeros, deflated once per size (deflating 32 MiB takes a while). */
function zeros(size: number, build: (idat: Uint8Array) => Uint8Array): Uint8Array {
  if (!deflatedZeros.has(size)) deflatedZeros.set(size, deflateSync(new Uint8Array(size), { level: 9 }));
  return build(deflatedZeros.get(size)!);
}

function findMarker(jpeg: Uint8Array, marker: number): number {
  for (let i = 2; i + 1 < jpeg.length; i++) if (jpeg[i] === 0xff && jpeg[i + 1] === marker) return i;
  return -1;
}

/** The JPEG with its SOF0 height and width replaced. */
function patchJpegSize(jpeg: Uint8Array, height: number, width: number): Uint8Array {
  const out = jpeg.slice();
  const sof = findMarker(out, 0xc0);
  const view = new DataView(out.buffer);
  view.setUint16(sof + 5, height);
  view.setUint16(sof + 7, width);
  return out;
}

/** The JPEG with its scan (from SOS up to EOI) repeated `times` times. */
function repeatScan(jpeg: Uint8Array, times: number): Uint8Array {
  const sos = findMarker(jpeg, 0xda);
  const eoi = jpeg.length - 2;
  const scan = jpeg.subarray(sos, eoi);
  const out = new Uint8Array(sos + scan.length * times + 2);
  out.set(jpeg.subarray(0, sos));
  for (let i = 0; i < times; i++) out.set(scan, sos + i * scan.length);
  out.set([0xff, 0xd9], out.length - 2);
  return out;
}
