/**
 * Defended audio out: turns a defended log-mel feature map back into a waveform that keeps the
 * original phase. Each frame's bin powers are rescaled so that their mel powers meet the defended
 * targets (multiplicative updates that change the original as little as the targets allow), the
 * spectrum is rebuilt with the original phase, inverted by overlap-add, and the targets are corrected
 * a few times for what overlap-add smears, so the WAV featurizes back close to the defended features.
 *
 * @module
 */
import { FEATURE_RANGE, MEL_BANDS, NUM_FRAMES } from "./config.ts";
import { fitToClip } from "./clip.ts";
import { istft, melBank, melPowers, type Spectrogram, SPECTRUM_BINS, stft } from "./stft.ts";

/** Options of {@link resynthesize}. */
export interface ResynthesisOptions {
  /** Outer corrections for overlap-add (default 2; 0 = one plain pass); the closest pass is kept. */
  corrections?: number;
  /** Multiplicative updates per pass (default 30). */
  updates?: number;
}

/** Power floor (16-bit units squared) so that silent bins can still be given energy. */
const POWER_FLOOR = 1e-2;

function powerOf(spectrogram: Spectrogram): Float64Array {
  const power = new Float64Array(spectrogram.re.length);
  for (let i = 0; i < power.length; i++) power[i] = spectrogram.re[i] ** 2 + spectrogram.im[i] ** 2;
  return power;
}

interface SparseBand {
  bins: Int32Array;
  weights: Float64Array;
}

function sparseBank(bank: Float64Array[]): SparseBand[] {
  return bank.map((row) => {
    const bins: number[] = [];
    row.forEach((w, k) => w > 0 && bins.push(k));
    return { bins: Int32Array.from(bins), weights: Float64Array.from(bins, (k) => row[k]) };
  });
}

/** Per-bin powers whose mel powers approach `targetMel`, starting from (and staying near) `power`. */
function fitBinPowers(power: Float64Array, targetMel: Float64Array, bands: SparseBand[], updates: number) {
  const fitted = power.map((p) => Math.max(p, POWER_FLOOR));
  const coverage = new Float64Array(SPECTRUM_BINS);
  for (const band of bands) band.bins.forEach((k, j) => coverage[k] += band.weights[j]);
  const numerator = new Float64Array(SPECTRUM_BINS);
  for (let t = 0; t < NUM_FRAMES; t++) {
    const offset = t * SPECTRUM_BINS;
    for (let iteration = 0; iteration < updates; iteration++) {
      numerator.fill(0);
      let settled = true;
      for (let b = 0; b < MEL_BANDS; b++) {
        const { bins, weights } = bands[b];
        let current = 0;
        for (let j = 0; j < bins.length; j++) current += weights[j] * fitted[offset + bins[j]];
        const ratio = current > 0 ? targetMel[t * MEL_BANDS + b] / current : 1;
        if (Math.abs(ratio - 1) > 1e-7) settled = false;
        for (let j = 0; j < bins.length; j++) numerator[bins[j]] += weights[j] * ratio;
      }
      if (settled) break;
      for (let k = 0; k < SPECTRUM_BINS; k++) {
        if (coverage[k] > 0) fitted[offset + k] *= numerator[k] / coverage[k];
      }
    }
    for (let k = 0; k < SPECTRUM_BINS; k++) if (coverage[k] === 0) fitted[offset + k] = power[offset + k];
  }
  return fitted;
}

/** A fixed pseudo-random phase for bins that had no energy (and so no phase) in the original. */
function fallbackPhase(index: number): number {
  let h = (index + 1) * 2654435761;
  h = (h ^ (h >>> 15)) >>> 0;
  return (h % 100000) / 100000 * 2 * Math.PI;
}

function withMagnitudes(original: Spectrogram, power: Float64Array): Spectrogram {
  const re = new Float64Array(power.length);
  const im = new Float64Array(power.length);
  for (let i = 0; i < power.length; i++) {
    const magnitude = Math.sqrt(power[i]);
    const originalMagnitude = Math.hypot(original.re[i], original.im[i]);
    if (originalMagnitude > 1e-9) {
      re[i] = (original.re[i] / originalMagnitude) * magnitude;
      im[i] = (original.im[i] / originalMagnitude) * magnitude;
    } else {
      const phase = fallbackPhase(i);
      re[i] = Math.cos(phase) * magnitude;
      im[i] = Math.sin(phase) * magnitude;
    }
  }
  // DC and Nyquist of a real signal are real: keep the sign, drop the imaginary part.
  for (let t = 0; t < NUM_FRAMES; t++) {
    for (const k of [0, SPECTRUM_BINS - 1]) {
      const i = t * SPECTRUM_BINS + k;
      re[i] = Math.sign(original.re[i] || 1) * Math.sqrt(power[i]);
      im[i] = 0;
    }
  }
  return { re, im };
}

/**
 * Resynthesizes a waveform from `originalSamples` (model rate; fitted to the 1-s clip as
 * `featurize` does) whose log-mel features are `defendedFeatures` ([NUM_FRAMES, MEL_BANDS], as from
 * `featurize` plus a defense). Returns the defended clip, CLIP_SAMPLES samples clipped to [-1, 1].
 */
export function resynthesize(
  originalSamples: Float32Array,
  defendedFeatures: Float32Array,
  options: ResynthesisOptions = {},
): Float32Array {
  if (defendedFeatures.length !== NUM_FRAMES * MEL_BANDS) {
    throw new RangeError(
      `defendedFeatures has ${defendedFeatures.length} values, expected ${NUM_FRAMES}x${MEL_BANDS}`,
    );
  }
  const corrections = options.corrections ?? 2;
  const updates = options.updates ?? 30;
  const bank = melBank();
  const bands = sparseBank(bank);
  const original = stft(fitToClip(originalSamples));
  const originalPower = powerOf(original);
  const wanted = Float64Array.from(
    defendedFeatures,
    (v) => Math.min(FEATURE_RANGE[1], Math.max(FEATURE_RANGE[0], v)),
  );
  const target = Float64Array.from(wanted); // log-mel targets, corrected after each pass
  let best: Float32Array = new Float32Array(0);
  let bestError = Infinity;
  for (let pass = 0; pass <= corrections; pass++) {
    const fitted = fitBinPowers(originalPower, target.map((v) => Math.expm1(Math.max(0, v))), bands, updates);
    const clip = istft(withMagnitudes(original, fitted));
    for (let i = 0; i < clip.length; i++) clip[i] = Math.max(-1, Math.min(1, clip[i]));
    const achieved = melPowers(powerOf(stft(clip)), bank);
    let error = 0;
    for (let i = 0; i < target.length; i++) {
      const miss = wanted[i] - Math.log1p(achieved[i]);
      error += Math.abs(miss);
      target[i] += miss;
    }
    // Overlap-add cannot meet targets that no signal has; keep the pass that came closest.
    if (error < bestError) {
      best = clip;
      bestError = error;
    }
    if (error / target.length < 1e-4) break;
  }
  return best;
}
