/**
 * Feature distillation, FDistill (Liu et al. 2019, "Feature Distillation: DNN-Oriented JPEG Compression
 * Against Adversarial Examples"): a JPEG-like round trip per 8x8 block (DCT, quantisation with a
 * DNN-oriented table, inverse DCT). The paper uses the authors' code with qs=40, factor=100,
 * block_side=8 (Sec. 5.4, App. Table 3).
 *
 * Follows the authors' reference implementation (github.com/sibosutd/feature-distillation, `jpeg.py`):
 * - the table holds 1 in the 15 lowest-frequency cells (u + v < 5) and qs + 1 elsewhere, then is scaled
 *   like a JPEG table by the quality `factor`: s = 5000/factor below 50, else 200 - 2*factor; entries
 *   (t*s + 50)/100 without flooring, clipped to [1, 255]. At the paper's factor=100, s = 0 and every
 *   entry is 1 whatever qs: the round trip then only rounds coefficients to integers, a near identity;
 * - it works on bytes, as the reference on 8-bit files: values map from the model's input range to
 *   0..255 and are rounded; colour images go to YCbCr bytes (JFIF, as PIL) and all three components use
 *   the same table; pixels are levelled by -128; quantised coefficients and the decoded YCbCr and RGB
 *   bytes round half to even (numpy) and clip to 0..255;
 * - one-channel images are their own luma (grey is Y with neutral chroma), each channel on its own.
 * Where it departs: sides that are not multiples of 8 are padded by repeating the last row and column,
 * as JPEG encoders do, and cropped after (the reference assumes square images of whole blocks).
 *
 * @module
 */
import { numericSetting, type StageFactory } from "../stage.ts";
import { imageTransformStage } from "./image_stage.ts";
import { roundHalfEven } from "./bit_depth.ts";

/** The paper's settings (App. Table 3). */
export const FDISTILL_DEFAULTS = { qs: 40, factor: 100, blockSide: 8 } as const;

const SIDE = 8;
/** Cells (u, v) with u + v below this keep the fine step: the reference table's zeros. */
const LOW_BAND = 5;

/** The reference's DNN-oriented table for `qs` and quality `factor` in [1, 100], row-major 8x8. */
export function distillationTable(qs: number, factor: number): Float64Array {
  const scale = factor < 50 ? 5000 / factor : 200 - 2 * factor;
  const table = new Float64Array(SIDE * SIDE);
  for (let u = 0; u < SIDE; u++) {
    for (let v = 0; v < SIDE; v++) {
      const base = (u + v >= LOW_BAND ? qs : 0) + 1;
      table[u * SIDE + v] = Math.min(255, Math.max(1, (base * scale + 50) / 100));
    }
  }
  return table;
}

/** Orthonormal DCT-II basis, row k = frequency k (scipy's `dct(norm="ortho")`). */
const BASIS = Float64Array.from({ length: SIDE * SIDE }, (_, i) => {
  const k = Math.floor(i / SIDE);
  const n = i % SIDE;
  return Math.sqrt((k === 0 ? 1 : 2) / SIDE) * Math.cos((Math.PI * (2 * n + 1) * k) / (2 * SIDE));
});

/** out = op(a) op(b) for 8x8 row-major matrices, op transposing where asked. */
function product(a: Float64Array, aT: boolean, b: Float64Array, bT: boolean, out: Float64Array): void {
  for (let i = 0; i < SIDE; i++) {
    for (let j = 0; j < SIDE; j++) {
      let sum = 0;
      for (let k = 0; k < SIDE; k++) {
        sum += (aT ? a[k * SIDE + i] : a[i * SIDE + k]) * (bT ? b[j * SIDE + k] : b[k * SIDE + j]);
      }
      out[i * SIDE + j] = sum;
    }
  }
}

/**
 * Distils one plane of bytes (0..255 scale, row-major, sides multiples of 8) in place: per block, DCT,
 * quantise and dequantise with `table`, inverse DCT, round and clip.
 */
function distilPlane(plane: Float64Array, height: number, width: number, table: Float64Array): void {
  const block = new Float64Array(SIDE * SIDE);
  const half = new Float64Array(SIDE * SIDE);
  for (let top = 0; top < height; top += SIDE) {
    for (let left = 0; left < width; left += SIDE) {
      for (let i = 0; i < SIDE; i++) {
        for (let j = 0; j < SIDE; j++) block[i * SIDE + j] = plane[(top + i) * width + left + j] - 128;
      }
      product(BASIS, false, block, false, half);
      product(half, false, BASIS, true, block);
      for (let k = 0; k < block.length; k++) block[k] = roundExact(block[k] / table[k]) * table[k];
      product(BASIS, true, block, false, half);
      product(half, false, BASIS, false, block);
      for (let i = 0; i < SIDE; i++) {
        for (let j = 0; j < SIDE; j++) {
          plane[(top + i) * width + left + j] = toByte(block[i * SIDE + j] + 128);
        }
      }
    }
  }
}

