import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../src/engine/backend.ts";
import {
  dirHandler,
  loadGraphModel,
  loadLayersModel,
  MODEL_JSON,
  ModelFileError,
  modelHash,
  saveModel,
  WEIGHTS_BIN,
} from "../src/engine/model_io.ts";
import { fixtureValues, GRAPH_MODEL, KERAS_SEQUENTIAL } from "./fixtures/engine/fixture_values.ts";

await initBackend("wasm");

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nip-model-io-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isFile) await Deno.copyFile(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

function smallCnn(): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.conv2d({ inputShape: [8, 8, 2], filters: 4, kernelSize: 3, activation: "relu" }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 5, activation: "softmax" }));
  model.compile({ optimizer: tf.train.adam(0.01), loss: "categoricalCrossentropy" });
  return model;
}

Deno.test("save then load round-trips predictions exactly, optimizer state included", async () => {
  await withTempDir(async (dir) => {
    const before = tf.memory().numTensors;
    const model = smallCnn();
    const x = tf.tensor4d(fixtureValues(6 * 8 * 8 * 2, 7), [6, 8, 8, 2]);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 0], "int32"), 5));
    await model.fit(x, y, { epochs: 2, batchSize: 6, verbose: 0 });

    const result = await saveModel(model, dir, { includeOptimizer: true });
    assert.ok((result.modelArtifactsInfo.weightDataBytes ?? 0) > 0);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.sort(), [MODEL_JSON, WEIGHTS_BIN].sort());

    const loaded = await loadLayersModel(dir);
    const expected = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
    const actual = tf.tidy(() => (loaded.predict(x) as tf.Tensor).dataSync());
    assert.deepEqual(Array.from(actual), Array.from(expected));

    const originalOptimizerWeights = await model.optimizer.getWeights();
    const loadedOptimizerWeights = await loaded.optimizer.getWeights();
    assert.equal(loadedOptimizerWeights.length, originalOptimizerWeights.length);
    assert.ok(loadedOptimizerWeights.length > 1, "adam has an iteration count and moments");
    for (let i = 0; i < originalOptimizerWeights.length; i++) {
      assert.deepEqual(
        Array.from(loadedOptimizerWeights[i].tensor.dataSync()),
        Array.from(originalOptimizerWeights[i].tensor.dataSync()),
        originalOptimizerWeights[i].name,
      );
    }
    tf.dispose([x, y]);
    // getWeights() returns the optimizer's variables plus a fresh iteration-count scalar.
    tf.dispose(
      [...originalOptimizerWeights, ...loadedOptimizerWeights].map((w) => w.tensor).filter((t) =>
        !(t instanceof tf.Variable)
      ),
    );
    model.optimizer.dispose();
    loaded.optimizer.dispose();
    model.dispose();
    loaded.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
});

