import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../src/engine/backend.ts";
import { createResNet, createVgg, RESNET_GAP_LAYER, VGG_FLATTEN_LAYER } from "../src/models/image_nets.ts";
import { splitModel } from "../src/engine/split.ts";

await initBackend("wasm");

Deno.test("createVgg: Flatten before the dense head, logits then softmax, sized by its blocks", () => {
  const model = createVgg({ classes: 43, seed: 2 });
  assert.deepEqual(model.outputs[0].shape, [null, 43]);
  assert.deepEqual(model.getLayer(VGG_FLATTEN_LAYER).outputShape, [null, 4 * 4 * 128]);
  assert.equal(model.getLayer("logits").getClassName(), "Dense");
  assert.equal(model.layers[model.layers.length - 1].name, "softmax");
  const split = splitModel(model);
  assert.equal(split.layerName, VGG_FLATTEN_LAYER);
  model.dispose();
});

Deno.test("createResNet: ResNet-20 has 19 convs plus 2 projections and ends in global average pooling", () => {
  const model = createResNet({ seed: 1 });
  const convs = model.layers.filter((layer) => layer.getClassName() === "Conv2D");
  assert.equal(convs.length, 19 + 2);
  assert.deepEqual(model.getLayer(RESNET_GAP_LAYER).outputShape, [null, 64]);
  assert.deepEqual(model.outputs[0].shape, [null, 10]);
  assert.equal(splitModel(model).layerName, RESNET_GAP_LAYER);
  const before = tf.memory().numTensors;
  const probabilities = tf.tidy(() => model.predict(tf.zeros([2, 32, 32, 3])) as tf.Tensor);
  const sums = tf.tidy(() => tf.sum(probabilities, -1).dataSync());
  for (const sum of sums) assert.ok(Math.abs(sum - 1) < 1e-5);
  probabilities.dispose();
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

Deno.test("createVgg / createResNet: the same seed builds the same weights", () => {
  for (
    const make of [
      () => createVgg({ blocks: [8], seed: 5 }),
      () => createResNet({ blocks: 1, width: 4, seed: 5 }),
    ]
  ) {
    const a = make();
    const b = make();
    const wa = a.getWeights().map((w) => Array.from(w.dataSync()));
    const wb = b.getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(wa, wb);
    a.dispose();
    b.dispose();
  }
});
