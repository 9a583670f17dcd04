/**
 * Inverse perturbations (SPEC.md section 2): `rho_x = grad_x (sum_front phi - sum_tail phi)`, the ascent
 * direction that strengthens the front neurons and weakens the tail ones (the paper's Eq. 5-6 sign is an
 * erratum; see SPEC.md).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelPart } from "./types.ts";
import { neuronOutputs, type NeuronPartition } from "./neurons.ts";

/** Row-major [n, a] matrix with +1 at front neurons, -1 at tail neurons and 0 elsewhere. */
export function frontTailSigns(partitions: readonly NeuronPartition[], neuronCount: number): Float32Array {
  const signs = new Float32Array(partitions.length * neuronCount);
  partitions.forEach(({ front, tail }, i) => {
    const row = i * neuronCount;
    for (const n of front) signs[row + n] = 1;
    for (const n of tail) signs[row + n] = -1;
  });
  return signs;
}

/**
 * `rho` for a batch: the input gradient of `sum(phi(body(x)) * signs)`. Examples are independent in the
 * body, so one gradient of the batch sum gives every example's own gradient.
 */
export function inversePerturbations(body: ModelPart, x: tf.Tensor, signs: tf.Tensor2D): tf.Tensor {
  return tf.tidy(() => {
    const objective = (input: tf.Tensor) =>
      neuronOutputs(body.apply(input, { training: false }) as tf.Tensor).mul(signs).sum();
    return tf.grad(objective)(x);
  });
}
