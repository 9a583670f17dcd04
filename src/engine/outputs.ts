/**
 * What a classifier's output is and how to read it: a model whose last layer is a softmax outputs class
 * probabilities, any other outputs logits. Shared by the attack targets, the detectors and the adaptive
 * attacks, so that all of them decide it the same way.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelPart } from "../nip/types.ts";

/**
 * Whether the model outputs probabilities rather than logits: its declared `scoreKind` (a split GraphModel
 * reads it from its output node), else whether a LayersModel's last layer is a softmax.
 */
export function outputsProbabilities(model: ModelPart): boolean {
  if (model.scoreKind !== undefined) return model.scoreKind === "probs";
  if (!(model instanceof tf.LayersModel)) return false;
  const last = model.layers[model.layers.length - 1];
  return (last?.getConfig() as { activation?: string }).activation === "softmax";
}

/** A function from the model's output to class probabilities (a new tensor, differentiable). */
export function toProbabilities(model: ModelPart): (scores: tf.Tensor) => tf.Tensor2D {
  const probs = outputsProbabilities(model);
  return (scores) => (probs ? scores.clone() : tf.softmax(scores)) as tf.Tensor2D;
}

/**
 * The predicted labels of `scores` as a constant tensor, cut from the gradient tape (an argmax has no
 * gradient, and ops on it such as a comparison have no gradient function at all).
 */
export function constantLabels(scores: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => tf.tensor1d(scores.argMax(1).dataSync() as Int32Array, "int32"));
}
