import assert from "node:assert/strict";
import {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_PER_CLASS,
  fashionMnistCachePath,
  loadFashionMnist,
  parseFashionMnistJson,
} from "../src/data/fashion_mnist.ts";
import {
  byteDatasetToFloat,
  decodeByteDataset,
  encodeByteDataset,
  readByteCache,
  writeByteCache,
} from "../src/data/byte_cache.ts";
import { classCounts } from "../src/data/dataset.ts";

const parsed = await parseFashionMnistJson();

Deno.test("the package JSON holds 7,000 28x28 byte images per class (empty rows dropped)", () => {
  assert.equal(parsed.count, 10 * FASHION_MNIST_PER_CLASS);
  assert.deepEqual(parsed.shape, [28, 28, 1]);
  assert.equal(parsed.pixels.length, parsed.count * 784);
  const perClass = new Array(10).fill(0);
  for (const label of parsed.labels) perClass[label]++;
  assert.deepEqual(perClass, new Array(10).fill(FASHION_MNIST_PER_CLASS));
  // class-major order: label of image i is floor(i / 7000)
  for (let i = 0; i < parsed.count; i += 997) assert.equal(parsed.labels[i], Math.floor(i / 7000));
  // real images, not padding: every image has ink
  for (let i = 0; i < parsed.count; i += 1001) {
    const image = parsed.pixels.subarray(i * 784, (i + 1) * 784);
    assert.ok(image.some((v) => v > 100), `image ${i} is blank`);
  }
});

Deno.test("loadFashionMnist reads the byte cache and matches the JSON source exactly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeByteCache(fashionMnistCachePath(dir), parsed);
    const started = performance.now();
    const ds = await loadFashionMnist({ cacheDir: dir });
    const cachedMs = performance.now() - started;
    console.log(`cached load: ${cachedMs.toFixed(0)} ms`);
    const expected = byteDatasetToFloat(parsed, "fashion-mnist", [...FASHION_MNIST_CLASSES]);
    assert.equal(ds.name, "fashion-mnist");
    assert.deepEqual(ds.shape, [28, 28, 1]);
    assert.deepEqual(ds.classNames, [...FASHION_MNIST_CLASSES]);
    assert.deepEqual(classCounts(ds), new Array(10).fill(7000));
    assert.ok(
      ds.images.every((v, i) => v === expected.images[i]),
      "cached pixels differ from the JSON source",
    );
    assert.deepEqual(ds.labels, expected.labels);
    let min = Infinity;
    let max = -Infinity;
    for (const v of ds.images) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    assert.equal(min, 0);
    assert.equal(max, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a damaged cache is ignored and rebuilt from the package", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = fashionMnistCachePath(dir);
    await Deno.writeFile(path, encodeByteDataset(parsed).subarray(0, 5000));
    const ds = await loadFashionMnist({ cacheDir: dir });
    assert.equal(ds.count, 70000);
    const rebuilt = await readByteCache(path);
    assert.ok(rebuilt !== null, "cache was not rewritten");
    assert.equal(rebuilt.count, 70000);
    assert.deepEqual(rebuilt.labels, parsed.labels);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("decodeByteDataset names the file and offset of a bad cache", () => {
  const small = {
    count: 2,
    shape: [2, 2, 1] as [number, number, number],
    labels: Uint8Array.from([0, 1]),
    pixels: new Uint8Array(8),
  };
  const bytes = encodeByteDataset(small);
  assert.deepEqual(decodeByteDataset(bytes, "c.u8").labels, small.labels);
  assert.throws(
    () => decodeByteDataset(bytes.subarray(0, bytes.length - 1), "c.u8"),
    /c\.u8: size 33 bytes .* byte offset 33/,
  );
  const wrongMagic = bytes.slice();
  wrongMagic[0] = 0x41;
  assert.throws(() => decodeByteDataset(wrongMagic, "c.u8"), /c\.u8: bad magic at byte 0/);
  assert.throws(() => decodeByteDataset(new Uint8Array(3), "c.u8"), /shorter than the 24-byte header/);
});

Deno.test("parseFashionMnistJson names the file and row of a malformed image", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = JSON.stringify({ data: [new Array(784).fill(3)] });
    for (let c = 0; c < 10; c++) await Deno.writeTextFile(`${dir}/${c}.json`, good);
    assert.equal((await parseFashionMnistJson(`${dir}/`)).count, 10);
    await Deno.writeTextFile(`${dir}/4.json`, JSON.stringify({ data: [new Array(784).fill(3), [1, 2, 3]] }));
    await assert.rejects(parseFashionMnistJson(`${dir}/`), /4\.json: row 1 has 3 values, expected 784/);
    const outOfRange = new Array(784).fill(0);
    outOfRange[17] = 300;
    await Deno.writeTextFile(`${dir}/4.json`, JSON.stringify({ data: [outOfRange] }));
    await assert.rejects(parseFashionMnistJson(`${dir}/`), /4\.json: row 0 pixel 17 is 300/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
