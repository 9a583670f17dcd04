/**
 * Losses that gradient attacks ascend, and their input gradients.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { criterionClasses } from "./criteria.ts";
import type { AttackTarget, Criterion } from "./types.ts";

/** `ce`: cross-entropy; `dlr`: difference of logits ratio (Croce & Hein 2020), robust to score scaling. */
export type LossKind = "ce" | "dlr";

function logProbabilities(target: AttackTarget, scores: tf.Tensor2D): tf.Tensor2D {
  return target.scoreKind === "logits"
    ? tf.logSoftmax(scores)
    : tf.log(tf.clipByValue(scores, 1e-12, 1)) as tf.Tensor2D;
}

/**
 * The `k` largest scores per row, largest first, built from argMax and masks so that gradients flow through
 * the values (tfjs has no gradient for TopK). Rows shorter than `k` repeat their smallest entry.
 */
export function largestScores(scores: tf.Tensor2D, k: number): tf.Tensor1D[] {
  const numClasses = scores.shape[1];
  const out: tf.Tensor1D[] = [];
  let remaining: tf.Tensor2D = scores;
  for (let j = 0; j < k; j++) {
    if (j >= numClasses) {
      out.push(out[numClasses - 1]);
      continue;
    }
    const mask = tf.oneHot(tf.argMax(remaining, 1), numClasses).toFloat();
    out.push(tf.sum(tf.mul(scores, mask), 1) as tf.Tensor1D);
    remaining = tf.sub(remaining, tf.mul(mask, 1e9));
  }
  return out;
}

/**
 * Per-example loss the attacker ascends. Untargeted: CE of the true label, or -DLR margin of the label.
 * Targeted: -CE of the target, or the targeted DLR.
 */
export function attackLoss(
  target: AttackTarget,
  scores: tf.Tensor2D,
  criterion: Criterion,
  kind: LossKind = "ce",
): tf.Tensor1D {
  return tf.tidy(() => {
    const numClasses = scores.shape[1];
    const classes = tf.tensor1d(criterionClasses(criterion), "int32");
    const oneHot = tf.oneHot(classes, numClasses).toFloat();
    const untargeted = criterion.kind === "misclassification";
    if (kind === "ce") {
      const ce = tf.neg(tf.sum(tf.mul(logProbabilities(target, scores), oneHot), 1));
      return (untargeted ? ce : tf.neg(ce)) as tf.Tensor1D;
    }
    const largest = largestScores(scores, 4);
    const top = (k: number) => largest[Math.min(k, numClasses - 1)];
    const chosen = tf.sum(tf.mul(scores, oneHot), 1);
    if (untargeted) {
      // -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)
      const others = tf.max(tf.sub(scores, tf.mul(oneHot, 1e9)), 1);
      const denominator = tf.add(tf.sub(top(0), top(2)), 1e-12);
      return tf.neg(tf.div(tf.sub(chosen, others), denominator)) as tf.Tensor1D;
    }
    // targeted DLR needs the true label; without it the runner-up stands in (the max over non-target classes).
    const others = tf.max(tf.sub(scores, tf.mul(oneHot, 1e9)), 1);
    const denominator = tf.add(tf.sub(top(0), tf.div(tf.add(top(2), top(3)), 2)), 1e-12);
    return tf.neg(tf.div(tf.sub(others, chosen), denominator)) as tf.Tensor1D;
  });
}

/** Input gradient of the summed attack loss, with the scores of `x` (both owned by the caller). */
export function lossGradient(
  target: AttackTarget,
  x: tf.Tensor,
  criterion: Criterion,
  kind: LossKind = "ce",
): { gradient: tf.Tensor; scores: tf.Tensor2D } {
  let scores: tf.Tensor2D | undefined;
  try {
    const gradient = tf.grad((input: tf.Tensor) => {
      const s = target.scores(input);
      scores = tf.keep(s);
      return tf.sum(attackLoss(target, s, criterion, kind));
    })(x);
    return { gradient, scores: scores! };
  } catch (error) {
    scores?.dispose();
    if (/Cannot compute gradient/.test((error as Error).message)) {
      throw new TypeError(
        "the target's scores are not differentiable in its input (a step outside the tf graph?): " +
          "mark the target differentiable: false for black-box attacks, or wrap that step with bpda()",
      );
    }
    throw error;
  }
}
