/**
 * Valid and hostile WAV files, built byte by byte: data sizes that lie, zero channels, absurd rates and
 * depths, truncation, missing chunks. Small on the wire so a fuzz run stays fast.
 *
 * @module
 */
import type { Rand } from "./rand.ts";

/** Header fields of {@link rawWav}; each may lie about `samples`. */
interface WavFields {
  format?: number;
  channels?: number;
  rate?: number;
  bits?: number;
  /** Declared size of the data chunk (default: the real one). */
  dataSize?: number;
  /** Declared RIFF size (default: the real one). */
  riffSize?: number;
}

/** A RIFF/WAVE file with a `fmt ` chunk and a `data` chunk holding `samples` as given. */
function rawWav(samples: Uint8Array, fields: WavFields = {}): Uint8Array {
  const { format = 1, channels = 1, rate = 8000, bits = 16 } = fields;
  const out = new Uint8Array(44 + samples.length);
  const view = new DataView(out.buffer);
  const ascii = (offset: number, text: string) => out.set(new TextEncoder().encode(text), offset);
  ascii(0, "RIFF");
  view.setUint32(4, fields.riffSize ?? 36 + samples.length, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, format, true);
  view.setUint16(22, channels, true);
  view.setUint32(24, rate >>> 0, true);
  view.setUint32(28, (rate * channels * Math.max(1, bits >> 3)) >>> 0, true);
  view.setUint16(32, (channels * Math.max(1, bits >> 3)) & 0xffff, true);
  view.setUint16(34, bits, true);
  ascii(36, "data");
  view.setUint32(40, fields.dataSize ?? samples.length, true);
  out.set(samples, 44);
  return out;
}

/** `seconds` of a random-frequency sine as 16-bit mono PCM at `rate`. */
function sineSamples(rand: Rand, rate: number, seconds: number): Uint8Array {
  const n = Math.round(rate * seconds);
  const out = new Uint8Array(n * 2);
  const view = new DataView(out.buffer);
  const hz = rand.int(100, 1000);
  for (let i = 0; i < n; i++) {
    view.setInt16(i * 2, Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / rate)), true);
  }
  return out;
}

/** A valid WAV: half a second of a sine at `rate`. */
export function validWav(rand: Rand, rate: number): Uint8Array {
  return rawWav(sineSamples(rand, rate, 0.5), { rate });
}

/** The hostile WAV kinds, each named for the reports. */
export const HOSTILE_WAVS = {
  /** The data chunk claims 2 GiB. */
  "wav-data-size-lies-large": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1), { dataSize: 0x7fffffff }),
  /** The data chunk claims 0xffffffff bytes. */
  "wav-data-size-max": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1), { dataSize: 0xffffffff }),
  /** The data chunk claims fewer bytes than an odd-length sample needs. */
  "wav-data-size-odd": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1), { dataSize: 3 }),
  /** The RIFF size claims more than the file holds. */
  "wav-riff-size-lies": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1), { riffSize: 0xfffffff0 }),
  /** Zero channels. */
  "wav-zero-channels": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1), { channels: 0 }),
  /** 65535 channels. */
  "wav-many-channels": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1), { channels: 65535 }),
  /** A rate of 4 GHz. */
  "wav-huge-rate": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1), { rate: 0xfffffff0 }),
  /** A rate of 0. */
  "wav-zero-rate": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1), { rate: 0 }),
  /** 7-bit samples. */
  "wav-odd-depth": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1), { bits: 7 }),
  /** 0-bit samples. */
  "wav-zero-depth": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1), { bits: 0 }),
  /** An unknown sample format (0x1234). */
  "wav-unknown-format": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1), { format: 0x1234 }),
  /** IEEE float samples whose values are NaN. */
  "wav-float-nan": () => {
    const samples = new Uint8Array(800 * 4);
    const view = new DataView(samples.buffer);
    for (let i = 0; i < 800; i++) view.setFloat32(i * 4, NaN, true);
    return rawWav(samples, { format: 3, bits: 32 });
  },
  /** An empty data chunk. */
  "wav-empty-data": () => rawWav(new Uint8Array()),
  /** The file cut at a random byte of its header. */
  "wav-truncated-header": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1)).subarray(0, r.int(0, 43)),
  /** "RIFF" then random bytes. */
  "wav-riff-then-garbage": (r: Rand) => Uint8Array.from([0x52, 0x49, 0x46, 0x46, ...r.bytes(r.int(0, 200))]),
  /** 35 minutes declared at 8 kHz but only 0.1 s present (over any length limit if believed). */
  "wav-long-declared": (r: Rand) => rawWav(sineSamples(r, 8000, 0.1), { dataSize: 8000 * 2 * 60 * 35 }),
} as const satisfies Record<string, (rand: Rand) => Uint8Array>;

/** Name of a hostile WAV kind. */
export type HostileWav = keyof typeof HOSTILE_WAVS;
