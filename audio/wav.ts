/**
 * WAV in and out: strict header validation, decoding with `wav-decoder` (PCM 8/16/24/32-bit,
 * IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE), mixing to mono, band-limited resampling to the model's
 * rate, and encoding with `wav-encoder`.
 *
 * @module
 */
import wavDecoder from "wav-decoder";
import wavEncoder from "wav-encoder";
import { DEFAULT_MAX_SECONDS, MODEL_SAMPLE_RATE } from "./config.ts";
import { AudioInputError } from "./errors.ts";
import { resample } from "./resample.ts";

/** Lowest and highest sample rates accepted (Hz). */
export const SAMPLE_RATE_LIMITS: readonly [number, number] = [1000, 384000];

/** Most channels accepted in one file. */
export const MAX_CHANNELS = 8;

const FORMAT_PCM = 0x0001;
const FORMAT_FLOAT = 0x0003;
const FORMAT_EXTENSIBLE = 0xfffe;

/** What the header of a valid WAV says, with where its samples lie. */
export interface WavHeader {
  /** 1 = integer PCM, 3 = IEEE float (WAVE_FORMAT_EXTENSIBLE is resolved to its sub-format). */
  format: 1 | 3;
  channels: number;
  sampleRate: number;
  bitDepth: number;
  /** Bytes per sample frame (all channels). */
  blockAlign: number;
  /** Byte offset of the first sample in the file. */
  dataOffset: number;
  /** Bytes of sample data (whole frames only). */
  dataBytes: number;
  /** Sample frames in the file. */
  frames: number;
  durationSeconds: number;
}

/** Options of {@link parseWavHeader} and {@link decodeWav}. */
export interface WavLimits {
  /** Longest accepted clip in seconds (default {@link DEFAULT_MAX_SECONDS}). */
  maxSeconds?: number;
}

function fourCC(view: DataView, offset: number): string {
  let text = "";
  for (let i = 0; i < 4; i++) text += String.fromCharCode(view.getUint8(offset + i));
  return text;
}

/**
 * Validates a WAV file's header and chunk layout without decoding samples. Throws
 * {@link AudioInputError} naming the field and byte offset of the first problem.
 */
