/**
 * Split-conformal p-values (SPEC.md section 8) and the statistics that turn several detectors' scores into
 * one. With held-out benign scores `s_1..s_m` that were not used to fit the detector,
 * `p(x) = (1 + #{i : s_i >= s(x)}) / (m + 1)`; for a benign input exchangeable with them,
 * `P(p(x) <= alpha) <= alpha`. Any fixed statistic of several detectors keeps that bound when the statistic
 * itself is calibrated this way. Free of I/O.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** The scores sorted ascending (a copy), as {@link conformalPValues} wants its calibration. */
export function sortedAscending(scores: ArrayLike<number>): Float32Array {
  return Float32Array.from(scores).sort();
}

/** Number of values of the ascending `sorted` that are >= `value` (binary search). */
function countAtLeast(sorted: Float32Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return sorted.length - lo;
}

/**
 * Conformal p-value of each score against the ascending calibration scores: `(1 + #{cal >= s}) / (m + 1)`.
 * A NaN score (a detector that could not score) gets p = 1 / (m + 1), the most suspicious.
 */
export function conformalPValues(sortedCalibration: Float32Array, scores: ArrayLike<number>): Float32Array {
  if (sortedCalibration.length === 0) throw new RangeError("conformal p-values need calibration scores");
  const m = sortedCalibration.length;
  return Float32Array.from(
    { length: scores.length },
    (_, i) =>
      Number.isNaN(scores[i]) ? 1 / (m + 1) : (1 + countAtLeast(sortedCalibration, scores[i])) / (m + 1),
  );
}

/**
 * Fisher's statistic of several p-values per example, `-2 * sum_j ln p_j`: larger = more suspicious. Used
 * as a score and calibrated again, so no independence between the members is assumed.
 */
export function fisherStatistic(pValues: readonly Float32Array[]): Float32Array {
  const n = pValues[0]?.length ?? 0;
  return Float32Array.from({ length: n }, (_, i) => -2 * pValues.reduce((sum, p) => sum + Math.log(p[i]), 0));
}

/** Bonferroni's combined p-value, `min(1, k * min_j p_j)`: valid whatever the members' dependence. */
export function bonferroni(pValues: readonly Float32Array[]): Float32Array {
  const n = pValues[0]?.length ?? 0;
  const k = pValues.length;
  return Float32Array.from({ length: n }, (_, i) => Math.min(1, k * Math.min(...pValues.map((p) => p[i]))));
}

/**
 * The smallest-p statistic, `-ln min_j p_j`: larger = more suspicious; follows the strongest member on each
 * input instead of pooling the evidence as Fisher's does.
 */
export function minPStatistic(pValues: readonly Float32Array[]): Float32Array {
  const n = pValues[0]?.length ?? 0;
  return Float32Array.from({ length: n }, (_, i) => -Math.log(Math.min(...pValues.map((p) => p[i]))));
}

/**
 * A differentiable stand-in for `-ln` of {@link conformalPValues}, for the adaptive attacks: each count
 * `[cal >= s]` becomes `sigmoid((cal - s) / tau)` with `tau` a hundredth of the calibration scores' 5-95%
 * spread, and above the largest calibration score, where every count is 0 and the p-value is flat, `-ln p`
 * keeps growing by one per spread so that the gradient still points back into the benign range.
 * Returns a new tensor [n].
 */
export function smoothNegLogPValue(sortedCalibration: Float32Array, scores: tf.Tensor1D): tf.Tensor1D {
  const m = sortedCalibration.length;
  const quantile = (q: number) => sortedCalibration[Math.min(m - 1, Math.floor(q * (m - 1)))];
  const spread = Math.max(quantile(0.95) - quantile(0.05), 1e-6);
  const largest = sortedCalibration[m - 1];
  return tf.tidy(() => {
    const calibration = tf.tensor2d(sortedCalibration, [1, m]);
    const counts = tf.sigmoid(calibration.sub(scores.expandDims(1)).div(spread / 100)).sum(1);
    const p = counts.add(1).div(m + 1);
    return p.log().neg().add(scores.sub(largest).relu().div(spread)) as tf.Tensor1D;
  });
}
