/**
 * Down-sampling (DS) baseline (paper Sec. 6.4.1, Table 4; Yang et al. 2019): resample the waveform
 * to a lower rate with the band-limited resampler and back, removing everything above the lower
 * Nyquist frequency. The paper takes 16 kHz VCTK to 8 kHz; on 8 kHz FSDD the same factor is 4 kHz.
 *
 * @module
 */
import { MODEL_SAMPLE_RATE } from "../config.ts";
import { resample } from "../resample.ts";

/** Default intermediate rate: half the model's rate, the paper's 16 -> 8 kHz factor. */
export const DOWNSAMPLE_DEFAULT_RATE = MODEL_SAMPLE_RATE / 2;

/** Down-samples `samples` (at `sampleRate`) to `lowRate` and back; same length as the input. */
export function downsampleDefense(
  samples: Float32Array,
  lowRate: number = DOWNSAMPLE_DEFAULT_RATE,
  sampleRate: number = MODEL_SAMPLE_RATE,
): Float32Array {
  const back = resample(resample(samples, sampleRate, lowRate), lowRate, sampleRate);
  const out = new Float32Array(samples.length);
  out.set(back.subarray(0, samples.length));
  return out;
}
