import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { loadLayersModel } from "../src/engine/model_io.ts";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";
import { fashionMnistSplit, samplePart } from "../src/data/splits.ts";
import { createLeNet } from "../src/models/lenet.ts";
import {
  addGaussianNoise,
  evaluateAccuracy,
  gaussianNoiseAugmentation,
  trainClassifier,
} from "../src/models/training.ts";

await initBackend("wasm");
const MODEL_DIR = new URL("../models/fashion-lenet/", import.meta.url).pathname;
const fashion = await loadFashionMnist();
const split = fashionMnistSplit(fashion.labels);
const train = samplePart(fashion, split, "train", 160, { seed: 3 });

function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => Float32Array.from(w.dataSync()));
}

Deno.test("the augmentation hook sees every batch with its own seed; its outputs are disposed", async () => {
  const before = tf.memory().numTensors;
  const model = createLeNet({ seed: 2 });
  const seen: { input: tf.Tensor4D; output: tf.Tensor4D; seed: number; size: number }[] = [];
  const noise = gaussianNoiseAugmentation(0.25);
  try {
    await trainClassifier(model, train, {
      epochs: 2,
      batchSize: 64,
      seed: 2,
      augment: (x, batchSeed) => {
        const output = noise(x, batchSeed);
        seen.push({ input: x, output, seed: batchSeed, size: x.shape[0] });
        return output;
      },
    });
    // 160 images in batches of 64: 64, 64, 32, in each of 2 epochs.
    assert.deepEqual(seen.map((s) => s.size), [64, 64, 32, 64, 64, 32]);
    assert.equal(new Set(seen.map((s) => s.seed)).size, seen.length, "a fresh seed per batch");
    assert.ok(seen.every((s) => s.output !== s.input && s.output.isDisposed && s.input.isDisposed));
  } finally {
    model.optimizer.dispose();
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("an augmentation returning its input trains exactly as none; the noise one trains otherwise", async () => {
  const before = tf.memory().numTensors;
  const run = async (augment?: (x: tf.Tensor4D, seed: number) => tf.Tensor4D) => {
    const model = createLeNet({ seed: 4 });
    await trainClassifier(model, train, { epochs: 1, batchSize: 32, seed: 4, augment });
    const weights = weightsOf(model);
    model.optimizer.dispose();
    model.dispose();
    return weights;
  };
  const plain = await run();
  assert.deepEqual(await run((x) => x), plain);
  const noisy = await run(gaussianNoiseAugmentation(0.5));
  assert.notDeepEqual(noisy, plain);
  assert.deepEqual(await run(gaussianNoiseAugmentation(0.5)), noisy, "the noise is seeded");
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("weight averaging: the model ends with the mean of the chosen epochs' weights, after a pass at rate 0", async () => {
  const before = tf.memory().numTensors;
  const model = createLeNet({ seed: 5 });
  const atEpochEnd: Float32Array[][] = [];
  try {
    const summaries = await trainClassifier(model, train, {
      epochs: 3,
      batchSize: 32,
      seed: 5,
      learningRateForEpoch: () => 0.002,
      averageFrom: 1,
      onEpoch: (summary) => {
        if (summary.averagedEpochs === undefined) atEpochEnd.push(weightsOf(model));
      },
    });
    assert.equal(summaries.length, 4);
    assert.deepEqual(summaries.map((s) => s.averagedEpochs), [undefined, undefined, undefined, 2]);
    assert.equal(summaries[3].learningRate, 0);
    // LeNet has no batch norm, so the pass at rate 0 leaves the mean as it is.
    const final = weightsOf(model);
    final.forEach((w, i) =>
      w.forEach((v, j) => {
        const mean = (atEpochEnd[1][i][j] + atEpochEnd[2][i][j]) / 2;
        assert.ok(Math.abs(v - mean) < 1e-6, `weight ${i}[${j}]: ${v} vs mean ${mean}`);
      })
    );
    assert.ok(
      final[0].some((v, j) => v !== atEpochEnd[2][0][j]),
      "the mean differs from the last epoch's weights",
    );
  } finally {
    model.optimizer.dispose();
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("Gaussian noise is seeded, unclipped, of mean 0 and standard deviation sigma", () => {
  const before = tf.memory().numTensors;
  const x = tf.fill([50, 28, 28, 1], 0.5) as tf.Tensor4D;
  const a = addGaussianNoise(x, 0.3, 11);
  const b = addGaussianNoise(x, 0.3, 11);
  const c = addGaussianNoise(x, 0.3, 12);
  try {
    assert.deepEqual(a.dataSync(), b.dataSync());
    assert.notDeepEqual(a.dataSync(), c.dataSync());
    const values = Array.from(a.dataSync());
    const n = values.length;
    const mean = values.reduce((s, v) => s + v, 0) / n;
    const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / n);
    assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
    assert.ok(Math.abs(sd - 0.3) < 0.01, `sd ${sd}`);
    assert.ok(values.some((v) => v < 0) && values.some((v) => v > 1), "not clipped to [0, 1]");
    assert.throws(() => gaussianNoiseAugmentation(0), /noise sigma = 0 must be positive/);
  } finally {
    tf.dispose([x, a, b, c]);
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("noisy accuracy: the committed model loses accuracy under noise, none under vanishing noise", async () => {
  const before = tf.memory().numTensors;
  const model = await loadLayersModel(MODEL_DIR);
  const test = samplePart(fashion, split, "test", 500, { seed: 1 });
  try {
    const clean = await evaluateAccuracy(model, test);
    const tiny = await evaluateAccuracy(model, test, 200, { sigma: 1e-6, seed: 1 });
    const noisy = await evaluateAccuracy(model, test, 200, { sigma: 0.5, seed: 1 });
    assert.equal(await evaluateAccuracy(model, test, 200, { sigma: 0.5, seed: 1 }), noisy);
    console.log(`clean ${clean}, sigma 1e-6 ${tiny}, sigma 0.5 ${noisy}`);
    assert.ok(Math.abs(tiny - clean) <= 0.004, `${tiny} vs ${clean}`);
    assert.ok(noisy < clean - 0.1, `${noisy} vs ${clean}`);
  } finally {
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});
