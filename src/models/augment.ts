/**
 * Standard image augmentations for training batches, seeded per batch: a random crop of a zero-padded image
 * (pad `pad` pixels on each side, crop back to the original size) and an optional horizontal flip
 * (CIFAR-10; not for traffic signs, whose meaning a mirror image can change), and a per-image brightness and
 * contrast jitter (GTSRB, whose photographs range from near black to overexposed).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { mulberry32 } from "../random.ts";

/** Options of {@link cropFlip}. */
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

/**
 * Returns `images` ([n, h, w, c], values in [0, 1]) with each image's contrast scaled about its mean by a
 * factor in [1 - strength, 1 + strength] and its brightness then multiplied by another such factor, clipped
 * to [0, 1]. Pure; the same `seed` gives the same result; strength 0 is the identity.
 */
export function colorJitter(
  images: Float32Array,
  shape: [number, number, number, number],
  seed: number,
  strength: number,
): Float32Array {
  const [count] = shape;
  const size = images.length / count;
  const random = mulberry32(seed);
  const out = new Float32Array(images.length);
  for (let n = 0; n < count; n++) {
    const contrast = 1 + strength * (2 * random() - 1);
    const brightness = 1 + strength * (2 * random() - 1);
    const image = images.subarray(n * size, (n + 1) * size);
    let mean = 0;
    for (const value of image) mean += value;
    mean /= size;
    for (let i = 0; i < size; i++) {
      const value = ((image[i] - mean) * contrast + mean) * brightness;
      out[n * size + i] = Math.min(1, Math.max(0, value));
    }
  }
  return out;
}

/** Options of {@link imageAugmentation}: {@link cropFlip}'s and the strength of {@link colorJitter}. */
export interface ImageAugmentationOptions extends CropFlipOptions {
  /** {@link colorJitter}'s strength; 0 or absent: no jitter. */
  jitter?: number;
}

/**
 * A training-batch augmentation (see `TrainOptions.augment`) applying {@link cropFlip}, then
 * {@link colorJitter} when `jitter` is set.
 */
export function imageAugmentation(
  options: ImageAugmentationOptions = {},
): (x: tf.Tensor4D, batchSeed: number) => tf.Tensor4D {
  return (x, batchSeed) => {
    let values = cropFlip(x.dataSync() as Float32Array, x.shape, batchSeed, options);
    if (options.jitter !== undefined && options.jitter > 0) {
      values = colorJitter(values, x.shape, batchSeed ^ 0x7c0102, options.jitter);
    }
    return tf.tensor4d(values, x.shape);
  };
}
