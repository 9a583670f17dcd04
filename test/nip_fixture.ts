/**
 * A small real model for the NIP tests (deterministic: seeded initialisers, seeded sample order): a conv net (conv-pool-Flatten "flatten"-dense-softmax) trained
 * for a few epochs on 3,000 real Fashion-MNIST training images, split at its Flatten layer, plus
 * calibration and test images from the fixed split.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { splitModel } from "../src/engine/split.ts";
import { type Dataset, oneHotTensor, toTensor } from "../src/data/dataset.ts";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";
import { fashionMnistSplit, samplePart } from "../src/data/splits.ts";
import type { SplitModel } from "../src/nip/types.ts";

/** The fixture: split model, calibration and test data. */
export interface NipFixture {
  split: SplitModel;
  calibration: Dataset;
  test: Dataset;
}

/** Builds the small conv net used by the fixture (exported for tests that need another copy). */
export function smallConvNet(): tf.Sequential {
  // Seeded initialisers: with tfjs's own shuffle off and a seeded sample order, training is reproducible.
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 8,
        kernelSize: 3,
        activation: "relu",
        name: "conv",
        kernelInitializer: init(1),
      }),
      tf.layers.maxPooling2d({ poolSize: 4, name: "pool" }),
      tf.layers.flatten({ name: "flatten" }),
      tf.layers.dense({ units: 32, activation: "relu", name: "hidden", kernelInitializer: init(2) }),
      tf.layers.dense({ units: 10, activation: "softmax", name: "scores", kernelInitializer: init(3) }),
    ],
  });
}

let cached: Promise<NipFixture> | undefined;

async function build(): Promise<NipFixture> {
  await initBackend("wasm");
  const dataset = await loadFashionMnist();
  const parts = fashionMnistSplit(dataset.labels);
  const train = samplePart(dataset, parts, "train", 3000, { seed: 3 });
  const model = smallConvNet();
  model.compile({ optimizer: tf.train.adam(0.005), loss: "categoricalCrossentropy", metrics: ["accuracy"] });
  const x = toTensor(train);
  const y = oneHotTensor(train);
  // The sample is already in a seeded random order; tfjs's own shuffle is unseeded.
  await model.fit(x, y, { epochs: 4, batchSize: 64, shuffle: false, verbose: 0 });
  tf.dispose([x, y]);
  return {
    split: splitModel(model, { layerName: "flatten", inputRange: [0, 1] }),
    calibration: samplePart(dataset, parts, "calibration", 600, { seed: 4 }),
    test: samplePart(dataset, parts, "test", 300, { seed: 5 }),
  };
}

/** The fixture, built once per test module. */
export function nipFixture(): Promise<NipFixture> {
  cached ??= build();
  return cached;
}
