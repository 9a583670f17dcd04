/**
 * Scaling of the inverse perturbation (SPEC.md section 3). Both rules are split into a per-candidate
 * normalisation done once at calibration and a per-input step done at defense time:
 *
 * - `paper` (Eq. 8): `x + alpha * Mean(x) * rho / (Max(rho) - Min(rho))`;
 * - `rms` (the authors' code): `x + step * rho / rms(rho)`.
 *
 * The result is clipped to the model's input range.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ScaleRule } from "./types.ts";

function perExample(t: tf.Tensor): tf.Tensor2D {
  return t.reshape([t.shape[0], -1]) as tf.Tensor2D;
}

/** Divides each candidate `rho` by its range (`paper`) or its RMS (`rms`); a zero `rho` stays zero. */
export function normalizePerturbations(rho: tf.Tensor, rule: ScaleRule): tf.Tensor {
  return tf.tidy(() => {
    const flat = perExample(rho);
    const scale = rule === "paper"
      ? flat.max(1, true).sub(flat.min(1, true))
      : flat.square().mean(1, true).sqrt();
    const safe = tf.where(scale.greater(0), scale, tf.onesLike(scale));
    return flat.div(safe).reshape(rho.shape);
  });
}

/**
 * Applies normalised perturbations to inputs: `x + strength * nrho` with `strength = alpha * Mean(x)`
 * (`paper`) or `step` (`rms`), clipped to `range`.
 */
export function applyPerturbation(
  x: tf.Tensor,
  normalizedRho: tf.Tensor,
  rule: ScaleRule,
  strength: number,
  range: readonly [number, number],
): tf.Tensor {
  return tf.tidy(() => {
    const n = x.shape[0];
    const perInput = rule === "paper" ? perExample(x).mean(1).mul(strength) : tf.fill([n], strength);
    const broadcastShape = [n, ...x.shape.slice(1).map(() => 1)];
    return x.add(normalizedRho.mul(perInput.reshape(broadcastShape))).clipByValue(range[0], range[1]);
  });
}

/**
 * {@link applyPerturbation} on plain arrays, for the defense's forward path (no kernel launches):
 * `x` row-major [n, size], each row perturbed by row `index[i]` of the normalised `rho` [m, size].
 */
export function applyPerturbationRows(
  x: Float32Array,
  normalizedRho: Float32Array,
  index: Int32Array,
  rule: ScaleRule,
  strength: number,
  range: readonly [number, number],
): Float32Array {
  const n = index.length;
  const size = x.length / n;
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    let scale = strength;
    if (rule === "paper") {
      let sum = 0;
      for (let j = 0; j < size; j++) sum += x[i * size + j];
      scale = strength * (sum / size);
    }
    const rho = index[i] * size;
    for (let j = 0; j < size; j++) {
      const value = x[i * size + j] + scale * normalizedRho[rho + j];
      out[i * size + j] = value < range[0] ? range[0] : value > range[1] ? range[1] : value;
    }
  }
  return out;
}
