/**
 * Monte Carlo sampling of a base classifier under Gaussian noise, batched across examples: the class
 * counts PREDICT and CERTIFY decide from (`cohen.ts`). Seeded: the same seed gives the same counts on the
 * same backend. Free of I/O.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { mulberry32 } from "../random.ts";

/**
 * The base classifier f as the smoothing sees it: a batch of noisy inputs to one label each (an int32
 * or float [m] tensor, or [m, classes] scores). It may denoise first. The sampler disposes the result.
 */
export type BaseClassifier = (noisy: tf.Tensor) => tf.Tensor;

/** Options of {@link sampleCounts}. */
export interface SamplingOptions {
  /** Standard deviation of the noise, in the model's input units. */
  sigma: number;
  /** Noisy samples of each example. */
  samples: number;
  /** The number of classes f answers with. */
  classes: number;
  /** Noisy inputs per call of f (default 1,000). */
  batchSize?: number;
  /** Seed of the noise (default 1). */
  seed?: number;
}

/**
 * Counts, per example of `x` ([m, ...shape]), how often f answers each class on `samples` copies of it
 * with independent N(0, sigma^2) noise on every value. Row-major [m, classes]. Copies of several examples
 * share one call of f when `samples` is smaller than the batch. The noisy inputs are not clipped to the
 * input range: the guarantee is about f on exactly these inputs.
 */
export function sampleCounts(base: BaseClassifier, x: tf.Tensor, options: SamplingOptions): Int32Array {
  return runSteps(sampleCountsInSteps(base, x, options));
}

/**
 * {@link sampleCounts} one call of f per step: the generator yields after each batch and returns the
 * counts, so a caller that must stay responsive (the server) can do other work between batches.
 */
export function* sampleCountsInSteps(
  base: BaseClassifier,
  x: tf.Tensor,
  options: SamplingOptions,
): Generator<void, Int32Array> {
  const { sigma, samples, classes } = options;
  const batchSize = options.batchSize ?? 1000;
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new RangeError(`sigma = ${sigma} must be positive`);
  if (!Number.isInteger(samples) || samples < 1) throw new RangeError(`samples = ${samples} must be >= 1`);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batch size = ${batchSize} must be >= 1`);
  }
  const m = x.shape[0];
  const counts = new Int32Array(m * classes);
  const random = mulberry32(options.seed ?? 1);
  const total = m * samples;
  for (let start = 0; start < total; start += batchSize) {
    if (start > 0) yield;
    const size = Math.min(batchSize, total - start);
    const rows = Int32Array.from({ length: size }, (_, i) => Math.floor((start + i) / samples));
    const labels = tf.tidy(() => {
      const clean = tf.gather(x, tf.tensor1d(rows, "int32"));
      const noise = tf.randomNormal(clean.shape, 0, sigma, "float32", Math.floor(random() * 2 ** 31));
      const answer = base(clean.add(noise));
      return answer.rank === 2 ? answer.argMax(-1) : answer;
    });
    const values = labels.dataSync();
    labels.dispose();
    for (let i = 0; i < size; i++) {
      const label = values[i];
      if (label >= 0 && label < classes) counts[rows[i] * classes + label]++;
    }
  }
  return counts;
}

/** Runs a stepwise computation to its end at once and returns its result. */
export function runSteps<T>(steps: Generator<void, T>): T {
  let step = steps.next();
  while (!step.done) step = steps.next();
  return step.value;
}
