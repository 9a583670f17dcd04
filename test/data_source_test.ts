import assert from "node:assert/strict";
import { DATA_SOURCE_FORMS, type DataPart, loadDataSource, parseDataSource } from "../src/data/source.ts";
import { CIFAR_RECORD_BYTES } from "../src/data/cifar_binary.ts";
import { encodePng } from "../src/image/codec.ts";
import { type Dataset, imageSize } from "../src/data/dataset.ts";
import type { SplitPart } from "../src/data/splits.ts";
import { loadNamedDataset } from "../src/data/named_datasets.ts";
import { sharedDataDir } from "../src/data/shared_data.ts";
import { FASHION_MNIST_CLASSES } from "../src/data/fashion_mnist.ts";

const hasCifar10 = await Deno.stat(`${sharedDataDir()}/cifar10/data_batch_1.bin`).then(
  () => true,
  () => false,
);
if (!hasCifar10) {
  console.warn(`SKIPPING the cifar10 source test: no ${sharedDataDir()}/cifar10 (set NIP_DATA_DIR)`);
}

async function withTempDir(body: (dir: string) => Promise<void> | void) {
  const dir = await Deno.makeTempDir({ prefix: "data_source_test_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** CIFAR-binary records with the given labels; every pixel byte of record r is 10 * r + plane. */
function cifarBytes(labels: number[]): Uint8Array {
  const bytes = new Uint8Array(labels.length * CIFAR_RECORD_BYTES);
  labels.forEach((label, r) => {
    const at = r * CIFAR_RECORD_BYTES;
    bytes[at] = label;
    for (let plane = 0; plane < 3; plane++) {
      bytes.fill(10 * r + plane, at + 1 + plane * 1024, at + 1 + (plane + 1) * 1024);
    }
  });
  return bytes;
}

/** A v1.0 `.npy` file of uint8 values. */
function npyUint8(shape: number[], values: number[]): Uint8Array {
  const dict = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(", ")}), }`;
  const header = dict.padEnd(117, " ") + "\n"; // 10 + 118 = 128 bytes before the data
  const bytes = new Uint8Array(128 + values.length);
  bytes.set([0x93, ...new TextEncoder().encode("NUMPY"), 1, 0, 118, 0]);
  bytes.set(new TextEncoder().encode(header), 10);
  bytes.set(values, 128);
  return bytes;
}

/** Checks `dataset` against `part` of the named set's fixed split: name, count, labels and images. */
async function assertIsSplitPart(dataset: Dataset, name: string, part: SplitPart) {
  const { dataset: whole, split } = await loadNamedDataset(name);
  const indices = split[part];
  assert.deepEqual([dataset.name, dataset.count], [`${name}/${part}`, indices.length]);
  assert.deepEqual(dataset.labels, Int32Array.from(indices, (i) => whole.labels[i]));
  const size = imageSize(whole);
  for (const k of [0, indices.length - 1]) {
    const at = indices[k] * size;
    assert.deepEqual(dataset.images.subarray(k * size, (k + 1) * size), whole.images.subarray(at, at + size));
  }
}

Deno.test("parseDataSource recognises every form and lists the forms for anything else", async () => {
  await withTempDir((dir) => {
    assert.deepEqual(parseDataSource("fashion-mnist"), { kind: "named", name: "fashion-mnist" });
    assert.deepEqual(parseDataSource("gtsrb"), { kind: "named", name: "gtsrb" });
    assert.deepEqual(parseDataSource(`folder:${dir}/a:b`), { kind: "folder", path: `${dir}/a:b` });
    assert.deepEqual(parseDataSource(dir), { kind: "folder", path: dir });
    assert.deepEqual(parseDataSource("cifar:x.dat"), {
      kind: "cifar",
      path: "x.dat",
      classNamesPath: undefined,
    });
    assert.deepEqual(parseDataSource("cifar:x.dat:names.txt"), {
      kind: "cifar",
      path: "x.dat",
      classNamesPath: "names.txt",
    });
    assert.deepEqual(parseDataSource("data/test_batch.BIN"), { kind: "cifar", path: "data/test_batch.BIN" });
    assert.deepEqual(parseDataSource("npy:x.npy:y.txt"), {
      kind: "npy",
      imagesPath: "x.npy",
      labelsPath: "y.txt",
    });
    for (const spec of ["imagenet", `${dir}/missing`, "npy:x.npy", "cifar:a:b:c", "folder:", "x.npy"]) {
      assert.throws(
        () => parseDataSource(spec),
        (e: Error) =>
          e.message.includes(`"${spec}"`) && DATA_SOURCE_FORMS.every((form) => e.message.includes(form)),
        spec,
      );
    }
  });
});

Deno.test("named sets resolve to a part of their fixed split (default test)", async () => {
  const test = await loadDataSource("fashion-mnist", { shape: [28, 28, 1] });
  assert.equal(test.named, true);
  assert.deepEqual([test.dataset.name, test.dataset.count, test.dataset.shape], [
    "fashion-mnist/test",
    10000,
    [28, 28, 1],
  ]);
  assert.deepEqual(test.dataset.classNames, FASHION_MNIST_CLASSES);
  assert.ok(test.description.includes('"test"') && test.description.includes("10000 images"));
  const calibration = await loadDataSource("fashion-mnist", { part: "calibration" });
  assert.deepEqual([calibration.dataset.name, calibration.dataset.count], [
    "fashion-mnist/calibration",
    10000,
  ]);
  const all = await loadDataSource("fashion-mnist", { part: "all" });
  assert.deepEqual([all.dataset.name, all.dataset.count], ["fashion-mnist", 70000]);
  await assert.rejects(
    loadDataSource("fashion-mnist", { shape: [32, 32, 3] }),
    /28x28x1 but the model takes 32x32x3/,
  );
  const mnist = await loadDataSource("mnist", { part: "test" });
  await assertIsSplitPart(mnist.dataset, "mnist", "test");
  const validation = "validation" as unknown as DataPart; // as a CLI string might be
  await assert.rejects(loadDataSource("mnist", { part: validation }), /data part "validation"/);
});

Deno.test({
  name: "cifar10 resolves to its fixed test split (needs ../shared/data)",
  ignore: !hasCifar10,
  fn: async () => {
    const source = await loadDataSource("cifar10", { shape: [32, 32, 3] });
    assert.equal(source.named, true);
    await assertIsSplitPart(source.dataset, "cifar10", "test");
  },
});

Deno.test("an image folder is read whole, resized to the model's shape, whatever part is asked", async () => {
  await withTempDir(async (dir) => {
    for (const [folder, grey] of [["ones", 255], ["zeros", 0]] as const) {
      await Deno.mkdir(`${dir}/${folder}`);
      for (const name of ["1.png", "2.png"]) {
        const data = new Uint8Array(5 * 3).fill(grey);
        await Deno.writeFile(
          `${dir}/${folder}/${name}`,
          encodePng({ width: 5, height: 3, channels: 1, data }),
        );
      }
    }
    for (const spec of [dir, `folder:${dir}`]) {
      const source = await loadDataSource(spec, { shape: [4, 4, 3], part: "train" });
      assert.equal(source.named, false);
      assert.deepEqual([source.dataset.count, source.dataset.shape], [4, [4, 4, 3]]);
      assert.deepEqual(source.dataset.classNames, ["ones", "zeros"]);
      assert.deepEqual(Array.from(source.dataset.labels), [0, 0, 1, 1]);
      assert.ok(source.dataset.images.subarray(0, 96).every((v) => v === 1));
      assert.ok(source.dataset.images.subarray(96).every((v) => v === 0));
      assert.ok(source.description.includes(dir) && source.description.includes("whole"));
    }
    await assert.rejects(loadDataSource(dir), /needs the model's input shape/);
  });
});

Deno.test("a CIFAR-binary file: numbered or named classes, its own values, errors naming the file", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/mine.bin`, cifarBytes([0, 4, 2]));
    const source = await loadDataSource(`${dir}/mine.bin`, { part: "test" });
    assert.equal(source.named, false);
    assert.deepEqual([source.dataset.count, source.dataset.shape], [3, [32, 32, 3]]);
    assert.deepEqual(source.dataset.classNames, ["class0", "class1", "class2", "class3", "class4"]);
    assert.deepEqual(Array.from(source.dataset.labels), [0, 4, 2]);
    const pixel = 3 * 32 * 32 + 3 * 500; // record 1, pixel 500
    assert.deepEqual(
      Array.from(source.dataset.images.subarray(pixel, pixel + 3)),
      [10, 11, 12].map((v) => Math.fround(v / 255)),
    );
    await Deno.writeTextFile(`${dir}/names.txt`, "a\nb\nc\nd\ne\nf\n");
    const named = await loadDataSource(`cifar:${dir}/mine.bin:${dir}/names.txt`, { shape: [32, 32, 3] });
    assert.deepEqual(named.dataset.classNames, ["a", "b", "c", "d", "e", "f"]);
    await assert.rejects(
      loadDataSource(`${dir}/mine.bin`, { shape: [28, 28, 1] }),
      /32x32x3 but the model takes 28x28x1/,
    );
    await Deno.writeFile(`${dir}/cut.bin`, cifarBytes([1, 1]).subarray(0, CIFAR_RECORD_BYTES + 10));
    await assert.rejects(
      loadDataSource(`cifar:${dir}/cut.bin`),
      (e: Error) => e.message.includes(`${dir}/cut.bin: truncated record 1`),
    );
    await Deno.writeFile(`${dir}/empty.bin`, new Uint8Array(0));
    await assert.rejects(
      loadDataSource(`${dir}/empty.bin`),
      (e: Error) => e.message.includes(`${dir}/empty.bin: empty file`),
    );
  });
});

Deno.test("npy:IMAGES:LABELS loads the arrays whole", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/x.npy`, npyUint8([2, 2, 2], [0, 51, 102, 255, 255, 204, 153, 0]));
    await Deno.writeTextFile(`${dir}/y.txt`, "1\n0\n");
    const source = await loadDataSource(`npy:${dir}/x.npy:${dir}/y.txt`, {
      shape: [2, 2, 1],
      part: "calibration",
    });
    assert.equal(source.named, false);
    assert.deepEqual([source.dataset.count, source.dataset.shape, Array.from(source.dataset.labels)], [2, [
      2,
      2,
      1,
    ], [1, 0]]);
    assert.deepEqual(Array.from(source.dataset.images), [0, 0.2, 0.4, 1, 1, 0.8, 0.6, 0].map(Math.fround));
    await Deno.writeFile(`${dir}/none.npy`, npyUint8([0, 2, 2], []));
    await Deno.writeTextFile(`${dir}/empty.txt`, "");
    await assert.rejects(loadDataSource(`npy:${dir}/none.npy:${dir}/empty.txt`), /no images/);
  });
});
