/**
 * Fixing a waveform to the model's clip length: shorter clips are centred in zeros, longer ones are
 * cut to the loudest window of that length (FSDD clips are trimmed speech, 99% shorter than 1 s); and
 * the way back, a clip of that length put back to the waveform's own length.
 *
 * @module
 */
import { CLIP_SAMPLES } from "./config.ts";

/**
 * Start of the window {@link fitToClip} keeps of `samples`: the loudest `length` samples, first on ties;
 * 0 when `samples` is no longer than `length`.
 */
export function loudestWindowStart(samples: Float32Array, length: number = CLIP_SAMPLES): number {
  if (samples.length <= length) return 0;
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
  return bestStart;
}

/** Where {@link fitToClip} puts a waveform of `samples` samples no longer than `length`: centred. */
function centredOffset(samples: number, length: number): number {
  return Math.floor((length - samples) / 2);
}

/** Returns a copy of exactly `length` samples (default {@link CLIP_SAMPLES}); see the module doc. */
export function fitToClip(samples: Float32Array, length: number = CLIP_SAMPLES): Float32Array {
  const out = new Float32Array(length);
  if (samples.length <= length) {
    out.set(samples, centredOffset(samples.length, length));
    return out;
  }
  const start = loudestWindowStart(samples, length);
  out.set(samples.subarray(start, start + length));
  return out;
}

/**
 * Puts a clip made from `fitToClip(samples, clip.length)` (e.g. its resynthesised, defended version) back
 * to the length of `samples`: a shorter input was centred in zeros, so its span is cut out of the clip; a
 * longer one had its loudest window read, so that window is replaced in a copy of `samples` and the rest
 * passes through as sent.
 */
export function restoreLength(clip: Float32Array, samples: Float32Array): Float32Array {
  if (samples.length <= clip.length) {
    const start = centredOffset(samples.length, clip.length);
    return clip.slice(start, start + samples.length);
  }
  const out = samples.slice();
  out.set(clip, loudestWindowStart(samples, clip.length));
  return out;
}
