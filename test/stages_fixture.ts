/**
 * What the image-stage tests share: a split model reduced to what stage factories read (input shape and
 * range), and a stage input that needs no model forward.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import type { SplitModel } from "../src/nip/types.ts";
import { mulberry32 } from "../src/random.ts";
import type { DefenseStage, StageInput } from "../src/stages/stage.ts";

/** A split model of the given input shape and range; stage factories read only these two. */
export function splitFor(inputShape: number[], inputRange: [number, number] = [0, 1]): SplitModel {
  return { inputRange, inputShape } as unknown as SplitModel;
}

/** A stage input over `x` with seeded draws; asking it for the model's forward is a test failure. */
export function stageInput(x: tf.Tensor, seed = 1): StageInput {
  return {
    x,
    random: mulberry32(seed),
    forward: () => {
      throw new Error("an image transform asked for the model's forward");
    },
  };
}

/**
 * Pins a transform stage on `x`: its output is a new tensor equal to `expected`, its differentiable form
 * gives the same values with BPDA's identity gradient, and it leaves `x` alone and no tensor behind.
 */
export function assertTransformWithIdentityGradient(
  stage: DefenseStage,
  x: tf.Tensor,
  expected: Float32Array,
  seed = 1,
): void {
  const baseline = tf.memory().numTensors;
  const out = stage.transform!(stageInput(x, seed)).x;
  assert.notEqual(out, x);
  assert.deepEqual(out.dataSync(), expected);
  const grad = tf.grad((input: tf.Tensor) => stage.differentiable!(stageInput(input, seed)).sum())(x);
  assert.ok(grad.dataSync().every((g) => g === 1));
  const forward = stage.differentiable!(stageInput(x, seed));
  // BPDA adds (transform - x) back onto x: equal up to float32 rounding.
  assert.ok(forward.dataSync().every((v, i) => Math.abs(v - expected[i]) < 1e-6));
  tf.dispose([out, grad, forward]);
  stage.dispose();
  assert.equal(tf.memory().numTensors, baseline);
  assert.equal(x.isDisposed, false);
}
