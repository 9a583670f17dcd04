/**
 * NumPy `.npy` files and image datasets stored in them.
 *
 * The format (numpy.lib.format): the magic `\x93NUMPY`, a major and a minor version byte, the header
 * length (2 bytes little-endian in version 1.0, 4 bytes in 2.0 and 3.0), then the header, a Python dict
 * literal such as `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 28, 28), }`, then the raw values.
 * Read here: versions 1.0, 2.0 and 3.0; dtypes `|u1`, `<f4`, `<f8`, `<i4`, `<i8`, `|b1`; C order only;
 * little-endian only. Values are read with explicit little-endian loads, so the result does not depend on
 * the machine.
 *
 * @module
 */
import { type Dataset, validateDataset } from "./dataset.ts";

/** The dtypes {@link parseNpy} reads (the header's `descr`). */
export type NpyDtype = "|u1" | "<f4" | "<f8" | "<i4" | "<i8" | "|b1";

/** The values of an array: `|u1` and `|b1` as Uint8Array, `<i4` Int32Array, `<f4` Float32Array, `<f8` and `<i8` Float64Array. */
export type NpyData = Uint8Array | Int32Array | Float32Array | Float64Array;

/** A parsed `.npy` array, values in C (row-major) order. */
export interface NpyArray {
  shape: number[];
  dtype: NpyDtype;
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ITEM_BYTES: Record<NpyDtype, number> = { "|u1": 1, "|b1": 1, "<i4": 4, "<i8": 8, "<f4": 4, "<f8": 8 };

function headerField(header: string, source: string, field: string, value: string): string {
  const match = new RegExp(`['"]${field}['"]\\s*:\\s*(${value})`).exec(header);
  if (!match) {
    throw new Error(`${source}: header field '${field}' is missing or malformed in ${header.trim()}`);
  }
  return match[1];
}

function parseHeader(header: string, source: string): { dtype: NpyDtype; shape: number[] } {
  const descr = headerField(header, source, "descr", `'[^']*'|"[^"]*"|\\[`).replace(/['"]/g, "");
  if (descr.startsWith(">")) {
    throw new Error(`${source}: header field 'descr' is ${descr}: big-endian data is not supported`);
  }
  const dtype = descr === "<u1" ? "|u1" : descr === "<b1" ? "|b1" : descr;
  if (!(dtype in ITEM_BYTES)) {
    throw new Error(
      `${source}: header field 'descr' is ${descr}; supported: ${Object.keys(ITEM_BYTES).join(", ")}`,
    );
  }
  if (headerField(header, source, "fortran_order", "True|False") === "True") {
    throw new Error(`${source}: header field 'fortran_order' is True: only C-order arrays are supported`);
  }
  const dims = headerField(header, source, "shape", "\\([^)]*\\)").slice(1, -1).split(",").map((d) =>
    d.trim()
  )
    .filter((d) => d.length > 0);
  const shape = dims.map((d) => {
    if (!/^\d+L?$/.test(d)) throw new Error(`${source}: header field 'shape' has a bad dimension "${d}"`);
    return Number.parseInt(d, 10);
  });
  return { dtype: dtype as NpyDtype, shape };
}

function readValues(view: DataView, start: number, count: number, dtype: NpyDtype, source: string): NpyData {
  switch (dtype) {
    case "|u1":
    case "|b1":
      return new Uint8Array(view.buffer.slice(view.byteOffset + start, view.byteOffset + start + count));
    case "<i4":
      return Int32Array.from({ length: count }, (_, i) => view.getInt32(start + 4 * i, true));
    case "<f4":
      return Float32Array.from({ length: count }, (_, i) => view.getFloat32(start + 4 * i, true));
    case "<f8":
      return Float64Array.from({ length: count }, (_, i) => view.getFloat64(start + 8 * i, true));
    case "<i8":
      return Float64Array.from({ length: count }, (_, i) => {
        const value = view.getBigInt64(start + 8 * i, true);
        if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
          throw new Error(`${source}: int64 value ${value} at byte offset ${start + 8 * i} is too large`);
        }
        return Number(value);
      });
  }
}

/**
 * Parses the bytes of a `.npy` file; `source` names the file in errors, which also name the header field
 * or byte offset at fault (bad magic, unsupported version, dtype or order, truncated header or data, bytes
 * after the data).
 */
export function parseNpy(bytes: Uint8Array, source: string): NpyArray {
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) {
    throw new Error(
      `${source}: not a .npy file (no \\x93NUMPY magic at byte offset 0, ${bytes.length} bytes)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  if (major < 1 || major > 3) {
    throw new Error(`${source}: format version ${major}.${bytes[7]} at byte offset 6 is not 1.0, 2.0 or 3.0`);
  }
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) throw new Error(`${source}: truncated header length at byte offset 8`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lengthBytes + headerLength;
  if (dataStart > bytes.length) {
    throw new Error(
      `${source}: header of ${headerLength} bytes (length at byte offset 8) runs past the end of the file ` +
        `(${bytes.length} bytes)`,
    );
  }
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(8 + lengthBytes, dataStart),
  );
  const { dtype, shape } = parseHeader(header, source);
  const count = shape.reduce((product, d) => product * d, 1);
  const needed = count * ITEM_BYTES[dtype];
  const available = bytes.length - dataStart;
  if (available !== needed) {
    throw new Error(
      `${source}: data from byte offset ${dataStart} has ${available} bytes, but shape (${
        shape.join(", ")
      }) ` +
        `of ${dtype} needs ${needed} (${available < needed ? "truncated" : "extra bytes at the end"})`,
    );
  }
  return { shape, dtype, data: readValues(view, dataStart, count, dtype, source) };
}

/** Reads a `.npy` file (see {@link parseNpy} for the errors). */
export async function readNpy(path: string): Promise<NpyArray> {
  return parseNpy(await Deno.readFile(path), path);
}

/** Placeholder class names `class0`, `class1`, ... for data that comes without names. */
export function numberedClassNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `class${i}`);
}

/** Options for {@link readNpyDataset}. */
export interface NpyDatasetOptions {
  /** Class names, indexed by label. Default: `class0` .. `classK` for the largest label K. */
  classNames?: string[];
  /** The values that map to 0 and 1. Default: [0, 255] for uint8 images, [0, 1] (taken as they are) for floats. */
  range?: readonly [number, number];
}

function imagesFromNpy(array: NpyArray, path: string, range?: readonly [number, number]): Float32Array {
  const { shape, dtype, data } = array;
  if (dtype !== "|u1" && dtype !== "<f4" && dtype !== "<f8") {
    throw new Error(`${path}: header field 'descr' is ${dtype}; images must be |u1, <f4 or <f8`);
  }
  if (shape.length !== 3 && shape.length !== 4) {
    throw new Error(
      `${path}: header field 'shape' is (${shape.join(", ")}); images need [n, h, w, c] or [n, h, w]`,
    );
  }
  const [lo, hi] = range ?? (dtype === "|u1" ? [0, 255] : [0, 1]);
  if (!(hi > lo)) throw new RangeError(`${path}: value range [${lo}, ${hi}] is empty`);
  const images = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const value = (data[i] - lo) / (hi - lo);
    if (!(value >= 0 && value <= 1)) {
      throw new RangeError(
        `${path}: value ${data[i]} at index ${i} is outside [${lo}, ${hi}] (give a range)`,
      );
    }
    images[i] = value;
  }
  return images;
}

function labelsFromNpy(array: NpyArray, path: string): number[] {
  const { shape, dtype, data } = array;
  if (dtype !== "|u1" && dtype !== "<i4" && dtype !== "<i8") {
    throw new Error(`${path}: header field 'descr' is ${dtype}; labels must be |u1, <i4 or <i8`);
  }
  if (shape.length !== 1 && !(shape.length === 2 && shape[1] === 1)) {
    throw new Error(`${path}: header field 'shape' is (${shape.join(", ")}); labels need [n] or [n, 1]`);
  }
  return Array.from(data);
}

function labelsFromText(text: string, path: string, classNames?: string[]): number[] {
  const labels: number[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line.length === 0) return;
    const named = classNames?.indexOf(line) ?? -1;
    if (named >= 0) labels.push(named);
    else if (/^\d+$/.test(line)) labels.push(Number(line));
    else {
      throw new Error(
        `${path}: line ${index + 1} "${line}" is not a label (a non-negative integer${
          classNames ? " or a class name" : ""
        })`,
      );
    }
  });
  return labels;
}

/**
 * Reads images from a `.npy` file and their labels from a `.npy` file of integers or a text file (one
 * integer, or one class name when `classNames` are given, per line; blank lines ignored) as a dataset named
 * after the images file. Images are [n, h, w, c] or [n, h, w] (grey) values mapped from `range` onto
 * [0, 1] (see {@link NpyDatasetOptions}); a value outside it is an error. Throws errors naming the file:
 * both files when the counts differ, the labels file for a label outside the class names.
 */
export async function readNpyDataset(
  imagesPath: string,
  labelsPath: string,
  options: NpyDatasetOptions = {},
): Promise<Dataset> {
  const array = await readNpy(imagesPath);
  const images = imagesFromNpy(array, imagesPath, options.range);
  const labelList = /\.npy$/i.test(labelsPath)
    ? labelsFromNpy(await readNpy(labelsPath), labelsPath)
    : labelsFromText(await Deno.readTextFile(labelsPath), labelsPath, options.classNames);
  const [count, height, width, channels = 1] = array.shape;
  if (labelList.length !== count) {
    throw new Error(`${imagesPath} has ${count} images but ${labelsPath} has ${labelList.length} labels`);
  }
  const classNames = options.classNames ??
    numberedClassNames(labelList.reduce((max, label) => Math.max(max, label), -1) + 1);
  const bad = labelList.findIndex((label) => label < 0 || label >= classNames.length);
  if (bad >= 0) {
    throw new RangeError(
      `${labelsPath}: label ${labelList[bad]} of image ${bad} is outside 0..${classNames.length - 1}`,
    );
  }
  const dataset: Dataset = {
    name: imagesPath.slice(imagesPath.lastIndexOf("/") + 1),
    images,
    labels: Int32Array.from(labelList),
    count,
    shape: [height, width, channels],
    classNames,
  };
  validateDataset(dataset);
  return dataset;
}
