/**
 * STFT and inverse STFT (weighted overlap-add) with `fft.js`, on exactly the frames the features
 * read: centred 256-sample frames, 128-sample hop, meyda's Hann window, samples in 16-bit units.
 *
 * @module
 */
import FFT from "fft.js";
import { CLIP_SAMPLES, FRAME_SIZE, HOP_SIZE, MEL_BANDS, NUM_FRAMES, PCM_SCALE } from "./config.ts";
import { analysisWindow, frameAt, melFilterBank } from "./features.ts";

/** Bins of a one-sided spectrum, DC to Nyquist. */
export const SPECTRUM_BINS = FRAME_SIZE / 2 + 1;

/** A one-sided complex spectrogram: `re`/`im` are row-major [NUM_FRAMES, SPECTRUM_BINS]. */
export interface Spectrogram {
  re: Float64Array;
  im: Float64Array;
}

const fft = new FFT(FRAME_SIZE);
const WINDOW = analysisWindow();

/** STFT of a clip of {@link CLIP_SAMPLES} samples in [-1, 1], in 16-bit units. */
export function stft(clip: Float32Array): Spectrogram {
  const re = new Float64Array(NUM_FRAMES * SPECTRUM_BINS);
  const im = new Float64Array(NUM_FRAMES * SPECTRUM_BINS);
  const input = new Array<number>(FRAME_SIZE);
  const out = fft.createComplexArray() as number[];
  for (let t = 0; t < NUM_FRAMES; t++) {
    const frame = frameAt(clip, t);
    for (let i = 0; i < FRAME_SIZE; i++) input[i] = frame[i] * WINDOW[i];
    fft.realTransform(out, input);
    for (let k = 0; k < SPECTRUM_BINS; k++) {
      re[t * SPECTRUM_BINS + k] = out[2 * k];
      im[t * SPECTRUM_BINS + k] = out[2 * k + 1];
    }
  }
  return { re, im };
}

/**
 * Inverse of {@link stft}: inverse FFT of each frame, synthesis with the same window, overlap-add
 * normalised by the summed squared window (exact reconstruction for an unmodified spectrogram).
 * Returns {@link CLIP_SAMPLES} samples in [-1, 1] units (not clipped).
 */
export function istft(spectrogram: Spectrogram): Float32Array {
  const padded = CLIP_SAMPLES + FRAME_SIZE;
  const sum = new Float64Array(padded);
  const weight = new Float64Array(padded);
  const full = fft.createComplexArray() as number[];
  const out = fft.createComplexArray() as number[];
  for (let t = 0; t < NUM_FRAMES; t++) {
    for (let k = 0; k < SPECTRUM_BINS; k++) {
      full[2 * k] = spectrogram.re[t * SPECTRUM_BINS + k];
      full[2 * k + 1] = spectrogram.im[t * SPECTRUM_BINS + k];
    }
    for (let k = SPECTRUM_BINS; k < FRAME_SIZE; k++) { // Hermitian mirror
      full[2 * k] = full[2 * (FRAME_SIZE - k)];
      full[2 * k + 1] = -full[2 * (FRAME_SIZE - k) + 1];
    }
    fft.inverseTransform(out, full);
    const start = t * HOP_SIZE; // in the padded signal, where sample 0 sits at FRAME_SIZE / 2
    for (let i = 0; i < FRAME_SIZE; i++) {
      sum[start + i] += out[2 * i] * WINDOW[i];
      weight[start + i] += WINDOW[i] * WINDOW[i];
    }
  }
  const clip = new Float32Array(CLIP_SAMPLES);
  for (let n = 0; n < CLIP_SAMPLES; n++) {
    const at = n + FRAME_SIZE / 2;
    clip[n] = weight[at] > 1e-9 ? sum[at] / weight[at] / PCM_SCALE : 0;
  }
  return clip;
}

/** meyda's mel bank restricted to the bins meyda reads (it skips Nyquist): [MEL_BANDS][SPECTRUM_BINS]. */
export function melBank(): Float64Array[] {
  return melFilterBank().map((row) => Float64Array.from(row.map((w, k) => (k < FRAME_SIZE / 2 ? w : 0))));
}

/** Mel powers of a spectrogram's power values: row-major [NUM_FRAMES, MEL_BANDS]. */
export function melPowers(power: Float64Array, bank: Float64Array[]): Float64Array {
  const mel = new Float64Array(NUM_FRAMES * MEL_BANDS);
  for (let t = 0; t < NUM_FRAMES; t++) {
    for (let b = 0; b < MEL_BANDS; b++) {
      let total = 0;
      const row = bank[b];
      for (let k = 0; k < SPECTRUM_BINS; k++) total += row[k] * power[t * SPECTRUM_BINS + k];
      mel[t * MEL_BANDS + b] = total;
    }
  }
  return mel;
}
