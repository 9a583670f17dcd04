/**
 * Common corruptions of benign images (Hendrycks & Dietterich 2019's kinds, at one mild severity each): a
 * detector that flags every noisy or recompressed photo is useless, so the detection report measures its
 * false-positive rate on these too. Each works on row-major [n, h, w, c] values in the model's input range.
 *
 * @module
 */
import type { ImageShape } from "../stages/image/image_stage.ts";
import { jpegCompression } from "../stages/image/jpeg.ts";

/** One corruption: a name with its setting, and the function. */
export interface Corruption {
  name: string;
  apply(
    values: Float32Array,
    shape: ImageShape,
    range: readonly [number, number],
    random: () => number,
  ): Float32Array;
}

function clip(v: number, range: readonly [number, number]): number {
  return v < range[0] ? range[0] : v > range[1] ? range[1] : v;
}

/** Gaussian noise of standard deviation `sigma` times the range's width, clipped. */
export function gaussianNoise(sigma: number): Corruption {
  return {
    name: `gaussian noise (sigma ${sigma} of the range)`,
    apply(values, _shape, range, random) {
      const scale = sigma * (range[1] - range[0]);
      return values.map((v) => {
        const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
        return clip(v + scale * normal, range);
      });
    },
  };
}

/** A JPEG round trip at `quality`. */
export function jpegCorruption(quality: number): Corruption {
  return {
    name: `JPEG quality ${quality}`,
    apply: (values, shape, range) => jpegCompression(values, shape, quality, [range[0], range[1]]),
  };
}

/** A 3x3 binomial blur ([1, 2, 1] / 4 in each direction), edges clamped, per channel. */
export function blur(): Corruption {
  return {
    name: "3x3 binomial blur",
    apply(values, [n, h, w, c]) {
      const weights = [0.25, 0.5, 0.25];
      const pass = (input: Float32Array, dy: number, dx: number) => {
        const out = new Float32Array(input.length);
        for (let i = 0; i < n; i++) {
          for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
              for (let ch = 0; ch < c; ch++) {
                let sum = 0;
                for (let k = -1; k <= 1; k++) {
                  const yy = Math.min(h - 1, Math.max(0, y + k * dy));
                  const xx = Math.min(w - 1, Math.max(0, x + k * dx));
                  sum += weights[k + 1] * input[((i * h + yy) * w + xx) * c + ch];
                }
                out[((i * h + y) * w + x) * c + ch] = sum;
              }
            }
          }
        }
        return out;
      };
      return pass(pass(values, 1, 0), 0, 1);
    },
  };
}

/** The corruptions the detection report measures on images. */
export const IMAGE_CORRUPTIONS: readonly Corruption[] = [gaussianNoise(0.05), jpegCorruption(50), blur()];