/** Grid that values are snapped to before rounding. */
const SNAP = 2 ** 20;

/**
 * Rounds half to even as exact arithmetic would: byte inputs give exact halves in the rational DCT cells
 * ((0,0), (0,4), (4,4), ...) and in the pixels, and float noise must not break those ties (in the
 * reference it does, one way or the other).
 */
function roundExact(value: number): number {
  return roundHalfEven(Math.round(value * SNAP) / SNAP);
}

function toByte(value: number): number {
  return Math.min(255, Math.max(0, roundExact(value)));
}

/** JFIF RGB -> YCbCr, the reference's (PIL's) colour space; rows are Y, Cb, Cr, offsets 0, 128, 128. */
const TO_YCBCR = [
  [0.299, 0.587, 0.114, 0],
  [-0.168736, -0.331264, 0.5, 128],
  [0.5, -0.418688, -0.081312, 128],
];
/** JFIF YCbCr -> RGB, applied to (Y, Cb - 128, Cr - 128). */
const TO_RGB = [
  [1, 0, 1.402],
  [1, -0.344136, -0.714136],
  [1, 1.772, 0],
];

/**
 * Feature distillation with quantisation `table` (64 entries, see {@link distillationTable}) of every
 * image of a channels-last batch [n, h, w, c] with values in `range`; three channels are taken as RGB.
 * Returns a new array, on the 8-bit grid of `range`.
 */
export function featureDistillation(
  images: Float32Array,
  shape: readonly [number, number, number, number],
  table: Float64Array,
  range: readonly [number, number],
): Float32Array {
  const [n, h, w, c] = shape;
  const [low, high] = range;
  const span = high - low;
  const height = Math.ceil(h / SIDE) * SIDE;
  const width = Math.ceil(w / SIDE) * SIDE;
  const planes = Array.from({ length: c }, () => new Float64Array(height * width));
  const bytes = new Float64Array(c);
  const out = new Float32Array(images.length);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const source = ((b * h + Math.min(y, h - 1)) * w + Math.min(x, w - 1)) * c;
        for (let ch = 0; ch < c; ch++) {
          bytes[ch] = Math.round(Math.min(1, Math.max(0, (images[source + ch] - low) / span)) * 255);
        }
        for (let ch = 0; ch < c; ch++) {
          planes[ch][y * width + x] = c === 3
            ? toByte(
              TO_YCBCR[ch][0] * bytes[0] + TO_YCBCR[ch][1] * bytes[1] + TO_YCBCR[ch][2] * bytes[2] +
                TO_YCBCR[ch][3],
            )
            : bytes[ch];
        }
      }
    }
    for (const plane of planes) distilPlane(plane, height, width, table);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = y * width + x;
        const target = ((b * h + y) * w + x) * c;
        for (let ch = 0; ch < c; ch++) {
          const value = c === 3
            ? toByte(
              TO_RGB[ch][0] * planes[0][p] + TO_RGB[ch][1] * (planes[1][p] - 128) +
                TO_RGB[ch][2] * (planes[2][p] - 128),
            )
            : planes[ch][p];
          out[target + ch] = low + (value / 255) * span;
        }
      }
    }
  }
  return out;
}

/** `fdistill`: feature distillation; overrides `qs` >= 0, `factor` in [1, 100]; `block_side` is fixed at 8. */
export const FEATURE_DISTILLATION: StageFactory = {
  name: "fdistill",
  summary: "feature distillation: DNN-oriented JPEG quantisation of 8x8 DCT blocks (Liu et al. 2019)",
  modalities: ["image"],
  needsProfile: false,
  create({ split, overrides = {} }) {
    const qs = numericSetting("fdistill", "qs", overrides.qs, FDISTILL_DEFAULTS.qs, [0, Infinity]);
    const factor = numericSetting("fdistill", "factor", overrides.factor, FDISTILL_DEFAULTS.factor, [1, 100]);
    // The reference table is defined for 8x8 blocks only; the setting is kept so reports show it.
    const blockSide = numericSetting(
      "fdistill",
      "block_side",
      overrides.block_side,
      FDISTILL_DEFAULTS.blockSide,
      [SIDE, SIDE],
    );
    const table = distillationTable(qs, factor);
    const range = split.inputRange;
    const steps = `${Math.min(...table)}..${Math.max(...table)}`;
    return imageTransformStage(
      "fdistill",
      `FDistill: ${blockSide}x${blockSide} block DCT quantised with the DNN-oriented table ` +
        `(steps ${steps}) (qs=${qs}, factor=${factor}, block_side=${blockSide})`,
      { qs, factor, block_side: blockSide },
      (values, shape) => featureDistillation(values, shape, table, range),
    );
  },
};
