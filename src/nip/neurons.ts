/**
 * Neuron outputs, neuron influence and the front / tail / remaining partition (SPEC.md section 1).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelPart, SplitModel } from "./types.ts";

/**
 * Neuron outputs `phi` of a layer output: the spatial mean of each feature map for [n, h, w, a]
 * (paper Eq. 1), the values themselves for a flat [n, a] layer.
 */
export function neuronOutputs(layerOutput: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    if (layerOutput.rank === 2) return layerOutput.clone() as tf.Tensor2D;
    const n = layerOutput.shape[0];
    const a = layerOutput.shape[layerOutput.rank - 1];
    return layerOutput.reshape([n, -1, a]).mean(1) as tf.Tensor2D;
  });
}

/** Gradient of the scores' entry `labels[i]` of row i with respect to the head's input. */
function scoreGradient(head: ModelPart, layerOutput: tf.Tensor, labels: tf.Tensor1D): tf.Tensor {
  return tf.tidy(() => {
    const classes = (head.outputs[0].shape[1] ?? 0) as number;
    // A one-output head has only class 0; oneHot needs a depth of at least 2.
    const mask = classes < 2
      ? tf.onesLike(labels).toFloat().expandDims(1)
      : tf.oneHot(labels, classes).toFloat();
    const selected = (z: tf.Tensor) => (head.apply(z, { training: false }) as tf.Tensor).mul(mask).sum();
    return tf.grad(selected)(layerOutput);
  });
}

/** Labels a model predicts for a batch (argmax of its scores, inference mode), as a plain array. */
export function predictLabels(model: ModelPart, x: tf.Tensor): Int32Array {
  return tf.tidy(() =>
    Int32Array.from((model.apply(x, { training: false }) as tf.Tensor).argMax(1).dataSync() as Int32Array)
  );
}

/** The layer output, the model's scores and its predicted labels for a batch, in one pass. */
export interface LayerForward {
  layerOutput: tf.Tensor;
  scores: tf.Tensor2D;
  labels: tf.Tensor1D;
}

/** Runs body then head once; the caller disposes the three tensors. */
export function forwardAtLayer(split: SplitModel, x: tf.Tensor): LayerForward {
  return tf.tidy(() => {
    const layerOutput = split.body.apply(x, { training: false }) as tf.Tensor;
    const scores = split.head.apply(layerOutput, { training: false }) as tf.Tensor2D;
    return { layerOutput, scores, labels: scores.argMax(1) as tf.Tensor1D };
  }) as LayerForward;
}

/**
 * Neuron influence `sigma_n = d y_c / d phi_n * phi_n` (paper Eq. 2) for each example, with `c` the
 * label given (at test time: the predicted label). Only the head is differentiated. For a feature-map
 * layer, `d y_c / d phi_n` is the sum of the gradient over the map, which is the derivative of `y_c`
 * when the whole map shifts with its mean.
 */
export function neuronInfluence(
  head: ModelPart,
  layerOutput: tf.Tensor,
  labels: tf.Tensor1D,
): tf.Tensor2D {
  return tf.tidy(() =>
    neuronGradient(head, layerOutput, labels).mul(neuronOutputs(layerOutput)) as tf.Tensor2D
  );
}

/**
 * `d y_c / d phi_n` per neuron [n, a] (for a feature map, the gradient summed over the map), the factor of
 * {@link neuronInfluence}.
 */
export function neuronGradient(
  head: ModelPart,
  layerOutput: tf.Tensor,
  labels: tf.Tensor1D,
): tf.Tensor2D {
  return tf.tidy(() => {
    const gradient = scoreGradient(head, layerOutput, labels);
    const n = layerOutput.shape[0];
    const a = layerOutput.shape[layerOutput.rank - 1];
    return (layerOutput.rank === 2 ? gradient : gradient.reshape([n, -1, a]).sum(1)) as tf.Tensor2D;
  });
}

/** The three neuron sets of one example (paper Def. 3), as neuron indices. */
export interface NeuronPartition {
  /** Top-k1 influence, most influential first. */
  front: Int32Array;
  /** Bottom-k2 influence, least influential last. */
  tail: Int32Array;
  /** The others, by descending influence. */
  remaining: Int32Array;
}

/**
 * Sorts one example's influences descending with a stable sort (ties by ascending neuron index:
 * after ReLU many influences are exactly 0) and cuts front / remaining / tail.
 */
export function partitionNeurons(influence: ArrayLike<number>, k1: number, k2: number): NeuronPartition {
  const a = influence.length;
  if (k1 < 0 || k2 < 0 || k1 + k2 > a) {
    throw new RangeError(`k1 + k2 = ${k1 + k2} must be between 0 and the layer's ${a} neurons`);
  }
  const order = Int32Array.from({ length: a }, (_, i) => i);
  order.sort((i, j) => (influence[j] - influence[i]) || (i - j));
  return {
    front: order.slice(0, k1),
    remaining: order.slice(k1, a - k2),
    tail: order.slice(a - k2),
  };
}

/** Partitions every row of a row-major [n, a] influence matrix. */
export function partitionRows(influence: Float32Array, a: number, k1: number, k2: number): NeuronPartition[] {
  const rows: NeuronPartition[] = [];
  for (let start = 0; start < influence.length; start += a) {
    rows.push(partitionNeurons(influence.subarray(start, start + a), k1, k2));
  }
  return rows;
}
