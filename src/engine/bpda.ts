/**
 * BPDA, Backward Pass Differentiable Approximation (Athalye et al. 2018): a non-differentiable
 * preprocessing step (a defense such as NIP, JPEG, quantisation) runs exactly in the forward pass and is
 * treated as the identity (or as a given differentiable approximation `g`) in the backward pass. Lets
 * gradient attacks run on a whole defended pipeline; every defense stage offers its input this way.
 *
 * Built as `g(x) + stopGradient(preprocess(x) - g(x))`: the value is `preprocess(x)`, the gradient `g`'s.
 * (A custom gradient that calls `tf.grad` inside a backward pass breaks tfjs's tape, so no nesting.)
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** The identity in the forward pass, a zero gradient in the backward pass. */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad(
  (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    return { value: input.clone(), gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.zerosLike(dy as tf.Tensor) };
  },
) as (x: tf.Tensor) => tf.Tensor;

/** `preprocess` in the forward pass, `approximation` (default identity) in the backward pass. */
export function bpda(
  preprocess: (x: tf.Tensor) => tf.Tensor,
  approximation: (x: tf.Tensor) => tf.Tensor = (x) => x,
): (x: tf.Tensor) => tf.Tensor {
  return (x) =>
    tf.tidy(() => {
      const approximate = approximation(x);
      return tf.add(approximate, stopGradient(tf.sub(preprocess(x), approximate)));
    });
}
