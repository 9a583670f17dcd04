import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../src/engine/backend.ts";
import { createVgg } from "../src/models/image_nets.ts";

await initBackend("wasm");

function explicitBatchNorm(
  x: tf.Tensor4D,
  mean: tf.Tensor1D,
  variance: tf.Tensor1D,
  offset: tf.Tensor1D,
  scale: tf.Tensor1D,
): tf.Tensor {
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-3))), scale), offset);
}

Deno.test("batch-norm gradient: all five gradients equal those of the same formula in plain ops", () => {
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const x = tf.randomNormal([3, 4, 5, 6], 0, 1, "float32", 1) as tf.Tensor4D;
    const mean = tf.randomNormal([6], 0, 1, "float32", 2) as tf.Tensor1D;
    const variance = tf.randomUniform([6], 0.5, 2, "float32", 3) as tf.Tensor1D;
    const offset = tf.randomNormal([6], 0, 1, "float32", 4) as tf.Tensor1D;
    const scale = tf.randomNormal([6], 1, 0.2, "float32", 5) as tf.Tensor1D;
    const weights = tf.randomNormal([3, 4, 5, 6], 0, 1, "float32", 6);
    const loss = (f: (...t: tf.Tensor[]) => tf.Tensor) => (...t: tf.Tensor[]) =>
      tf.sum(tf.mul(f(...t), weights));
    const fused = tf.grads(
      loss((a, m, v, o, s) =>
        tf.batchNorm(
          a as tf.Tensor4D,
          m as tf.Tensor1D,
          v as tf.Tensor1D,
          o as tf.Tensor1D,
          s as tf.Tensor1D,
          1e-3,
        )
      ),
    )([x, mean, variance, offset, scale]);
    const plain = tf.grads(
      loss((a, m, v, o, s) =>
        explicitBatchNorm(
          a as tf.Tensor4D,
          m as tf.Tensor1D,
          v as tf.Tensor1D,
          o as tf.Tensor1D,
          s as tf.Tensor1D,
        )
      ),
    )([x, mean, variance, offset, scale]);
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(fused[i].shape, plain[i].shape, `gradient ${i} shape`);
      const difference = tf.max(tf.abs(tf.sub(fused[i], plain[i]))).dataSync()[0];
      const magnitude = tf.max(tf.abs(plain[i])).dataSync()[0];
      assert.ok(difference <= 1e-4 * Math.max(1, magnitude), `gradient ${i}: ${difference} of ${magnitude}`);
    }
  });
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("batch-norm gradient: a VGG with batch norm trains (loss falls on a fixed batch) without leaking", async () => {
  const model = createVgg({ blocks: [4, 8], denseUnits: 16, dropout: 0, inputShape: [8, 8, 3], seed: 3 });
  const x = tf.randomUniform([16, 8, 8, 3], 0, 1, "float32", 7);
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5], "int32"), 10).toFloat();
  const first = await model.trainOnBatch(x, y) as number[];
  const before = tf.memory().numTensors;
  let last = first;
  for (let step = 0; step < 30; step++) last = await model.trainOnBatch(x, y) as number[];
  assert.equal(tf.memory().numTensors, before);
  assert.ok(last[0] < first[0] * 0.7, `loss ${first[0]} -> ${last[0]}`);
  tf.dispose([x, y]);
  model.dispose();
});
