/**
 * Quantization (QTZ) baseline (paper Sec. 6.4.1, Table 4; Yang et al. 2019): round each sample, in
 * 16-bit units, to the nearest multiple of `q` (paper: q = 256), erasing perturbations smaller than
 * half a step.
 *
 * @module
 */
import { PCM_SCALE } from "../config.ts";

/** The paper's step, in 16-bit units. */
export const QUANTIZE_DEFAULT_STEP = 256;

/** Rounds samples in [-1, 1] to multiples of `step / 32768`, clipped to the multiples a 16-bit sample holds. */
export function quantizeWaveform(samples: Float32Array, step: number = QUANTIZE_DEFAULT_STEP): Float32Array {
  if (!(step > 0)) throw new RangeError(`quantizeWaveform: step must be positive, got ${step}`);
  const top = Math.floor((PCM_SCALE - 1) / step) * step; // largest multiple of step a 16-bit sample holds
  const bottom = -Math.floor(PCM_SCALE / step) * step;
  return samples.map((v) =>
    Math.max(bottom, Math.min(top, Math.round((v * PCM_SCALE) / step) * step)) / PCM_SCALE
  );
}
