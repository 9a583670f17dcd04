import assert from "node:assert/strict";
import {
  applySplit,
  checkSplit,
  classSeed,
  FASHION_MNIST_PER_CLASS_SPLIT,
  fashionMnistSplit,
  fractionCounts,
  groupedSplit,
  mnistSplit,
  sampleDataset,
  samplePart,
  seededShuffle,
  type Split,
  stratifiedSplit,
} from "../src/data/splits.ts";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";
import { loadMnist } from "../src/data/mnist.ts";
import { classCounts } from "../src/data/dataset.ts";

function assertDisjointCover(split: Split, count: number, expectCover: boolean): void {
  checkSplit(split, count);
  const all = new Set<number>([...split.train, ...split.calibration, ...split.test]);
  assert.equal(all.size, split.train.length + split.calibration.length + split.test.length, "parts overlap");
  if (expectCover) assert.equal(all.size, count, "split does not cover the dataset");
  for (const part of [split.train, split.calibration, split.test]) {
    for (let i = 1; i < part.length; i++) assert.ok(part[i] > part[i - 1], "part is not strictly ascending");
  }
}

Deno.test("classSeed gives each class its own stream", () => {
  assert.notEqual(classSeed(1, 0), classSeed(1, 1));
});

Deno.test("seededShuffle is a seed-determined permutation", () => {
  const base = Array.from({ length: 100 }, (_, i) => i);
  const one = seededShuffle([...base], 7);
  assert.deepEqual(one, seededShuffle([...base], 7));
  assert.notDeepEqual(one, base);
  assert.notDeepEqual(one, seededShuffle([...base], 8));
  assert.deepEqual([...one].sort((x, y) => x - y), base);
});

Deno.test("fractionCounts rounds held-out parts and gives train the rest", () => {
  assert.deepEqual(fractionCounts(1001, 0.15, 0.15), { train: 701, calibration: 150, test: 150 });
  assert.throws(() => fractionCounts(10, 0.6, 0.6), /exceed 1/);
});

Deno.test("the Fashion-MNIST split is 5,000/1,000/1,000 per class, disjoint and stable", async () => {
  const ds = await loadFashionMnist();
  const split = fashionMnistSplit(ds.labels);
  assert.equal(split.train.length, 50000);
  assert.equal(split.calibration.length, 10000);
  assert.equal(split.test.length, 10000);
  assertDisjointCover(split, ds.count, true);
  const parts = applySplit(ds, split);
  assert.deepEqual(classCounts(parts.train), new Array(10).fill(FASHION_MNIST_PER_CLASS_SPLIT.train));
  assert.deepEqual(classCounts(parts.calibration), new Array(10).fill(1000));
  assert.deepEqual(classCounts(parts.test), new Array(10).fill(1000));
  // stable: a second call, on a copy of the labels, gives identical indices
  const again = fashionMnistSplit(Int32Array.from(ds.labels));
  assert.deepEqual(again, split);
  // and it is a real shuffle, not the first 5,000 of each class
  assert.ok(split.test.some((i) => i % 7000 < 5000), "test part is not shuffled within classes");
});

Deno.test("the MNIST split is 70/15/15 per class, disjoint and stable", async () => {
  const ds = await loadMnist();
  const split = mnistSplit(ds.labels);
  assertDisjointCover(split, ds.count, true);
  const counts = classCounts(ds);
  const parts = applySplit(ds, split);
  assert.deepEqual(classCounts(parts.test), counts.map((n) => Math.round(0.15 * n)));
  assert.deepEqual(classCounts(parts.calibration), counts.map((n) => Math.round(0.15 * n)));
  assert.deepEqual(mnistSplit(Int32Array.from(ds.labels)), split);
});

Deno.test("stratifiedSplit rejects counts larger than a class", () => {
  const labels = [0, 0, 0, 1, 1];
  assert.throws(
    () => stratifiedSplit(labels, 1, () => ({ train: 2, calibration: 1, test: 1 })),
    /class 0: split/,
  );
});

