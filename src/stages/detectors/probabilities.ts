/**
 * The model's class probabilities from its output, whatever that output is: a model whose last layer is a
 * softmax (as `targetFromModel` decides) outputs probabilities; any other outputs logits, passed through a
 * softmax here. Shared by the detectors that compare probabilities.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Whether the model's last layer is a softmax. */
export function outputsProbabilities(model: tf.LayersModel): boolean {
  const last = model.layers[model.layers.length - 1];
  return (last?.getConfig() as { activation?: string }).activation === "softmax";
}

/** A function from the model's output to class probabilities (a new tensor, differentiable). */
export function toProbabilities(model: tf.LayersModel): (scores: tf.Tensor) => tf.Tensor2D {
  const probs = outputsProbabilities(model);
  return (scores) => (probs ? scores.clone() : tf.softmax(scores)) as tf.Tensor2D;
}

/**
 * A constant tensor of `target - x` (shape of `x`): added to `x` it gives `target`'s values with the
 * identity as gradient, BPDA's stand-in (Athalye et al. 2018) for a step that has none.
 */
export function bpdaOffset(x: tf.Tensor, target: Float32Array): tf.Tensor {
  const values = x.dataSync() as Float32Array;
  return tf.tensor(target.map((v, i) => v - values[i]), x.shape);
}

/**
 * The predicted labels of `scores` as a constant tensor, cut from the gradient tape (an argmax has no
 * gradient, and ops on it such as a comparison have no gradient function at all).
 */
export function constantLabels(scores: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => tf.tensor1d(scores.argMax(1).dataSync() as Int32Array, "int32"));
}
