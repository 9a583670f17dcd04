/**
 * JPEG compression, JC (Dziugaite et al. 2016): each image goes through a baseline JPEG encode and
 * decode at `quality` with `jpeg-js`. The paper runs ART's `JpegCompression` with quality=80 (Sec. 5.4,
 * App. Table 3).
 *
 * Values map from the model's input range to bytes by rounding (ART truncates) and back by /255.
 * Greyscale images are replicated to RGB for the codec, which has no one-component mode; their chroma is
 * then constant, so the decoded R, G and B are equal and R is taken back.
 *
 * jpeg-js builds its Huffman and colour tables on every `encode` call (about 10 ms), far more than
 * coding a small image. So a batch is coded as one mosaic: each image is padded to whole 8x8 blocks by
 * repeating its last row and column, exactly as the encoder pads a lone image, and JPEG codes blocks
 * independently (4:4:4, no smoothing across blocks), so every image comes back as if coded alone.
 *
 * @module
 */
import jpeg from "jpeg-js";
import { integerSetting, type StageFactory } from "../stage.ts";
import { imageTransformStage } from "./image_stage.ts";

/** The paper's quality (App. Table 3). */
export const JPEG_DEFAULT_QUALITY = 80;

/** Pixels per mosaic: bounds the codec's buffers for large batches of large images. */
const MOSAIC_PIXELS = 1 << 22;

function checkChannels(channels: number): void {
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`jc: JPEG needs 1 or 3 channels, got ${channels}`);
  }
}

/**
 * JPEG round trip at `quality` (1..100) of every image of a channels-last batch [n, h, w, c] (c = 1 or 3)
 * with values in `range`; returns a new array.
 */
export function jpegCompression(
  images: Float32Array,
  shape: readonly [number, number, number, number],
  quality: number,
  range: readonly [number, number],
): Float32Array {
  const [n, h, w, c] = shape;
  checkChannels(c);
  const [low, high] = range;
  const span = high - low;
  const tileH = Math.ceil(h / 8) * 8;
  const tileW = Math.ceil(w / 8) * 8;
  const perMosaic = Math.max(1, Math.floor(MOSAIC_PIXELS / (tileH * tileW)));
  const out = new Float32Array(images.length);
  for (let first = 0; first < n; first += perMosaic) {
    const count = Math.min(perMosaic, n - first);
    const gridW = Math.ceil(Math.sqrt(count));
    const width = gridW * tileW;
    const height = Math.ceil(count / gridW) * tileH;
    const rgba = new Uint8Array(width * height * 4);
    for (let t = 0; t < count; t++) {
      const top = Math.floor(t / gridW) * tileH;
      const left = (t % gridW) * tileW;
      const base = (first + t) * h * w * c;
      for (let y = 0; y < tileH; y++) {
        for (let x = 0; x < tileW; x++) {
          const source = base + (Math.min(y, h - 1) * w + Math.min(x, w - 1)) * c;
          const target = ((top + y) * width + left + x) * 4;
          for (let k = 0; k < 3; k++) {
            const unit = Math.min(1, Math.max(0, (images[source + (c === 1 ? 0 : k)] - low) / span));
            rgba[target + k] = Math.round(unit * 255);
          }
          rgba[target + 3] = 255;
        }
      }
    }
    const encoded = jpeg.encode({ data: rgba, width, height }, quality);
    const decoded = jpeg.decode(encoded.data, { useTArray: true, formatAsRGBA: false }).data;
    for (let t = 0; t < count; t++) {
      const top = Math.floor(t / gridW) * tileH;
      const left = (t % gridW) * tileW;
      const base = (first + t) * h * w * c;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const source = ((top + y) * width + left + x) * 3;
          for (let ch = 0; ch < c; ch++) {
            out[base + (y * w + x) * c + ch] = low + (decoded[source + ch] / 255) * span;
          }
        }
      }
    }
  }
  return out;
}

/** `jc`: JPEG compression; override `quality` (an integer in [1, 100], default 80). */
export const JPEG_COMPRESSION: StageFactory = {
  name: "jc",
  summary: "JPEG compression round trip (Dziugaite et al. 2016)",
  modalities: ["image"],
  needsProfile: false,
  create({ split, overrides = {} }) {
    const quality = integerSetting("jc", "quality", overrides.quality, JPEG_DEFAULT_QUALITY, [1, 100]);
    checkChannels(split.inputShape[split.inputShape.length - 1]);
    const range = split.inputRange;
    return imageTransformStage(
      "jc",
      `JC: JPEG round trip at quality ${quality} (quality=${quality})`,
      { quality },
      (values, shape) => jpegCompression(values, shape, quality, range),
    );
  },
};
