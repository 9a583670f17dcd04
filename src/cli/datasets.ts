/**
 * Named data sets with their fixed splits, for the CLI tasks: the embedded `fashion-mnist` and `mnist`,
 * and `cifar10` / `gtsrb` from `../shared/data` when present.
 *
 * @module
 */
import { type Dataset, subset } from "../data/dataset.ts";
import { loadFashionMnist } from "../data/fashion_mnist.ts";
import { loadMnist } from "../data/mnist.ts";
import { loadCifar10, loadGtsrb, splitCifar10, splitGtsrbByTrack } from "../data/cifar_binary.ts";
import { fashionMnistSplit, mnistSplit, seededShuffle, type Split, type SplitPart } from "../data/splits.ts";

/** Data set names the CLI accepts. */
export const DATASET_NAMES = ["fashion-mnist", "mnist", "cifar10", "gtsrb"] as const;

/** One of {@link DATASET_NAMES}. */
export type DatasetName = typeof DATASET_NAMES[number];

/** Loads a named data set and its fixed train / calibration / test split. */
export async function loadNamedDataset(name: string): Promise<{ dataset: Dataset; split: Split }> {
  switch (name) {
    case "fashion-mnist": {
      const dataset = await loadFashionMnist();
      return { dataset, split: fashionMnistSplit(dataset.labels) };
    }
    case "mnist": {
      const dataset = await loadMnist();
      return { dataset, split: mnistSplit(dataset.labels) };
    }
    case "cifar10": {
      const dataset = await loadCifar10();
      return { dataset, split: splitCifar10(dataset.labels) };
    }
    case "gtsrb": {
      const dataset = await loadGtsrb();
      return { dataset, split: splitGtsrbByTrack(dataset.labels) };
    }
    default:
      throw new RangeError(`unknown data set "${name}"; expected one of ${DATASET_NAMES.join(", ")}`);
  }
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
