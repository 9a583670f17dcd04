/**
 * Reader for the CIFAR-10 binary record layout, used by the CIFAR-10 and GTSRB files in
 * `../shared/data` (see `shared_data.ts`) (see their PROVENANCE.md), plus the splits for both.
 *
 * A file is a sequence of 3,073-byte records with no header: 1 label byte, then the 32x32 red plane,
 * green plane and blue plane (1,024 bytes each, row-major). Records are converted from planar CHW bytes
 * to NHWC floats in [0, 1].
 *
 * Splits (no official test set is provided for either):
 * - CIFAR-10 (`data_batch_1.bin` + `data_batch_2.bin`, 20,000 records): stratified seeded random split,
 *   seed `CIFAR10_SPLIT_SEED = 20240613`, per class `round(0.1 n)` calibration, `round(0.1 n)` test, rest
 *   train (16,000 / 2,000 / 2,000).
 * - GTSRB (`gtsrb_train_half.bin`, 19,605 records): split **by track** so the frames of one physical sign
 *   never straddle parts. The file is ordered by class, then track, then frame, and each track is 15
 *   consecutive records ({@link GTSRB_FRAMES_PER_TRACK}), so tracks are consecutive runs of 15 within each
 *   class. Per class, tracks are shuffled with seed `GTSRB_SPLIT_SEED = 20240614`; `max(1, round(0.15 t))`
 *   tracks go to calibration, as many to test, the rest to train.
 *
 * @module
 */
import { type Dataset, validateDataset } from "./dataset.ts";
import { sharedDataDir } from "./shared_data.ts";
import { fractionCounts, groupedSplit, type PartCounts, type Split, stratifiedSplit } from "./splits.ts";

/** Bytes per record: 1 label + 3 x 1,024 pixels. */
export const CIFAR_RECORD_BYTES = 3073;
const SIDE = 32;
const PLANE = SIDE * SIDE;

/** Frames per track in `gtsrb_train_half.bin` (every second frame of the official 30-frame tracks). */
export const GTSRB_FRAMES_PER_TRACK = 15;
/** Seed of the CIFAR-10 split. */
export const CIFAR10_SPLIT_SEED = 20240613;
/** Seed of the GTSRB by-track split. */
export const GTSRB_SPLIT_SEED = 20240614;

/** Reads a class-name file: one name per line, blank lines ignored. */
export async function readClassNames(path: string): Promise<string[]> {
  const names = (await Deno.readTextFile(path)).split(/\r?\n/).map((line) => line.trim()).filter((line) =>
    line.length > 0
  );
  if (names.length === 0) throw new Error(`${path}: no class names`);
  return names;
}

/** Options for {@link decodeCifarRecords} and {@link readCifarBinary}. */
export interface CifarReadOptions {
  /** Class names; labels must be below their count. */
  classNames: string[];
  /** Dataset name; default: the file name. */
  name?: string;
  /** Read at most this many records from the start (the whole file is still checked for truncation). */
  limit?: number;
}

/**
 * Decodes CIFAR binary records from `bytes`. `source` names the file in errors: a size that is not a
 * whole number of records or a label outside the class list gives an error with the byte offset.
 */
export function decodeCifarRecords(bytes: Uint8Array, source: string, options: CifarReadOptions): Dataset {
  const classes = options.classNames.length;
  const whole = Math.floor(bytes.length / CIFAR_RECORD_BYTES);
  const remainder = bytes.length % CIFAR_RECORD_BYTES;
  if (remainder !== 0) {
    const offset = whole * CIFAR_RECORD_BYTES;
    throw new Error(
      `${source}: truncated record ${whole} at byte offset ${offset}: ${remainder} of ${CIFAR_RECORD_BYTES} bytes ` +
        `(file size ${bytes.length})`,
    );
  }
  const count = options.limit === undefined ? whole : Math.max(0, Math.min(whole, options.limit));
  const images = new Float32Array(count * PLANE * 3);
  const labels = new Int32Array(count);
  for (let r = 0; r < count; r++) {
    const offset = r * CIFAR_RECORD_BYTES;
    const label = bytes[offset];
    if (label >= classes) {
      throw new Error(
        `${source}: label ${label} at byte offset ${offset} (record ${r}) is outside 0..${classes - 1}`,
      );
    }
    labels[r] = label;
    const out = r * PLANE * 3;
    for (let p = 0; p < PLANE; p++) {
      images[out + 3 * p] = bytes[offset + 1 + p] / 255;
      images[out + 3 * p + 1] = bytes[offset + 1 + PLANE + p] / 255;
      images[out + 3 * p + 2] = bytes[offset + 1 + 2 * PLANE + p] / 255;
    }
  }
  const dataset: Dataset = {
    name: options.name ?? source.slice(source.lastIndexOf("/") + 1),
    images,
    labels,
    count,
    shape: [SIDE, SIDE, 3],
    classNames: options.classNames,
  };
  validateDataset(dataset);
  return dataset;
}

/** Reads one CIFAR binary file (see {@link decodeCifarRecords} for the errors). */
export async function readCifarBinary(path: string, options: CifarReadOptions): Promise<Dataset> {
  return decodeCifarRecords(await Deno.readFile(path), path, options);
}

