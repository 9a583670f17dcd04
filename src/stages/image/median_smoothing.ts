/**
 * Spatial smoothing, SS (Xu et al. 2018, feature squeezing): a median filter over each channel. The
 * paper runs ART's `SpatialSmoothing` with window_size=2 (Sec. 5.4, App. Table 3).
 *
 * Matches what ART calls, `scipy.ndimage.median_filter` with its default mode `reflect`, value for value:
 * - an even window reaches one cell further BEFORE the centre than after (offsets -w/2 .. w/2-1), since
 *   scipy puts a footprint's centre at index w/2;
 * - the median of an even count is the upper of the two middle values (scipy's rank w*w/2), so the
 *   output only holds values of the input;
 * - edges reflect about the border, repeating the edge cell (d c b a | a b c d | d c b a). For windows up
 *   to 3 this equals clamping; it differs from window 4 on.
 *
 * @module
 */
import { integerSetting, type StageFactory } from "../stage.ts";
import { imageTransformStage } from "./image_stage.ts";

/** The paper's window (App. Table 3). */
export const SMOOTHING_DEFAULT_WINDOW = 2;

/** scipy's `reflect` mode: the source index for any position, for periodic reflection about both edges. */
function reflect(index: number, size: number): number {
  const period = 2 * size;
  const folded = ((index % period) + period) % period;
  return folded < size ? folded : period - 1 - folded;
}

/** For each position, the `window` source positions of its neighbourhood, row-major [size, window]. */
function neighbourhoods(size: number, window: number): Int32Array {
  const before = Math.floor(window / 2);
  const out = new Int32Array(size * window);
  for (let i = 0; i < size; i++) {
    for (let k = 0; k < window; k++) out[i * window + k] = reflect(i - before + k, size);
  }
  return out;
}

/**
 * Median filter with a `window` x `window` neighbourhood over each channel of each image of a
 * channels-last batch of shape [n, h, w, c]; returns a new array.
 */
export function medianSmoothing(
  images: Float32Array,
  shape: readonly [number, number, number, number],
  window: number = SMOOTHING_DEFAULT_WINDOW,
): Float32Array {
  const [n, h, w, c] = shape;
  const rows = neighbourhoods(h, window);
  const cols = neighbourhoods(w, window);
  const rank = Math.floor((window * window) / 2);
  const sorted = new Float64Array(window * window);
  const out = new Float32Array(images.length);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++) {
          // Insertion sort while gathering: windows are a few cells, where it beats a general sort.
          let count = 0;
          for (let i = 0; i < window; i++) {
            const rowStart = (b * h + rows[y * window + i]) * w;
            for (let j = 0; j < window; j++) {
              const value = images[(rowStart + cols[x * window + j]) * c + ch];
              let k = count++;
              while (k > 0 && sorted[k - 1] > value) {
                sorted[k] = sorted[k - 1];
                k--;
              }
              sorted[k] = value;
            }
          }
          out[((b * h + y) * w + x) * c + ch] = sorted[rank];
        }
      }
    }
  }
  return out;
}

/** `ss`: median smoothing; override `window_size` (a positive integer, default 2). */
export const SPATIAL_SMOOTHING: StageFactory = {
  name: "ss",
  summary: "spatial smoothing: median filter over each channel (Xu et al. 2018)",
  // The speaker model's log-mel map is a one-channel image; the paper runs SS on it too (Sec. 6.4.1).
  modalities: ["image", "audio"],
  needsProfile: false,
  create({ overrides = {} }) {
    const window = integerSetting("ss", "window_size", overrides.window_size, SMOOTHING_DEFAULT_WINDOW, [
      1,
      Infinity,
    ]);
    return imageTransformStage(
      "ss",
      `SS: ${window}x${window} median filter per channel, edges reflected (window_size=${window})`,
      { window_size: window },
      (values, shape) => medianSmoothing(values, shape, window),
    );
  },
};
