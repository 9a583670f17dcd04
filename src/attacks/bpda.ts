/**
 * BPDA attack targets (Athalye et al. 2018): a target whose scores run a non-differentiable preprocessing
 * step exactly in the forward pass and differentiate through it as the identity (`src/engine/bpda.ts`).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { bpda } from "../engine/bpda.ts";
import type { AttackTarget } from "./types.ts";

/** A differentiable target for the pipeline `target(preprocess(x))`, using BPDA through `preprocess`. */
export function bpdaTarget(
  target: AttackTarget,
  preprocess: (x: tf.Tensor) => tf.Tensor,
  approximation?: (x: tf.Tensor) => tf.Tensor,
): AttackTarget {
  const through = bpda(preprocess, approximation);
  return { ...target, differentiable: true, scores: (x) => target.scores(through(x)) };
}
