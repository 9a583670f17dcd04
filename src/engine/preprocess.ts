/**
 * What a user's model expects of its input beyond the [0, 1] images every data source gives: a value range
 * (e.g. [0, 255] or [-1, 1]) and a per-channel mean / standard deviation normalisation (torchvision and
 * Keras applications style). The sidecar, its attacks and its defenses keep working on [0, 1] images; the
 * preprocessing becomes the first step of the model's `body` and `model` (differentiable, so gradients reach
 * the image), and is recorded in the profile so every task and the server apply the same.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelPart, SplitModel } from "../nip/types.ts";
import { outputsProbabilities } from "./outputs.ts";

/** How a [0, 1] image becomes the model's input: `((x * (hi - lo) + lo) - mean) / std`, per channel. */
export interface Preprocessing {
  /** The model's input range [lo, hi]; default [0, 1]. */
  range?: [number, number];
  /** Per-channel mean (one value, or one per channel), in the model's range; default 0. */
  mean?: number[];
  /** Per-channel standard deviation, in the model's range; default 1. */
  std?: number[];
}

/** Whether `p` changes anything (absent, or range [0, 1] without mean and std, is the identity). */
export function isIdentity(p: Preprocessing | undefined): boolean {
  return p === undefined ||
    ((p.range === undefined || (p.range[0] === 0 && p.range[1] === 1)) && p.mean === undefined &&
      p.std === undefined);
}

/** Checks `p` against the model's channel count; throws a RangeError naming the field. */
export function checkPreprocessing(p: Preprocessing, channels: number): void {
  if (p.range !== undefined) {
    const [lo, hi] = p.range;
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi)) {
      throw new RangeError(`input range [${p.range}] must be two finite numbers lo < hi`);
    }
  }
  for (const [name, values] of [["mean", p.mean], ["std", p.std]] as const) {
    if (values === undefined) continue;
    if (values.length !== 1 && values.length !== channels) {
      throw new RangeError(`${name} has ${values.length} values; the model's input has ${channels} channels`);
    }
    if (values.some((v) => !Number.isFinite(v)) || (name === "std" && values.some((v) => v <= 0))) {
      throw new RangeError(`${name} [${values}] must be finite${name === "std" ? " and positive" : ""}`);
    }
  }
}

/** The preprocessing as a differentiable function of a [0, 1] batch (NHWC, channels last). */
export function preprocessFunction(p: Preprocessing): (x: tf.Tensor) => tf.Tensor {
  const [lo, hi] = p.range ?? [0, 1];
  return (x) =>
    tf.tidy(() => {
      let y = lo === 0 && hi === 1 ? x : tf.add(tf.mul(x, hi - lo), lo);
      if (p.mean !== undefined) y = tf.sub(y, tf.tensor1d(p.mean));
      if (p.std !== undefined) y = tf.div(y, tf.tensor1d(p.std));
      return y === x ? x.clone() : y;
    });
}

function preceded(part: ModelPart, prepare: (x: tf.Tensor) => tf.Tensor): ModelPart {
  const run = (x: tf.Tensor, kwargs?: { training?: boolean }) =>
    tf.tidy(() => part.apply(prepare(x), kwargs) as tf.Tensor);
  return {
    apply: run,
    predict: (x) => run(x),
    inputs: part.inputs,
    outputs: part.outputs,
    scoreKind: outputsProbabilities(part) ? "probs" : "logits",
    dispose: () => part.dispose(),
  };
}

/**
 * `split` with the preprocessing as the first step of `model` and `body` (`head` unchanged); the split's
 * input range becomes [0, 1]. The identity returns `split` itself.
 */
export function withPreprocessing(split: SplitModel, p: Preprocessing | undefined): SplitModel {
  if (p === undefined || isIdentity(p)) return split;
  checkPreprocessing(p, split.inputShape[split.inputShape.length - 1]);
  const prepare = preprocessFunction(p);
  return {
    ...split,
    model: preceded(split.model, prepare),
    body: preceded(split.body, prepare),
    inputRange: [0, 1],
  };
}
