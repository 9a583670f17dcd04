/**
 * Image-style baselines applied to the log-mel feature map (the model's input): spatial smoothing
 * (a median filter, Xu et al.'s feature squeezing; the paper's SS uses window 2) and bit-depth
 * reduction (quantising each feature to `bits` bits over FEATURE_RANGE).
 *
 * @module
 */
import { FEATURE_RANGE, MEL_BANDS, NUM_FRAMES } from "../config.ts";

/** Default median window (the paper's SS setting, Table 3). */
export const SMOOTHING_DEFAULT_WINDOW = 2;
/** Default bit depth of the feature-squeezing baseline. */
export const BIT_DEPTH_DEFAULT_BITS = 4;

/**
 * Median filter over [frames, bands] with a `window` x `window` neighbourhood (even windows extend
 * one more cell after the centre than before, as in scipy/ART); edges are clamped.
 */
export function spatialSmoothing(
  features: Float32Array,
  window: number = SMOOTHING_DEFAULT_WINDOW,
): Float32Array {
  const out = new Float32Array(features.length);
  const before = Math.floor((window - 1) / 2);
  const values: number[] = [];
  for (let t = 0; t < NUM_FRAMES; t++) {
    for (let b = 0; b < MEL_BANDS; b++) {
      values.length = 0;
      for (let dt = -before; dt < window - before; dt++) {
        for (let db = -before; db < window - before; db++) {
          const tt = Math.min(NUM_FRAMES - 1, Math.max(0, t + dt));
          const bb = Math.min(MEL_BANDS - 1, Math.max(0, b + db));
          values.push(features[tt * MEL_BANDS + bb]);
        }
      }
      values.sort((x, y) => x - y);
      const mid = values.length >> 1;
      out[t * MEL_BANDS + b] = values.length % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    }
  }
  return out;
}

/** Quantises each feature to `2^bits` levels over FEATURE_RANGE. */
export function bitDepthReduction(
  features: Float32Array,
  bits: number = BIT_DEPTH_DEFAULT_BITS,
): Float32Array {
  const [lo, hi] = FEATURE_RANGE;
  const levels = 2 ** bits - 1;
  return features.map((v) => {
    const unit = Math.min(1, Math.max(0, (v - lo) / (hi - lo)));
    return lo + (Math.round(unit * levels) / levels) * (hi - lo);
  });
}