Deno.test("a Keras-converted LayersModel with sharded and quantized weight groups loads with the right weights", async () => {
  const before = tf.memory().numTensors;
  const loaded = await loadLayersModel(KERAS_SEQUENTIAL.dir);
  assert.deepEqual(loaded.inputs[0].shape, [null, ...KERAS_SEQUENTIAL.inputShape]);
  assert.deepEqual(
    loaded.layers.map((l) => l.getClassName()).filter((name) => name !== "InputLayer"),
    ["Conv2D", "Flatten", "Dense"],
  );

  // The same network built here, its weights taken straight from the fixture's value formula.
  const reference = tf.sequential();
  reference.add(tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3, activation: "relu" }));
  reference.add(tf.layers.flatten());
  reference.add(tf.layers.dense({ units: 3, activation: "softmax" }));
  const weights = KERAS_SEQUENTIAL.weights.map((w) =>
    tf.tensor(fixtureValues(size(w.shape), w.seed), [...w.shape])
  );
  reference.setWeights(weights);

  for (const [i, w] of KERAS_SEQUENTIAL.weights.entries()) {
    assert.deepEqual(
      Array.from(loaded.getWeights()[i].dataSync()),
      Array.from(fixtureValues(size(w.shape), w.seed)),
      w.name,
    );
  }
  const x = tf.tensor4d(fixtureValues(4 * 36, 9), [4, 6, 6, 1]);
  const expected = tf.tidy(() => (reference.predict(x) as tf.Tensor).dataSync());
  const actual = tf.tidy(() => (loaded.predict(x) as tf.Tensor).dataSync());
  assert.deepEqual(Array.from(actual), Array.from(expected));
  tf.dispose([x, ...weights]);
  reference.dispose();
  loaded.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("a GraphModel loads through the directory handler and computes relu(x W + b)", async () => {
  const before = tf.memory().numTensors;
  const model = await loadGraphModel(GRAPH_MODEL.dir);
  const [kernel, bias] = GRAPH_MODEL.weights.map((w) => fixtureValues(size(w.shape), w.seed));
  const input = fixtureValues(2 * 4, 8);
  const x = tf.tensor2d(input, [2, 4]);
  const out = model.predict(x) as tf.Tensor;
  assert.deepEqual(out.shape, [2, 3]);
  const actual = out.dataSync();
  for (let n = 0; n < 2; n++) {
    for (let j = 0; j < 3; j++) {
      let sum = bias[j];
      for (let k = 0; k < 4; k++) sum += input[n * 4 + k] * kernel[k * 3 + j];
      assert.ok(Math.abs(actual[n * 3 + j] - Math.max(0, sum)) < 1e-6, `output [${n}, ${j}]`);
    }
  }
  tf.dispose([x, out]);
  model.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("loading the wrong kind of model says which loader to use", async () => {
  await assert.rejects(loadLayersModel(GRAPH_MODEL.dir), /holds a graph-model; load it with loadGraphModel/);
  await assert.rejects(
    loadGraphModel(KERAS_SEQUENTIAL.dir),
    /format "layers-model"; load it with loadLayersModel/,
  );
});

Deno.test("modelHash is a sha256 over model.json and weights: stable, copy-equal, sensitive to one byte", async () => {
  const hash = await modelHash(KERAS_SEQUENTIAL.dir);
  assert.match(hash, /^[0-9a-f]{64}$/);
  assert.equal(await modelHash(KERAS_SEQUENTIAL.dir), hash);
  assert.notEqual(await modelHash(GRAPH_MODEL.dir), hash);
  await withTempDir(async (dir) => {
    await copyDir(KERAS_SEQUENTIAL.dir, dir);
    assert.equal(await modelHash(dir), hash);
    const shard = `${dir}/group1-shard2of3.bin`;
    const bytes = await Deno.readFile(shard);
    bytes[17] ^= 1;
    await Deno.writeFile(shard, bytes);
    assert.notEqual(await modelHash(dir), hash);
  });
});

Deno.test("missing or truncated files give errors naming the file and the byte counts", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(loadLayersModel(dir), (error: Error) => {
      assert.ok(error instanceof ModelFileError);
      assert.match(error.message, new RegExp(`model file ${dir}/model.json does not exist`));
      return true;
    });
    await assert.rejects(modelHash(dir), /model\.json does not exist/);

    await copyDir(KERAS_SEQUENTIAL.dir, dir);
    await Deno.remove(`${dir}/group1-shard3of3.bin`);
    await assert.rejects(
      loadLayersModel(dir),
      new RegExp(`weights file \\(listed in model.json\\) ${dir}/group1-shard3of3.bin does not exist`),
    );

    await copyDir(KERAS_SEQUENTIAL.dir, dir);
    const shard = await Deno.readFile(`${dir}/group1-shard3of3.bin`);
    await Deno.writeFile(`${dir}/group1-shard3of3.bin`, shard.subarray(0, 100));
    await assert.rejects(loadLayersModel(dir), (error: Error) => {
      assert.match(error.message, /group1-shard3of3\.bin: 100 bytes/);
      assert.match(error.message, /expected 464 bytes for 3 weights listed in model\.json, found 420 bytes/);
      return true;
    });
    await assert.rejects(modelHash(dir), /expected 464 bytes/);

    await copyDir(KERAS_SEQUENTIAL.dir, dir);
    await Deno.writeFile(`${dir}/group2-shard1of1.bin`, new Uint8Array(5));
    await assert.rejects(
      loadLayersModel(dir),
      new RegExp(`weights file ${dir}/group2-shard1of1.bin: expected 3 bytes .* found 5 bytes`),
    );
  });
});

Deno.test("a saved model with a truncated weights.bin or broken model.json is refused clearly", async () => {
  await withTempDir(async (dir) => {
    const model = smallCnn();
    await saveModel(model, dir);
    model.dispose();
    const weights = await Deno.readFile(`${dir}/${WEIGHTS_BIN}`);
    await Deno.writeFile(`${dir}/${WEIGHTS_BIN}`, weights.subarray(0, weights.byteLength - 4));
    await assert.rejects(
      tf.loadLayersModel(dirHandler(dir)),
      new RegExp(
        `weights file ${dir}/weights.bin: expected ${weights.byteLength} bytes .* found ${
          weights.byteLength - 4
        } bytes`,
      ),
    );

    await Deno.writeTextFile(`${dir}/${MODEL_JSON}`, '{"modelTopology": ');
    await assert.rejects(loadLayersModel(dir), new RegExp(`${dir}/model.json is not valid JSON`));
    await Deno.writeTextFile(`${dir}/${MODEL_JSON}`, '{"weightsManifest": []}');
    await assert.rejects(loadLayersModel(dir), /field "modelTopology" is missing/);
    await Deno.writeTextFile(
      `${dir}/${MODEL_JSON}`,
      '{"modelTopology": {}, "weightsManifest": [{"paths": ["../outside.bin"], "weights": []}]}',
    );
    await assert.rejects(loadLayersModel(dir), /weight paths must stay inside/);
  });
});
