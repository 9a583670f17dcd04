/**
 * Converts decoded 8-bit images to model input rows and back: channel conversion (gray <-> RGB, alpha
 * dropped), bilinear resizing, and linear mapping of [0, 255] onto the model's input range.
 *
 * @module
 */
import type { RawImage } from "./codec.ts";

/** Converts to `channels` (1 or 3): gray uses ITU-R BT.601 luma; alpha is dropped. */
export function convertChannels(image: RawImage, channels: 1 | 3): RawImage {
  if (image.channels === channels) return image;
  const pixels = image.width * image.height;
  const out = new Uint8Array(pixels * channels);
  const src = image.data;
  const stride = image.channels;
  for (let p = 0; p < pixels; p++) {
    const base = p * stride;
    if (channels === 1) {
      out[p] = stride === 1
        ? src[base]
        : Math.round(0.299 * src[base] + 0.587 * src[base + 1] + 0.114 * src[base + 2]);
    } else {
      for (let c = 0; c < 3; c++) out[p * 3 + c] = stride === 1 ? src[base] : src[base + c];
    }
  }
  return { width: image.width, height: image.height, channels, data: out };
}

/**
 * Bilinear resize (half-pixel centres, like TensorFlow's `half_pixel_centers`) of an 8-bit image to
 * `width` x `height`, returning float values in [0, 255].
 */
export function resizeBilinear(image: RawImage, width: number, height: number): Float32Array {
  const channels = image.channels;
  const out = new Float32Array(width * height * channels);
  const scaleX = image.width / width;
  const scaleY = image.height / height;
  for (let y = 0; y < height; y++) {
    const sy = Math.min(Math.max((y + 0.5) * scaleY - 0.5, 0), image.height - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, image.height - 1);
    const fy = sy - y0;
    for (let x = 0; x < width; x++) {
      const sx = Math.min(Math.max((x + 0.5) * scaleX - 0.5, 0), image.width - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, image.width - 1);
      const fx = sx - x0;
      for (let c = 0; c < channels; c++) {
        const a = image.data[(y0 * image.width + x0) * channels + c];
        const b = image.data[(y0 * image.width + x1) * channels + c];
        const d = image.data[(y1 * image.width + x0) * channels + c];
        const e = image.data[(y1 * image.width + x1) * channels + c];
        out[(y * width + x) * channels + c] = (a * (1 - fx) + b * fx) * (1 - fy) +
          (d * (1 - fx) + e * fx) * fy;
      }
    }
  }
  return out;
}

/**
 * Turns a decoded image into one model input row of shape [height, width, channels] with values in
 * `range` (0 maps to range[0], 255 to range[1]).
 */
export function imageToInput(
  image: RawImage,
  shape: readonly [number, number, number],
  range: readonly [number, number],
): Float32Array {
  const [height, width, channels] = shape;
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`images need a model with 1 or 3 input channels, this one has ${channels}`);
  }
  const converted = convertChannels(image, channels);
  const resized = converted.width === width && converted.height === height
    ? Float32Array.from(converted.data)
    : resizeBilinear(converted, width, height);
  const [lo, hi] = range;
  const scale = (hi - lo) / 255;
  for (let i = 0; i < resized.length; i++) resized[i] = lo + resized[i] * scale;
  return resized;
}

/** Turns one model input row back into an 8-bit image (values clipped to `range`, then rounded). */
export function inputToImage(
  row: Float32Array,
  shape: readonly [number, number, number],
  range: readonly [number, number],
): RawImage {
  const [height, width, channels] = shape;
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`only 1- or 3-channel inputs encode as images, this one has ${channels}`);
  }
  const [lo, hi] = range;
  const data = new Uint8Array(height * width * channels);
  for (let i = 0; i < data.length; i++) {
    const v = (Math.min(Math.max(row[i], lo), hi) - lo) / (hi - lo);
    data[i] = Math.round(v * 255);
  }
  return { width, height, channels, data };
}
