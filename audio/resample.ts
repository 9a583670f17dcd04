/**
 * Band-limited resampling for any rate ratio: a Kaiser-windowed sinc interpolator whose cutoff sits
 * below the lower of the two Nyquist frequencies, so down-sampling does not alias.
 *
 * @module
 */

/** Zero crossings of the sinc on each side of the centre (kernel half-width, in cutoff periods). */
const ZERO_CROSSINGS = 16;
/** Table points per zero crossing (linear interpolation between them). */
const TABLE_RESOLUTION = 512;
/** Kaiser beta: about 80 dB stop-band attenuation. */
const KAISER_BETA = 8.6;
/** Cutoff as a fraction of the lower Nyquist frequency (leaves room for the transition band). */
const ROLLOFF = 0.92;

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const half = x / 2;
  for (let k = 1; k < 50; k++) {
    term *= (half / k) * (half / k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

/** Windowed sinc sampled at x = 0 .. ZERO_CROSSINGS in steps of 1 / TABLE_RESOLUTION. */
const KERNEL_TABLE: Float64Array = (() => {
  const size = ZERO_CROSSINGS * TABLE_RESOLUTION + 2;
  const table = new Float64Array(size);
  const norm = besselI0(KAISER_BETA);
  for (let i = 0; i < size; i++) {
    const x = i / TABLE_RESOLUTION;
    const u = Math.min(1, x / ZERO_CROSSINGS);
    const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    table[i] = sinc * besselI0(KAISER_BETA * Math.sqrt(1 - u * u)) / norm;
  }
  return table;
})();

function kernel(x: number): number {
  const position = Math.abs(x) * TABLE_RESOLUTION;
  const index = Math.floor(position);
  if (index >= KERNEL_TABLE.length - 1) return 0;
  const fraction = position - index;
  return KERNEL_TABLE[index] * (1 - fraction) + KERNEL_TABLE[index + 1] * fraction;
}

/**
 * Resamples `samples` from `fromRate` to `toRate` (Hz). The output has
 * `round(samples.length * toRate / fromRate)` samples; edges are treated as zeros.
 */
export function resample(samples: Float32Array, fromRate: number, toRate: number): Float32Array {
  if (!(fromRate > 0) || !(toRate > 0)) {
    throw new RangeError(`resample: rates must be positive (${fromRate}, ${toRate})`);
  }
  if (fromRate === toRate) return samples.slice();
  const ratio = fromRate / toRate; // input samples per output sample
  const outLength = Math.round(samples.length / ratio);
  const out = new Float32Array(outLength);
  // Cutoff in cycles per input sample, relative to the input Nyquist (1 = no band limiting).
  const cutoff = Math.min(1, 1 / ratio) * ROLLOFF;
  const halfWidth = ZERO_CROSSINGS / cutoff; // in input samples
  for (let n = 0; n < outLength; n++) {
    const centre = n * ratio;
    const first = Math.max(0, Math.ceil(centre - halfWidth));
    const last = Math.min(samples.length - 1, Math.floor(centre + halfWidth));
    let sum = 0;
    for (let k = first; k <= last; k++) sum += samples[k] * kernel((centre - k) * cutoff);
    out[n] = sum * cutoff;
  }
  return out;
}