export function parseWavHeader(bytes: Uint8Array, limits: WavLimits = {}): WavHeader {
  const maxSeconds = limits.maxSeconds ?? DEFAULT_MAX_SECONDS;
  if (bytes.length < 12) {
    throw new AudioInputError(
      "truncated-header",
      `not a WAV file: ${bytes.length} bytes, a RIFF/WAVE header needs at least 12`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const riff = fourCC(view, 0);
  if (riff !== "RIFF") {
    const why = riff === "RIFX" || riff === "RF64"
      ? `${riff} (big-endian or 64-bit WAV) is not supported`
      : `bytes 0-3 are ${JSON.stringify(riff)}, expected "RIFF"`;
    throw new AudioInputError("not-wav", `not a WAV file: ${why}`);
  }
  if (fourCC(view, 8) !== "WAVE") {
    throw new AudioInputError(
      "not-wav",
      `not a WAV file: bytes 8-11 are ${JSON.stringify(fourCC(view, 8))}, expected "WAVE"`,
    );
  }
  let offset = 12;
  let fmt: Omit<WavHeader, "dataOffset" | "dataBytes" | "frames" | "durationSeconds"> | null = null;
  while (offset + 8 <= bytes.length) {
    const id = fourCC(view, offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === "fmt ") {
      if (size < 16 || body + 16 > bytes.length) {
        throw new AudioInputError(
          "truncated-header",
          `WAV "fmt " chunk at byte ${offset} is ${size} bytes (file has ${
            bytes.length - body
          } left); needs 16`,
        );
      }
      let tag = view.getUint16(body, true);
      const channels = view.getUint16(body + 2, true);
      const sampleRate = view.getUint32(body + 4, true);
      const blockAlign = view.getUint16(body + 12, true);
      const bitDepth = view.getUint16(body + 14, true);
      if (tag === FORMAT_EXTENSIBLE) {
        if (size < 40 || body + 40 > bytes.length) {
          throw new AudioInputError(
            "truncated-header",
            `WAVE_FORMAT_EXTENSIBLE "fmt " chunk at byte ${offset} is ${size} bytes; needs 40`,
          );
        }
        tag = view.getUint16(body + 24, true); // first two bytes of the sub-format GUID
      }
      if (tag !== FORMAT_PCM && tag !== FORMAT_FLOAT) {
        throw new AudioInputError(
          "unsupported-format",
          `WAV format tag 0x${
            tag.toString(16)
          } at byte ${body} is not supported (only PCM 0x1 and float 0x3)`,
        );
      }
      if (channels < 1 || channels > MAX_CHANNELS) {
        throw new AudioInputError(
          "bad-channels",
          `WAV channel count ${channels} at byte ${body + 2} is outside 1..${MAX_CHANNELS}`,
        );
      }
      if (sampleRate < SAMPLE_RATE_LIMITS[0] || sampleRate > SAMPLE_RATE_LIMITS[1]) {
        throw new AudioInputError(
          "bad-sample-rate",
          `WAV sample rate ${sampleRate} Hz at byte ${body + 4} is outside ` +
            `${SAMPLE_RATE_LIMITS[0]}..${SAMPLE_RATE_LIMITS[1]} Hz`,
        );
      }
      const depths = tag === FORMAT_PCM ? [8, 16, 24, 32] : [32, 64];
      if (!depths.includes(bitDepth)) {
        throw new AudioInputError(
          "bad-bit-depth",
          `WAV bit depth ${bitDepth} at byte ${body + 14} is not supported for ` +
            `${tag === FORMAT_PCM ? "PCM" : "float"} (expected ${depths.join("/")})`,
        );
      }
      if (blockAlign !== channels * bitDepth / 8) {
        throw new AudioInputError(
          "bad-block-align",
          `WAV block align ${blockAlign} at byte ${body + 12} does not equal channels x bytes per sample ` +
            `(${channels * bitDepth / 8})`,
        );
      }
      fmt = { format: tag as 1 | 3, channels, sampleRate, bitDepth, blockAlign };
    } else if (id === "data") {
      if (fmt === null) {
        throw new AudioInputError(
          "missing-fmt",
          `WAV "data" chunk at byte ${offset} comes before any "fmt " chunk`,
        );
      }
      if (size === 0) {
        throw new AudioInputError("empty-data", `WAV "data" chunk at byte ${offset} has zero length`);
      }
      if (body + size > bytes.length) {
        throw new AudioInputError(
          "truncated-data",
          `WAV "data" chunk at byte ${offset} declares ${size} bytes but only ${bytes.length - body} follow`,
        );
      }
      const frames = Math.floor(size / fmt.blockAlign);
      if (frames === 0) {
        throw new AudioInputError(
          "empty-data",
          `WAV "data" chunk at byte ${offset} holds ${size} bytes, less than one ${fmt.blockAlign}-byte frame`,
        );
      }
      const durationSeconds = frames / fmt.sampleRate;
      if (durationSeconds > maxSeconds) {
        throw new AudioInputError(
          "too-long",
          `WAV clip is ${durationSeconds.toFixed(2)} s long; the limit is ${maxSeconds} s`,
        );
      }
      return { ...fmt, dataOffset: body, dataBytes: frames * fmt.blockAlign, frames, durationSeconds };
    }
    offset = body + size + (size & 1); // RIFF chunks are padded to an even size
  }
  throw new AudioInputError(
    fmt === null ? "missing-fmt" : "missing-data",
    `WAV file ends (${bytes.length} bytes) without a ${fmt === null ? '"fmt "' : '"data"'} chunk`,
  );
}

/** Decoded audio: mono samples in [-1, 1] at `sampleRate`. */
export interface DecodedAudio {
  samples: Float32Array;
  sampleRate: number;
  /** Rate and layout of the file before mixing and resampling. */
  source: { sampleRate: number; channels: number; bitDepth: number; format: 1 | 3; durationSeconds: number };
}

/** Options of {@link decodeWav}. */
export interface DecodeOptions extends WavLimits {
  /** Output rate; `null` keeps the file's rate (default {@link MODEL_SAMPLE_RATE}). */
  targetSampleRate?: number | null;
}

/** A canonical 44-byte-header copy (tag 1 or 3) that wav-decoder can read. */
function canonicalWav(bytes: Uint8Array, header: WavHeader): ArrayBuffer {
  const out = new Uint8Array(44 + header.dataBytes);
  const view = new DataView(out.buffer);
  out.set([0x52, 0x49, 0x46, 0x46], 0);
  view.setUint32(4, 36 + header.dataBytes, true);
  out.set([0x57, 0x41, 0x56, 0x45, 0x66, 0x6d, 0x74, 0x20], 8);
  view.setUint32(16, 16, true);
  view.setUint16(20, header.format, true);
  view.setUint16(22, header.channels, true);
  view.setUint32(24, header.sampleRate, true);
  view.setUint32(28, header.sampleRate * header.blockAlign, true);
  view.setUint16(32, header.blockAlign, true);
  view.setUint16(34, header.bitDepth, true);
  out.set([0x64, 0x61, 0x74, 0x61], 36);
  view.setUint32(40, header.dataBytes, true);
  out.set(bytes.subarray(header.dataOffset, header.dataOffset + header.dataBytes), 44);
  return out.buffer;
}

/**
 * Decodes a WAV file to mono float samples, resampled to the model's rate by default.
 * Throws {@link AudioInputError} for anything that is not a valid, bounded WAV.
 */
export function decodeWav(bytes: Uint8Array, options: DecodeOptions = {}): DecodedAudio {
  const header = parseWavHeader(bytes, options);
  // 8-bit: wav-decoder's symmetric mode maps the silence code 128 to 0.0039; its default maps it to 0.
  const decoded = wavDecoder.decode.sync(canonicalWav(bytes, header), {
    symmetric: header.bitDepth !== 8,
  }) as {
    channelData: Float32Array[];
  };
  const channels = decoded.channelData;
  const mono = new Float32Array(header.frames);
  for (const channel of channels) {
    for (let i = 0; i < mono.length; i++) mono[i] += channel[i];
  }
  const gain = 1 / channels.length;
  const dataView = new DataView(bytes.buffer, bytes.byteOffset + header.dataOffset, header.dataBytes);
  for (let i = 0; i < mono.length; i++) {
    if (!Number.isFinite(mono[i])) {
      throw new AudioInputError(
        "non-finite",
        `WAV sample frame ${i} (byte ${header.dataOffset + i * header.blockAlign}) is not a finite number`,
      );
    }
    mono[i] *= gain;
  }
  if (header.format === 1 && header.bitDepth === 24) fixMinimum24(mono, channels, dataView, header);
  if (header.format === 3) {
    for (let i = 0; i < mono.length; i++) mono[i] = Math.max(-1, Math.min(1, mono[i]));
  }
  const target = options.targetSampleRate === undefined ? MODEL_SAMPLE_RATE : options.targetSampleRate;
  const rate = target ?? header.sampleRate;
  return {
    samples: rate === header.sampleRate ? mono : resample(mono, header.sampleRate, rate),
    sampleRate: rate,
    source: {
      sampleRate: header.sampleRate,
      channels: header.channels,
      bitDepth: header.bitDepth,
      format: header.format,
      durationSeconds: header.durationSeconds,
    },
  };
}

/** wav-decoder 1.3.0 reads the 24-bit code -8388608 (bytes 00 00 80) as +1; put those back to -1. */
function fixMinimum24(mono: Float32Array, channels: Float32Array[], data: DataView, header: WavHeader): void {
  for (let ch = 0; ch < channels.length; ch++) {
    const channel = channels[ch];
    for (let i = 0; i < channel.length; i++) {
      if (channel[i] !== 1) continue;
      const at = i * header.blockAlign + ch * 3;
      if (data.getUint8(at) === 0 && data.getUint8(at + 1) === 0 && data.getUint8(at + 2) === 0x80) {
        mono[i] -= 2 / channels.length;
      }
    }
  }
}

/** Options of {@link encodeWav}. */
export interface EncodeOptions {
  /** 8, 16, 24 or 32-bit integer PCM (default 16), ignored when `float` is set. */
  bitDepth?: 8 | 16 | 24 | 32;
  /** Write 32-bit IEEE float samples. */
  float?: boolean;
}

/**
 * Encodes mono (one array) or multi-channel samples in [-1, 1] as a WAV file with `wav-encoder`.
 * Integer PCM uses the symmetric mapping `round(x * 2^(bits-1))`, the inverse of {@link decodeWav}.
 */
export function encodeWav(
  samples: Float32Array | Float32Array[],
  sampleRate: number,
  options: EncodeOptions = {},
): Uint8Array {
  const channelData = Array.isArray(samples) ? samples : [samples];
  const buffer = wavEncoder.encode.sync({ sampleRate, channelData }, {
    bitDepth: options.bitDepth ?? 16,
    float: options.float ?? false,
    symmetric: true,
  }) as ArrayBuffer;
  return new Uint8Array(buffer);
}
