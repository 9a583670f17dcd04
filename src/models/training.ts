/**
 * A minimal, seeded mini-batch training loop and accuracy evaluation for compiled tfjs classifiers
 * (categorical cross-entropy with one-hot labels), over in-memory {@link Dataset}s.
 *
 * Each epoch visits the training images in a fresh order from `seededShuffle(seed + epoch)`, so runs are
 * reproducible on a given backend. An optional augmentation (e.g. {@link gaussianNoiseAugmentation}, the
 * noise-trained base classifier of Cohen et al. 2019) transforms each batch with a seed of its own. No tensor
 * outlives a batch.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, imageSize } from "../data/dataset.ts";
import { seededShuffle } from "../data/splits.ts";
import { mulberry32 } from "../random.ts";

/** Progress after one batch. */
export interface BatchProgress {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
  accuracy: number;
}

/** Summary of one epoch: mean training loss/accuracy over its batches, weighted by batch size. */
export interface EpochSummary {
  epoch: number;
  loss: number;
  accuracy: number;
  seconds: number;
  /** Learning rate used in this epoch, when a schedule was given. */
  learningRate?: number;
  /** Accuracy on the validation dataset, when one was given. */
  validationAccuracy?: number;
  /**
   * Set on the pass after the epochs of a weight-averaging run: how many epochs' weights the model now holds
   * the mean of (that pass trains at learning rate 0, to re-estimate the batch-norm statistics).
   */
  averagedEpochs?: number;
}

/** Options for {@link trainClassifier}. */
export interface TrainOptions {
  epochs: number;
  batchSize?: number;
  seed?: number;
  validation?: Dataset;
  /**
   * Learning rate for each epoch (0-based); when given, it is set on the model's optimizer (any tfjs
   * optimizer with a `learningRate` field, e.g. Adam or SGD) before the epoch starts.
   */
  learningRateForEpoch?: (epoch: number) => number;
  /**
   * Transforms each training batch before the step; `batchSeed` is drawn per batch from mulberry32(seed),
   * so the augmentation repeats with the run; `labels` (one-hot) serve augmentations that need them (an
   * adversarial example). Returns (or resolves to) a new tensor (the loop disposes it) or `x` itself; it must
   * not dispose `x`.
   */
  augment?: (x: tf.Tensor4D, batchSeed: number, labels: tf.Tensor2D) => tf.Tensor4D | Promise<tf.Tensor4D>;
  /**
   * Stochastic weight averaging (Izmailov et al. 2018): from this epoch (0-based) on, the weights at each
   * epoch's end are averaged; after the last epoch the model takes the mean, and one more pass over `train`
   * at learning rate 0 re-estimates the batch-norm statistics for it (reported as a summary of its own).
   */
  averageFrom?: number;
  onBatch?: (progress: BatchProgress) => void;
  onEpoch?: (summary: EpochSummary) => void;
}

/** Copies the images and one-hot labels at `indices` into a batch (x: NHWC, y: one-hot). */
export function gatherBatch(ds: Dataset, indices: ArrayLike<number>): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const size = imageSize(ds);
  const pixels = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i];
    pixels.set(ds.images.subarray(index * size, (index + 1) * size), i * size);
    labels[i] = ds.labels[index];
  }
  const x = tf.tensor4d(pixels, [indices.length, ...ds.shape]);
  const y = tf.tidy(() =>
    tf.oneHot(tf.tensor1d(labels, "int32"), ds.classNames.length).toFloat() as tf.Tensor2D
  );
  return { x, y };
}

/**
 * `x` plus Gaussian noise N(0, sigma^2) per value, not clipped, drawn with `seed` (tf.randomNormal's seeded
 * generator, the same on every backend). The caller disposes the result.
 */
export function addGaussianNoise<T extends tf.Tensor>(x: T, sigma: number, seed: number): T {
  return tf.tidy(() => tf.add(x, tf.randomNormal(x.shape, 0, sigma, "float32", seed)) as T);
}

/** An augmentation for {@link TrainOptions.augment}: Gaussian noise N(0, sigma^2), not clipped. */
export function gaussianNoiseAugmentation(sigma: number): (x: tf.Tensor4D, batchSeed: number) => tf.Tensor4D {
  if (!(sigma > 0) || !Number.isFinite(sigma)) {
    throw new RangeError(`noise sigma = ${sigma} must be positive`);
  }
  return (x, batchSeed) => addGaussianNoise(x, sigma, batchSeed);
}

