import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../src/engine/backend.ts";
import { loadLayersModel } from "../src/engine/model_io.ts";
import { defaultSplitLayer, findLayer, SplitError, splitModel } from "../src/engine/split.ts";
import { KERAS_SEQUENTIAL } from "./fixtures/engine/fixture_values.ts";

await initBackend("wasm");

const init = (seed: number) => tf.initializers.glorotUniform({ seed });

function sequentialFlatten(): tf.Sequential {
  const model = tf.sequential({ name: "seq_flatten" });
  model.add(tf.layers.conv2d({
    name: "conv_a",
    inputShape: [12, 12, 1],
    filters: 4,
    kernelSize: 3,
    activation: "relu",
    kernelInitializer: init(1),
  }));
  model.add(tf.layers.maxPooling2d({ name: "pool_a", poolSize: 2 }));
  model.add(
    tf.layers.conv2d({
      name: "conv_b",
      filters: 6,
      kernelSize: 3,
      activation: "relu",
      kernelInitializer: init(2),
    }),
  );
  model.add(tf.layers.flatten({ name: "flatten" }));
  model.add(tf.layers.dense({ name: "fc", units: 16, activation: "relu", kernelInitializer: init(3) }));
  model.add(tf.layers.dropout({ name: "drop", rate: 0.5 }));
  model.add(tf.layers.dense({ name: "scores", units: 5, activation: "softmax", kernelInitializer: init(4) }));
  return model;
}

function sequentialGap(): tf.Sequential {
  const model = tf.sequential({ name: "seq_gap" });
  model.add(tf.layers.conv2d({
    name: "conv",
    inputShape: [10, 10, 3],
    filters: 8,
    kernelSize: 3,
    padding: "same",
    activation: "relu",
    kernelInitializer: init(5),
  }));
  model.add(tf.layers.globalAveragePooling2d({ name: "gap" }));
  model.add(tf.layers.dense({ name: "logits", units: 4, kernelInitializer: init(6) }));
  return model;
}

/** Functional: conv -> flatten -> two dense branches that rejoin -> dense, plus a GAP-free chain. */
function functionalBranches(): tf.LayersModel {
  const input = tf.input({ shape: [9, 9, 2], name: "image" });
  const conv = tf.layers.conv2d({
    name: "f_conv",
    filters: 3,
    kernelSize: 3,
    activation: "relu",
    kernelInitializer: init(7),
  })
    .apply(input) as tf.SymbolicTensor;
  const flat = tf.layers.flatten({ name: "f_flatten" }).apply(conv) as tf.SymbolicTensor;
  const left = tf.layers.dense({ name: "f_left", units: 8, activation: "tanh", kernelInitializer: init(8) })
    .apply(flat) as tf.SymbolicTensor;
  const right = tf.layers.dense({ name: "f_right", units: 8, activation: "relu", kernelInitializer: init(9) })
    .apply(flat) as tf.SymbolicTensor;
  const joined = tf.layers.add({ name: "f_add" }).apply([left, right]) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: "f_out", units: 3, activation: "softmax", kernelInitializer: init(10) })
    .apply(joined) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: "functional_branches" });
}

/** Functional with a skip connection from before the flatten to after it. */
function functionalSkip(): tf.LayersModel {
  const input = tf.input({ shape: [6], name: "vector" });
  const a = tf.layers.dense({ name: "s_a", units: 6, kernelInitializer: init(11) }).apply(
    input,
  ) as tf.SymbolicTensor;
  const b = tf.layers.dense({ name: "s_b", units: 6, kernelInitializer: init(12) }).apply(
    a,
  ) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: "s_add" }).apply([a, b]) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: "s_out", units: 2, kernelInitializer: init(13) }).apply(
    sum,
  ) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: "functional_skip" });
}

function inputs(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform([3, ...shape], 0, 1, "float32", seed);
}

/** Checks head(body(x)) == model(x) and that no tensor is left behind. */
function assertComposes(model: tf.LayersModel, options: { layerName?: string }, expectedLayer: string): void {
  const split = splitModel(model, options);
  assert.equal(split.layerName, expectedLayer);
  assert.deepEqual(split.inputShape, model.inputs[0].shape.slice(1));
  assert.deepEqual(split.inputRange, [0, 1]);
  const x = inputs(split.inputShape, 42);
  const before = tf.memory().numTensors;
  const [whole, composed, features] = tf.tidy(() => {
    const f = split.body.predict(x) as tf.Tensor;
    return [
      (model.predict(x) as tf.Tensor).dataSync(),
      (split.head.predict(f) as tf.Tensor).dataSync(),
      f.shape,
    ];
  });
  assert.equal(tf.memory().numTensors, before, "predict leaked tensors");
  assert.deepEqual(features, [3, ...(findLayer(model, expectedLayer).outputShape as number[]).slice(1)]);
  assert.equal(composed.length, whole.length);
  for (let i = 0; i < whole.length; i++) {
    assert.ok(Math.abs(composed[i] - whole[i]) <= 1e-6, `${model.name} at ${expectedLayer}: [${i}]`);
  }
  x.dispose();
}

