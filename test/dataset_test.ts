import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import {
  classCounts,
  type Dataset,
  head,
  imageSize,
  labelTensor,
  oneHotTensor,
  subset,
  toTensor,
  validateDataset,
} from "../src/data/dataset.ts";

await initBackend("cpu");

/** 5 images of 2x3x2 whose pixel values encode (image, position), labels 0,1,2,0,1. */
function syntheticDataset(): Dataset {
  const shape: [number, number, number] = [2, 3, 2];
  const count = 5;
  const size = 12;
  const images = new Float32Array(count * size);
  for (let i = 0; i < count; i++) for (let p = 0; p < size; p++) images[i * size + p] = (i * size + p) / 100;
  return {
    name: "synthetic",
    images,
    labels: Int32Array.from([0, 1, 2, 0, 1]),
    count,
    shape,
    classNames: ["a", "b", "c"],
  };
}

Deno.test("subset copies the chosen images and labels in the given order", () => {
  const ds = syntheticDataset();
  const picked = subset(ds, [3, 0, 3], "picked");
  assert.equal(picked.count, 3);
  assert.equal(picked.name, "picked");
  assert.deepEqual(Array.from(picked.labels), [0, 0, 0]);
  const size = imageSize(ds);
  assert.deepEqual(picked.images.subarray(0, size), ds.images.subarray(3 * size, 4 * size));
  assert.deepEqual(picked.images.subarray(size, 2 * size), ds.images.subarray(0, size));
  picked.images[0] = -1;
  assert.notEqual(ds.images[3 * size], -1, "subset must not share memory with its source");
  validateDataset(picked);
});

Deno.test("subset rejects an index outside the dataset, naming it", () => {
  const ds = syntheticDataset();
  assert.throws(() => subset(ds, [0, 5]), /index 5 \(position 1\) is outside \[0, 5\)/);
  assert.throws(() => subset(ds, [-1]), /index -1/);
});

Deno.test("head takes the first n images", () => {
  const ds = syntheticDataset();
  assert.deepEqual(Array.from(head(ds, 2).labels), [0, 1]);
  assert.equal(head(ds, 99).count, 5);
});

Deno.test("toTensor returns NHWC batches with the stored values and leaks nothing", async () => {
  const ds = syntheticDataset();
  const before = tf.memory().numTensors;
  const batch = toTensor(ds, 1, 4);
  assert.deepEqual(batch.shape, [3, 2, 3, 2]);
  assert.deepEqual(Array.from(await batch.data()), Array.from(ds.images.subarray(12, 48)));
  batch.dispose();
  const labels = labelTensor(ds, 1, 4);
  assert.deepEqual(Array.from(await labels.data()), [1, 2, 0]);
  labels.dispose();
  const oneHot = oneHotTensor(ds, 0, 3);
  assert.deepEqual(await oneHot.array(), [[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
  oneHot.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("toTensor rejects ranges outside the dataset", () => {
  const ds = syntheticDataset();
  const before = tf.memory().numTensors;
  assert.throws(() => toTensor(ds, 2, 6), /synthetic: batch range \[2, 6\) is outside \[0, 5\]/);
  assert.throws(() => toTensor(ds, 3, 2), RangeError);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("validateDataset names the inconsistency", () => {
  const ds = syntheticDataset();
  assert.throws(() => validateDataset({ ...ds, count: 4 }), /images has 60 values, expected 4 x 12/);
  assert.throws(
    () => validateDataset({ ...ds, labels: Int32Array.from([0, 1, 3, 0, 1]) }),
    /label 3 of image 2 is outside \[0, 3\)/,
  );
});

Deno.test("classCounts counts labels per class", () => {
  assert.deepEqual(classCounts(syntheticDataset()), [2, 2, 1]);
});