/** Sets the learning rate of a compiled model's optimizer; throws if the optimizer has none. */
export function setLearningRate(model: tf.LayersModel, learningRate: number): void {
  // tfjs optimizers read their (protected) `learningRate` field on every step, so updating it takes effect
  // at the next batch.
  const optimizer = model.optimizer as unknown as { learningRate?: number } | undefined;
  if (optimizer === undefined || typeof optimizer.learningRate !== "number") {
    throw new Error("the model's optimizer has no learningRate to schedule (is the model compiled?)");
  }
  optimizer.learningRate = learningRate;
}

/**
 * Step decay: `base` for the first half of `epochs` (rounded up), then halved every further epoch.
 * E.g. 8 epochs at 1e-3: 1e-3 x4, 5e-4, 2.5e-4, 1.25e-4, 6.25e-5.
 */
export function halvingSchedule(base: number, epochs: number): (epoch: number) => number {
  const constantEpochs = Math.ceil(epochs / 2);
  return (epoch) => base * 0.5 ** Math.max(0, epoch - constantEpochs + 1);
}

/**
 * Cosine decay per epoch (Loshchilov and Hutter 2017, no restarts): `base * (1 + cos(pi * epoch / epochs)) / 2`,
 * from `base` at the first epoch down towards 0 at the last; every epoch trains at a useful rate, unlike the
 * halving schedule's tail.
 */
export function cosineSchedule(base: number, epochs: number): (epoch: number) => number {
  return (epoch) => base * (1 + Math.cos(Math.PI * epoch / epochs)) / 2;
}

/** The learning-rate schedules `deno task train --schedule` names. */
export const LEARNING_RATE_SCHEDULES = {
  halving: {
    create: halvingSchedule,
    describe: (base: number, epochs: number) =>
      `Adam ${base} for the first ${Math.ceil(epochs / 2)} epochs, then halved every epoch`,
  },
  cosine: {
    create: cosineSchedule,
    describe: (base: number, epochs: number) =>
      `Adam ${base} with cosine decay over ${epochs} epochs (per epoch)`,
  },
  constant: {
    create: (base: number) => () => base,
    describe: (base: number, epochs: number) => `Adam ${base} for all ${epochs} epochs`,
  },
} as const;

/** One of {@link LEARNING_RATE_SCHEDULES}' names. */
export type LearningRateSchedule = keyof typeof LEARNING_RATE_SCHEDULES;

/** Running mean of a model's weights (batch-norm statistics included), on plain arrays. */
class WeightAverage {
  #sums?: Float64Array[];
  count = 0;

