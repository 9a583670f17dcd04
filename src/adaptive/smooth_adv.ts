/**
 * SmoothAdv (Salman et al. 2019): the L2 PGD attack on a smoothed classifier itself. The smoothed
 * classifier's decision is an expectation over Gaussian noise, so each step ascends the cross-entropy of
 * the *averaged* class probabilities of `samples` noise draws (EOT), through the denoiser when there is
 * one, projected onto the L2 ball of radius `epsilon` and into the input range. Its success says how
 * tight the certificate is: it may never move a certified example within its certified radius.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { projectToBall, steepestDirection } from "../attacks/norms.ts";
import { mulberry32 } from "../random.ts";
import type { DefenseStage } from "../stages/stage.ts";

/** Settings of {@link smoothAdv}. */
export interface SmoothAdvOptions {
  /** L2 radius of the attack. */
  epsilon: number;
  /** PGD steps (step size 2 epsilon / steps). */
  steps: number;
  /** Noise draws averaged per step (EOT). */
  samples: number;
  /** The model's valid input range. */
  range: [number, number];
  seed?: number;
}

/**
 * Adversarial examples against the smoothed classifier of `stage` (its `sampleProbabilities`) for the
 * batch `x` with true labels `labels` (the attacker's knowledge, as in every attack). Returns a new tensor.
 */
export function smoothAdv(
  stage: DefenseStage,
  x: tf.Tensor,
  labels: Int32Array,
  options: SmoothAdvOptions,
): tf.Tensor {
  if (!stage.sampleProbabilities) {
    throw new RangeError(`stage ${stage.name} has no randomised base classifier to attack with SmoothAdv`);
  }
  const { epsilon, steps, samples, range } = options;
  if (!(epsilon > 0)) return x.clone();
  const random = mulberry32(options.seed ?? 1);
  const b = x.shape[0];
  const stepSize = (2 * epsilon) / steps;
  const classes = classesOf(stage, x);
  const target = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), classes).toFloat());
  const loss = (candidate: tf.Tensor) => {
    const tiled = tf.concat(Array.from({ length: samples }, () => candidate));
    const probabilities = stage.sampleProbabilities!(tiled, random);
    const mean = probabilities.reshape([samples, b, -1]).mean(0) as tf.Tensor2D;
    return mean.mul(target).sum(1).add(1e-12).log().neg().sum() as tf.Scalar;
  };
  const gradient = tf.grad(loss);
  let current = x.clone();
  try {
    for (let step = 0; step < steps; step++) {
      const next = tf.tidy(() => {
        const g = gradient(current);
        const moved = current.add(steepestDirection(g, "l2").mul(stepSize));
        return projectToBall(x, moved, "l2", epsilon, range);
      });
      current.dispose();
      current = next;
    }
    return current;
  } finally {
    target.dispose();
  }
}

/** The number of classes of the stage's base classifier, from one draw on the first example. */
function classesOf(stage: DefenseStage, x: tf.Tensor): number {
  return tf.tidy(() => stage.sampleProbabilities!(x.slice(0, 1), () => 0.5).shape[1]);
}
