import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../src/engine/backend.ts";
import { checkPreprocessing, isIdentity, withPreprocessing } from "../src/engine/preprocess.ts";
import { outputsProbabilities } from "../src/engine/outputs.ts";
import { createLeNet } from "../src/models/lenet.ts";
import { splitModel } from "../src/engine/split.ts";

await initBackend("wasm");

function maxDifference(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

Deno.test("withPreprocessing: model and body see ((x (hi - lo) + lo) - mean) / std; head and gradients follow", () => {
  const model = createLeNet({ seed: 4 });
  const split = splitModel(model);
  const p = { range: [0, 255] as [number, number], mean: [127.5], std: [127.5] };
  const wrapped = withPreprocessing(split, p);
  assert.deepEqual(wrapped.inputRange, [0, 1]);
  assert.equal(wrapped.head, split.head);
  assert.ok(outputsProbabilities(wrapped.model), "the softmax output is still known as probabilities");
  const x = tf.randomUniform([3, 28, 28, 1], 0, 1, "float32", 2);
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const direct = tf.sub(tf.mul(x, 2), 1);
    assert.ok(maxDifference(wrapped.model.apply(x) as tf.Tensor, model.apply(direct) as tf.Tensor) < 1e-6);
    assert.ok(
      maxDifference(wrapped.body.apply(x) as tf.Tensor, split.body.apply(direct) as tf.Tensor) < 1e-6,
    );
    const score = (f: (v: tf.Tensor) => tf.Tensor) => (v: tf.Tensor) => tf.sum(tf.mul(f(v), tf.range(0, 10)));
    const viaWrapper = tf.grad(score((v) => wrapped.model.apply(v) as tf.Tensor))(x);
    const viaModel = tf.mul(tf.grad(score((v) => model.apply(v) as tf.Tensor))(direct), 2);
    assert.ok(maxDifference(viaWrapper, viaModel) < 1e-5);
  });
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  model.dispose();
});

Deno.test("preprocessing: the identity changes nothing; bad ranges, counts and deviations are named", () => {
  const model = createLeNet({ seed: 4 });
  const split = splitModel(model);
  assert.equal(withPreprocessing(split, undefined), split);
  assert.equal(withPreprocessing(split, { range: [0, 1] }), split);
  assert.ok(isIdentity({}) && !isIdentity({ mean: [0.5] }));
  assert.throws(() => checkPreprocessing({ range: [1, 0] }, 3), /input range \[1,0\]/);
  assert.throws(
    () => checkPreprocessing({ mean: [0.1, 0.2] }, 3),
    /mean has 2 values; the model's input has 3/,
  );
  assert.throws(() => checkPreprocessing({ std: [0.2, 0, 0.2] }, 3), /std .* positive/);
  checkPreprocessing({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }, 3);
  model.dispose();
});
