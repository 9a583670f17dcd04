/**
 * Where a CLI `--data` value becomes a {@link Dataset}: the one place that knows the accepted forms
 * ({@link DATA_SOURCE_FORMS}). A named set is read with its fixed split and one part of it is used; a file
 * source (an image folder, a CIFAR-binary file, `.npy` arrays) is the user's own data and is used whole,
 * never split and never mixed with a named set's records.
 *
 * Parts of a spec are separated by `:`, so the paths in `cifar:` and `npy:` specs cannot contain one
 * (`folder:PATH` takes everything after the prefix).
 *
 * @module
 */
import type { Dataset } from "./dataset.ts";
import { CIFAR_RECORD_BYTES, decodeCifarRecords, readClassNames } from "./cifar_binary.ts";
import { readImageFolder } from "./image_folder.ts";
import { numberedClassNames, readNpyDataset } from "./npy.ts";
import { type SplitPart, splitPart } from "./splits.ts";
import { DATASET_NAMES, type DatasetName, groupSizeOf, loadNamedDataset } from "./named_datasets.ts";

/** A parsed data source spec. */
export type DataSource =
  | { kind: "named"; name: DatasetName }
  | { kind: "folder"; path: string }
  | { kind: "cifar"; path: string; classNamesPath?: string }
  | { kind: "npy"; imagesPath: string; labelsPath: string };

/** Which part of a named set's fixed split to use; "all" is the whole set. */
export type DataPart = SplitPart | "all";

/** The accepted spec forms, as listed in errors and help texts. */
export const DATA_SOURCE_FORMS: readonly string[] = [
  `a named set (${DATASET_NAMES.join(", ")})`,
  "folder:PATH or a PATH that is a folder (one sub-folder of .png/.jpg images per class)",
  "cifar:PATH[:CLASSNAMES_FILE] or a PATH ending in .bin (CIFAR-binary records)",
  "npy:IMAGES.npy:LABELS (LABELS a .npy of integers or a text file, one label per line)",
];

const PARTS: readonly DataPart[] = ["train", "calibration", "test", "all"];

function unknownSource(spec: string, why: string): Error {
  return new Error(`data source "${spec}": ${why}; expected one of:\n  ${DATA_SOURCE_FORMS.join("\n  ")}`);
}

function isFolder(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** Parses a data source spec (see {@link DATA_SOURCE_FORMS}); throws an error listing the forms when it fits none. */
export function parseDataSource(spec: string): DataSource {
  if ((DATASET_NAMES as readonly string[]).includes(spec)) {
    return { kind: "named", name: spec as DatasetName };
  }
  const colon = spec.indexOf(":");
  const prefix = colon < 0 ? "" : spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  const parts = rest.split(":");
  if (prefix === "folder") {
    if (rest.length === 0) throw unknownSource(spec, "folder: needs a path");
    return { kind: "folder", path: rest };
  }
  if (prefix === "cifar") {
    if (parts.length > 2 || parts.some((part) => part.length === 0)) {
      throw unknownSource(spec, "cifar: needs PATH or PATH:CLASSNAMES_FILE");
    }
    return { kind: "cifar", path: parts[0], classNamesPath: parts[1] };
  }
  if (prefix === "npy") {
    if (parts.length !== 2 || parts.some((part) => part.length === 0)) {
      throw unknownSource(spec, "npy: needs IMAGES.npy:LABELS");
    }
    return { kind: "npy", imagesPath: parts[0], labelsPath: parts[1] };
  }
  if (isFolder(spec)) return { kind: "folder", path: spec };
  if (/\.bin$/i.test(spec)) return { kind: "cifar", path: spec };
  throw unknownSource(spec, "not a named set, a known prefix, a folder or a .bin file");
}

/** Options for {@link loadDataSource}. */
export interface LoadDataSourceOptions {
  /** The model's input shape [h, w, c]: an image folder is resized to it; other sources must match it. */
  shape?: readonly [number, number, number];
  /** The part of a named set's fixed split (default "test"); file sources are always used whole. */
  part?: DataPart;
}

/** A loaded data source. */
export interface LoadedDataSource {
  dataset: Dataset;
  /** One line for logs and reports: what was read and how much of it. */
  description: string;
  /** True for a named set (a part of its fixed split), false for the user's own files (used whole). */
  named: boolean;
  /** Consecutive examples that belong together (a GTSRB track), kept whole when sampling; 1 otherwise. */
  groupSize: number;
}

function largestCifarLabel(bytes: Uint8Array): number {
  let largest = 0;
  for (let offset = 0; offset < bytes.length; offset += CIFAR_RECORD_BYTES) {
    largest = Math.max(largest, bytes[offset]);
  }
  return largest;
}

async function loadFileSource(
  source: Exclude<DataSource, { kind: "named" }>,
  shape?: readonly [number, number, number],
): Promise<{ dataset: Dataset; what: string }> {
  switch (source.kind) {
    case "folder": {
      if (shape === undefined) throw new Error(`image folder ${source.path}: needs the model's input shape`);
      const dataset = await readImageFolder(source.path, { shape });
      return { dataset, what: `image folder ${source.path}, resized to ${shape.join("x")}` };
    }
    case "cifar": {
      const bytes = await Deno.readFile(source.path);
      if (bytes.length === 0) throw new Error(`${source.path}: empty file, no CIFAR records`);
      const classNames = source.classNamesPath === undefined
        ? numberedClassNames(largestCifarLabel(bytes) + 1)
        : await readClassNames(source.classNamesPath);
      const dataset = decodeCifarRecords(bytes, source.path, { classNames });
      return { dataset, what: `CIFAR-binary ${source.path}` };
    }
    case "npy": {
      const dataset = await readNpyDataset(source.imagesPath, source.labelsPath);
      return { dataset, what: `npy ${source.imagesPath} + ${source.labelsPath}` };
    }
  }
}

/**
 * Parses `spec` (see {@link parseDataSource}) and loads it: a named set's `options.part` of its fixed split,
 * or a file source whole. Throws when the part is unknown, when an image folder comes without a shape, and
 * when another source's images do not have `options.shape`.
 */
export async function loadDataSource(
  spec: string,
  options: LoadDataSourceOptions = {},
): Promise<LoadedDataSource> {
  const source = parseDataSource(spec);
  const part = options.part ?? "test";
  if (!PARTS.includes(part)) throw new RangeError(`data part "${part}" is not one of ${PARTS.join(", ")}`);
  let dataset: Dataset;
  let description: string;
  if (source.kind === "named") {
    const { dataset: whole, split } = await loadNamedDataset(source.name);
    dataset = part === "all" ? whole : splitPart(whole, split, part);
    description = `${dataset.name} (${part === "all" ? "the whole set" : `fixed split part "${part}"`})`;
  } else {
    const loaded = await loadFileSource(source, options.shape);
    dataset = loaded.dataset;
    description = `${loaded.what} (the whole file source)`;
  }
  const shape = options.shape;
  if (shape !== undefined && dataset.shape.join("x") !== shape.join("x")) {
    throw new Error(
      `data source "${spec}": images are ${dataset.shape.join("x")} but the model takes ${shape.join("x")}`,
    );
  }
  if (dataset.count === 0) throw new Error(`data source "${spec}": no images`);
  description += `: ${dataset.count} images ${dataset.shape.join("x")}, ${dataset.classNames.length} classes`;
  return {
    dataset,
    description,
    named: source.kind === "named",
    groupSize: source.kind === "named" ? groupSizeOf(source.name) : 1,
  };
}