Deno.test("groupedSplit keeps each group in one part and rejects mixed groups", () => {
  // 3 classes x 10 groups x 4 items
  const labels: number[] = [];
  const groups: number[] = [];
  for (let c = 0; c < 3; c++) {
    for (let g = 0; g < 10; g++) for (let k = 0; k < 4; k++) (labels.push(c), groups.push(c * 10 + g));
  }
  const split = groupedSplit(labels, groups, 5, () => ({ train: 6, calibration: 2, test: 2 }));
  assertDisjointCover(split, labels.length, true);
  assert.equal(split.train.length, 3 * 6 * 4);
  for (const part of [split.train, split.calibration, split.test]) {
    const inPart = new Set(part);
    for (const index of part) {
      for (let j = 0; j < labels.length; j++) {
        if (groups[j] === groups[index]) assert.ok(inPart.has(j), `group ${groups[index]} straddles parts`);
      }
    }
  }
  assert.deepEqual(groupedSplit(labels, groups, 5, () => ({ train: 6, calibration: 2, test: 2 })), split);
  groups[5] = 0; // item 5 has label 0; make group 0 also hold a label-1 item
  labels[5] = 0;
  groups[45] = 0;
  assert.throws(
    () => groupedSplit(labels, groups, 5, () => ({ train: 6, calibration: 2, test: 2 })),
    /group 0 mixes labels 0 and 1 \(item 45\)/,
  );
});

Deno.test("checkSplit reports overlap and out-of-range indices", () => {
  const ok: Split = {
    train: Int32Array.from([0, 2]),
    calibration: Int32Array.from([1]),
    test: Int32Array.from([3]),
  };
  checkSplit(ok, 4);
  assert.throws(
    () => checkSplit({ ...ok, test: Int32Array.from([2]) }, 4),
    /index 2 is in both train and test/,
  );
  assert.throws(() => checkSplit(ok, 3), /test index 3 is outside \[0, 3\)/);
});

Deno.test("samplePart draws a seeded, class-mixed sample of one part; skip gives the next, disjoint draws", async () => {
  const fashion = await loadFashionMnist();
  const split = fashionMnistSplit(fashion.labels);
  const first = samplePart(fashion, split, "calibration", 100, { seed: 5 });
  const again = samplePart(fashion, split, "calibration", 100, { seed: 5 });
  const next = samplePart(fashion, split, "calibration", 100, { seed: 5, skip: 100 });
  assert.deepEqual(first.images, again.images);
  assert.equal(first.name, "fashion-mnist/calibration");
  assert.ok(new Set(first.labels).size >= 8, "a sorted part would give one class");
  const key = (ds: typeof first, i: number) => ds.images.subarray(i * 784, (i + 1) * 784).join(",");
  const seen = new Set(Array.from({ length: 100 }, (_, i) => key(first, i)));
  assert.ok(Array.from({ length: 100 }, (_, i) => key(next, i)).every((k) => !seen.has(k)));
  assert.throws(() => samplePart(fashion, split, "test", 9_990, { skip: 20 }), /has 10000 examples/);
});

Deno.test("sampleDataset: by whole groups when asked; disjoint ranges never share a group; g = 1 is samplePart", () => {
  const count = 45;
  const dataset = {
    name: "tracks",
    images: Float32Array.from({ length: count }, (_, i) => i),
    labels: new Int32Array(count),
    count,
    shape: [1, 1, 1] as [number, number, number],
    classNames: ["sign"],
  };
  const group = (ds: { images: Float32Array }) => new Set(Array.from(ds.images, (v) => Math.floor(v / 15)));
  const first = sampleDataset(dataset, 20, { seed: 4, groupSize: 15 });
  const second = sampleDataset(dataset, 10, { seed: 4, skip: 20, groupSize: 15 });
  assert.equal(group(first).size, 2);
  assert.equal(group(second).size, 1);
  for (const g of group(second)) assert.ok(!group(first).has(g), "a group in both samples");
  const firstOrder = Array.from(first.images.subarray(0, 15), (v) => v % 15);
  assert.deepEqual(firstOrder, Array.from({ length: 15 }, (_, i) => i), "a group stays in its order");
  assert.throws(() => sampleDataset(dataset, 20, { seed: 4, skip: 20, groupSize: 15 }), /after skipping 30/);

  const split: Split = {
    train: new Int32Array(0),
    calibration: Int32Array.from({ length: count }, (_, i) => i),
    test: new Int32Array(0),
  };
  assert.deepEqual(
    sampleDataset(dataset, 12, { seed: 7, skip: 3 }).images,
    samplePart(dataset, split, "calibration", 12, { seed: 7, skip: 3 }).images,
  );
});
