/**
 * Random crop (RC) baseline (paper Sec. 6.4.1, Table 4): delete `cropCount` randomly chosen samples
 * from the waveform, which breaks the sample alignment a perturbation relies on. The paper deletes
 * 1,000 samples at 16 kHz; at the model's 8 kHz the same duration is 500 samples.
 *
 * @module
 */
import { MODEL_SAMPLE_RATE } from "../config.ts";

/** Default number of deleted samples: the paper's 1,000 at 16 kHz, scaled to the model's rate. */
export const RANDOM_CROP_DEFAULT_COUNT = Math.round(1000 * MODEL_SAMPLE_RATE / 16000);

/**
 * Returns `samples` without `cropCount` distinct random positions (a shorter signal; the features
 * fit it to the clip length). `random` gives uniforms in [0, 1): pass a seeded one for evaluations.
 */
export function randomCrop(
  samples: Float32Array,
  cropCount: number = RANDOM_CROP_DEFAULT_COUNT,
  random: () => number = Math.random,
): Float32Array {
  const count = Math.min(Math.max(0, Math.floor(cropCount)), samples.length);
  const removed = new Uint8Array(samples.length);
  let chosen = 0;
  while (chosen < count) {
    const at = Math.floor(random() * samples.length);
    if (!removed[at]) {
      removed[at] = 1;
      chosen++;
    }
  }
  const out = new Float32Array(samples.length - count);
  let j = 0;
  for (let i = 0; i < samples.length; i++) if (!removed[i]) out[j++] = samples[i];
  return out;
}
