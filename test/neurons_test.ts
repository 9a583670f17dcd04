import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import {
  neuronInfluence,
  neuronOutputs,
  partitionNeurons,
  partitionRows,
  predictLabels,
} from "../src/nip/neurons.ts";

await initBackend("wasm");

Deno.test("partitionNeurons sorts descending, breaks ties by index, and cuts front/remaining/tail", () => {
  const influence = [0, 3, 0, -1, 5, 0, 2, -4];
  const { front, remaining, tail } = partitionNeurons(influence, 2, 2);
  assert.deepEqual([...front], [4, 1]);
  assert.deepEqual([...remaining], [6, 0, 2, 5]);
  assert.deepEqual([...tail], [3, 7]);
});

Deno.test("partitionNeurons rejects k1 + k2 larger than the layer", () => {
  assert.throws(() => partitionNeurons([1, 2, 3], 2, 2), /k1 \+ k2 = 4/);
});

Deno.test("partitionRows partitions each row of a row-major matrix", () => {
  const rows = partitionRows(Float32Array.from([1, 2, 3, 3, 2, 1]), 3, 1, 1);
  assert.deepEqual([...rows[0].front], [2]);
  assert.deepEqual([...rows[1].front], [0]);
  assert.deepEqual([...rows[1].tail], [2]);
});

Deno.test("neuronOutputs is the spatial mean of feature maps and the identity on flat layers", () => {
  const maps = tf.tensor4d([1, 10, 2, 20, 3, 30, 4, 40], [1, 2, 2, 2]);
  assert.deepEqual(Array.from(neuronOutputs(maps).dataSync()), [2.5, 25]);
  const flat = tf.tensor2d([[1, 2, 3]]);
  assert.deepEqual(Array.from(neuronOutputs(flat).dataSync()), [1, 2, 3]);
  tf.dispose([maps, flat]);
});

Deno.test("neuronInfluence of a linear head is weight times activation for the given label", () => {
  const before = tf.memory().numTensors;
  const weights = [[1, -2], [3, 0.5], [-1, 4]]; // [a = 3, classes = 2]
  const initial = [tf.tensor2d(weights), tf.tensor1d([0.3, -0.2])];
  const head = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2, weights: initial })] });
  tf.dispose(initial);
  const phi = tf.tensor2d([[0.5, 2, 1], [1, 1, 3]]);
  const labels = tf.tensor1d([0, 1], "int32");
  const sigma = neuronInfluence(head, phi, labels);
  const expected = [0.5 * 1, 2 * 3, 1 * -1, 1 * -2, 1 * 0.5, 3 * 4];
  Array.from(sigma.dataSync()).forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) < 1e-5, `entry ${i}: ${v}`)
  );
  tf.dispose([phi, labels, sigma]);
  head.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("neuronInfluence on feature maps sums the gradient over each map", () => {
  const head = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [2, 1, 2] }),
      tf.layers.dense({ units: 2, useBias: false, weights: [tf.tensor2d([[1, 0], [2, 0], [3, 0], [4, 0]])] }),
    ],
  });
  const maps = tf.tensor4d([1, 2, 3, 4], [1, 2, 1, 2]); // map 0: [1, 3], map 1: [2, 4]
  const sigma = neuronInfluence(head, maps, tf.tensor1d([0], "int32"));
  // d y / d phi_0 = 1 + 3 = 4, phi_0 = 2; d y / d phi_1 = 2 + 4 = 6, phi_1 = 3.
  assert.deepEqual(Array.from(sigma.dataSync()), [8, 18]);
  tf.dispose([maps, sigma]);
  head.dispose();
});

Deno.test("predictLabels is the argmax of the model's scores and frees its tensors", () => {
  const initial = [tf.tensor2d([[1, 0], [0, 1]]), tf.tensor1d([0, 0])];
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 2, weights: initial })] });
  tf.dispose(initial);
  const x = tf.tensor2d([[3, 1], [0.5, 2], [-1, -2]]);
  const before = tf.memory().numTensors;
  assert.deepEqual([...predictLabels(model, x)], [0, 1, 0]);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  model.dispose();
});
