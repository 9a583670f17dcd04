/**
 * Writes the hostile-input reproducers of `test/fixtures/hostile/` (issue 13): PNG and JPEG files whose
 * headers lie about their size or whose decoding costs far more than their bytes, and WAV files whose
 * headers lie. Each file is small (the bombs are mostly zlib-compressed zeros); the files are committed,
 * and this script regenerates them byte for byte:
 *
 * ```sh
 * deno run -A scripts/make_hostile_fixtures.ts
 * ```
 *
 * @module
 */
import { crc32, deflateSync } from "node:zlib";
import { concatArrays } from "../src/arrays.ts";

const OUT = new URL("../test/fixtures/hostile/", import.meta.url);

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  return concatArrays(parts, (n) => new Uint8Array(n));
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const typed = concat([new TextEncoder().encode(type), data]);
  return concat([u32(data.length), typed, u32(crc32(typed) >>> 0)]);
}

const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** An 8-bit grey PNG whose IHDR says `width` x `height` and whose one IDAT holds `idat` (deflated). */
function greyPng(width: number, height: number, idat: Uint8Array): Uint8Array {
  const ihdr = concat([u32(width), u32(height), Uint8Array.from([8, 0, 0, 0, 0])]);
  return concat([PNG_SIGNATURE, chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", new Uint8Array())]);
}

/** Filtered scanlines of a black grey image: each row is a filter byte (0) and `width` zeros. */
function blackRows(width: number, rows: number): Uint8Array {
  return new Uint8Array((width + 1) * rows);
}

function segment(marker: number, body: number[]): number[] {
  return [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];
}

/** SOI, a flat quantisation table, a one-component frame of the given SOF type and size. */
function jpegHead(sof: number, width: number, height: number): number[] {
  return [
    0xff,
    0xd8,
    ...segment(0xdb, [0x00, ...new Array(64).fill(1)]),
    ...segment(sof, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]),
  ];
}

/** A Huffman table (class 0 = DC, 1 = AC; id 0) holding one symbol with a 1-bit code ("0"). */
function oneSymbolTable(tableClass: number, symbol: number): number[] {
  const counts = new Array(16).fill(0);
  counts[0] = 1;
  return segment(0xc4, [tableClass << 4, ...counts, symbol]);
}

/** A grey baseline JPEG in which every 8x8 block is "DC difference 0, end of block": 2 bits a block. */
function flatBaselineJpeg(width: number, height: number): Uint8Array {
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  return Uint8Array.from([
    ...jpegHead(0xc0, width, height),
    ...oneSymbolTable(0, 0x00),
    ...oneSymbolTable(1, 0x00),
    ...segment(0xda, [1, 1, 0x00, 0, 63, 0]),
    ...new Array(Math.ceil(blocks * 2 / 8)).fill(0),
    0xff,
    0xd9,
  ]);
}

/**
 * A progressive grey JPEG with `scans` AC scans, each skipping every block with end-of-band runs of 16384
 * (symbol 0xE0 and 14 zero bits): a few bytes a scan, yet a decoder visits every block in every scan.
 */
function manyScanJpeg(width: number, height: number, scans: number): Uint8Array {
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  const runs = Math.ceil(blocks / 16384);
  const entropy = new Array(Math.ceil(runs * 15 / 8)).fill(0);
  const scan = [...segment(0xda, [1, 1, 0x00, 1, 63, 0]), ...entropy];
  const body: number[] = [];
  for (let i = 0; i < scans; i++) body.push(...scan);
  return Uint8Array.from([...jpegHead(0xc2, width, height), ...oneSymbolTable(1, 0xe0), ...body, 0xff, 0xd9]);
}

/** A 16-bit PCM WAV: header and `frames` of silence; `dataSize` overrides the data chunk's size. */
function wav(options: { rate: number; channels: number; frames: number; dataSize?: number }): Uint8Array {
  const blockAlign = options.channels * 2;
  const bytes = options.frames * blockAlign;
  const out = new Uint8Array(44 + bytes);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode("RIFF"), 0);
  view.setUint32(4, 36 + bytes, true);
  out.set(new TextEncoder().encode("WAVEfmt "), 8);
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, options.channels, true);
  view.setUint32(24, options.rate, true);
  view.setUint32(28, options.rate * blockAlign, true);
  view.setUint16(32, blockAlign, true);
  view.setUint16(34, 16, true);
  out.set(new TextEncoder().encode("data"), 36);
  view.setUint32(40, options.dataSize ?? bytes, true);
  return out;
}

