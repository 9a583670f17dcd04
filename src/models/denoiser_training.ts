/**
 * Training a denoiser for denoised smoothing (Salman et al. 2020) on clean images with Gaussian noise, and
 * measuring it on held-out images. Two objectives:
 *
 * - `mse`: mean squared error between `denoiser(x + noise)` and `x` (the classifier is never used: query
 *   access suffices);
 * - `stability`: cross-entropy between the frozen classifier's output on `denoiser(x + noise)` and the
 *   classifier's own label for the clean `x`; the gradient flows through the classifier into the denoiser's
 *   variables only, so the classifier is never updated.
 *
 * The noise is N(0, sigma^2) per pixel, not clipped (randomized smoothing's noise), drawn with a seed per
 * batch from mulberry32, so a run repeats exactly on a given backend. Free of I/O; no tensor outlives a
 * batch.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, toTensor } from "../data/dataset.ts";
import { seededShuffle } from "../data/splits.ts";
import { toProbabilities } from "../engine/outputs.ts";
import { mulberry32 } from "../random.ts";
import { addGaussianNoise, gatherBatch } from "./training.ts";

/** The denoiser objectives (the same names as the smoothing state's). */
export type DenoiserTrainingObjective = "mse" | "stability";

/** Progress after one batch. */
export interface DenoiserBatchProgress {
  epoch: number;
  batch: number;
  batches: number;
  /** This batch's loss. */
  loss: number;
}

/** One epoch: the mean training loss over its images and the wall-clock time. */
export interface DenoiserEpochSummary {
  epoch: number;
  loss: number;
  seconds: number;
}

/** Options of {@link trainDenoiser}. */
export interface DenoiserTrainOptions {
  /** Standard deviation of the Gaussian noise added to the clean images. */
  sigma: number;
  objective: DenoiserTrainingObjective;
  /** The frozen classifier the stability objective differentiates through (required for it). */
  classifier?: tf.LayersModel;
  epochs: number;
  /** Default 64. */
  batchSize?: number;
  /** Adam's learning rate, default 1e-3. */
  learningRate?: number;
  /** Seeds the image order of each epoch (`seed + epoch`) and the noise; default 1. */
  seed?: number;
  onBatch?: (progress: DenoiserBatchProgress) => void;
  onEpoch?: (summary: DenoiserEpochSummary) => void;
}

/** Added inside the logarithm of the stability loss, so that a zero probability gives a finite loss. */
const LOG_EPSILON = 1e-7;

/**
 * The trainable variables of a model: what the optimizer may update. tfjs-layers' `LayerVariable.read()`
 * returns the backing `tf.Variable`.
 */
function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/**
 * Trains `denoiser` in place on the clean images of `train` (labels unused) with Adam; returns the
 * per-epoch summaries. The classifier, when given, is only read. The denoiser need not be compiled.
 */
