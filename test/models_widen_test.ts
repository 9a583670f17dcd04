import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../src/engine/backend.ts";
import { createLeNet } from "../src/models/lenet.ts";
import { createResNet, createVgg } from "../src/models/image_nets.ts";
import { widenInto } from "../src/models/widen.ts";

await initBackend("wasm");

/** Gives every batch norm of `model` seeded non-trivial statistics, so that copying them is tested too. */
function perturbBatchNorms(model: tf.LayersModel, seed: number): void {
  for (const layer of model.layers.filter((l) => l.getClassName() === "BatchNormalization")) {
    const shapes = layer.getWeights().map((w) => w.shape);
    const values = [
      tf.randomUniform(shapes[0], 0.5, 1.5, "float32", seed),
      tf.randomNormal(shapes[1], 0, 0.2, "float32", seed + 1),
      tf.randomNormal(shapes[2], 0, 0.3, "float32", seed + 2),
      tf.randomUniform(shapes[3], 0.5, 2, "float32", seed + 3),
    ];
    layer.setWeights(values);
    tf.dispose(values);
  }
}

function largestDifference(a: tf.LayersModel, b: tf.LayersModel, images: tf.Tensor): number {
  return tf.tidy(() =>
    tf.max(tf.abs(tf.sub(a.predict(images) as tf.Tensor, b.predict(images) as tf.Tensor))).dataSync()[0]
  );
}

Deno.test("widenInto: a 1.5x wider ResNet computes the narrow one's function without noise", () => {
  const narrow = createResNet({ blocks: 1, width: 8, seed: 3 });
  perturbBatchNorms(narrow, 7);
  const wide = createResNet({ blocks: 1, width: 12, seed: 4 });
  const images = tf.randomUniform([4, 32, 32, 3], 0, 1, "float32", 11);
  const before = tf.memory().numTensors;
  assert.ok(largestDifference(narrow, wide, images) > 1e-3, "two random nets differ before widening");
  widenInto(narrow, wide, { noise: 0 });
  assert.ok(largestDifference(narrow, wide, images) < 1e-5);
  assert.equal(tf.memory().numTensors, before);
  images.dispose();
  narrow.dispose();
  wide.dispose();
});

Deno.test("widenInto: a wider VGG (flatten, hidden dense layer) keeps the function; noise moves only new units", () => {
  const narrow = createVgg({ blocks: [4, 8], denseUnits: 16, seed: 3 });
  perturbBatchNorms(narrow, 9);
  const exact = createVgg({ blocks: [6, 12], denseUnits: 24, seed: 4 });
  const noisy = createVgg({ blocks: [6, 12], denseUnits: 24, seed: 4 });
  const images = tf.randomUniform([4, 32, 32, 3], 0, 1, "float32", 12);
  widenInto(narrow, exact, { noise: 0 });
  widenInto(narrow, noisy, { noise: 0.05, seed: 2 });
  assert.ok(largestDifference(narrow, exact, images) < 1e-5);
  const difference = largestDifference(narrow, noisy, images);
  assert.ok(difference > 0 && difference < 0.05, `noise moved the output by ${difference}`);
  const kernel = (model: tf.LayersModel) =>
    model.getLayer("block1_conv1").getWeights()[0].arraySync() as number[][][][];
  const [a, b] = [kernel(exact), kernel(noisy)];
  assert.deepEqual(b[1][1][0].slice(0, 4), a[1][1][0].slice(0, 4), "the narrow units' own weights are kept");
  assert.notDeepEqual(b[1][1][0].slice(4), a[1][1][0].slice(4), "the replicas are set apart");
  images.dispose();
  [narrow, exact, noisy].forEach((m) => m.dispose());
});

Deno.test("widenInto: a layer normalisation over widened features is an error naming it", () => {
  const build = (units: number) =>
    tf.sequential({
      layers: [
        tf.layers.dense({ name: "hidden", inputShape: [3], units }),
        tf.layers.layerNormalization({ name: "norm" }),
        tf.layers.dense({ name: "out", units: 2 }),
      ],
    });
  const [narrow, wide] = [build(4), build(6)];
  assert.throws(() => widenInto(narrow, wide), /cannot widen through norm \(LayerNormalization\)/);
  narrow.dispose();
  wide.dispose();
});

Deno.test("widenInto: the per-image normalised LeNet widens, its normalisation reading the unwidened image", () => {
  const narrow = createLeNet({ filters: [4, 8], denseUnits: 16, perImageNormalization: true });
  const wide = createLeNet({ filters: [6, 12], denseUnits: 24, perImageNormalization: true });
  widenInto(narrow, wide, { noise: 0 });
  const images = tf.randomUniform([2, 28, 28, 1], 0, 1, "float32", 5);
  assert.ok(largestDifference(narrow, wide, images) < 1e-5);
  images.dispose();
  narrow.dispose();
  wide.dispose();
});