  add(model: tf.LayersModel): void {
    const weights = model.getWeights().map((w) => w.dataSync());
    this.#sums ??= weights.map((w) => new Float64Array(w.length));
    weights.forEach((w, i) => w.forEach((v, j) => this.#sums![i][j] += v));
    this.count++;
  }

  /** Sets the mean on the model. */
  apply(model: tf.LayersModel): void {
    const shapes = model.getWeights().map((w) => w.shape);
    const means = this.#sums!.map((sum, i) =>
      tf.tensor(Float32Array.from(sum, (v) => v / this.count), shapes[i])
    );
    model.setWeights(means);
    tf.dispose(means);
  }
}

/** One pass over `train` in a seeded order; the mean loss and accuracy over its batches. */
async function trainEpoch(
  model: tf.LayersModel,
  train: Dataset,
  options: TrainOptions,
  epoch: number,
  batchSeeds: () => number,
): Promise<{ loss: number; accuracy: number }> {
  const batchSize = options.batchSize ?? 64;
  const batches = Math.ceil(train.count / batchSize);
  const order = seededShuffle(
    Int32Array.from({ length: train.count }, (_, i) => i),
    (options.seed ?? 1) + epoch,
  );
  let lossSum = 0;
  let correctSum = 0;
  for (let batch = 0; batch < batches; batch++) {
    const indices = order.subarray(batch * batchSize, Math.min(train.count, (batch + 1) * batchSize));
    const { x, y } = gatherBatch(train, indices);
    let input = x;
    let result: number | number[];
    try {
      if (options.augment) input = await options.augment(x, Math.floor(batchSeeds() * 2 ** 31), y);
      result = await model.trainOnBatch(input, y);
    } finally {
      if (input !== x) input.dispose();
      x.dispose();
      y.dispose();
    }
    const [loss, accuracy] = Array.isArray(result) ? result : [result, Number.NaN];
    lossSum += loss * indices.length;
    correctSum += accuracy * indices.length;
    options.onBatch?.({ epoch, batch, batches, loss, accuracy });
  }
  return { loss: lossSum / train.count, accuracy: correctSum / train.count };
}

/** Trains `model` on `train` for `options.epochs` epochs; returns the per-epoch summaries. */
export async function trainClassifier(
  model: tf.LayersModel,
  train: Dataset,
  options: TrainOptions,
): Promise<EpochSummary[]> {
  const batchSeeds = mulberry32((options.seed ?? 1) ^ 0x0a06_5eed);
  const average = options.averageFrom === undefined ? undefined : new WeightAverage();
  const summaries: EpochSummary[] = [];
  /** One pass over `train` at `learningRate` (when given), validated and reported. */
  const pass = async (epoch: number, learningRate: number | undefined, extra: Partial<EpochSummary> = {}) => {
    const started = performance.now();
    if (learningRate !== undefined) setLearningRate(model, learningRate);
    const { loss, accuracy } = await trainEpoch(model, train, options, epoch, batchSeeds);
    const summary: EpochSummary = {
      epoch,
      loss,
      accuracy,
      seconds: (performance.now() - started) / 1000,
      ...extra,
    };
    if (learningRate !== undefined) summary.learningRate = learningRate;
    if (options.validation) summary.validationAccuracy = await evaluateAccuracy(model, options.validation);
    summaries.push(summary);
    options.onEpoch?.(summary);
  };
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    await pass(epoch, options.learningRateForEpoch?.(epoch));
    if (average && epoch >= options.averageFrom!) average.add(model);
  }
  if (average && average.count > 0) {
    average.apply(model);
    await pass(options.epochs, 0, { averagedEpochs: average.count });
  }
  return summaries;
}

/** Predicted class of every image of `ds`, computed in batches. */
export async function predictClasses(
  model: tf.LayersModel,
  ds: Dataset,
  batchSize = 500,
): Promise<Int32Array> {
  const predictions = new Int32Array(ds.count);
  const size = imageSize(ds);
  for (let start = 0; start < ds.count; start += batchSize) {
    const end = Math.min(ds.count, start + batchSize);
    const classes = tf.tidy(() => {
      const x = tf.tensor4d(ds.images.subarray(start * size, end * size), [end - start, ...ds.shape]);
      return (model.predict(x) as tf.Tensor).argMax(-1);
    });
    predictions.set(await classes.data() as Int32Array, start);
    classes.dispose();
  }
  return predictions;
}

/** Predicted class of every image of `ds` plus Gaussian noise (see {@link evaluateAccuracy}). */
async function predictNoisyClasses(
  model: tf.LayersModel,
  ds: Dataset,
  sigma: number,
  seed: number,
  batchSize: number,
): Promise<Int32Array> {
  const predictions = new Int32Array(ds.count);
  const size = imageSize(ds);
  const seeds = mulberry32(seed);
  for (let start = 0; start < ds.count; start += batchSize) {
    const end = Math.min(ds.count, start + batchSize);
    const batchSeed = Math.floor(seeds() * 2 ** 31);
    const classes = tf.tidy(() => {
      const x = tf.tensor4d(ds.images.subarray(start * size, end * size), [end - start, ...ds.shape]);
      return (model.predict(addGaussianNoise(x, sigma, batchSeed)) as tf.Tensor).argMax(-1);
    });
    predictions.set(await classes.data() as Int32Array, start);
    classes.dispose();
  }
  return predictions;
}

/**
 * Fraction of `ds` that `model` classifies correctly; with `noise`, of the images plus one seeded draw of
 * Gaussian noise N(0, sigma^2) each (not clipped), a fresh seed per batch from mulberry32(noise.seed).
 */
export async function evaluateAccuracy(
  model: tf.LayersModel,
  ds: Dataset,
  batchSize = 500,
  noise?: { sigma: number; seed: number },
): Promise<number> {
  if (ds.count === 0) return Number.NaN;
  const predictions = noise === undefined
    ? await predictClasses(model, ds, batchSize)
    : await predictNoisyClasses(model, ds, noise.sigma, noise.seed, batchSize);
  let correct = 0;
  for (let i = 0; i < ds.count; i++) if (predictions[i] === ds.labels[i]) correct++;
  return correct / ds.count;
}
