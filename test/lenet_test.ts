import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { loadLayersModel } from "../src/engine/model_io.ts";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";
import { FASHION_MNIST_SPLIT_SEED, fashionMnistSplit, seededShuffle } from "../src/data/splits.ts";
import { subset } from "../src/data/dataset.ts";
import { createLeNet, LENET_FLATTEN_LAYER, LENET_LOGITS_LAYER } from "../src/models/lenet.ts";
import {
  cosineSchedule,
  evaluateAccuracy,
  gatherBatch,
  halvingSchedule,
  LEARNING_RATE_SCHEDULES,
  predictClasses,
  trainClassifier,
} from "../src/models/training.ts";

await initBackend("wasm");
const MODEL_DIR = new URL("../models/fashion-lenet/", import.meta.url).pathname;
const fashion = await loadFashionMnist();
const split = fashionMnistSplit(fashion.labels);

Deno.test("createLeNet builds conv-pool-conv-pool-flatten-dense-dense-softmax with seeded weights", () => {
  const before = tf.memory().numTensors;
  const a = createLeNet({ seed: 3 });
  const b = createLeNet({ seed: 3 });
  const c = createLeNet({ seed: 4 });
  try {
    assert.deepEqual(a.layers.map((layer) => layer.name), [
      "conv1",
      "pool1",
      "conv2",
      "pool2",
      LENET_FLATTEN_LAYER,
      "dense1",
      LENET_LOGITS_LAYER,
      "softmax",
    ]);
    assert.deepEqual(a.getLayer("flatten").outputShape, [null, 800]);
    assert.deepEqual(a.outputs[0].shape, [null, 10]);
    const weights = (m: tf.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(weights(a), weights(b));
    assert.notDeepEqual(weights(a)[0], weights(c)[0]);
  } finally {
    for (const model of [a, b, c]) {
      model.optimizer.dispose();
      model.dispose();
    }
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("perImageNormalization: a LeNet that ignores each image's brightness and contrast; dropout only when asked", () => {
  const before = tf.memory().numTensors;
  const norm = createLeNet({
    inputShape: [32, 32, 3],
    classes: 43,
    perImageNormalization: true,
    dropout: 0.5,
  });
  const plain = createLeNet({ inputShape: [32, 32, 3], classes: 43 });
  try {
    assert.deepEqual(norm.layers.map((layer) => layer.name).slice(0, 2), ["input_norm", "conv1"]);
    assert.ok(norm.getLayer("dropout"));
    assert.equal(
      plain.layers.some((layer) => layer.name === "input_norm" || layer.name === "dropout"),
      false,
    );
    const [changed, unchanged] = tf.tidy(() => {
      const x = tf.randomUniform([3, 32, 32, 3], 0.2, 0.6, "float32", 5);
      const dimmer = x.mul(0.5).add(0.1);
      const delta = (model: tf.LayersModel) =>
        (model.predict(x) as tf.Tensor).sub(model.predict(dimmer) as tf.Tensor).abs().max().dataSync()[0];
      return [delta(plain), delta(norm)];
    });
    assert.ok(unchanged < 1e-3, `scores moved by ${unchanged} under a brightness/contrast change`);
    assert.ok(changed > 1e-3, `the plain LeNet's scores moved by only ${changed}`);
  } finally {
    for (const model of [norm, plain]) {
      model.optimizer.dispose();
      model.dispose();
    }
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("a tiny training run on wasm lowers the loss and leaks no tensors", async () => {
  const before = tf.memory().numTensors;
  const train = subset(fashion, seededShuffle(Int32Array.from(split.train), 11).subarray(0, 640));
  const model = createLeNet({ seed: 2 });
  try {
    const { x, y } = gatherBatch(train, [0, 1, 2]);
    assert.deepEqual(x.shape, [3, 28, 28, 1]);
    assert.deepEqual(y.shape, [3, 10]);
    tf.dispose([x, y]);
    const history = await trainClassifier(model, train, { epochs: 3, batchSize: 32, seed: 2 });
    console.log(`losses per epoch: ${history.map((h) => h.loss.toFixed(3)).join(", ")}`);
    assert.equal(history.length, 3);
    assert.ok(history[2].loss < 0.8 * history[0].loss, `loss did not go down: ${history.map((h) => h.loss)}`);
    assert.ok(history[2].accuracy > history[0].accuracy);
    const predictions = await predictClasses(model, subset(train, [0, 1, 2, 3]), 3);
    assert.equal(predictions.length, 4);
  } finally {
    model.optimizer.dispose();
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("training is reproducible: the same seed gives the same weights", async () => {
  const train = subset(fashion, seededShuffle(Int32Array.from(split.train), 12).subarray(0, 256));
  const trainedWeights = async (seed: number) => {
    const model = createLeNet({ seed });
    try {
      await trainClassifier(model, train, {
        epochs: 2,
        batchSize: 64,
        seed,
        learningRateForEpoch: halvingSchedule(0.001, 2),
      });
      return model.getWeights().map((w) => Array.from(w.dataSync()));
    } finally {
      model.optimizer.dispose();
      model.dispose();
    }
  };
  const first = await trainedWeights(5);
  assert.deepEqual(await trainedWeights(5), first);
  assert.notDeepEqual((await trainedWeights(6))[0], first[0]);
});

Deno.test("halvingSchedule keeps the base rate for the first half, then halves it each epoch", () => {
  const schedule = halvingSchedule(0.001, 8);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map(schedule), [
    0.001,
    0.001,
    0.001,
    0.001,
    0.0005,
    0.00025,
    0.000125,
    0.0000625,
  ]);
});

Deno.test("the committed model loads, has a flatten layer, and reaches >= 90% on the test split", async () => {
  const metrics = JSON.parse(await Deno.readTextFile(`${MODEL_DIR}metrics.json`));
  assert.equal(metrics.data, "fashion-mnist");
  assert.equal(metrics.split.seed, FASHION_MNIST_SPLIT_SEED);
  const before = tf.memory().numTensors;
  const model = await loadLayersModel(MODEL_DIR);
  try {
    const flatten = model.getLayer(LENET_FLATTEN_LAYER);
    assert.equal(flatten.getClassName(), "Flatten");
    // every third test image: 3,334 images, all classes
    const sample = subset(fashion, split.test.filter((_, i) => i % 3 === 0));
    const started = performance.now();
    const accuracy = await evaluateAccuracy(model, sample);
    console.log(
      `accuracy ${(accuracy * 100).toFixed(2)}% on ${sample.count} test images in ${
        (performance.now() - started).toFixed(0)
      } ms`,
    );
    assert.ok(accuracy >= 0.9, `accuracy ${accuracy}`);
  } finally {
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("cosineSchedule falls from the base rate along half a cosine; every schedule describes itself", () => {
  const schedule = cosineSchedule(0.002, 4);
  const rates = [0, 1, 2, 3].map(schedule);
  const expected = [0.002, 0.002 * (1 + Math.SQRT1_2) / 2, 0.001, 0.002 * (1 - Math.SQRT1_2) / 2];
  rates.forEach((rate, i) => assert.ok(Math.abs(rate - expected[i]) < 1e-12, `epoch ${i}: ${rate}`));
  assert.match(LEARNING_RATE_SCHEDULES.cosine.describe(0.002, 4), /cosine decay over 4 epochs/);
  assert.match(LEARNING_RATE_SCHEDULES.halving.describe(0.001, 8), /first 4 epochs, then halved/);
});
