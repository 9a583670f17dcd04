/**
 * R-ALA, the remaining-neuron adaptive loss attack (paper Sec. 7.1, Eq. 12): fool the model while pushing
 * the influence of the benign example's remaining neurons away from their benign values,
 * `argmax_{x*} MSE_{n in Omega_r(x)}(sigma(x), sigma(x*)) + lambda * CE(x*, y)`, `lambda = 1`, 10 iterations.
 * NIP's template (and so its knn key) is built from remaining neurons, which is what this attack targets.
 *
 * Readings as in S-ALA (`s_ala.ts`): projected signed-gradient steps under the budget passed to `run`;
 * `sigma(x*)` for the currently predicted label. `Omega_r` is taken from the benign example with `k1`, `k2`
 * (paper: the defense's, 5 and 5) and kept fixed over the iterations.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Attack } from "../attacks/types.ts";
import type { SplitModel } from "../nip/types.ts";
import { partitionsOf, remainingMask } from "./influence.ts";
import { influenceLossAttack, type InfluenceLossParams } from "./influence_loss.ts";

/** Parameters of {@link rAla}. */
export interface RAlaParams extends InfluenceLossParams {
  /** Front size that defines the remaining neurons (default 5, the paper's NIP setting). */
  k1?: number;
  /** Tail size that defines the remaining neurons (default 5). */
  k2?: number;
}

/** R-ALA on the split model (the target passed to `run` should be the bare model). */
export function rAla(split: SplitModel, params: RAlaParams = {}): Attack {
  const k1 = params.k1 ?? 5;
  const k2 = params.k2 ?? 5;
  // Ascend MSE over the benign example's remaining neurons + lambda * CE: Eq. 12.
  return influenceLossAttack("r-ala", split, params, 1, { k1, k2 }, (context) => {
    const partitions = partitionsOf(split, context.x, k1, k2);
    const a = split.body.outputs[0].shape[split.body.outputs[0].shape.length - 1] as number;
    const mask = tf.tensor2d(remainingMask(partitions, a), [partitions.length, a]);
    const counts = tf.tidy(() => tf.maximum(tf.sum(mask, 1), 1));
    return {
      distance: (iterate, benign) =>
        tf.div(tf.sum(tf.mul(tf.squaredDifference(iterate, benign), mask), 1), counts) as tf.Tensor1D,
      dispose: () => tf.dispose([mask, counts]),
    };
  });
}
