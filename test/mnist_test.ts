import assert from "node:assert/strict";
import { loadMnist, MNIST_CLASSES } from "../src/data/mnist.ts";
import { classCounts } from "../src/data/dataset.ts";

Deno.test("loadMnist reads the package's 10,000 digits, class-major, values in [0, 1]", async () => {
  const started = performance.now();
  const ds = await loadMnist();
  console.log(`load: ${(performance.now() - started).toFixed(0)} ms`);
  assert.equal(ds.name, "mnist");
  assert.equal(ds.count, 10000);
  assert.deepEqual(ds.shape, [28, 28, 1]);
  assert.deepEqual(ds.classNames, [...MNIST_CLASSES]);
  assert.equal(ds.images.length, 10000 * 784);
  const counts = classCounts(ds);
  assert.equal(counts.reduce((a, b) => a + b, 0), 10000);
  assert.ok(counts.every((n) => n > 800 && n < 1200), `unexpected class sizes ${counts}`);
  for (let i = 1; i < ds.count; i++) {
    assert.ok(ds.labels[i] >= ds.labels[i - 1], "labels are not class-major");
  }
  let max = 0;
  for (const v of ds.images) {
    assert.ok(v >= 0 && v <= 1);
    if (v > max) max = v;
  }
  assert.equal(max, 1);
  // digits are centred ink: the middle of the mean image is brighter than its border
  const mean = new Float64Array(784);
  for (let i = 0; i < ds.count; i++) {
    for (let p = 0; p < 784; p++) mean[p] += ds.images[i * 784 + p] / ds.count;
  }
  assert.ok(mean[14 * 28 + 14] > 0.3 && mean[0] < 0.01, `centre ${mean[14 * 28 + 14]}, corner ${mean[0]}`);
});

Deno.test("loadMnist names the file of a malformed source", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const image = new Array(784).fill(0.5);
    for (let d = 0; d < 10; d++) {
      await Deno.writeTextFile(`${dir}/${d}.json`, JSON.stringify({ data: image }));
    }
    const ds = await loadMnist(`${dir}/`);
    assert.equal(ds.count, 10);
    assert.deepEqual(Array.from(ds.labels), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await Deno.writeTextFile(`${dir}/7.json`, JSON.stringify({ data: image.slice(1) }));
    await assert.rejects(
      loadMnist(`${dir}/`),
      /7\.json: 783 values is not a whole number of 784-value images/,
    );
    await Deno.writeTextFile(`${dir}/7.json`, JSON.stringify({ data: [...image.slice(1), 2] }));
    await assert.rejects(loadMnist(`${dir}/`), /7\.json: value 783 \(image 0\) is 2/);
    await Deno.writeTextFile(`${dir}/7.json`, JSON.stringify({ pixels: [] }));
    await assert.rejects(loadMnist(`${dir}/`), /7\.json: expected \{"data"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
