/**
 * How the tasks read `--data`, `--calibration` and `--test`: a data source (`src/data/source.ts`: a named
 * set's fixed split part, an image folder, a CIFAR-binary file, `.npy` arrays), sampled in a seeded order.
 * A named set gives the asked part of its split; the user's own files are used whole, so an evaluation on a
 * file never mixes in the records a model was trained on. Sets whose examples come in groups (GTSRB tracks)
 * are sampled by whole groups, so that calibration's candidates and held-out examples never share a sign.
 *
 * @module
 */
import type { Dataset } from "../data/dataset.ts";
import { type DataPart, loadDataSource } from "../data/source.ts";
import { sampleDataset } from "../data/splits.ts";
import { UsageError } from "./args.ts";

/** Options of {@link sampleFlag}. */
export interface SampleFlagOptions {
  /** The model's input shape: image folders are resized to it, other sources must have it. */
  shape: readonly number[];
  seed: number;
  /** Skip this many examples of the seeded order first (disjoint sets from one source). */
  skip?: number;
  /** With fewer examples than asked, take them all (instead of an error). */
  upTo?: boolean;
}

/**
 * `count` examples of the source a flag names, from `part` when it is a named set; errors name the flag (and,
 * for a value that fits no form, list the forms).
 */
export async function sampleFlag(
  flag: string,
  spec: string,
  part: DataPart,
  count: number,
  options: SampleFlagOptions,
): Promise<{ dataset: Dataset; description: string }> {
  let loaded;
  try {
    loaded = await loadDataSource(spec, {
      part,
      shape: options.shape.length === 3 ? options.shape as [number, number, number] : undefined,
    });
  } catch (error) {
    throw new UsageError(`--${flag} ${spec}: ${(error as Error).message}`);
  }
  const available = loaded.dataset.count - (options.skip ?? 0);
  const n = options.upTo ? Math.min(count, available) : count;
  try {
    const dataset = sampleDataset(loaded.dataset, n, {
      seed: options.seed,
      skip: options.skip,
      groupSize: loaded.groupSize,
    });
    return { dataset, description: `${loaded.description}; ${n} sampled (seed ${options.seed})` };
  } catch (error) {
    throw new UsageError(`--${flag} ${spec}: ${(error as Error).message}`);
  }
}
