/**
 * Standard image augmentations for training batches, seeded per batch: a random crop of a zero-padded image
 * (pad `pad` pixels on each side, crop back to the original size) and an optional horizontal flip
 * (CIFAR-10; not for traffic signs, whose meaning a mirror image can change).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { mulberry32 } from "../random.ts";

/** Options of {@link cropFlipAugmentation}. */
export interface CropFlipOptions {
  /** Zero padding on each side before the random crop; 0: no crop. Default 4. */
  pad?: number;
  /** Mirror each image left-right with probability 1/2; default false. */
  flip?: boolean;
}

/**
 * Returns `images` ([n, h, w, c], row-major) shifted by a random offset in [-pad, pad] in each direction
 * (zeros where the shift uncovers the border) and, with `flip`, mirrored with probability 1/2. Pure: a new
 * array; the same `seed` gives the same result.
 */
export function cropFlip(
  images: Float32Array,
  shape: [number, number, number, number],
  seed: number,
  options: CropFlipOptions = {},
): Float32Array {
  const [count, height, width, channels] = shape;
  const pad = options.pad ?? 4;
  const random = mulberry32(seed);
  const out = new Float32Array(images.length);
  const size = height * width * channels;
  for (let n = 0; n < count; n++) {
    const dy = Math.floor(random() * (2 * pad + 1)) - pad;
    const dx = Math.floor(random() * (2 * pad + 1)) - pad;
    const mirror = options.flip === true && random() < 0.5;
    for (let y = 0; y < height; y++) {
      const sourceY = y + dy;
      if (sourceY < 0 || sourceY >= height) continue;
      for (let x = 0; x < width; x++) {
        const shiftedX = x + dx;
        if (shiftedX < 0 || shiftedX >= width) continue;
        const sourceX = mirror ? width - 1 - shiftedX : shiftedX;
        const from = n * size + (sourceY * width + sourceX) * channels;
        const to = n * size + (y * width + x) * channels;
        for (let c = 0; c < channels; c++) out[to + c] = images[from + c];
      }
    }
  }
  return out;
}

/** A training-batch augmentation (see `TrainOptions.augment`) applying {@link cropFlip}. */
export function cropFlipAugmentation(
  options: CropFlipOptions = {},
): (x: tf.Tensor4D, batchSeed: number) => tf.Tensor4D {
  return (x, batchSeed) =>
    tf.tensor4d(cropFlip(x.dataSync() as Float32Array, x.shape, batchSeed, options), x.shape);
}
