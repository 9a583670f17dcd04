/**
 * MP3 compression (MC) baseline (paper Sec. 6.4.1, Table 4; Andronic et al. 2020): encode the
 * waveform with LAME (`@breezystack/lamejs`), decode it with mpg123 (`mpg123-decoder`, WebAssembly),
 * and undo the codec delay by cross-correlation so the output lines up with the input.
 *
 * @module
 */
import { Mp3Encoder } from "@breezystack/lamejs";
import { MPEGDecoder } from "mpg123-decoder";
import { concatArrays } from "../../src/arrays.ts";
import { MODEL_SAMPLE_RATE, PCM_SCALE } from "../config.ts";

/** Default bit rate in kbit/s (MPEG-2.5 at 8 kHz allows 8..64). */
export const MP3_DEFAULT_BITRATE = 24;

let decoder: MPEGDecoder | null = null;

/** Encodes mono samples in [-1, 1] as MP3 bytes. */
export function encodeMp3(samples: Float32Array, sampleRate: number, bitrate: number = MP3_DEFAULT_BITRATE) {
  const pcm = Int16Array.from(samples, (v) => Math.max(-32768, Math.min(32767, Math.round(v * PCM_SCALE))));
  const encoder = new Mp3Encoder(1, sampleRate, bitrate);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < pcm.length; i += 1152) {
    chunks.push(Uint8Array.from(encoder.encodeBuffer(pcm.subarray(i, i + 1152))));
  }
  chunks.push(Uint8Array.from(encoder.flush()));
  return concatArrays(chunks, (n) => new Uint8Array(n));
}

/** Decodes MP3 bytes to mono samples and their rate. */
export async function decodeMp3(bytes: Uint8Array): Promise<{ samples: Float32Array; sampleRate: number }> {
  if (decoder === null) {
    decoder = new MPEGDecoder();
    await decoder.ready;
  } else {
    await decoder.reset();
  }
  const decoded = decoder.decode(bytes);
  const channels = decoded.channelData.slice(0, Math.max(1, decoded.channelData.length));
  const samples = new Float32Array(decoded.samplesDecoded);
  for (const channel of channels) {
    for (let i = 0; i < samples.length; i++) samples[i] += channel[i] / channels.length;
  }
  return { samples, sampleRate: decoded.sampleRate };
}

/** The lag (0..maxLag) at which `delayed` best matches `reference` (largest cross-correlation). */
function bestLag(reference: Float32Array, delayed: Float32Array, maxLag: number): number {
  let best = 0;
  let bestScore = -Infinity;
  for (let lag = 0; lag <= maxLag; lag++) {
    let score = 0;
    const n = Math.min(reference.length, delayed.length - lag);
    for (let i = 0; i < n; i++) score += reference[i] * delayed[i + lag];
    if (score > bestScore) {
      bestScore = score;
      best = lag;
    }
  }
  return best;
}

/** MP3 round trip of `samples` at `sampleRate`; returns the same number of samples, delay removed. */
export async function mp3Compression(
  samples: Float32Array,
  bitrate: number = MP3_DEFAULT_BITRATE,
  sampleRate: number = MODEL_SAMPLE_RATE,
): Promise<Float32Array> {
  const decoded = await decodeMp3(encodeMp3(samples, sampleRate, bitrate));
  // LAME's delay is 576 + 529 samples at most layouts; search a little beyond two frames.
  const lag = bestLag(samples, decoded.samples, Math.min(2400, Math.max(0, decoded.samples.length - 1)));
  const out = new Float32Array(samples.length);
  out.set(decoded.samples.subarray(lag, lag + samples.length));
  return out;
}
