/**
 * S-ALA, the smooth adaptive loss attack (paper Sec. 7.1, Eq. 11): fool the model while keeping the neuron
 * influence of the adversarial example close to the benign one's,
 * `argmin_{x*} MSE(sigma(x), sigma(x*)) - lambda * CE(x*, y)`, `lambda = 1`, 10 iterations.
 *
 * Readings (the paper leaves them open): the steps are signed-gradient steps projected onto an L_inf ball
 * (the paper gives no bound; the budget passed to `run` is it, and is recorded); `sigma(x*)` uses the label
 * the model currently predicts for `x*` (what NIP computes at test time), held constant within a step;
 * `sigma(x)` uses the benign example's predicted label; MSE averages over all `a` neurons of the layer.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Attack } from "../attacks/types.ts";
import type { SplitModel } from "../nip/types.ts";
import { influenceLossAttack, type InfluenceLossParams } from "./influence_loss.ts";

/** Parameters of {@link sAla}. */
export type SAlaParams = InfluenceLossParams;

/** S-ALA on the split model (the target passed to `run` should be the bare model). */
export function sAla(split: SplitModel, params: SAlaParams = {}): Attack {
  // Ascend lambda * CE - MSE(sigma(x), sigma(x*)): the minimisation of Eq. 11.
  return influenceLossAttack("s-ala", split, params, -1, {}, () => ({
    distance: (iterate, benign) => tf.mean(tf.squaredDifference(iterate, benign), 1) as tf.Tensor1D,
  }));
}
