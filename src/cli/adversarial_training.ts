/**
 * Adversarial training for `deno task train --adversarial ...`: each training batch is replaced by
 * adversarial examples of the model being trained, made by the project's own attacks (so this lives with the
 * tasks, above both the models and the attacks). `pgd:EPS[:STEPS]` is Madry et al. 2018 (L_inf PGD from a
 * random start, step 2.5 EPS / STEPS); `fgsm-rs:EPS` is Wong et al. 2020's fast adversarial training (one
 * step of 1.25 EPS from a uniform random start, projected).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { pgd } from "../attacks/pgd.ts";
import { targetFromModel } from "../attacks/target.ts";
import { UsageError } from "./args.ts";

/** A parsed `--adversarial` value. */
export interface AdversarialTraining {
  method: "pgd" | "fgsm-rs";
  epsilon: number;
  steps: number;
}

/** Parses `pgd:EPS[:STEPS]` (default 7 steps) or `fgsm-rs:EPS`; a UsageError names the flag otherwise. */
export function parseAdversarialTraining(value: string): AdversarialTraining {
  const [method, epsilonText, stepsText] = value.split(":");
  const epsilon = Number(epsilonText);
  const steps = stepsText === undefined ? (method === "pgd" ? 7 : 1) : Number(stepsText);
  const valid = (method === "pgd" || method === "fgsm-rs") && epsilon > 0 && epsilon < 1 &&
    Number.isInteger(steps) && steps >= 1 && (method === "pgd" || stepsText === undefined);
  if (!valid) {
    throw new UsageError(
      `--adversarial: expected pgd:EPS[:STEPS] or fgsm-rs:EPS (0 < EPS < 1), got "${value}"`,
    );
  }
  return { method, epsilon, steps };
}

/**
 * A `TrainOptions.augment` that turns each batch into adversarial examples of `model` at the training's
 * current weights (inputs in [0, 1]); the attack's seed follows the batch seed.
 */
export function adversarialAugmentation(
  model: tf.LayersModel,
  training: AdversarialTraining,
): (x: tf.Tensor4D, batchSeed: number, labels: tf.Tensor2D) => Promise<tf.Tensor4D> {
  const target = targetFromModel(model);
  const stepSize = training.method === "pgd"
    ? 2.5 * training.epsilon / training.steps
    : 1.25 * training.epsilon;
  return async (x, batchSeed, labels) => {
    const attack = pgd({ steps: training.steps, stepSize, randomStart: true, seed: batchSeed });
    const classes = tf.tidy(() => labels.argMax(-1).dataSync() as Int32Array);
    const result = await attack.run(target, x, { kind: "misclassification", labels: classes }, {
      epsilon: training.epsilon,
    });
    return result.adversarial;
  };
}
