/**
 * The control every DSR is reported beside (SPEC.md section 7): random noise, a Gaussian direction
 * scaled to the L2 norm of that example's actual defense change, added and clipped, mean correct rate
 * over several draws. (A stage's own control, e.g. NIP's random candidate, is the stage's `randomChoice`.)
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelPart } from "../nip/types.ts";
import { predictLabels } from "../nip/neurons.ts";

/** Fraction of `predicted` equal to `labels`. */
export function agreement(predicted: ArrayLike<number>, labels: ArrayLike<number>): number {
  let same = 0;
  for (let i = 0; i < labels.length; i++) same += predicted[i] === labels[i] ? 1 : 0;
  return labels.length === 0 ? NaN : same / labels.length;
}

/**
 * Adds to each example of `x` Gaussian noise whose L2 norm equals `norms[i]`, clips to `range`, and
 * returns the fraction classified as `labels`, averaged over `draws` draws.
 */
export function randomNoiseControl(
  model: ModelPart,
  x: tf.Tensor,
  norms: Float32Array,
  labels: Int32Array,
  range: readonly [number, number],
  options: { draws?: number; seed?: number } = {},
): number {
  const draws = options.draws ?? 5;
  let total = 0;
  for (let draw = 0; draw < draws; draw++) {
    const predicted = tf.tidy(() => {
      const n = x.shape[0];
      const noise = tf.randomNormal(x.shape, 0, 1, "float32", (options.seed ?? 7) * 1009 + draw);
      const flat = noise.reshape([n, -1]);
      const unit = flat.div(flat.norm("euclidean", 1, true).maximum(1e-12));
      const scaled = unit.mul(tf.tensor2d(norms, [n, 1])).reshape(x.shape);
      const noisy = x.add(scaled).clipByValue(range[0], range[1]);
      return predictLabels(model, noisy);
    });
    total += agreement(predicted, labels);
  }
  return total / draws;
}
