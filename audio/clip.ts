/**
 * Fixing a waveform to the model's clip length: shorter clips are centred in zeros, longer ones are
 * cut to the loudest window of that length (FSDD clips are trimmed speech, 99% shorter than 1 s).
 *
 * @module
 */
import { CLIP_SAMPLES } from "./config.ts";

/** Returns a copy of exactly `length` samples (default {@link CLIP_SAMPLES}); see the module doc. */
export function fitToClip(samples: Float32Array, length: number = CLIP_SAMPLES): Float32Array {
  const out = new Float32Array(length);
  if (samples.length <= length) {
    out.set(samples, Math.floor((length - samples.length) / 2));
    return out;
  }
  let energy = 0;
  for (let i = 0; i < length; i++) energy += samples[i] * samples[i];
  let best = energy;
  let bestStart = 0;
  for (let start = 1; start + length <= samples.length; start++) {
    const leaving = samples[start - 1];
    const entering = samples[start + length - 1];
    energy += entering * entering - leaving * leaving;
    if (energy > best) {
      best = energy;
      bestStart = start;
    }
  }
  out.set(samples.subarray(bestStart, bestStart + length));
  return out;
}
