/**
 * Building and querying attack targets.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelPart } from "../nip/types.ts";
import { outputsProbabilities } from "../engine/outputs.ts";
import type { AttackTarget } from "./types.ts";

/** Options of {@link targetFromModel}. */
export interface ModelTargetOptions {
  /** Valid input range (default [0, 1]). */
  inputRange?: [number, number];
  /** What the model outputs (default "probs" when its last layer is a softmax, else "logits"). */
  scoreKind?: "probs" | "logits";
}

/** A differentiable target over a tfjs LayersModel (inference mode). */
export function targetFromModel(model: ModelPart, options: ModelTargetOptions = {}): AttackTarget {
  return {
    scores: (x) => model.apply(x, { training: false }) as tf.Tensor2D,
    inputRange: options.inputRange ?? [0, 1],
    scoreKind: options.scoreKind ?? (outputsProbabilities(model) ? "probs" : "logits"),
    differentiable: true,
  };
}

/** Throws a clear error when a white-box attack is asked to run on a non-differentiable target. */
export function assertDifferentiable(target: AttackTarget, attackName: string): void {
  if (target.differentiable === false) {
    throw new TypeError(
      `attack "${attackName}" is white-box and needs gradients, but the target is marked differentiable: false`,
    );
  }
}

/** Checks the batch against the target's declared range and shape rules. */
export function checkBatch(target: AttackTarget, x: tf.Tensor, attackName: string): void {
  if (x.rank !== 4) {
    throw new RangeError(`attack "${attackName}": input batch must be rank 4, got shape [${x.shape}]`);
  }
  const [lo, hi] = target.inputRange;
  if (!(lo < hi)) throw new RangeError(`attack "${attackName}": inputRange [${lo}, ${hi}] is empty`);
}

/** Predicted labels (argmax of the scores) of a batch; one query per example. */
export async function predictLabels(target: AttackTarget, x: tf.Tensor): Promise<Int32Array> {
  const labels = tf.tidy(() => tf.argMax(target.scores(x), 1));
  const out = (await labels.data()) as Int32Array;
  labels.dispose();
  return Int32Array.from(out);
}