/** Concatenates datasets of the same shape and classes into one named `name`. */
export function concatDatasets(parts: Dataset[], name: string): Dataset {
  if (parts.length === 0) throw new Error(`${name}: nothing to concatenate`);
  const [first] = parts;
  const count = parts.reduce((sum, part) => sum + part.count, 0);
  const images = new Float32Array(parts.reduce((sum, part) => sum + part.images.length, 0));
  const labels = new Int32Array(count);
  let imageOffset = 0;
  let labelOffset = 0;
  for (const part of parts) {
    if (
      part.shape.join("x") !== first.shape.join("x") || part.classNames.length !== first.classNames.length
    ) {
      throw new Error(`${name}: ${part.name} (${part.shape.join("x")}) does not match ${first.name}`);
    }
    images.set(part.images, imageOffset);
    labels.set(part.labels, labelOffset);
    imageOffset += part.images.length;
    labelOffset += part.count;
  }
  return { name, images, labels, count, shape: [...first.shape], classNames: first.classNames };
}

/**
 * Loads the CIFAR-10 training batches present in `dir` (`data_batch_1.bin`, `data_batch_2.bin`, ... in
 * order; class names from `batches.meta.txt`) as one dataset named "cifar10".
 * `limitPerFile` caps the records read from each file.
 */
export async function loadCifar10(
  dir = `${sharedDataDir()}/cifar10`,
  limitPerFile?: number,
): Promise<Dataset> {
  const classNames = await readClassNames(`${dir}/batches.meta.txt`);
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (/^data_batch_\d+\.bin$/.test(entry.name)) files.push(entry.name);
  }
  if (files.length === 0) throw new Error(`${dir}: no data_batch_*.bin files`);
  files.sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]));
  const parts = [];
  for (const file of files) {
    parts.push(await readCifarBinary(`${dir}/${file}`, { classNames, limit: limitPerFile }));
  }
  return concatDatasets(parts, "cifar10");
}

/**
 * Loads `gtsrb_train_half.bin` from `dir` (43 classes, names from `signnames.txt`) as a dataset named
 * "gtsrb". Record order is kept (class, then track, then frame), which {@link gtsrbTrackIds} relies on.
 */
export async function loadGtsrb(dir = `${sharedDataDir()}/gtsrb`, limit?: number): Promise<Dataset> {
  const classNames = await readClassNames(`${dir}/signnames.txt`);
  return await readCifarBinary(`${dir}/gtsrb_train_half.bin`, { classNames, name: "gtsrb", limit });
}

/**
 * Track id of every record of a GTSRB file in its original order: each class's run of records is cut into
 * consecutive tracks of `framesPerTrack`. Throws if a class's records are not contiguous or a run is not a
 * whole number of tracks, naming the record.
 */
export function gtsrbTrackIds(
  labels: ArrayLike<number>,
  framesPerTrack = GTSRB_FRAMES_PER_TRACK,
): Int32Array {
  const tracks = new Int32Array(labels.length);
  const seen = new Set<number>();
  let track = -1;
  let runStart = 0;
  for (let i = 0; i < labels.length; i++) {
    const newRun = i === 0 || labels[i] !== labels[i - 1];
    if (newRun) {
      if (i > 0 && (i - runStart) % framesPerTrack !== 0) {
        throw new Error(
          `class ${labels[i - 1]} run at records ${runStart}..${
            i - 1
          } is not a whole number of ${framesPerTrack}-frame tracks`,
        );
      }
      if (seen.has(labels[i])) {
        throw new Error(`class ${labels[i]} appears again at record ${i}: not in class order`);
      }
      seen.add(labels[i]);
      runStart = i;
    }
    if ((i - runStart) % framesPerTrack === 0) track++;
    tracks[i] = track;
  }
  if (labels.length > 0 && (labels.length - runStart) % framesPerTrack !== 0) {
    throw new Error(
      `class ${labels[labels.length - 1]} run at records ${runStart}..${
        labels.length - 1
      } is not a whole number of ${framesPerTrack}-frame tracks`,
    );
  }
  return tracks;
}

function heldOutAtLeastOne(groups: number, fraction: number): PartCounts {
  const held = groups >= 3 ? Math.max(1, Math.round(groups * fraction)) : 0;
  return { train: groups - 2 * held, calibration: held, test: held };
}

/**
 * GTSRB split by track (see the module doc): labels in file order; `fraction` of each class's tracks (at
 * least one when the class has three or more) to calibration and the same to test.
 */
export function splitGtsrbByTrack(
  labels: ArrayLike<number>,
  seed = GTSRB_SPLIT_SEED,
  fraction = 0.15,
): Split {
  return groupedSplit(labels, gtsrbTrackIds(labels), seed, (groups) => heldOutAtLeastOne(groups, fraction));
}

/** CIFAR-10 stratified random split (see the module doc). */
export function splitCifar10(labels: ArrayLike<number>, seed = CIFAR10_SPLIT_SEED, fraction = 0.1): Split {
  return stratifiedSplit(labels, seed, (n) => fractionCounts(n, fraction, fraction));
}
