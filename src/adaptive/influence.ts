/**
 * Neuron quantities the paper's adaptive attacks steer, computed on the split model: predicted labels,
 * differentiable neuron influence `sigma` (paper Eq. 2, with the label held constant) and the front / tail
 * sign matrix of the current partition.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  neuronInfluence,
  neuronOutputs,
  type NeuronPartition,
  partitionRows,
  predictLabels,
} from "../nip/neurons.ts";
import { frontTailSigns } from "../nip/inverse.ts";
import type { ModelPart, SplitModel } from "../nip/types.ts";

/** Labels the split model predicts for `x` (no gradient). */
export function predictedLabels(split: SplitModel, x: tf.Tensor): Int32Array {
  return predictLabels(split.model, x);
}

/** A softmax head seen as logits: the head up to its softmax, then the softmax applied by hand. */
interface SoftmaxHead {
  logits(z: tf.Tensor): tf.Tensor2D;
}

const softmaxHeads = new WeakMap<ModelPart, SoftmaxHead | null>();

/**
 * The head's logits when it ends in a softmax (a Dense layer with softmax activation, or a softmax
 * Activation layer), else null. Built once per head; shares the head's weights.
 */
function softmaxHeadOf(head: ModelPart): SoftmaxHead | null {
  if (softmaxHeads.has(head)) return softmaxHeads.get(head)!;
  let found: SoftmaxHead | null = null;
  if (!(head instanceof tf.LayersModel)) return null;
  const output = head.outputs[0];
  const last = output.sourceLayer;
  const config = last.getConfig() as { activation?: string };
  if (config.activation === "softmax" && output.inputs.length === 1) {
    const before = tf.model({ inputs: head.inputs, outputs: output.inputs[0] });
    const className = last.getClassName();
    if (className === "Activation") {
      found = { logits: (z) => before.apply(z, { training: false }) as tf.Tensor2D };
    } else if (className === "Dense") {
      const [kernel, bias] = last.getWeights();
      found = {
        logits: (z) =>
          tf.tidy(() => {
            const h = before.apply(z, { training: false }) as tf.Tensor2D;
            const product = tf.matMul(h, kernel as tf.Tensor2D);
            return (bias === undefined ? product : tf.add(product, bias)) as tf.Tensor2D;
          }),
      };
    }
  }
  softmaxHeads.set(head, found);
  return found;
}

/**
 * Neuron influence `sigma(z)` [n, a] of a layer output `z` for the given labels, differentiable in `z`
 * with its second-order part: `sigma` contains `d y_c / d phi`, so its gradient needs the gradient of a
 * gradient. tfjs drops second-order terms that run through a kernel's *saved output* (its softmax
 * gradient reuses the saved probabilities, which the tape does not connect back), so for a softmax head
 * `d p_c / dz = J_logits(z)^T (p_c (e_c - p))` is formed as a vector-Jacobian product of the logits with a
 * cotangent that stays on the tape. Values equal `neuronInfluence`'s. Other heads use `neuronInfluence`
 * directly (exact for ReLU / linear heads; saved-output activations such as tanh would lose their
 * second-order term).
 */
export function influenceAtLayer(split: SplitModel, z: tf.Tensor, labels: Int32Array): tf.Tensor2D {
  const softmaxHead = softmaxHeadOf(split.head);
  if (softmaxHead === null) {
    return tf.tidy(() => neuronInfluence(split.head, z, tf.tensor1d(labels, "int32")));
  }
  return tf.tidy(() => {
    const probabilities = tf.softmax(softmaxHead.logits(z));
    const classes = probabilities.shape[1];
    const oneHot = tf.oneHot(tf.tensor1d(labels, "int32"), classes).toFloat();
    const chosen = tf.sum(tf.mul(probabilities, oneHot), 1, true);
    const cotangent = tf.mul(chosen, tf.sub(oneHot, probabilities));
    const gradient = tf.grad((input: tf.Tensor) => softmaxHead.logits(input))(z, cotangent);
    const n = z.shape[0];
    const a = z.shape[z.rank - 1];
    const perNeuron = z.rank === 2 ? gradient : gradient.reshape([n, -1, a]).sum(1);
    return tf.mul(perNeuron, neuronOutputs(z)) as tf.Tensor2D;
  });
}

/** Neuron influence `sigma(x)` [n, a] for the given labels, differentiable in `x` (see {@link influenceAtLayer}). */
export function influenceOf(split: SplitModel, x: tf.Tensor, labels: Int32Array): tf.Tensor2D {
  return tf.tidy(() =>
    influenceAtLayer(split, split.body.apply(x, { training: false }) as tf.Tensor, labels)
  );
}

/** Neuron outputs `phi(x)` [n, a] of the chosen layer, differentiable in `x`. */
export function neuronOutputsOf(split: SplitModel, x: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => neuronOutputs(split.body.apply(x, { training: false }) as tf.Tensor));
}

/** Front / remaining / tail of each example of `x` (paper Def. 3), with influence for the predicted label. */
export function partitionsOf(split: SplitModel, x: tf.Tensor, k1: number, k2: number): NeuronPartition[] {
  const labels = predictedLabels(split, x);
  const influence = influenceOf(split, x, labels);
  const values = influence.dataSync() as Float32Array;
  const a = influence.shape[1];
  influence.dispose();
  return partitionRows(values, a, k1, k2);
}

/** Row-major [n, a] 0/1 mask of each example's remaining neurons. */
export function remainingMask(partitions: readonly NeuronPartition[], neuronCount: number): Float32Array {
  const mask = new Float32Array(partitions.length * neuronCount);
  partitions.forEach(({ remaining }, i) => {
    for (const n of remaining) mask[i * neuronCount + n] = 1;
  });
  return mask;
}

/** [n, a] +1 front / -1 tail / 0 elsewhere, as a tensor (see `frontTailSigns`). */
export function frontTailSignTensor(
  partitions: readonly NeuronPartition[],
  neuronCount: number,
): tf.Tensor2D {
  return tf.tensor2d(frontTailSigns(partitions, neuronCount), [partitions.length, neuronCount]);
}