const deflate = (data: Uint8Array) => new Uint8Array(deflateSync(data, { level: 9 }));

/** File name -> bytes, and what each reproduces. */
export const HOSTILE_FIXTURES: Record<string, () => Uint8Array> = {
  // 1 x 16 Mi grey pixels, within the default pixel limit: 16 Mi one-pixel rows.
  "png_1x16777216.png": () => greyPng(1, 16 * 1024 * 1024, deflate(blackRows(1, 16 * 1024 * 1024))),
  // A valid 4096 x 4096 grey PNG (16 KiB; 16 MiB of pixels): the bomb sent 32 times in one request.
  "png_4096x4096.png": () => greyPng(4096, 4096, deflate(blackRows(4096, 4096))),
  // A valid 4096 x 4096 grey baseline JPEG (64 KiB).
  "jpeg_4096x4096.jpg": () => flatBaselineJpeg(4096, 4096),
  // A progressive 1024 x 1024 JPEG with 10,000 scans.
  "jpeg_10000_scans.jpg": () => manyScanJpeg(1024, 1024, 10_000),
  // A baseline JPEG declaring 4000 x 4000 in 152 bytes.
  "jpeg_4000x4000_tiny.jpg": () => {
    const head = [...jpegHead(0xc0, 4000, 4000), ...oneSymbolTable(0, 0x00), ...oneSymbolTable(1, 0x00)];
    const sos = segment(0xda, [1, 1, 0x00, 0, 63, 0]);
    const pad = 152 - head.length - sos.length - 2;
    return Uint8Array.from([...head, ...sos, ...new Array(pad).fill(0), 0xff, 0xd9]);
  },
  // IHDR width 0, height 28, with a well-formed (empty-row) IDAT.
  "png_zero_width.png": () => greyPng(0, 28, deflate(blackRows(0, 28))),
  // 28 x 28 declared, 10 rows of data.
  "png_short_idat.png": () => greyPng(28, 28, deflate(blackRows(28, 10))),
  // 28 x 28 declared, an empty IDAT chunk.
  "png_empty_idat.png": () => greyPng(28, 28, new Uint8Array()),
  // 28 x 28 declared, 4096 rows of data.
  "png_long_idat.png": () => greyPng(28, 28, deflate(blackRows(28, 4096))),
  // data chunk declares 4 GiB - 1 (a streaming writer's placeholder), 1 s of audio follows.
  "wav_data_size_overstated.wav": () => wav({ rate: 8000, channels: 1, frames: 8000, dataSize: 0xffffffff }),
  // 9 channels (more than the 8 accepted).
  "wav_9_channels.wav": () => wav({ rate: 8000, channels: 9, frames: 100 }),
  // 500 Hz (below the 1 kHz floor).
  "wav_500_hz.wav": () => wav({ rate: 500, channels: 1, frames: 500 }),
  // 1000 Hz, 40 s of mono audio in 80 KB: over a 30 s duration limit.
  "wav_40_seconds.wav": () => wav({ rate: 1000, channels: 1, frames: 40_000 }),
};

if (import.meta.main) {
  await Deno.mkdir(OUT, { recursive: true });
  for (const [name, make] of Object.entries(HOSTILE_FIXTURES)) {
    const bytes = make();
    await Deno.writeFile(new URL(name, OUT), bytes);
    console.log(`${name}: ${bytes.length} bytes`);
  }
}
