/**
 * What the image baselines share: a transform on plain image values becomes a defense stage whose
 * forward runs the transform and whose gradient, for the adaptive attacks, is BPDA's identity.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { bpda } from "../../engine/bpda.ts";
import type { DefenseStage, StageSettings } from "../stage.ts";

/** Shape of an image batch: [n, h, w, c]. */
export type ImageShape = [number, number, number, number];

/** A transform on row-major image values of `shape`; `random` gives the stage's seeded draws. */
export type ImageTransform = (values: Float32Array, shape: ImageShape, random: () => number) => Float32Array;

/** The `transform` stage over an image transform, in the `input` domain, holding no tensors. */
export function imageTransformStage(
  name: string,
  description: string,
  settings: StageSettings,
  apply: ImageTransform,
): DefenseStage {
  const run = (x: tf.Tensor, random: () => number): tf.Tensor => {
    if (x.rank !== 4) throw new RangeError(`${name}: expected images [n, h, w, c], got shape [${x.shape}]`);
    const shape = x.shape as ImageShape;
    return tf.tensor4d(apply(x.dataSync() as Float32Array, shape, random), shape);
  };
  return {
    name,
    description,
    settings,
    role: "transform",
    domain: "input",
    transform: (input) => ({ x: run(input.x, input.random) }),
    differentiable: (input) => bpda((x) => run(x, input.random))(input.x),
    dispose() {},
  };
}