Deno.test("Sequential with Flatten: default split at the flatten, and at a named conv layer", () => {
  const model = sequentialFlatten();
  assert.equal(defaultSplitLayer(model).name, "flatten");
  assertComposes(model, {}, "flatten");
  assertComposes(model, { layerName: "conv_b" }, "conv_b");
  assertComposes(model, { layerName: "fc" }, "fc");
  model.dispose();
});

Deno.test("Sequential with GlobalAveragePooling: default split at the GAP layer", () => {
  const model = sequentialGap();
  assert.equal(defaultSplitLayer(model).name, "gap");
  assertComposes(model, {}, "gap");
  assertComposes(model, { layerName: "conv" }, "conv");
  model.dispose();
});

Deno.test("functional model: branches that rejoin after the split layer are rebuilt in the head", () => {
  const model = functionalBranches();
  assert.equal(defaultSplitLayer(model).name, "f_flatten");
  assertComposes(model, {}, "f_flatten");
  assertComposes(model, { layerName: "f_conv" }, "f_conv");
  assertComposes(model, { layerName: "f_add" }, "f_add");
  model.dispose();
});

Deno.test("a loaded Keras-converted Sequential model (with an InputLayer) splits at its flatten", async () => {
  const model = await loadLayersModel(KERAS_SEQUENTIAL.dir);
  assertComposes(model, {}, "flatten");
  assertComposes(model, { layerName: "dense" }, "dense");
  model.dispose();
});

Deno.test("gradients of the head's scores flow back to the split layer's output", () => {
  const model = sequentialFlatten();
  const split = splitModel(model);
  const x = inputs([12, 12, 1], 5);
  const before = tf.memory().numTensors;
  const norm = tf.tidy(() => {
    const features = split.body.predict(x) as tf.Tensor;
    const grad = tf.grad((f: tf.Tensor) =>
      tf.sum(tf.mul(split.head.apply(f) as tf.Tensor, tf.oneHot([1, 2, 3], 5)))
    )(
      features,
    );
    assert.deepEqual(grad.shape, features.shape);
    return tf.norm(grad).dataSync()[0];
  });
  assert.ok(Number.isFinite(norm) && norm > 0, `gradient norm ${norm}`);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  model.dispose();
});

Deno.test("body and head share the model's weights (one variable, not copies)", () => {
  const model = sequentialFlatten();
  const split = splitModel(model, { inputRange: [-1, 1] });
  assert.deepEqual(split.inputRange, [-1, 1]);
  assert.ok(split.head.layers.includes(model.getLayer("scores")));
  assert.ok(split.body.layers.includes(model.getLayer("conv_a")));
  const x = inputs([12, 12, 1], 3);
  const layer = model.getLayer("scores");
  const [kernel, bias] = layer.getWeights();
  const before = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
  const doubled = tf.mul(kernel, 2);
  split.head.getLayer("scores").setWeights([doubled, bias]);
  const after = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
  assert.notDeepEqual(Array.from(after), Array.from(before), "changing the head's weights changes the model");
  tf.dispose([x, kernel, bias, doubled]);
  model.dispose();
});

Deno.test("bad split requests give clear errors", () => {
  const model = sequentialFlatten();
  assert.throws(() => splitModel(model, { layerName: "nope" }), (error: Error) => {
    assert.ok(error instanceof SplitError);
    assert.match(error.message, /model "seq_flatten" has no layer named "nope"/);
    assert.match(
      error.message,
      /conv_a \(Conv2D\), pool_a \(MaxPooling2D\), conv_b \(Conv2D\), flatten \(Flatten\)/,
    );
    return true;
  });
  assert.throws(() => splitModel(model, { inputRange: [1, 0] }), /inputRange must be/);

  const skip = functionalSkip();
  assert.throws(
    () => defaultSplitLayer(skip),
    /has no Flatten or GlobalAveragePooling2D or GlobalAveragePooling1D layer/,
  );
  assert.throws(
    () => splitModel(skip, { layerName: "s_b" }),
    /cannot split at layer "s_b": layer "s_add" also takes "s_a.*bypasses it/,
  );
  assert.throws(() => splitModel(skip, { layerName: "vector" }), /cannot split at the input layer "vector"/);
  // The skip connection's source itself is a valid split point.
  const split = splitModel(skip, { layerName: "s_a" });
  assert.equal(split.head.layers.filter((l) => l.getClassName() === "Dense").length, 2);
  skip.dispose();
  model.dispose();
});
