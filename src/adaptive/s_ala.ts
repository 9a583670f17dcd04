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
import { attackLoss } from "../attacks/loss.ts";
import type { Attack } from "../attacks/types.ts";
import type { SplitModel } from "../nip/types.ts";
import { influenceOf, predictedLabels } from "./influence.ts";
import { type InfluenceLossParams, influenceLossSettings, signedAscentAttack } from "./signed_ascent.ts";

/** Parameters of {@link sAla}. */
export type SAlaParams = InfluenceLossParams;

/** S-ALA on the split model (the target passed to `run` should be the bare model). */
export function sAla(split: SplitModel, params: SAlaParams = {}): Attack {
  const { lambda, settings } = influenceLossSettings("s-ala", params);
  return signedAscentAttack("s-ala", { lambda, ...settings }, settings, (context) => {
    const benignInfluence = influenceOf(split, context.x, predictedLabels(split, context.x));
    return {
      step(current) {
        const labels = predictedLabels(split, current);
        // Ascend lambda * CE - MSE(sigma(x), sigma(x*)): the minimisation of Eq. 11.
        return (input) =>
          tf.tidy(() => {
            const ce = attackLoss(context.target, context.target.scores(input), context.criterion, "ce");
            const mse = tf.mean(tf.squaredDifference(influenceOf(split, input, labels), benignInfluence), 1);
            return tf.sub(tf.mul(ce, lambda), mse) as tf.Tensor1D;
          });
      },
      dispose: () => benignInfluence.dispose(),
    };
  });
}
