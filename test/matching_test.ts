import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { DeltaMatcher, KnnMatcher } from "../src/nip/matching.ts";
import { mulberry32 } from "../src/random.ts";

await initBackend("wasm");

function unitRows(values: Float32Array, d: number): Float32Array {
  for (let r = 0; r < values.length; r += d) {
    let norm = 0;
    for (let j = 0; j < d; j++) norm += values[r + j] ** 2;
    for (let j = 0; j < d; j++) values[r + j] /= Math.sqrt(norm);
  }
  return values;
}

Deno.test("KnnMatcher finds the highest cosine over several candidate chunks, like brute force", () => {
  const before = tf.memory().numTensors;
  const random = mulberry32(9);
  const m = 40000;
  const d = 6;
  const keys = unitRows(Float32Array.from({ length: m * d }, () => random() - 0.5), d);
  const queries = unitRows(Float32Array.from({ length: 5 * d }, () => random() - 0.5), d);
  const keyTensor = tf.tensor2d(keys, [m, d]);
  const matcher = new KnnMatcher(keyTensor);
  keyTensor.dispose();
  const queryTensor = tf.tensor2d(queries, [5, d]);
  const { index, similarity } = matcher.match(queryTensor);
  for (let q = 0; q < 5; q++) {
    let best = -Infinity;
    let bestIndex = -1;
    for (let c = 0; c < m; c++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += queries[q * d + j] * keys[c * d + j];
      if (dot > best) [best, bestIndex] = [dot, c];
    }
    assert.equal(index[q], bestIndex);
    assert.ok(Math.abs(similarity[q] - best) < 1e-5);
  }
  queryTensor.dispose();
  matcher.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("KnnMatcher matches a stored key to itself", () => {
  const keys = tf.tensor2d([[1, 0], [0, 1], [Math.SQRT1_2, Math.SQRT1_2]]);
  const matcher = new KnnMatcher(keys);
  const { index } = matcher.match(keys);
  assert.deepEqual([...index], [0, 1, 2]);
  matcher.dispose();
  keys.dispose();
});

Deno.test("DeltaMatcher returns the candidate with the nearest delta", () => {
  const matcher = new DeltaMatcher([0.5, 0.1, 0.9, 0.3]);
  const { index, similarity } = matcher.match([0.0, 0.31, 0.62, 1.5, 0.19]);
  assert.deepEqual([...index], [1, 3, 0, 2, 1]);
  assert.ok(Math.abs(similarity[1] + 0.01) < 1e-6);
});
