/**
 * Named data sets with their fixed splits, for the CLI tasks: the embedded `fashion-mnist` and `mnist`,
 * and `cifar10` / `gtsrb` from `../shared/data` when present.
 *
 * @module
 */
import type { Dataset } from "./dataset.ts";
import { loadFashionMnist } from "./fashion_mnist.ts";
import { loadMnist } from "./mnist.ts";
import {
  GTSRB_FRAMES_PER_TRACK,
  loadCifar10,
  loadGtsrb,
  splitCifar10,
  splitGtsrbByTrack,
} from "./cifar_binary.ts";
import { fashionMnistSplit, mnistSplit, type Split } from "./splits.ts";

/** Data set names the CLI accepts. */
export const DATASET_NAMES = ["fashion-mnist", "mnist", "cifar10", "gtsrb"] as const;

/** One of {@link DATASET_NAMES}. */
export type DatasetName = typeof DATASET_NAMES[number];

/**
 * How many consecutive examples of a named set (and of each part of its split) belong together: a GTSRB track
 * (15 frames of one sign); 1 elsewhere. Samples drawn from such a set keep groups whole (`sampleDataset`).
 */
export function groupSizeOf(name: string): number {
  return name === "gtsrb" ? GTSRB_FRAMES_PER_TRACK : 1;
}

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