export async function trainDenoiser(
  denoiser: tf.LayersModel,
  train: Dataset,
  options: DenoiserTrainOptions,
): Promise<DenoiserEpochSummary[]> {
  const { sigma, objective, classifier } = options;
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new RangeError(`sigma = ${sigma} must be positive`);
  if (objective !== "mse" && objective !== "stability") {
    throw new RangeError(`objective "${objective}": expected mse or stability`);
  }
  if (objective === "stability" && classifier === undefined) {
    throw new RangeError("the stability objective needs the classifier");
  }
  if (!Number.isInteger(options.epochs) || options.epochs < 0) {
    throw new RangeError(`epochs = ${options.epochs} must be a non-negative integer`);
  }
  const batchSize = options.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize = ${batchSize} must be a positive integer`);
  }
  if (train.count === 0) throw new RangeError(`${train.name}: no images to train on`);
  const seed = options.seed ?? 1;
  const noiseSeeds = mulberry32(seed ^ 0x5eed_d0e5);
  const variables = trainableVariables(denoiser);
  const probabilities = classifier ? toProbabilities(classifier) : undefined;
  const optimizer = tf.train.adam(options.learningRate ?? 1e-3);
  const batches = Math.ceil(train.count / batchSize);
  const summaries: DenoiserEpochSummary[] = [];
  try {
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      const started = performance.now();
      const order = seededShuffle(Int32Array.from({ length: train.count }, (_, i) => i), seed + epoch);
      let lossSum = 0;
      for (let batch = 0; batch < batches; batch++) {
        const indices = order.subarray(batch * batchSize, Math.min(train.count, (batch + 1) * batchSize));
        const { x, y } = gatherBatch(train, indices);
        y.dispose();
        const noiseSeed = Math.floor(noiseSeeds() * 2 ** 31);
        let cost: tf.Scalar;
        try {
          cost = tf.tidy((): tf.Scalar => {
            const noisy = addGaussianNoise(x, sigma, noiseSeed);
            if (objective === "mse") {
              return optimizer.minimize(
                () => {
                  const denoised = denoiser.apply(noisy, { training: true }) as tf.Tensor;
                  return tf.losses.meanSquaredError(x, denoised) as tf.Scalar;
                },
                true,
                variables,
              )!;
            }
            // The classifier's own labels on the clean images: constants, outside the gradient tape.
            const labels = (classifier!.apply(x) as tf.Tensor).argMax(-1);
            const target = tf.oneHot(labels, classifier!.outputs[0].shape[1] as number);
            return optimizer.minimize(
              () => {
                const denoised = denoiser.apply(noisy, { training: true }) as tf.Tensor;
                const p = probabilities!(classifier!.apply(denoised) as tf.Tensor);
                return tf.neg(
                  tf.mean(tf.sum(tf.mul(target, tf.log(tf.add(p, LOG_EPSILON))), -1)),
                ) as tf.Scalar;
              },
              true,
              variables,
            )!;
          });
        } finally {
          x.dispose();
        }
        const loss = (await cost.data())[0];
        cost.dispose();
        lossSum += loss * indices.length;
        options.onBatch?.({ epoch, batch, batches, loss });
      }
      const summary: DenoiserEpochSummary = {
        epoch,
        loss: lossSum / train.count,
        seconds: (performance.now() - started) / 1000,
      };
      summaries.push(summary);
      options.onEpoch?.(summary);
    }
  } finally {
    optimizer.dispose();
  }
  return summaries;
}

/** Held-out figures of a denoiser at one noise level ({@link evaluateDenoiser}). */
export interface DenoiserEvaluation {
  sigma: number;
  images: number;
  /** Mean squared error per pixel of the noisy input against the clean image. */
  noisyMse: number;
  /** Mean squared error per pixel of the denoised noisy input against the clean image. */
  denoisedMse: number;
  /** The classifier's accuracy on the clean images. */
  cleanAccuracy: number;
  /** The classifier's accuracy on the noisy images (no denoiser). */
  noisyAccuracy: number;
  /** The classifier's accuracy on the denoised noisy images. */
  denoisedAccuracy: number;
}

/**
 * Measures `denoiser` on the labelled images of `ds`: one noise draw per image (seeded), used both plain
 * and denoised, so the two accuracies are paired. Batches of `batchSize`; leaves no tensor behind.
 */
export async function evaluateDenoiser(
  denoiser: tf.LayersModel,
  classifier: tf.LayersModel,
  ds: Dataset,
  sigma: number,
  seed = 1,
  batchSize = 250,
): Promise<DenoiserEvaluation> {
  if (ds.count === 0) throw new RangeError(`${ds.name}: no images to evaluate on`);
  const noiseSeeds = mulberry32(seed ^ 0x0e7a_1ed0);
  let noisySquares = 0;
  let denoisedSquares = 0;
  const correct = { clean: 0, noisy: 0, denoised: 0 };
  for (let start = 0; start < ds.count; start += batchSize) {
    const end = Math.min(ds.count, start + batchSize);
    const noiseSeed = Math.floor(noiseSeeds() * 2 ** 31);
    const results = tf.tidy(() => {
      const x = toTensor(ds, start, end);
      const noisy = addGaussianNoise(x, sigma, noiseSeed);
      const denoised = denoiser.predict(noisy) as tf.Tensor;
      const classes = (input: tf.Tensor) => (classifier.predict(input) as tf.Tensor).argMax(-1);
      return [
        tf.sum(tf.squaredDifference(noisy, x)),
        tf.sum(tf.squaredDifference(denoised, x)),
        tf.stack([classes(x), classes(noisy), classes(denoised)]),
      ];
    });
    const [noisySum, denoisedSum, predicted] = await Promise.all(results.map((t) => t.data()));
    tf.dispose(results);
    noisySquares += noisySum[0];
    denoisedSquares += denoisedSum[0];
    const n = end - start;
    for (let i = 0; i < n; i++) {
      const label = ds.labels[start + i];
      if (predicted[i] === label) correct.clean++;
      if (predicted[n + i] === label) correct.noisy++;
      if (predicted[2 * n + i] === label) correct.denoised++;
    }
  }
  const pixels = ds.count * ds.shape[0] * ds.shape[1] * ds.shape[2];
  return {
    sigma,
    images: ds.count,
    noisyMse: noisySquares / pixels,
    denoisedMse: denoisedSquares / pixels,
    cleanAccuracy: correct.clean / ds.count,
    noisyAccuracy: correct.noisy / ds.count,
    denoisedAccuracy: correct.denoised / ds.count,
  };
}
