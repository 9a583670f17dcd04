import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { loadLayersModel } from "../src/engine/model_io.ts";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";
import { fashionMnistSplit, samplePart } from "../src/data/splits.ts";
import { createDenoiser, defaultDenoiserSpec, flattenWeights } from "../src/models/denoiser.ts";
import { evaluateDenoiser, trainDenoiser } from "../src/models/denoiser_training.ts";

await initBackend("wasm");
const MODEL_DIR = new URL("../models/fashion-lenet/", import.meta.url).pathname;
const fashion = await loadFashionMnist();
const split = fashionMnistSplit(fashion.labels);
const train = samplePart(fashion, split, "train", 384, { seed: 5 });
const heldOut = samplePart(fashion, split, "calibration", 200, { seed: 5 });
const spec = defaultDenoiserSpec([28, 28, 1]);

function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => Float32Array.from(w.dataSync()));
}

Deno.test("MSE training on real images denoises held-out images better than the noisy input", async () => {
  const before = tf.memory().numTensors;
  const classifier = await loadLayersModel(MODEL_DIR);
  const denoiser = createDenoiser(spec, 3);
  const sigma = 0.25;
  try {
    const fresh = await evaluateDenoiser(denoiser, classifier, heldOut, sigma, 9);
    // A fresh denoiser is the identity; the noise is unclipped N(0, sigma^2), so its MSE is about sigma^2.
    assert.equal(fresh.denoisedMse, fresh.noisyMse);
    assert.ok(Math.abs(fresh.noisyMse / (sigma * sigma) - 1) < 0.02, `noisy MSE ${fresh.noisyMse}`);
    let batches = 0;
    const history = await trainDenoiser(denoiser, train, {
      sigma,
      objective: "mse",
      epochs: 3,
      batchSize: 32,
      seed: 4,
      onBatch: () => batches++,
    });
    assert.equal(batches, 3 * 12);
    assert.equal(history.length, 3);
    assert.ok(history[2].loss < history[0].loss, `loss per epoch ${history.map((h) => h.loss)}`);
    const trained = await evaluateDenoiser(denoiser, classifier, heldOut, sigma, 9);
    console.log(JSON.stringify(trained));
    assert.equal(trained.noisyMse, fresh.noisyMse, "the same seed draws the same held-out noise");
    assert.ok(trained.denoisedMse < 0.7 * trained.noisyMse, JSON.stringify(trained));
    assert.ok(trained.cleanAccuracy > 0.8);
  } finally {
    denoiser.dispose();
    classifier.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("the stability objective trains the denoiser through the classifier and never changes the classifier", async () => {
  const before = tf.memory().numTensors;
  const classifier = await loadLayersModel(MODEL_DIR);
  const denoiser = createDenoiser(spec, 3);
  try {
    const classifierBefore = weightsOf(classifier);
    const denoiserBefore = flattenWeights(denoiser);
    const history = await trainDenoiser(denoiser, samplePart(fashion, split, "train", 128, { seed: 6 }), {
      sigma: 0.5,
      objective: "stability",
      classifier,
      epochs: 1,
      batchSize: 32,
      seed: 2,
    });
    assert.equal(history.length, 1);
    assert.ok(Number.isFinite(history[0].loss) && history[0].loss > 0);
    assert.deepEqual(weightsOf(classifier), classifierBefore);
    const denoiserAfter = flattenWeights(denoiser);
    assert.notDeepEqual(denoiserAfter, denoiserBefore);
    // The last layer started at zero and is now trained: the gradient reached it through the classifier.
    assert.ok(denoiserAfter.subarray(denoiserAfter.length - 145).some((w) => w !== 0));
    await assert.rejects(
      () => trainDenoiser(denoiser, train, { sigma: 0.5, objective: "stability", epochs: 1 }),
      /the stability objective needs the classifier/,
    );
    await assert.rejects(
      () => trainDenoiser(denoiser, train, { sigma: 0, objective: "mse", epochs: 1 }),
      /sigma = 0 must be positive/,
    );
  } finally {
    denoiser.dispose();
    classifier.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("denoiser training is seeded: the same seed gives the same weights, another seed others", async () => {
  const before = tf.memory().numTensors;
  const images = samplePart(fashion, split, "train", 64, { seed: 7 });
  const run = async (seed: number) => {
    const denoiser = createDenoiser(spec, 1);
    await trainDenoiser(denoiser, images, { sigma: 0.12, objective: "mse", epochs: 1, batchSize: 32, seed });
    const weights = flattenWeights(denoiser);
    denoiser.dispose();
    return weights;
  };
  const [a, b, c] = [await run(1), await run(1), await run(2)];
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.equal(tf.memory().numTensors, before);
});
