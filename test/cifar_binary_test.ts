import assert from "node:assert/strict";
import {
  CIFAR_RECORD_BYTES,
  decodeCifarRecords,
  GTSRB_FRAMES_PER_TRACK,
  gtsrbTrackIds,
  loadCifar10,
  loadGtsrb,
  readCifarBinary,
  readClassNames,
  splitCifar10,
  splitGtsrbByTrack,
} from "../src/data/cifar_binary.ts";
import { checkSplit } from "../src/data/splits.ts";
import { sharedDataDir } from "../src/data/shared_data.ts";
import { classCounts, subset } from "../src/data/dataset.ts";

const DATA = sharedDataDir();
const hasData = await Deno.stat(`${DATA}/cifar10/data_batch_1.bin`).then(() => true, () => false) &&
  await Deno.stat(`${DATA}/gtsrb/gtsrb_train_half.bin`).then(() => true, () => false);
if (!hasData) {
  console.warn(
    `SKIPPING real-data CIFAR-10/GTSRB tests: ${DATA} (set NIP_DATA_DIR) has no cifar10/gtsrb files`,
  );
}

/** One record whose R/G/B planes hold (pixel % 256), (pixel * 3 % 256), (255 - pixel % 256). */
function syntheticRecord(label: number): Uint8Array {
  const record = new Uint8Array(CIFAR_RECORD_BYTES);
  record[0] = label;
  for (let p = 0; p < 1024; p++) {
    record[1 + p] = p % 256;
    record[1 + 1024 + p] = (p * 3) % 256;
    record[1 + 2048 + p] = 255 - (p % 256);
  }
  return record;
}

Deno.test("decodeCifarRecords converts planar CHW bytes to NHWC floats", () => {
  const bytes = new Uint8Array(2 * CIFAR_RECORD_BYTES);
  bytes.set(syntheticRecord(2), 0);
  bytes.set(syntheticRecord(1), CIFAR_RECORD_BYTES);
  const ds = decodeCifarRecords(bytes, "two.bin", { classNames: ["a", "b", "c"] });
  assert.equal(ds.count, 2);
  assert.equal(ds.name, "two.bin");
  assert.deepEqual(ds.shape, [32, 32, 3]);
  assert.deepEqual(Array.from(ds.labels), [2, 1]);
  for (const p of [0, 1, 33, 300, 1023]) {
    const at = 3072 + 3 * p; // second image, pixel p
    assert.equal(ds.images[at], Math.fround((p % 256) / 255));
    assert.equal(ds.images[at + 1], Math.fround(((p * 3) % 256) / 255));
    assert.equal(ds.images[at + 2], Math.fround((255 - (p % 256)) / 255));
  }
  assert.equal(decodeCifarRecords(bytes, "two.bin", { classNames: ["a", "b", "c"], limit: 1 }).count, 1);
});

Deno.test("a truncated file or an out-of-range label is reported with file and byte offset", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const truncated = `${dir}/truncated.bin`;
    const bytes = new Uint8Array(2 * CIFAR_RECORD_BYTES + 100);
    bytes.set(syntheticRecord(0), 0);
    bytes.set(syntheticRecord(1), CIFAR_RECORD_BYTES);
    await Deno.writeFile(truncated, bytes);
    await assert.rejects(
      readCifarBinary(truncated, { classNames: ["a", "b"] }),
      new RegExp(`${truncated}: truncated record 2 at byte offset 6146: 100 of 3073 bytes`),
    );
    const badLabel = `${dir}/bad_label.bin`;
    const records = new Uint8Array(3 * CIFAR_RECORD_BYTES);
    records.set(syntheticRecord(1), 0);
    records.set(syntheticRecord(1), CIFAR_RECORD_BYTES);
    records.set(syntheticRecord(10), 2 * CIFAR_RECORD_BYTES);
    await Deno.writeFile(badLabel, records);
    await assert.rejects(
      readCifarBinary(badLabel, { classNames: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"] }),
      new RegExp(`${badLabel}: label 10 at byte offset 6146 \\(record 2\\) is outside 0\\.\\.9`),
    );
    await Deno.writeTextFile(`${dir}/empty.txt`, "\n\n");
    await assert.rejects(readClassNames(`${dir}/empty.txt`), /empty\.txt: no class names/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gtsrbTrackIds cuts each class run into 15-frame tracks and rejects broken runs", () => {
  const labels = [...new Array(30).fill(0), ...new Array(15).fill(1)];
  const tracks = gtsrbTrackIds(labels);
  assert.deepEqual(Array.from(new Set(tracks)), [0, 1, 2]);
  assert.equal(tracks[14], 0);
  assert.equal(tracks[15], 1);
  assert.equal(tracks[30], 2);
  assert.throws(() => gtsrbTrackIds([...new Array(16).fill(0), ...new Array(15).fill(1)]), /records 0\.\.15/);
  assert.throws(
    () => gtsrbTrackIds([...new Array(15).fill(0), ...new Array(15).fill(1), ...new Array(15).fill(0)]),
    /class 0 appears again at record 30/,
  );
});

Deno.test({
  name: "CIFAR-10 batches load with the documented class names and counts, and split stratified",
  ignore: !hasData,
  fn: async () => {
    const started = performance.now();
    const ds = await loadCifar10();
    console.log(`cifar10 load: ${(performance.now() - started).toFixed(0)} ms`);
    assert.equal(ds.count, 20000);
    assert.deepEqual(ds.shape, [32, 32, 3]);
    assert.deepEqual(ds.classNames.slice(0, 3), ["airplane", "automobile", "bird"]);
    assert.equal(ds.classNames.length, 10);
    // data_batch_1's per-class counts as documented in PROVENANCE.md (the original batch-1 counts)
    const batch1 = subset(ds, Array.from({ length: 10000 }, (_, i) => i));
    assert.deepEqual(classCounts(batch1), [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]);
    const split = splitCifar10(ds.labels);
    checkSplit(split, ds.count);
    assert.equal(split.train.length + split.calibration.length + split.test.length, 20000);
    assert.ok(Math.abs(split.test.length - 2000) <= 5 && Math.abs(split.calibration.length - 2000) <= 5);
    const testCounts = classCounts(subset(ds, split.test));
    const all = classCounts(ds);
    testCounts.forEach((n, c) => assert.equal(n, Math.round(all[c] * 0.1)));
    assert.deepEqual(splitCifar10(ds.labels), split);
  },
});

Deno.test({
  name: "GTSRB half file loads 19,605 records of 43 classes and splits by whole tracks",
  ignore: !hasData,
  fn: async () => {
    const started = performance.now();
    const ds = await loadGtsrb();
    console.log(`gtsrb load: ${(performance.now() - started).toFixed(0)} ms`);
    assert.equal(ds.count, 19605);
    assert.equal(ds.classNames.length, 43);
    assert.equal(ds.classNames[0], "Speed limit (20km/h)");
    const counts = classCounts(ds);
    assert.equal(counts[0], 105);
    assert.equal(counts[33], 345);
    const tracks = gtsrbTrackIds(ds.labels);
    assert.equal(new Set(tracks).size, 19605 / GTSRB_FRAMES_PER_TRACK);

    // The track boundaries are real: consecutive frames of one track are far more alike than the last frame
    // of one track and the first of the next.
    const size = 32 * 32 * 3;
    const distance = (a: number, b: number) => {
      let sum = 0;
      for (let k = 0; k < size; k++) sum += Math.abs(ds.images[a * size + k] - ds.images[b * size + k]);
      return sum / size;
    };
    let within = 0;
    let across = 0;
    let pairs = 0;
    for (let i = 15; i + 15 < ds.count; i += 15 * 7) {
      if (ds.labels[i] !== ds.labels[i - 1]) continue;
      across += distance(i - 1, i);
      within += distance(i + 6, i + 7);
      pairs++;
    }
    console.log(
      `mean |diff| within tracks ${(within / pairs).toFixed(4)}, across ${(across / pairs).toFixed(4)}`,
    );
    assert.ok(across / pairs > 2 * (within / pairs), "track boundaries are not where the split assumes");

    const split = splitGtsrbByTrack(ds.labels);
    checkSplit(split, ds.count);
    assert.equal(split.train.length + split.calibration.length + split.test.length, ds.count);
    const partOf = new Int8Array(ds.count);
    [split.train, split.calibration, split.test].forEach((part, p) => part.forEach((i) => (partOf[i] = p)));
    for (let i = 1; i < ds.count; i++) {
      if (tracks[i] === tracks[i - 1]) {
        assert.equal(partOf[i], partOf[i - 1], `track ${tracks[i]} straddles parts`);
      }
    }
    for (const part of [split.calibration, split.test]) {
      assert.ok(
        classCounts(subset(ds, part)).every((n) => n >= GTSRB_FRAMES_PER_TRACK),
        "a class is missing",
      );
    }
    assert.deepEqual(splitGtsrbByTrack(ds.labels), split);
  },
});
